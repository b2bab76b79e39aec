#!/usr/bin/env bash
# Installs the Debian 12 packages Callisto needs, and only the ones that are missing.
#
#   scripts/install-deps.sh build   # libraries and tools to compile Callisto
#   scripts/install-deps.sh test    # the build set plus the real peers the integration tests run
#
# Runs as root, or through sudo when it exists. When everything is already present it only
# queries dpkg and exits (well under a second); `apt-get update` runs only if something is missing.
set -euo pipefail

BUILD_PACKAGES=(
    build-essential
    pkg-config
    libclang-dev
    libasound2-dev
    libfontconfig1-dev
    cmake
    nasm
    libopus-dev
    ca-certificates
)

TEST_PACKAGES=(
    "${BUILD_PACKAGES[@]}"
    kamailio
    kamailio-tls-modules
    kamailio-websocket-modules
    baresip
    baresip-core
    iproute2
    util-linux
    openssl
    procps
    strace
)

usage() {
    echo "usage: $0 build|test" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
case "$1" in
    build) wanted=("${BUILD_PACKAGES[@]}") ;;
    test) wanted=("${TEST_PACKAGES[@]}") ;;
    *) usage ;;
esac

# One dpkg-query call for the whole set: a package counts as present only when its status
# is "install ok installed" (removed-but-configured packages are reinstalled).
installed="$(dpkg-query -W -f='${Package} ${Status}\n' "${wanted[@]}" 2>/dev/null || true)"
missing=()
for package in "${wanted[@]}"; do
    if ! grep -qE "^${package}(:[a-z0-9]+)? install ok installed$" <<<"$installed"; then
        missing+=("$package")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#wanted[@]} packages for '$1' are present"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run this script as root (sudo is not available)" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
