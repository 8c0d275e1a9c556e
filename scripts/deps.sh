#!/usr/bin/env bash
# Installs what gand needs on Debian 12. Usage: scripts/deps.sh [build|test]
#   build: the compiler, the libraries and what the dashboard shows (Chart.js).
#   test:  also what every test of scripts/test.sh runs: cmocka, clang's
#          libFuzzer, valgrind, Debian's chromium and Node.js for the browser
#          test (with its own `npm ci` from tests/browser/package-lock.json),
#          promtool (package prometheus) to lint /metrics, and munge and
#          Slurm (slurmctld, slurmd, slurm-client) for the one-node cluster
#          that tests/integration/slurmtest.py starts on loopback.
# Safe to run any number of times: apt-get runs only when something is missing,
# npm ci only when tests/browser/node_modules is not what the lock file names.
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(build-essential meson ninja-build pkg-config
            libopenblas-dev libopenblas-openmp-dev libpng-dev zlib1g-dev libcjson-dev
            libmicrohttpd-dev libsystemd-dev libinih-dev libjs-chart.js)
test_pkgs=(libcmocka-dev python3 curl systemd dataset-fashion-mnist
           clang libclang-rt-14-dev libomp-dev valgrind prometheus
           munge slurmctld slurmd slurm-client)
# The browser test's; apart, so that a machine where one cannot be had at all
# still runs everything else, and scripts/test.sh is told why (see below).
browser_pkgs=(chromium)

mode=${1:-build}
case $mode in
build | test) ;;
*)
    echo "usage: scripts/deps.sh [build|test]" >&2
    exit 2
    ;;
esac

have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
updated=false
install() { # packages...
    local missing=() p
    for p in "$@"; do
        have "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "installing: ${missing[*]}"
    if [ $updated = false ]; then
        $SUDO apt-get update -qq
        updated=true
    fi
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

want=("${build_pkgs[@]}")
if [ "$mode" = test ]; then
    want+=("${test_pkgs[@]}")
fi
install "${want[@]}"
[ "$mode" = test ] || exit 0

# The browser test: Debian's chromium, Node.js and npm (unless the machine has
# a node and npm of its own: a NodeSource nodejs ships npm, and Debian's npm
# package conflicts with it), and its own packages exactly as its lock file
# names them (npm ci again only when the lock file is newer than what it last
# installed). What cannot be had is written to tests/browser/UNAVAILABLE, which
# scripts/test.sh reads: only then may the browser test skip.
unavailable=tests/browser/UNAVAILABLE
rm -f "$unavailable"
pkgs=("${browser_pkgs[@]}")
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
if ! out=$(install "${pkgs[@]}" 2>&1); then
    printf '%s\n' "$out" >&2
    printf 'apt-get could not install %s:\n%s\n' "${pkgs[*]}" "$(printf '%s\n' "$out" | tail -3)" >"$unavailable"
    echo "deps.sh: the browser test cannot run: see $unavailable" >&2
    exit 0
fi
[ -z "$out" ] || printf '%s\n' "$out"
stamp=tests/browser/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ tests/browser/package-lock.json -nt "$stamp" ]; then
    echo "tests/browser: npm ci (from package-lock.json)"
    if ! out=$(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error 2>&1); then
        printf '%s\n' "$out" >&2
        printf 'npm ci in tests/browser failed:\n%s\n' "$(printf '%s\n' "$out" | tail -3)" >"$unavailable"
        echo "deps.sh: the browser test cannot run: see $unavailable" >&2
    fi
fi
