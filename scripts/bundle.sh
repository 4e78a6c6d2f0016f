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
# DIR/tests/*.gz    test suites that run no ainrnn command, read no file but the project's
#                   data/hetrec/user_artists.dat (`model`), from the project root (release, stripped,
#                   gzipped, ~3.5 MB each): `ops` (every kernel against the CPU backend),
#                   `model` (finite-difference gradients, GPU vs CPU training steps, the fused
#                   table step against the formed one and every shader-check setting to the
#                   bit), `gpu_runtime` (the device layer: every matmul kernel to the bit,
#                   the tuner, the pool, the timer), `recommend` (its `gpu` test: every
#                   user's list ranked 256 at a time is the one ranked alone, to the bit; reads
#                   data/taste and data/msd) and `similar` (its `gpu` tests: songs like a song
#                   by content, the product and top-k on the device, against the host's
#                   scores, and by the model against `recommend --history`; the same data)
# DIR/test.sh NAME  runs suite NAME (unzipped on first use) with the libraries, CI=true (no
#                   adapter fails it) and the buffers poisoned (AINRNN_GPU_POISON=1); further
#                   arguments are the test harness's
# DIR/ops.sh        `DIR/test.sh ops`
#
# On the GPU machine, from the project root (data/ is read from there):
#   DIR/run.sh bench report --out /tmp/gpu-report --budget 230
#   DIR/ops.sh gpu                # the GPU half of the op suite
#   DIR/test.sh model gpu         # the GPU tests of the models
#   DIR/test.sh gpu_runtime --skip info_without_a_desktop_session   # (that one runs ainrnn)
#   DIR/test.sh recommend gpu     # batch lists against single ones (the others run ainrnn)
#   DIR/test.sh similar gpu       # songs like a song on the device (the others run ainrnn)
set -euo pipefail
cd "$(dirname "$0")/.."
out=.dev
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "bundle.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
scripts/setup.sh
cargo build --release --quiet --bin ainrnn
bin="${CARGO_TARGET_DIR:-target}/release/ainrnn"
suites=(ops model gpu_runtime recommend similar)
# The suites' executables: cargo names each (tests/NAME.rs (…/NAME-HASH)) on stderr.
built=$(cargo test --release --no-run "${suites[@]/#/--test=}" 2>&1)
tmp="$out.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp/lib" "$tmp/tests"
strip -o "$tmp/ainrnn" "$bin"
for t in "${suites[@]}"; do
  exe=$(sed -n "s|.*Executable tests/$t\(/main\)\{0,1\}\.rs (\(.*\)).*|\2|p" <<<"$built" | head -1)
  if [ ! -x "$exe" ]; then
    echo "bundle.sh: the test suite $t did not build (cargo test --release --no-run --test $t)" >&2
    exit 1
  fi
  strip -o "$tmp/tests/$t" "$exe"
  gzip -9 "$tmp/tests/$t"
done
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
cat >"$tmp/test.sh" <<'EOF'
#!/usr/bin/env bash
# Test suite $1 (tests/$1.gz, unzipped on first use) with the bundled libraries; the GPU tests
# must run (CI=true) and every buffer a kernel writes starts as NaN. Further arguments: the
# test harness's (e.g. `gpu` for the GPU half).
. "$(dirname "$0")/env.sh"
name="${1:?usage: test.sh SUITE [harness arguments] (suites: $(cd "$here/tests" && ls | sed 's/\.gz$//' | sort -u | tr '\n' ' '))}"
shift
exe="$here/tests/$name"
if [ ! -x "$exe" ]; then
  [ -f "$exe.gz" ] || { echo "test.sh: no suite $name in $here/tests" >&2; exit 2; }
  gzip -dc "$exe.gz" >"$exe.tmp.$$" && chmod +x "$exe.tmp.$$" && mv "$exe.tmp.$$" "$exe"
fi
export CI=true AINRNN_GPU_POISON="${AINRNN_GPU_POISON:-1}"
exec "$exe" "$@"
EOF
cat >"$tmp/ops.sh" <<'EOF'
#!/usr/bin/env bash
# The op suite (every kernel against the CPU backend): `test.sh ops`, same arguments.
exec "$(dirname "$0")/test.sh" ops "$@"
EOF
chmod +x "$tmp/run.sh" "$tmp/test.sh" "$tmp/ops.sh"
rm -rf "$out"
mv "$tmp" "$out"
echo "bundle.sh: $out ($(du -sh "$out" | cut -f1)): run $out/run.sh bench report --out DIR"
