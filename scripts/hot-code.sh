#!/bin/bash
# Writes scripts/hot-code.txt, the functions of `callisto` that a headless call runs, which the
# build places together at the start of the binary's code (scripts/hot_code.rs). It profiles the
# processes of one round of the call_baseline bench (registered Opus calls through Kamailio,
# plain RTP and SDES-SRTP, `callisto answer` and `callisto call`) with valgrind's callgrind, and
# lists every function of the binary they ran, in the order of their profiles. Run it (as root,
# like `make test`: the calls run in a network namespace) when the call's code has changed much
# or after a toolchain update: functions added, renamed or inlined differently since the
# profile are not placed (tests/hot_code.rs fails when most of the list no longer matches).
# Needs valgrind (Debian package `valgrind`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind > /dev/null; then
    echo "scripts/hot-code.sh needs valgrind: apt-get install valgrind" >&2
    exit 1
fi
profiles=$(mktemp -d)
trap 'rm -rf "$profiles"' EXIT

cargo build --release --bin callisto
cargo test --release --bench call_baseline --no-run
unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' \
    env CALLISTO_CALLGRIND_DIR="$profiles" \
    cargo test --release --offline --bench call_baseline

list=scripts/hot-code.txt
{
    echo "# The functions of \`callisto\` registered Opus calls (RTP, SRTP) ran, written by scripts/hot-code.sh"
    echo "# (see scripts/hot_code.rs). rustc: $(rustc --version)"
    # Callgrind names a function once per object (`ob=`) it belongs to; `'N` marks a recursion
    # cycle and `.N` a local copy made by link-time optimisation (the build matches any such
    # suffix); addresses without a symbol and valgrind's own entries are skipped.
    awk '
        /^ob=/ { in_binary = ($0 ~ /\/callisto$/) }
        /^fn=/ && in_binary {
            name = substr($0, 4)
            sub(/[^A-Za-z0-9_$.][0-9]+$/, "", name)
            sub(/\.[0-9]+$/, "", name)
            if (name ~ /^(0x|\()/ || name ~ / /) next
            if (!(name in seen)) { seen[name] = 1; print name }
        }' "$profiles"/callgrind.*
} > "$list.new"
mv "$list.new" "$list"
echo "$list: $(grep -vc '^#' "$list") functions"
