#!/usr/bin/env bash
# Builds gand (release) and starts the service in the foreground on
# 127.0.0.1:8080 with its state in ./gand-state and the bundled digits as the
# data set `mnist`. Installs what it needs first; safe to run again (it
# reuses the build and the state: runs that were training resume).
# Extra arguments go to `gand serve` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
if [ -f build-release/build.ninja ]; then
    meson configure build-release -Dbuildtype=release -Dtests=false >/dev/null
else
    meson setup build-release -Dbuildtype=release -Dtests=false >/dev/null
fi
ninja -C build-release
exec build-release/cmd/gand serve --state-dir "${GAND_STATE_DIR:-$PWD/gand-state}" "$@"
