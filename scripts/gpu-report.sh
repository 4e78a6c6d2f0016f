#!/usr/bin/env bash
# The prepared GPU report: one command for a person with a GPU, run once.
#
#   scripts/gpu-report.sh [--quick] --out DIR [--skip PART,...] [--bin PATH]
#
# Installs what is missing, builds the release binary (unless --bin names one) and runs
# `ainrnn bench report`: info, bench ops (matmul 4096³, softmax 256 × 360,000), bench features
# (256 clips of 30 s), bench scattering, a paper-scale AINRNN epoch on the GPU with the CPU's
# projected, GPU-vs-CPU NDCG@10 after 2 epochs on HetRec fold 0, and `demo --quick` on each
# backend. Every part runs under its own timeout; a failed part is recorded and the rest carry
# on. Writes DIR/results.json and DIR/report.md (about 5 minutes on one data-centre GPU, under 8).
# --quick shrinks every size so the whole report runs on lavapipe (CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=""
args=()
while (($#)); do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --bin=*) bin="${1#--bin=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin ainrnn
  bin="${CARGO_TARGET_DIR:-target}/release/ainrnn"
fi
exec "$bin" bench report "${args[@]}"
