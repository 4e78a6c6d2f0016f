#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs every test.
# With CI=true the GPU tests run on Mesa lavapipe (WGPU_BACKEND=vulkan) and fail without an
# adapter; locally without an adapter they are skipped with a loud message.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Mesa's Vulkan loader complains on headless machines without it; harmless, but noisy.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# Every buffer a kernel is to write starts as NaN, so a kernel reading memory it did not write
# fails its comparison with the CPU (lavapipe hands out zeroed buffers; a real GPU's pool may not).
export AINRNN_GPU_POISON="${AINRNN_GPU_POISON:-1}"
if [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; then
  export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
  echo "== CI: cargo fmt --check, clippy -D warnings" >&2
  cargo fmt --all -- --check
  cargo clippy --all-targets --quiet -- -D warnings
  echo "== CI: the same for Windows and macOS (scripts/check-platforms.sh)" >&2
  rc=0
  scripts/check-platforms.sh || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 2 ] || exit "$rc"
fi
cargo build --quiet --bin ainrnn
echo "== GPU adapter for the tests:" >&2
# The binary cargo just built, wherever CARGO_TARGET_DIR puts it.
bin="${CARGO_TARGET_DIR:-target}/debug/ainrnn"
if ! "$bin" --backend gpu info 2>&1 | grep -E "^chosen: " | grep -v "chosen: none" >&2; then
  echo "!!! No GPU adapter: GPU tests will be SKIPPED (install mesa-vulkan-drivers for lavapipe). !!!" >&2
fi
cargo test --quiet "$@"
