#!/usr/bin/env python3
"""tests/gpu/serve-smoke.py — gand serve on a device, end to end (device-check.sh's last stage).

    serve-smoke.py --device cuda|cpu --out DIR -- GAND_COMMAND...

Starts `GAND_COMMAND serve` on a free port of 127.0.0.1 with a temporary state
directory, then: /healthz names the backend asked for and its device; a run of
2 epochs on mnist-10k completes; its samples.png is a PNG; a second run is
training when SIGTERM arrives, gand exits within 30 s and that run's checkpoint
is on disk. Python 3 standard library only. Prints one line per step and exits
0 only when every step passed. The daemon's log is DIR/serve-smoke.log.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Smoke:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method, path, body=None):
        status, raw = self.call(method, path, body)
        return status, json.loads(raw) if raw else None

    def wait(self, what, pred, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                v = pred()
                if v:
                    return v
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise AssertionError("timed out after %d s waiting for %s" % (seconds, what))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default=".")
    ap.add_argument("gand", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = [c for c in a.gand if c != "--"]
    state = tempfile.mkdtemp(prefix="gand-smoke-")
    port = free_port()
    log = open(os.path.join(a.out, "serve-smoke.log"), "w")
    proc = subprocess.Popen(cmd + ["serve", "--listen", "127.0.0.1:%d" % port, "--state-dir",
                                   state, "--device", a.device, "--log-level", "info"],
                            stdout=log, stderr=subprocess.STDOUT)
    s = Smoke("http://127.0.0.1:%d" % port)
    failed = False

    def step(name, fn):
        nonlocal failed
        if failed:
            return None
        try:
            v = fn()
            print("PASS %s%s" % (name, ": " + v if isinstance(v, str) else ""), flush=True)
            return v
        except Exception as e:  # one line per step, whatever went wrong
            print("FAIL %s: %s" % (name, e), flush=True)
            failed = True
            return None

    def healthz():
        h = s.wait("/healthz to name a backend",
                   lambda: (lambda r: r[1] if r[1].get("backend") else None)(s.json("GET", "/healthz")),
                   30)
        assert h["backend"] == a.device, "backend is %r, not %s: %s" % (
            h["backend"], a.device, h.get("why", h))
        assert h.get("device"), "no device named: %s" % h
        return h["device"]

    run = {}

    def train():
        st, r = s.json("POST", "/api/v1/runs", {"dataset": "mnist-10k", "epochs": 2})
        assert st == 201, "POST /api/v1/runs answered %d: %s" % (st, r)
        run["id"] = r["id"]
        done = s.wait("the run to complete", lambda: (lambda r: r if r["state"] in (
            "completed", "failed") else None)(s.json("GET", "/api/v1/runs/" + run["id"])[1]), 45)
        assert done["state"] == "completed", "run %s: %s" % (done["state"], done.get("reason"))
        return "2 epochs, device %s, last G loss %.3f" % (done.get("device"),
                                                          done["last_metrics"]["g_loss"])

    def samples():
        st, png = s.call("GET", "/api/v1/runs/%s/samples.png" % run["id"])
        assert st == 200 and png[:8] == b"\x89PNG\r\n\x1a\n", "answered %d, %d bytes" % (st, len(png))
        return "%d bytes" % len(png)

    def sigterm():
        st, r = s.json("POST", "/api/v1/runs", {"dataset": "mnist-10k", "epochs": 1000})
        assert st == 201, "POST answered %d: %s" % (st, r)
        rid = r["id"]
        s.wait("the second run to train an epoch",
               lambda: s.json("GET", "/api/v1/runs/" + rid)[1]["epoch"] >= 1, 20)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        assert code == 0, "gand exited with %d" % code
        ckpt = os.path.join(state, "runs", rid, "checkpoint.safetensors")
        assert os.path.isfile(ckpt), "no %s" % ckpt
        return "exit 0, checkpoint %d bytes" % os.path.getsize(ckpt)

    try:
        step("/healthz names the device", healthz)
        step("a 2-epoch run on mnist-10k completes", train)
        step("samples.png", samples)
        step("SIGTERM checkpoints the training run", sigterm)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
