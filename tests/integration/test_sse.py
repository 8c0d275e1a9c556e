"""tests/integration/test_sse.py — the event stream's contract beyond the happy path.

Replay from Last-Event-ID (header over query), keep-alive comments while nothing
happens, a client that goes away frees its stream, max_event_streams answers
429, and an open stream does not hold up the daemon's shutdown.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import tiny_config  # noqa: E402


def streams_open(d):
    text = d.request("GET", "/metrics").body.decode()
    return int(re.search(r"(?m)^gand_http_event_streams (\d+)$", text).group(1))


class EventStreams(gandtest.DaemonTest):
    def test_replay_keepalive_limits_and_shutdown(self):
        conf = os.path.join(self.dir, "gand.conf")
        with open(conf, "w") as f:
            f.write("[limits]\nmax_event_streams = 2\n")
        d = self.daemon(config=conf).start()
        done = d.create_run(tiny_config(epochs=2))
        d.wait_for(done, lambda x: x["state"] == "completed", what="completed")

        every = list(d.events(done))
        n = len(every)
        self.assertGreaterEqual(n, 5)  # queued, running, 2 epochs, completed
        tail = list(d.events(done, "?last_event_id=%d" % (n - 2)))
        self.assertEqual([s for s, _, _ in tail], [n - 1, n])
        # the header (what EventSource sends on reconnect) wins over the query
        tail = list(d.events(done, "?last_event_id=0", headers={"Last-Event-ID": str(n - 1)}))
        self.assertEqual([s for s, _, _ in tail], [n])
        self.assertEqual(list(d.events(done, "?last_event_id=%d" % n)), [])

        # a paused run: nothing happens, so the stream sends keep-alive comments (every 15 s)
        rid = d.create_run(tiny_config(epochs=1000))
        d.wait_for(rid, lambda x: x["state"] == "running", what="running")
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/pause" % rid).status, 200)
        d.wait_for(rid, lambda x: x["state"] == "paused", what="paused")
        d.settled(rid)
        seq = max(s for s, _, _ in self._events_until_state(d, rid, "paused"))
        s1 = d.events(rid, "?last_event_id=%d" % seq, timeout=25)
        started = time.time()
        line = s1.resp.readline()  # "retry: ..." first
        self.assertTrue(line.startswith(b"retry:"), line)
        while True:
            line = s1.resp.readline()
            if line.startswith(b": keep-alive"):
                break
            # blank lines, or what came after the pause, at once: the epoch the iteration in
            # flight ended (the worker had let the run go before the stream opened)
            self.assertTrue(line in (b"\n", b"\r\n") or
                            (line.split(b":")[0] in (b"id", b"event", b"data") and
                             time.time() - started < 5), line)
        self.assertLess(time.time() - started, 20)
        self.assertGreater(time.time() - started, 10)
        self.assertEqual(streams_open(d), 1)

        # the second stream is allowed, the third gets 429
        s2 = d.events(rid, "?last_event_id=%d" % seq)
        self.assertEqual(s2.status, 200)
        s3 = d.events(rid, "?last_event_id=%d" % seq)
        self.assertEqual(s3.status, 429)
        self.assertEqual(s3.content_type, "application/problem+json")
        s3.close()

        # a client that goes away frees its stream within a couple of seconds
        s2.close()
        deadline = time.time() + 5
        while streams_open(d) != 1 and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(streams_open(d), 1)

        # an open stream does not hold up SIGTERM
        t0 = time.time()
        self.assertEqual(d.stop(timeout=30), 0)
        self.assertLess(time.time() - t0, 10)
        s1.close()

    def _events_until_state(self, d, rid, state):
        got = []
        stream = d.events(rid, timeout=30)
        for ev in stream:
            got.append(ev)
            if ev[1] == "state" and ev[2]["state"] == state:
                break
        stream.close()
        return got


if __name__ == "__main__":
    gandtest.main()
