#!/usr/bin/env bash
# Runs the Windows side of src/io/space.rs (free disk through GetDiskFreeSpaceExW, available
# memory through GlobalMemoryStatusEx: what the up-front size refusals read there) under Wine,
# and checks its figures against Linux's own (`df`, `MemAvailable`), which Wine passes through.
# check-platforms.sh only type-checks that code; this runs it. Not part of CI (it installs Wine
# and a MinGW linker, ~250 MB); run it after changing space.rs.
# The whole project cannot be linked for Windows here (libhdf5), so a small program includes
# space.rs alone. Rust's standard library for Windows imports bcryptprimitives.dll's
# ProcessPrng, which Wine 8 (Debian 12) lacks: a three-line stand-in DLL is built beside it.
# Exit status: 0 the figures agree, 1 they do not, 2 not run (no rustup target or no Wine).
#   scripts/run-windows-space.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t=x86_64-pc-windows-gnu
sudo=""
[[ $(id -u) -eq 0 ]] || sudo=sudo
if ! command -v wine >/dev/null || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        wine wine64 gcc-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64 >/dev/null; then
        echo "!!! run-windows-space: cannot install Wine and MinGW: NOT run !!!" >&2
        exit 2
    fi
fi
if ! rustup target list --installed 2>/dev/null | grep -qx $t && ! rustup target add $t; then
    echo "!!! run-windows-space: no $t standard library: NOT run !!!" >&2
    exit 2
fi
work=$root/target/windows-space
mkdir -p "$work/src"
cat >"$work/Cargo.toml" <<EOF
[package]
name = "windows-space"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
libc = "0.2"

[target.'cfg(windows)'.dependencies]
windows-sys = { version = "0.61", features = ["Win32_Storage_FileSystem", "Win32_System_SystemInformation"] }
EOF
cat >"$work/src/main.rs" <<EOF
#[allow(dead_code)]
#[path = "$root/src/io/space.rs"]
mod space;
fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let free = space::free_disk_bytes(std::path::Path::new(&dir));
    let missing = space::free_disk_bytes(std::path::Path::new("Z:\\\\no\\\\such\\\\folder"));
    let mem = space::available_memory_bytes();
    let show = |x: Option<u64>| x.map_or("none".to_string(), |v| v.to_string());
    println!("{} {} {}", show(free), show(missing), show(mem));
}
EOF
cat >"$work/prng.c" <<'EOF'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}
EOF
cp Cargo.lock "$work/" 2>/dev/null || true
(cd "$work" && cargo build --quiet --release --target $t)
bin=$work/target/$t/release
x86_64-w64-mingw32-gcc -shared -O2 -o "$bin/bcryptprimitives.dll" "$work/prng.c" -ladvapi32
export WINEPREFIX=$work/wineprefix WINEDEBUG=-all
read -r free missing mem < <(wine "$bin/windows-space.exe" 'Z:\tmp' 2>/dev/null | tr -d '\r')
linux_free=$(df -B1 --output=avail /tmp | tail -1 | tr -d ' ')
linux_mem=$(($(awk '/^MemAvailable:/ {print $2}' /proc/meminfo) * 1024))
echo "free disk on /tmp:  Windows code under Wine $free, df $linux_free"
echo "a missing folder:   $missing (want none)"
echo "available memory:   Windows code under Wine $mem, MemAvailable $linux_mem"
ok=1
near() { # within 10 % (the two are read moments apart, and Wine counts memory its own way)
    [[ $1 =~ ^[0-9]+$ ]] && awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.1 * b) }'
}
near "$free" "$linux_free" || ok=0
[[ $missing == none ]] || ok=0
near "$mem" "$linux_mem" || ok=0
if [[ $ok == 1 ]]; then
    echo "run-windows-space: the Windows calls agree with Linux's figures"
else
    echo "run-windows-space: MISMATCH" >&2
    exit 1
fi
