#!/usr/bin/env bash
# data/make-classifiers.sh — train the two committed digit classifiers with
# `gand classifier train` on the CPU:
#   mnist-classifier.safetensors      mnist's training digits 0..49,999
#                                     (50,000..59,999 held out), scored on t10k
#   mnist-10k-classifier.safetensors  mnist-10k's digits 0..7,999, scored on
#                                     its last 2,000
# Builds gand in $BUILD (default build-classifiers, a release build) first.
# Each run's epochs and summary (one JSON object per line) go to stdout and to
# $LOGDIR (default: a temporary directory). The same gand, CPU and thread count
# (OMP_NUM_THREADS, default 2 here) give the same bytes; data/README.md records
# what the committed files scored and how long they took.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="${BUILD:-$root/build-classifiers}"
logdir="${LOGDIR:-$(mktemp -d)}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" -Dbuildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" cmd/gand >/dev/null
gand="$build/cmd/gand"

train() { # train NAME ARGS...: writes data/NAME-classifier.safetensors
    local name=$1
    shift
    echo "== $name (log: $logdir/$name.jsonl)"
    "$gand" classifier train --backend cpu --seed 1 --out "$here/$name-classifier.safetensors" \
        "$@" | tee "$logdir/$name.jsonl"
}

train mnist --images "$here/mnist-train-images-idx3-ubyte.gz" \
    --labels "$here/mnist-train-labels-idx1-ubyte.gz" --holdout 10000 \
    --test-images "$here/mnist-t10k-images-idx3-ubyte.gz" \
    --test-labels "$here/mnist-t10k-labels-idx1-ubyte.gz" --epochs 30
train mnist-10k --images "$here/mnist-10k-images-idx3-ubyte.gz" \
    --labels "$here/mnist-10k-labels-idx1-ubyte.gz" --holdout 2000 --epochs 80

cd "$here"
sha256sum mnist-classifier.safetensors mnist-10k-classifier.safetensors
