#!/usr/bin/env python3
"""bench/load/sse_clients.py PORT PATH N SECONDS — N concurrent event-stream clients.

Opens N connections to http://127.0.0.1:PORT/PATH (Server-Sent Events), reads
them for SECONDS, then prints one JSON line: how many got 200, how many were
refused (and with which status), events and keep-alive comments received.
Prints "connected K" on stderr as soon as every connection has its answer.
Python 3 standard library only (asyncio).
"""
import asyncio
import json
import sys
import time


async def client(port, path, stats, answered, deadline):
    told = False

    def tell():
        nonlocal told
        if not told:
            told = True
            answered.release()

    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as e:
        stats["errors"].append(str(e))
        tell()
        return
    writer.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
                  % path).encode())
    await writer.drain()
    try:
        status = await asyncio.wait_for(reader.readline(), timeout=30)
        parts = status.split()
        code = int(parts[1]) if len(parts) > 1 else 0
        if code != 200:
            stats["refused"][str(code)] = stats["refused"].get(str(code), 0) + 1
            tell()
            return
        stats["connected"] += 1
        tell()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=left)
            except asyncio.TimeoutError:
                break
            if not line:
                stats["closed_early"] += 1
                break
            if line.startswith(b"event:"):
                stats["events"] += 1
            elif line.startswith(b": keep-alive"):
                stats["keepalives"] += 1
    except (OSError, asyncio.TimeoutError, ValueError) as e:
        stats["errors"].append(repr(e))
        tell()
    finally:
        tell()
        writer.close()


async def main():
    port, path, n, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    stats = {"clients": n, "connected": 0, "refused": {}, "events": 0, "keepalives": 0,
             "closed_early": 0, "errors": []}
    answered = asyncio.Semaphore(0)
    deadline = time.monotonic() + seconds
    tasks = [asyncio.create_task(client(port, path, stats, answered, deadline)) for _ in range(n)]
    for _ in range(n):
        await answered.acquire()
    sys.stderr.write("connected %d\n" % stats["connected"])
    sys.stderr.flush()
    await asyncio.gather(*tasks)
    stats["errors"] = stats["errors"][:5]
    print(json.dumps(stats))


if __name__ == "__main__":
    asyncio.run(main())
