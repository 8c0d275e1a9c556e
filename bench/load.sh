#!/usr/bin/env bash
# bench/load.sh [GAND_BINARY] — HTTP load against a training gand (a benchmark, not a test).
#
# Starts `gand serve` on 127.0.0.1 (a free port, a temporary state directory, limits raised
# for the load), starts one run of the reference model (preset seed, batch 256, the bundled
# digits) and measures its training throughput in samples/s (progress read from
# GET /api/v1/runs/{id}: (epoch × iterations_per_epoch + iteration) × batch) over fixed
# windows:
#
#   1. no HTTP load;
#   2. SSE_CLIENTS (200) event streams on the run + wrk on GET /api/v1/runs/{id},
#      /healthz and /api/v1/runs (round-robin, WRK_CONNECTIONS connections);
#   3. wrk on GET /api/v1/runs/{id} alone, RUN_CONNECTIONS connections;
#   4. GET /api/v1/runs/{id} at a fixed PACED_RATE (20/s) from one keep-alive client
#      (bench/load/paced.py): the latency a polling client sees under training load,
#      without a load generator taking the CPU (the p99 of issue 3);
#   5. no HTTP load again (drift check).
#
# and prints a Markdown table: requests/s, p50/p99 latency (wrk --latency), training
# samples/s and the slowdown against window 1. Needs wrk (Debian package wrk), python3, curl.
# Environment: WINDOW_S (30), SSE_CLIENTS (200), WRK_CONNECTIONS (32), WRK_THREADS (2),
# RUN_CONNECTIONS (4), PACED_RATE (20), BATCH (256), OMP_NUM_THREADS (gand's BLAS threads; default: all cores).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
gand=${1:-${GAND:-$root/build/cmd/gand}}
window=${WINDOW_S:-30}
sse_clients=${SSE_CLIENTS:-200}
wrk_conns=${WRK_CONNECTIONS:-32}
wrk_threads=${WRK_THREADS:-2}
run_conns=${RUN_CONNECTIONS:-4}
paced_rate=${PACED_RATE:-20}
batch=${BATCH:-256}

