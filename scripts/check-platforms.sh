#!/usr/bin/env bash
# Type-checks the project (library, binary, tests, benches) for Windows and macOS from Linux:
# the targets of the DX12 and Metal backends, where nothing here can run it. Catches Unix-only
# calls (signals, statvfs, inodes) outside `cfg(unix)` before a user on those systems does.
# Needs rustup (adds the two targets' standard libraries once, ~60 MB). No linking, so no
# cross toolchain; libhdf5's build script reads the host's headers (the API is the same).
# Exit status: 0 checked, 1 an error or warning on a target, 2 not checked (no rustup, or the
# targets' standard libraries cannot be downloaded).
#   scripts/check-platforms.sh [--target-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/platforms
if [[ ${1:-} == --target-dir ]]; then dir=$2; fi
targets=(x86_64-pc-windows-gnu aarch64-apple-darwin)
# Exit status 2: the check could not run (no rustup, or the targets cannot be downloaded).
if ! installed=$(rustup target list --installed 2>/dev/null); then
    echo "!!! check-platforms: no rustup: Windows and macOS NOT checked !!!" >&2
    exit 2
fi
for t in "${targets[@]}"; do
    if ! grep -qx "$t" <<<"$installed" && ! rustup target add "$t"; then
        echo "!!! check-platforms: cannot add target $t: Windows and macOS NOT checked !!!" >&2
        exit 2
    fi
done
for t in "${targets[@]}"; do
    echo "== $t"
    CARGO_TARGET_DIR=$dir cargo clippy --quiet --all-targets --target "$t" -- -D warnings
done
echo "check-platforms: ${targets[*]}: no errors, no warnings"
