#!/usr/bin/env bash
# The main job: installs what is missing, builds in release mode and runs the demo on the
# bundled data (GPU when there is one, else the CPU path with a note saying so).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
cargo run --release --quiet --bin ainrnn -- demo "$@"
