#!/usr/bin/env python3
"""bench/load/paced.py PORT PATH RATE SECONDS — GET PATH at a fixed rate, report latencies.

One keep-alive connection (reopened if the server closes it), RATE requests per second
on a fixed schedule (a late request is not made up for), for SECONDS. Prints one JSON
line: requests, non-200 answers, p50, p99 and max latency in ms. Unlike wrk, it leaves
the CPU to the daemon: the latency of a client that polls, as the dashboard does.
"""
import http.client
import json
import sys
import time


def main():
    port, path, rate, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    conn = None
    lat, bad = [], 0
    start = time.monotonic()
    n = 0
    while True:
        due = start + n / rate
        now = time.monotonic()
        if due - start >= seconds:
            break
        if due > now:
            time.sleep(due - now)
        n += 1
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                bad += 1
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            bad += 1
            if conn:
                conn.close()
            conn = None
        lat.append((time.monotonic() - t0) * 1000.0)
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))], 2) if lat else None

    print(json.dumps({"requests": len(lat), "non_200": bad, "p50_ms": pct(50), "p99_ms": pct(99),
                      "max_ms": round(lat[-1], 2) if lat else None}))


if __name__ == "__main__":
    main()
