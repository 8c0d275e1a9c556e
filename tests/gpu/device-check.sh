#!/usr/bin/env bash
# tests/gpu/device-check.sh — everything that needs a GPU, in one bounded run
# (under 10 minutes in all: each stage has its own timeout, and they add up to
# 540 s): a clean CUDA build, the op tables on CUDA against the CPU, the
# CPU/CUDA training parity test and CUDA-graph replay against eager CUDA (both
# in test_gpu_parity), and the GPU epoch benchmark at batch 64 and 1024 on a
# 60,000-image set, fp32 and TF32. Each row of the table is printed as soon as
# its stage ends, so a run cut short still says what it found. Exits 0 only
# when the GPU itself ran every check and passed: a skip (no device) is a
# failure here. Needs no network (the 60,000 images are Fashion-MNIST when
# installed, else MNIST's training digits shipped in data/).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-$(mktemp -d)}
build=${BUILD:-build-gpu}
log() { printf '%s\n' "$*" | tee -a "$out/device-check.log"; }
status=0
row() { # row CHECK RESULT: one line of the table, now; any result but PASS fails the check
    log "| $1 | $2 |"
    case $2 in PASS*) ;; *) status=1 ;; esac
}

log "== gand device check =="
log "| check | result |"
log "|---|---|"
if ! timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    >"$out/nvidia-smi.txt" 2>&1; then
    row "GPU" "FAIL: nvidia-smi: $(head -1 "$out/nvidia-smi.txt")"
    exit 1
fi
row "GPU ($(head -1 "$out/nvidia-smi.txt"))" PASS

rm -rf "$build"
if ! timeout 150 bash -c "meson setup '$build' -Dcuda=enabled -Dbuildtype=release -Dwerror=true \
        >'$out/setup.log' 2>&1 && ninja -C '$build' tests/test_ops tests/test_ops_training \
        tests/test_gpu_parity bench/bench_train >'$out/build.log' 2>&1"; then
    row "CUDA build" "FAIL (see setup.log, build.log)"
    tail -20 "$out/setup.log" "$out/build.log" 2>/dev/null
    exit 1
fi
row "CUDA build" PASS

export GAND_SOURCE_ROOT=$PWD
unset GAND_CUDA_GRAPHS # graphs on unless a test or the bench switches them off itself

# The op tables: both programs must pass on every backend, and CUDA must have run.
ops=PASS
for t in test_ops test_ops_training; do
    limit=60; [ $t = test_ops_training ] && limit=30
    timeout $limit "$build/tests/$t" >"$out/$t.log" 2>&1 || ops="FAIL ($t, see $t.log)"
    if [ "$ops" = PASS ] && grep -q "^SKIP .* on cuda" "$out/$t.log"; then
        ops="FAIL: $t did not run on the GPU: $(grep -m1 '^SKIP' "$out/$t.log")"
    fi
done
row "op tables on CUDA vs CPU" "$ops"

timeout 120 "$build/tests/test_gpu_parity" >"$out/parity.log" 2>&1
case $? in
0) parity=PASS ;;
77) parity="FAIL: skipped, no device: $(tail -1 "$out/parity.log")" ;;
124) parity="FAIL: timed out after 120 s" ;;
*) parity="FAIL (see parity.log)" ;;
esac
row "CPU/CUDA training parity and graph replay vs eager" "$parity"
grep -E '^(cpu vs cuda|cuda graphs vs eager)' "$out/parity.log" |
    sed 's/^/| /; s/: /: | /; s/$/ |/' | tee -a "$out/device-check.log"

data=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
[ -r "$data" ] || data=$PWD/data/mnist-train-images-idx3-ubyte.gz
if timeout 120 "$build/bench/bench_train" --device cuda --data "$data" --batches 64,1024 \
    --max-iterations 2000 >"$out/bench-fp32.txt" 2>&1; then
    grep -E '^\| (64|1024) ' "$out/bench-fp32.txt" | sed 's/^/| fp32 bench /' |
        tee -a "$out/device-check.log"
else
    row "fp32 benchmark" "FAIL (see bench-fp32.txt)"
fi
if timeout 60 "$build/bench/bench_train" --device cuda --data "$data" --batches 1024 \
    --max-iterations 500 --tf32 >"$out/bench-tf32.txt" 2>&1; then
    grep -E '^\| 1024 ' "$out/bench-tf32.txt" | sed 's/^/| tf32 bench /' |
        tee -a "$out/device-check.log"
else
    row "tf32 benchmark" "FAIL (see bench-tf32.txt)"
fi
grep -h 'reference run' "$out/bench-fp32.txt" "$out/bench-tf32.txt" 2>/dev/null |
    tee -a "$out/device-check.log"

log ""
log "== logs =="
tail -3 "$out/test_ops.log" "$out/test_ops_training.log" | tee -a "$out/device-check.log"
tail -12 "$out/parity.log" | tee -a "$out/device-check.log"
log "device check: $([ $status = 0 ] && echo PASS || echo FAIL) (files in $out)"
exit $status
