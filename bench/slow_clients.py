#!/usr/bin/env python3
"""bench/slow_clients.py [GAND_BINARY] — /healthz latency under slow clients (a benchmark).

Starts `gand serve` with its default limits on a free loopback port and a
temporary state directory, then probes GET /healthz on a new connection every
PROBE_GAP_S (0.02) s:

  1. for WINDOW_S (20) s with no other client: the ceiling of this machine;
  2. for WINDOW_S s while SLOW (100) connections, each from its own loopback
     address (127.0.0.2, 127.0.0.3, ...: the per-address cap does not save gand
     here), send their request headers one byte a second (slowloris).

Prints a Markdown table of probes, failures, p50, p99 and max per window, the
p99 under attack as a ratio to the quiet p99 of the same run, and how many slow
connections the server had closed by the end (header_timeout_s, 10 s by
default, closes them; they reconnect, as an attacker would). Python 3 standard
library only.
"""
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GAND = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "cmd", "gand")
WINDOW_S = float(os.environ.get("WINDOW_S", "20"))
SLOW = int(os.environ.get("SLOW", "100"))
PROBE_GAP_S = float(os.environ.get("PROBE_GAP_S", "0.02"))
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4096


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(port):
    t0 = time.perf_counter()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/healthz")
        ok = c.getresponse().status == 200
        c.close()
    except OSError:
        ok = False
    return ok, (time.perf_counter() - t0) * 1000.0


def window(port, seconds):
    lat, failed = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ok, ms = probe(port)
        lat.append(ms)
        failed += not ok
        time.sleep(PROBE_GAP_S)
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    return {"probes": len(lat), "failed": failed, "p50": pick(0.50), "p99": pick(0.99),
            "max": lat[-1]}


class Slow:
    """One slowloris client: a byte a second from its own address, reconnecting when closed."""

    def __init__(self, port, n):
        self.port, self.addr = port, "127.0.%d.%d" % (n // 250, 2 + n % 250)
        self.sock, self.sent, self.closed = None, 0, 0

    def tick(self):
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2,
                                                     source_address=(self.addr, 0))
                self.sent = 0
            self.sock.send(REQUEST[self.sent:self.sent + 1])
            self.sent += 1
        except OSError:
            if self.sock is not None:
                self.sock.close()
                self.closed += 1
            self.sock = None


def main():
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gand-bench-") as tmp:
        log = open(os.path.join(tmp, "gand.log"), "wb")
        proc = subprocess.Popen([GAND, "serve", "--listen", "127.0.0.1:%d" % port,
                                 "--state-dir", os.path.join(tmp, "state"), "--device", "cpu"],
                                stdout=log, stderr=log)
        try:
            for _ in range(200):
                if probe(port)[0]:
                    break
                time.sleep(0.05)
            else:
                sys.exit("gand did not start:\n" + open(log.name).read())
            quiet = window(port, WINDOW_S)
            clients = [Slow(port, i) for i in range(SLOW)]
            stop = threading.Event()

            def trickle():
                while not stop.is_set():
                    for c in clients:
                        c.tick()
                    stop.wait(1.0)

            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            time.sleep(1.0)
            attacked = window(port, WINDOW_S)
            stop.set()
            t.join(10)
            closed = sum(c.closed for c in clients)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print("| window (%g s) | probes | failed | p50 ms | p99 ms | max ms |" % WINDOW_S)
    print("| --- | --- | --- | --- | --- | --- |")
    for name, w in (("quiet", quiet), ("%d slow clients" % SLOW, attacked)):
        print("| %s | %d | %d | %.2f | %.2f | %.2f |" % (name, w["probes"], w["failed"], w["p50"],
                                                        w["p99"], w["max"]))
    print("\np99 under attack / quiet p99 of this run: %.2f; slow connections closed by the "
          "server: %d" % (attacked["p99"] / quiet["p99"], closed))


if __name__ == "__main__":
    main()
