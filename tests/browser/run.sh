#!/bin/sh
# tests/browser/run.sh GAND_BINARY [ARTIFACT_DIR]
#
# The dashboard's browser test (meson test --suite browser): Debian's chromium,
# driven by playwright-core from npm, against a real `gand serve`. Screenshots
# and gand's log go to ARTIFACT_DIR (default $MESON_BUILD_ROOT/browser-artifacts).
# Exits 77 (meson's "skipped") when a tool it needs is not installed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
gand=${1:?usage: run.sh GAND_BINARY [ARTIFACT_DIR]}
out=${2:-${MESON_BUILD_ROOT:-$here}/browser-artifacts}
chromium=${CHROMIUM:-/usr/bin/chromium}
chart_js=${GAND_TEST_CHART_JS:-/usr/share/javascript/chart.js/chart.min.js}

skip() {
    echo "SKIP: $* — the dashboard browser test did not run" >&2
    echo "SKIP: $*"
    exit 77
}

command -v node >/dev/null 2>&1 || skip "node is not installed (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (apt-get install npm)"
[ -x "$chromium" ] || skip "$chromium is not installed (apt-get install chromium)"
[ -r "$chart_js" ] || skip "$chart_js is missing (apt-get install libjs-chart.js)"
[ -x "$gand" ] || { echo "FAIL: $gand is not an executable" >&2; exit 1; }

if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
    echo "tests/browser: npm ci (playwright-core, from package-lock.json)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || {
        echo "FAIL: npm ci failed in $here (is the npm registry reachable?)" >&2
        exit 1
    }
fi

mkdir -p "$out"
CHROMIUM=$chromium exec node "$here/dashboard.test.mjs" "$gand" "$out"
