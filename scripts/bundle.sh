#!/usr/bin/env bash
# A self-contained copy of the release binary for a GPU machine that cannot install or build
# (no network, no compiler, no libhdf5): build here, copy the folder beside the project there.
#
#   scripts/bundle.sh [--out DIR]          # default DIR: .dev (ignored by git)
#
# DIR/ainrnn        the release binary, stripped (~17 MB)
# DIR/lib/          the shared libraries it links beyond glibc (libhdf5 and its own), and the
#                   Vulkan loader (wgpu opens it at run time, so ldd does not list it)
# DIR/run.sh        runs DIR/ainrnn with those libraries, Vulkan chosen, and the NVIDIA driver's
#                   ICD named when the usual file is there (a container without the loader's
#                   search paths); any arguments are ainrnn's
# DIR/ops           the op test suite (tests/ops, release, stripped, ~9 MB): every kernel
#                   against the CPU backend; it reads no file
# DIR/ops.sh        runs it the same way, with CI=true (no adapter fails it) and the buffers
#                   poisoned (AINRNN_GPU_POISON=1); any arguments are the test harness's
#
# On the GPU machine, from the project root (data/ is read from there):
#   DIR/run.sh bench report --out /tmp/gpu-report --budget 230
#   DIR/ops.sh gpu                # the GPU half of the op suite
set -euo pipefail
cd "$(dirname "$0")/.."
out=.dev
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bundle.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
scripts/setup.sh
cargo build --release --quiet --bin ainrnn
bin="${CARGO_TARGET_DIR:-target}/release/ainrnn"
# The op suite's executable: cargo names it (ops-HASH) on stderr.
ops=$(cargo test --release --no-run --test ops 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | head -1)
if [ ! -x "$ops" ]; then
  echo "bundle.sh: the op suite did not build (cargo test --release --no-run --test ops)" >&2
  exit 1
fi
tmp="$out.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp/lib"
strip -o "$tmp/ainrnn" "$bin"
strip -o "$tmp/ops" "$ops"
# Every library the binary resolves, but glibc's own (the target has its glibc; a copied
# libc next to another loader breaks).
ldd "$bin" | awk '/=> \// {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libresolv.so.*|ld-linux*) ;;
    *) cp -L "$lib" "$tmp/lib/" ;;
  esac
done
loader=$(ldconfig -p | awk '/libvulkan\.so\.1 .*x86-64/ {print $NF; exit}')
if [ -z "$loader" ]; then
  echo "bundle.sh: no libvulkan.so.1 here (scripts/setup.sh installs libvulkan1)" >&2
  exit 1
fi
cp -L "$loader" "$tmp/lib/libvulkan.so.1"
cat >"$tmp/env.sh" <<'EOF'
# The environment of run.sh and ops.sh (written by scripts/bundle.sh): the bundled libraries,
# Vulkan, the NVIDIA ICD when found.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
             /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then
      export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
      break
    fi
  done
fi
EOF
cat >"$tmp/run.sh" <<'EOF'
#!/usr/bin/env bash
# ainrnn with the libraries bundled beside it (written by scripts/bundle.sh).
. "$(dirname "$0")/env.sh"
exec "$here/ainrnn" "$@"
EOF
cat >"$tmp/ops.sh" <<'EOF'
#!/usr/bin/env bash
# The op suite (every kernel against the CPU backend) with the bundled libraries; the GPU tests
# must run (CI=true) and every buffer a kernel writes starts as NaN. Arguments: the test
# harness's (e.g. `gpu` for the GPU half).
. "$(dirname "$0")/env.sh"
export CI=true AINRNN_GPU_POISON="${AINRNN_GPU_POISON:-1}"
exec "$here/ops" "$@"
EOF
chmod +x "$tmp/run.sh" "$tmp/ops.sh"
rm -rf "$out"
mv "$tmp" "$out"
echo "bundle.sh: $out ($(du -sh "$out" | cut -f1)): run $out/run.sh bench report --out DIR"
