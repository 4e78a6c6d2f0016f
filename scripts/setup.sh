#!/usr/bin/env bash
# Installs the system packages ainrnn needs, only when missing (Debian/Ubuntu, apt-get; sudo
# when not root). Safe to run repeatedly.
set -euo pipefail

need=(pkg-config gcc libhdf5-dev libvulkan1 mesa-vulkan-drivers)
missing=()
for p in "${need[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null; then
    echo "setup: missing system packages ${missing[*]} and no apt-get to install them" >&2
    exit 1
  fi
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
  echo "setup: installing ${missing[*]}" >&2
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust first (https://rustup.rs)" >&2
  exit 1
fi
