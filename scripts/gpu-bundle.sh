#!/usr/bin/env bash
# scripts/gpu-bundle.sh — everything the GPU device check runs, in one folder
# that can travel to a machine with a GPU and none of gand's libraries.
#
#   scripts/gpu-bundle.sh [--build DIR] [OUTDIR]     (OUTDIR default: gpu-bundle)
#
# Builds with CUDA (a release build in build-gpu-bundle/, or the existing build
# DIR) the op-table tests, the CPU/CUDA parity test, bench_train and gand, and
# gathers into OUTDIR:
#   device-check.sh, serve-smoke.py   the check (tests/gpu/) and its gand serve stage
#   bin/                              the five programs
#   lib.tar.gz                        every shared library they load that is not CUDA's,
#                                     glibc and its loader included, so that the
#                                     programs run through the bundle's own loader
#                                     whatever the machine's C library is
#   data/                             the bundled digits and classifiers
#   MANIFEST                          what is in it, where each library came from
# CUDA's own libraries (libcudart, libcublas, libcublasLt, and the driver's
# libcuda) are left out: the GPU machine has them, and device-check.sh's
# first stage says where it found them. Works when run twice (OUTDIR is
# rebuilt).
set -euo pipefail
cd "$(dirname "$0")/.."
build=
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "gpu-bundle.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
out=${1:-gpu-bundle}
programs=(cmd/gand tests/test_ops tests/test_ops_training tests/test_gpu_parity bench/bench_train)

if [ -z "$build" ]; then
    build=build-gpu-bundle
    cuda=enabled
    [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null || cuda=auto
    if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" -Dcuda=$cuda -Dbuildtype=release -Dwerror=true >/dev/null
    fi
    ninja -C "$build" "${programs[@]}" >/dev/null
fi
for p in "${programs[@]}"; do
    [ -x "$build/$p" ] || { echo "gpu-bundle.sh: $build/$p is missing (build it first)" >&2; exit 1; }
done

rm -rf "$out"
mkdir -p "$out/bin" "$out/data" "$out/.lib"
for p in "${programs[@]}"; do cp "$build/$p" "$out/bin/"; done
cp tests/gpu/device-check.sh tests/gpu/serve-smoke.py "$out/"
cp data/*.gz data/*.safetensors "$out/data/"

# The libraries: every one ldd resolves for the programs, except CUDA's.
is_cuda() { case $(basename "$1") in libcuda.so* | libcudart.so* | libcublas*.so* | libnvrtc*.so* | libnvJitLink*.so*) return 0 ;; esac; return 1; }
{
    echo "gand GPU bundle, built $(date -u +%Y-%m-%dT%H:%MZ) from $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "backends: $("$build/cmd/gand" --version | sed 's/.*backends: //; s/)//')"
    echo
    echo "programs:"
    for p in "${programs[@]}"; do echo "  bin/$(basename "$p")"; done
    echo
    echo "libraries (lib.tar.gz), from:"
} >"$out/MANIFEST"
while read -r name path; do
    if is_cuda "$path"; then
        echo "  (not bundled: $name, the GPU machine's own)" >>"$out/MANIFEST"
        continue
    fi
    cp -L "$path" "$out/.lib/$name"
    echo "  $name  $path" >>"$out/MANIFEST"
done < <(for p in "${programs[@]}"; do ldd "$build/$p"; done |
    awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u)
# the loader, which ldd names without "=>"
loader=$(ldd "$build/cmd/gand" | awk '$1 ~ /^\/.*ld-linux/ {print $1}')
cp -L "$loader" "$out/.lib/$(basename "$loader")"
echo "  $(basename "$loader")  $loader (the loader the programs run through)" >>"$out/MANIFEST"
tar -C "$out/.lib" -czf "$out/lib.tar.gz" .
rm -rf "$out/.lib"
echo >>"$out/MANIFEST"
echo "data/: $(cd "$out/data" && ls | tr '\n' ' ')" >>"$out/MANIFEST"
size=$(du -sb "$out" | cut -f1)
echo "size: $((size / 1048576)) MiB ($size bytes)" >>"$out/MANIFEST"
echo "gpu-bundle.sh: $out ($((size / 1048576)) MiB); on the GPU machine: bash $out/device-check.sh"