for tool in wrk python3 curl; do
    command -v "$tool" >/dev/null || { echo "bench/load.sh: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done
[ -x "$gand" ] || { echo "bench/load.sh: $gand is not an executable (build first, or pass its path)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/gand-load.XXXXXX)
gand_pid=
sse_pid=
cleanup() {
    [ -n "$sse_pid" ] && kill "$sse_pid" 2>/dev/null || true
    if [ -n "$gand_pid" ]; then
        kill -TERM "$gand_pid" 2>/dev/null || true
        wait "$gand_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
max_conns=$((sse_clients + wrk_conns + run_conns + 64))
cat >"$tmp/gand.conf" <<EOF
[server]
log_level = notice
[limits]
max_connections = $max_conns
max_event_streams = $((sse_clients + 16))
connection_timeout_s = 60
EOF
"$gand" serve --config "$tmp/gand.conf" --listen "127.0.0.1:$port" --state-dir "$tmp/state" \
    --device cpu 2>"$tmp/gand.log" &
gand_pid=$!
for _ in $(seq 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || { cat "$tmp/gand.log" >&2; exit 1; }

run_path=$(curl -fsS -o /dev/null -w '%header{location}' -X POST "$base/api/v1/runs" \
    -H 'Content-Type: application/json' \
    -d "{\"preset\": \"seed\", \"batch_size\": $batch, \"epochs\": 100000, \"sample_every\": 5, \"checkpoint_every\": 20}")

# samples trained so far, and when (one line: "samples seconds")
progress() {
    curl -fsS "$base$run_path" | python3 -c '
import json, sys, time
r = json.load(sys.stdin)
ipe = r.get("iterations_per_epoch") or 0
print((r["epoch"] * ipe + r["iteration"]) * r["config"]["batch_size"], time.monotonic())'
}
rate() { # rate "S0 T0" "S1 T1" → samples/s
    python3 -c 'import sys; s0, t0 = map(float, sys.argv[1].split()); s1, t1 = map(float, sys.argv[2].split()); print("%.0f" % ((s1 - s0) / (t1 - t0)))' "$1" "$2"
}
wrk_field() { # wrk_field FILE what → requests/s, p50, p99, non2xx, errors
    python3 - "$1" "$2" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
what = sys.argv[2]
if what == "rps":
    m = re.search(r"Requests/sec:\s+([\d.]+)", text); print("%.0f" % float(m.group(1)) if m else "?")
elif what in ("50", "99"):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % what, text, re.M)
    if not m:
        print("?")
    else:
        v = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        print("%.2f ms" % v)
elif what == "non2xx":
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text); print(m.group(1) if m else "0")
elif what == "errors":
    m = re.search(r"Socket errors:(.*)", text); print(m.group(1).strip() if m else "none")
PY
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
if python3 -c 'import os, sys; sys.exit(0 if os.getloadavg()[0] > os.cpu_count() / 2 else 1)'; then
    echo "bench/load.sh: warning: load average $load_start on $(nproc) cores before the start: other work will distort the figures" >&2
fi
echo "$("$gand" version 2>/dev/null || echo gand) on $(nproc) cores; run $run_path (preset seed, batch $batch); windows of ${window} s" >&2
# warm-up: until the run has trained a few iterations
for _ in $(seq 600); do
    s=$(progress)
    [ "${s%% *}" -ge $((batch * 3)) ] && break
    sleep 0.2
done

echo "window 1: no HTTP load" >&2
p0=$(progress); sleep "$window"; p1=$(progress)
base_rate=$(rate "$p0" "$p1")

echo "window 2: $sse_clients event streams + wrk -c$wrk_conns on 3 GET endpoints" >&2
python3 "$here/load/sse_clients.py" "$port" "$run_path/events" "$sse_clients" $((window + 15)) \
    >"$tmp/sse.json" 2>"$tmp/sse.err" &
sse_pid=$!
for _ in $(seq 300); do
    grep -q '^connected' "$tmp/sse.err" 2>/dev/null && break
    sleep 0.1
done
connected=$(sed -n 's/^connected //p' "$tmp/sse.err")
p0=$(progress)
RUN_PATH=$run_path wrk -t"$wrk_threads" -c"$wrk_conns" -d"${window}s" --latency \
    -s "$here/load/mixed.lua" "$base" >"$tmp/wrk-mixed.txt"
p1=$(progress)
mixed_rate=$(rate "$p0" "$p1")
wait "$sse_pid" || true
sse_pid=
sse_summary=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("%d/%d connected, %d refused, %d events, %d closed early" % (s["connected"], s["clients"], sum(s["refused"].values()), s["events"], s["closed_early"]))' "$tmp/sse.json")

echo "window 3: wrk -c$run_conns on GET $run_path" >&2
p0=$(progress)
wrk -t1 -c"$run_conns" -d"${window}s" --latency "$base$run_path" >"$tmp/wrk-run.txt"
p1=$(progress)
run_rate=$(rate "$p0" "$p1")

echo "window 4: GET $run_path at $paced_rate/s" >&2
p0=$(progress)
python3 "$here/load/paced.py" "$port" "$run_path" "$paced_rate" "$window" >"$tmp/paced.json"
p1=$(progress)
paced_rate_training=$(rate "$p0" "$p1")
paced() { python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); v = s[sys.argv[2]]; print(("%.0f" % (s["requests"] / float(sys.argv[3]))) if sys.argv[2] == "requests" else (str(v) if sys.argv[2] == "non_200" else "%.2f ms" % v))' "$tmp/paced.json" "$1" "$window"; }

echo "window 5: no HTTP load" >&2
p0=$(progress); sleep "$window"; p1=$(progress)
after_rate=$(rate "$p0" "$p1")

slow() { python3 -c 'import sys; print("%.1f %%" % (100.0 * (1 - float(sys.argv[2]) / float(sys.argv[1]))))' "$base_rate" "$1"; }

cat <<EOF

| window (${window} s each) | HTTP requests/s | p50 | p99 | non-2xx | training samples/s | slowdown |
| --- | --- | --- | --- | --- | --- | --- |
| 1. no HTTP load | – | – | – | – | $base_rate | – |
| 2. $connected event streams + wrk -c$wrk_conns on /api/v1/runs/{id}, /healthz, /api/v1/runs | $(wrk_field "$tmp/wrk-mixed.txt" rps) | $(wrk_field "$tmp/wrk-mixed.txt" 50) | $(wrk_field "$tmp/wrk-mixed.txt" 99) | $(wrk_field "$tmp/wrk-mixed.txt" non2xx) | $mixed_rate | $(slow "$mixed_rate") |
| 3. wrk -c$run_conns on GET /api/v1/runs/{id} | $(wrk_field "$tmp/wrk-run.txt" rps) | $(wrk_field "$tmp/wrk-run.txt" 50) | $(wrk_field "$tmp/wrk-run.txt" 99) | $(wrk_field "$tmp/wrk-run.txt" non2xx) | $run_rate | $(slow "$run_rate") |
| 4. one client, GET /api/v1/runs/{id} at $paced_rate/s | $(paced requests) | $(paced p50_ms) | $(paced p99_ms) | $(paced non_200) | $paced_rate_training | $(slow "$paced_rate_training") |
| 5. no HTTP load (again) | – | – | – | – | $after_rate | $(slow "$after_rate") |

event streams: $sse_summary; wrk socket errors: $(wrk_field "$tmp/wrk-mixed.txt" errors) / $(wrk_field "$tmp/wrk-run.txt" errors)
load average (1, 5, 15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores; gand's own load is about 2)
EOF
