#!/usr/bin/env bash
# tests/gpu/device-check.sh — everything that needs a GPU, in one bounded run.
#
# Two ways to run it:
#   bash gpu-bundle/device-check.sh     from the folder scripts/gpu-bundle.sh made: on a
#                                       GPU machine with none of gand's libraries; the
#                                       programs run through the bundle's own loader and
#                                       libraries, and only CUDA's come from the machine
#   bash tests/gpu/device-check.sh      from a checkout with gand's build dependencies:
#                                       it builds with CUDA first (build-gpu/)
#
# Stages, each with its own timeout (they add up to 490 s in a bundle): the
# bundle's libraries (bundle only), nvidia-smi, the op tables on CUDA against
# the CPU, the CPU/CUDA training parity test and CUDA-graph replay against eager
# CUDA (both in test_gpu_parity), the GPU epoch benchmark at batch 64 and 1024
# on 60,000 digits (fp32 and TF32), and gand serve on the GPU (serve-smoke.py).
# Each row of the table is printed, and written to $OUT/device-check.log, as
# soon as its stage ends, so a run cut short still says what it found.
# GAND_REQUIRE_CUDA=1 is set for the tests, so a CUDA skip is a failure. Exits 0
# only when nvidia-smi answered and the GPU itself ran and passed every stage.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
log() { printf '%s\n' "$*" | tee -a "$out/device-check.log"; }
status=0
row() { # row CHECK RESULT: one line of the table, now; any result but PASS fails the check
    log "| $1 | $2 |"
    case $2 in PASS*) ;; *) status=1 ;; esac
}
finish() {
    log "device check: $([ $status = 0 ] && echo PASS || echo FAIL) (files in $out)"
    exit $status
}
export GAND_REQUIRE_CUDA=1
unset GAND_CUDA_GRAPHS # graphs on unless a test or the bench switches them off itself

log "== gand device check, $(date -u +%Y-%m-%dT%H:%MZ) =="
log "| check | result |"
log "|---|---|"

