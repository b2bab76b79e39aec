#!/usr/bin/env bash
# Installs the Debian 12 packages Callisto needs, and only the ones that are missing.
#
#   scripts/install-deps.sh build   # libraries and tools to compile Callisto
#   scripts/install-deps.sh test    # the build set plus the real peers the integration tests run
#
# Runs as root, or through sudo when it exists. When everything is already present it only
# queries dpkg and exits (well under a second); `apt-get update` runs only if something is missing.
#
# The test set includes coturn (`turnserver`, the TURN server of tests/call_turn.rs; the tests
# run it in the foreground with their own configuration, never as the system service).
#
# The test set includes PulseAudio (`pulseaudio`, and `pactl`/`paplay`/`parecord` from
# `pulseaudio-utils`): tests/audio_device.rs starts a private server of its own on a unix socket
# in a temp dir, with null sinks as sound cards, never the system or user instance.
#
# The test set includes the browser peer (tests/browser/): Debian's `chromium`, Node.js with npm
# (Debian's `nodejs` and `npm`, unless a `node` and an `npm` are already on PATH), and the pinned
# npm packages of tests/browser/package-lock.json (playwright-core, jssip, esbuild), installed
# with `npm ci` only when the lockfile changed since the last install. Playwright never
# downloads a browser of its own: it drives /usr/bin/chromium.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
browser_peer="$repo/tests/browser"

# libclang-dev and linux-libc-dev: bindgen generates nokhwa's V4L2 bindings (the camera) from
# <linux/videodev2.h>.
BUILD_PACKAGES=(
    build-essential
    pkg-config
    libclang-dev
    linux-libc-dev
    libasound2-dev
    libfontconfig1-dev
    cmake
    nasm
    libopus-dev
    ca-certificates
    # What the window loads at run time (winit opens X11 or Wayland and the keyboard map by
    # name), and a font for the text.
    libx11-6
    libx11-xcb1
    libxcursor1
    libxi6
    libxrandr2
    libxkbcommon0
    libxkbcommon-x11-0
    libwayland-client0
    libwayland-cursor0
    fonts-dejavu-core
)

TEST_PACKAGES=(
    "${BUILD_PACKAGES[@]}"
    kamailio
    kamailio-tls-modules
    kamailio-websocket-modules
    baresip
    baresip-core
    # baresip's `avcodec` module (H.264 for tests/call_baresip_video.rs and the conference); the
    # `baresip` metapackage only recommends it, and recommends are not installed.
    baresip-ffmpeg
    coturn
    iproute2
    # `nft`: loss injected on loopback in the tests' network namespace (tests/support/packet_loss.rs).
    nftables
    util-linux
    openssl
    procps
    strace
    chromium
    # A virtual X server for the window's screenshots (tests/ui_screenshots.rs).
    xvfb
    pulseaudio
    pulseaudio-utils
    # A private session bus for the desktop-notification tests (src/app/notifier.rs).
    dbus-daemon
)

# Node.js for the browser peer: any `node` and `npm` on PATH will do (the machine may have its
# own build); otherwise Debian's packages.
NODE_PACKAGES=(
    nodejs
    npm
)

usage() {
    echo "usage: $0 build|test" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
case "$1" in
    build) wanted=("${BUILD_PACKAGES[@]}") ;;
    test)
        wanted=("${TEST_PACKAGES[@]}")
        if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
            wanted+=("${NODE_PACKAGES[@]}")
        fi
        ;;
    *) usage ;;
esac

# `npm ci` of the browser peer's pinned packages, skipped when node_modules was installed from
# this very lockfile (its hash is stamped into node_modules).
install_browser_peer() {
    local stamp="$browser_peer/node_modules/.callisto-lock-sha256"
    local lock_hash
    lock_hash="$(sha256sum "$browser_peer/package-lock.json" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" ]]; then
        echo "install-deps: browser peer packages are present (tests/browser/node_modules)"
        return
    fi
    echo "install-deps: installing the browser peer's npm packages (tests/browser)"
    (
        cd "$browser_peer"
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund
    )
    echo "$lock_hash" >"$stamp"
}

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
    if [[ $1 == test ]]; then
        install_browser_peer
    fi
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
if [[ $1 == test ]]; then
    install_browser_peer
fi
