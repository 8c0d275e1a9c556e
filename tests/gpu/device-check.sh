#!/usr/bin/env bash
# tests/gpu/device-check.sh — everything that needs a GPU, in one bounded run:
# a clean CUDA build, the op table on CUDA against the CPU, the CPU/CUDA
# training parity test and CUDA-graph replay against eager CUDA (both in
# test_gpu_parity), and the GPU epoch benchmark at batch 64 and 1024 on a
# 60,000-image set (graphs on; batch 64 once more with graphs off). Prints a
# short table last. Meant for a machine with an
# NVIDIA GPU and the CUDA toolkit; needs no network (the 60,000 images are
# Fashion-MNIST when installed, else the bundled digits repeated six times).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-$(mktemp -d)}
build=${BUILD:-build-gpu}
log() { printf '%s\n' "$*" | tee -a "$out/device-check.log"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 |
    tee "$out/nvidia-smi.txt" || true

rm -rf "$build"
if ! meson setup "$build" -Dcuda=enabled -Dbuildtype=release -Dwerror=true >"$out/setup.log" 2>&1; then
    log "meson setup failed:"; tail -20 "$out/setup.log"; exit 1
fi
if ! ninja -C "$build" tests/test_ops tests/test_ops_training tests/test_gpu_parity bench/bench_train >"$out/build.log" 2>&1; then
    log "build failed:"; tail -30 "$out/build.log"; exit 1
fi

export GAND_SOURCE_ROOT=$PWD
unset GAND_CUDA_GRAPHS # graphs on unless a test or the bench switches them off itself
ops=FAIL parity=FAIL
{ timeout 200 "$build/tests/test_ops" && timeout 100 "$build/tests/test_ops_training"; } \
    >"$out/test_ops.log" 2>&1 && ops=PASS
grep -q "SKIP ops on cuda" "$out/test_ops.log" && ops=SKIP
timeout 300 "$build/tests/test_gpu_parity" >"$out/parity.log" 2>&1
case $? in 0) parity=PASS ;; 77) parity=SKIP ;; esac

data=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -r "$data" ]; then
    data="$out/digits-60k.idx3.gz"
    python3 - "$PWD/data/mnist-10k-images-idx3-ubyte.gz" "$data" <<'PY'
import gzip, struct, sys
raw = gzip.open(sys.argv[1]).read()
n = struct.unpack(">I", raw[4:8])[0]
body = raw[16:] * 6
gzip.open(sys.argv[2], "wb", compresslevel=1).write(raw[:4] + struct.pack(">I", n * 6) + raw[8:16] + body)
PY
fi

timeout 240 "$build/bench/bench_train" --device cuda --data "$data" --batches 64,1024 \
    --max-iterations 2000 >"$out/bench-fp32.txt" 2>&1
cfg_tf32=$(mktemp)
timeout 120 "$build/bench/bench_train" --device cuda --data "$data" --batches 1024 \
    --max-iterations 500 --tf32 >"$out/bench-tf32.txt" 2>&1
rm -f "$cfg_tf32"

log ""
log "== logs =="
tail -3 "$out/test_ops.log" | tee -a "$out/device-check.log"
tail -12 "$out/parity.log" | tee -a "$out/device-check.log"
cat "$out/bench-fp32.txt" "$out/bench-tf32.txt" | tee -a "$out/device-check.log"
log ""
log "== gand device check =="
log "| check | result |"
log "|---|---|"
log "| GPU | $(head -1 "$out/nvidia-smi.txt" 2>/dev/null) |"
log "| op table on CUDA vs CPU | $ops |"
log "| CPU/CUDA training parity (20 iterations) and graph replay vs eager | $parity |"
grep -E '^(cpu vs cuda|cuda graphs vs eager)' "$out/parity.log" | sed 's/^/| /; s/: /: | /; s/$/ |/' |
    tee -a "$out/device-check.log"
grep -E '^\| (64|1024) ' "$out/bench-fp32.txt" | sed 's/^/| fp32 bench /; s/$//' | tee -a "$out/device-check.log"
grep -E '^\| 1024 ' "$out/bench-tf32.txt" | sed 's/^/| tf32 bench /' | tee -a "$out/device-check.log"
grep -h 'reference run' "$out/bench-fp32.txt" "$out/bench-tf32.txt" | tee -a "$out/device-check.log"
[ "$ops" != FAIL ] && [ "$parity" != FAIL ]