if [ -x "$here/bin/gand" ]; then
    # ---- a bundle: unpack its libraries, run everything through its loader ----
    root=$here
    lib=$(mktemp -d)
    trap 'rm -rf "$lib"' EXIT
    if ! timeout 20 tar -C "$lib" -xzf "$here/lib.tar.gz" 2>"$out/unpack.log"; then
        row "bundle libraries" "FAIL: cannot unpack lib.tar.gz: $(head -1 "$out/unpack.log")"
        finish
    fi
    loader=$(ls "$lib"/ld-linux*.so* | head -1)
    # CUDA's libraries are the machine's: where the programs' RUNPATH and the loader's
    # cache would look, and where CUDA is usually installed
    cuda_path=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib/wsl/lib; do
        [ -d "$d" ] && cuda_path=$cuda_path:$d
    done
    libpath=$lib:$cuda_path
    bin() { # bin NAME: the command line that runs program NAME of the bundle
        echo "$loader --library-path $libpath $here/bin/$1"
    }
    # every library resolves, and all but CUDA's from the bundle itself
    missing= outside=
    for p in "$here"/bin/*; do
        listing=$(timeout 5 "$loader" --library-path "$libpath" --list "$p" 2>&1)
        missing+=$(echo "$listing" | awk '/not found/ {print $1}')" "
        outside+=$(echo "$listing" | awk -v lib="$lib/" '$2 == "=>" && $3 ~ /^\// &&
            index($3, lib) != 1 && $1 !~ /^lib(cuda|cudart|cublas|cublasLt|nvrtc|nvJitLink)[.]/ {print $1}')" "
    done
    missing=$(echo $missing | tr ' ' '\n' | sort -u | tr '\n' ' ')
    outside=$(echo $outside | tr ' ' '\n' | sort -u | tr '\n' ' ')
    if [ -n "${outside// /}" ]; then
        row "bundle libraries" "FAIL: resolved outside the bundle: $outside"
        finish
    fi
    cudart=$(timeout 5 "$loader" --library-path "$libpath" --list "$here/bin/test_ops" 2>/dev/null |
        awk '/libcudart|libcublas\./ {print $1 " " $3}' | tr '\n' ' ')
    if [ -n "${missing// /}" ]; then
        row "bundle libraries ($(tar -tzf "$here/lib.tar.gz" | grep -c '\.so'))" \
            "FAIL: not found: $missing(CUDA's are the machine's: install CUDA 13's runtime and cuBLAS, or set LD_LIBRARY_PATH)"
        finish
    fi
    row "bundle libraries ($(tar -tzf "$here/lib.tar.gz" | grep -c '\.so'); CUDA: ${cudart:-not linked})" PASS
    if version=$(timeout 10 $(bin gand) --version 2>&1); then
        row "gand runs from the bundle ($version)" PASS
    else
        row "gand runs from the bundle" "FAIL: $version"
        finish
    fi
    data=$here/data
else
    # ---- a checkout: build with CUDA first ----
    root=$(cd "$here/../.." && pwd)
    build=${BUILD:-$root/build-gpu}
    rm -rf "$build"
    if ! timeout 150 bash -c "cd '$root' && meson setup '$build' -Dcuda=enabled -Dbuildtype=release \
            -Dwerror=true >'$out/setup.log' 2>&1 && ninja -C '$build' cmd/gand tests/test_ops \
            tests/test_ops_training tests/test_gpu_parity bench/bench_train >'$out/build.log' 2>&1"; then
        row "CUDA build" "FAIL (see setup.log, build.log)"
        tail -20 "$out/setup.log" "$out/build.log" 2>/dev/null
        finish
    fi
    row "CUDA build" PASS
    bin() {
        case $1 in
        gand) echo "$build/cmd/gand" ;;
        bench_train) echo "$build/bench/bench_train" ;;
        *) echo "$build/tests/$1" ;;
        esac
    }
    data=$root/data
fi
export GAND_SOURCE_ROOT=$root GAND_DATADIR=$data

if ! timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    >"$out/nvidia-smi.txt" 2>&1; then
    row "GPU" "FAIL: no device answered: nvidia-smi: $(head -1 "$out/nvidia-smi.txt")"
    finish
fi
row "GPU ($(head -1 "$out/nvidia-smi.txt"))" PASS

# The op tables: both programs must pass on every backend, and CUDA must have run.
# (GAND_REQUIRE_CUDA=1: a CUDA backend that does not open fails them)
ops=PASS
for t in test_ops test_ops_training; do
    limit=45; [ $t = test_ops_training ] && limit=25
    if ! timeout $limit $(bin $t) >"$out/$t.log" 2>&1 && [ "$ops" = PASS ]; then
        ops="FAIL: $t: $(grep -m1 -E '^(FAIL|\[  FAILED  \]|SKIP)' "$out/$t.log" || echo "see $t.log")"
    fi
done
row "op tables on CUDA vs CPU" "$ops"

timeout 100 $(bin test_gpu_parity) >"$out/parity.log" 2>&1
case $? in
0) parity=PASS ;;
124) parity="FAIL: timed out after 100 s" ;;
*) parity="FAIL: $(grep -m1 -E '^(FAIL|SKIP)' "$out/parity.log" || echo 'see parity.log')" ;;
esac
row "CPU/CUDA training parity and graph replay vs eager" "$parity"
grep -E '^(cpu vs cuda|cuda graphs vs eager)' "$out/parity.log" |
    sed 's/^/| /; s/: /: | /; s/$/ |/' | tee -a "$out/device-check.log"

train=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
[ -r "$train" ] || train=$data/mnist-train-images-idx3-ubyte.gz
if timeout 90 $(bin bench_train) --device cuda --data "$train" --batches 64,1024 \
    --max-iterations 2000 >"$out/bench-fp32.txt" 2>&1; then
    grep -E '^\| (64|1024) ' "$out/bench-fp32.txt" | sed 's/^/| fp32 bench /' |
        tee -a "$out/device-check.log"
else
    row "fp32 benchmark" "FAIL (see bench-fp32.txt)"
fi
if timeout 40 $(bin bench_train) --device cuda --data "$train" --batches 1024 \
    --max-iterations 500 --tf32 >"$out/bench-tf32.txt" 2>&1; then
    grep -E '^\| 1024 ' "$out/bench-tf32.txt" | sed 's/^/| tf32 bench /' |
        tee -a "$out/device-check.log"
else
    row "tf32 benchmark" "FAIL (see bench-tf32.txt)"
fi
grep -h 'reference run' "$out/bench-fp32.txt" "$out/bench-tf32.txt" 2>/dev/null |
    tee -a "$out/device-check.log"

py=$(command -v python3 || true)
if [ -z "$py" ]; then
    row "gand serve on the GPU" "FAIL: no python3 to drive it"
elif smoke=$(timeout 110 "$py" "$here/serve-smoke.py" --device cuda --out "$out" -- $(bin gand) 2>&1); then
    row "gand serve on the GPU ($(echo "$smoke" | sed -n 's/^PASS \/healthz names the device: //p'))" PASS
else
    row "gand serve on the GPU" "FAIL: $(echo "$smoke" | grep -m1 '^FAIL' || echo "$smoke" | tail -1) (see serve-smoke.log)"
fi
echo "$smoke" >>"$out/device-check.log"

log ""
log "== logs =="
tail -3 "$out/test_ops.log" "$out/test_ops_training.log" | tee -a "$out/device-check.log"
tail -12 "$out/parity.log" | tee -a "$out/device-check.log"
finish
