#!/usr/bin/env bash
# Installs, with apt-get and only when missing, the Debian packages that the
# thinp build and its tests need. Safe to run again: it does nothing when all
# packages are present. Must run as root (or with sudo available).
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libgtest-dev libgmock-dev
  librapidcheck-dev
  libboost-dev libboost-context-dev
  libz3-dev
  libgoogle-perftools-dev
  liburing-dev
  libcli11-dev libfmt-dev
  libisal-dev
  ccache
  fio
)
# clang is optional: when present the libFuzzer targets are built too.

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
