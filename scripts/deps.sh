#!/usr/bin/env bash
# Installs the Debian 12 packages gand needs. Usage: scripts/deps.sh [build|test]
# Safe to run any number of times: apt-get runs only when something is missing.
set -euo pipefail

build_pkgs=(build-essential meson ninja-build pkg-config
            libopenblas-dev libopenblas-openmp-dev libpng-dev zlib1g-dev libcjson-dev
            libmicrohttpd-dev libsystemd-dev libinih-dev)
test_pkgs=(libcmocka-dev python3 curl systemd dataset-fashion-mnist
           clang libclang-rt-14-dev libomp-dev valgrind)

want=("${build_pkgs[@]}")
if [ "${1:-build}" = test ]; then
    want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
