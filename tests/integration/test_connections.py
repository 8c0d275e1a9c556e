"""tests/integration/test_connections.py — the connection defences (README "Security").

Slowloris: 100 sockets that send their request headers a byte a second hold no
thread of the epoll loop, so /healthz answers all along (max_connections_per_ip
is set above their count: the per-address cap is not what saves it), and
header_timeout_s closes them. A body that stalls is closed by body_timeout_s.
max_connections_per_ip answers the connection past it 503 naming the key (its
warning line rate-limited), and connections work again once some close. A new
bearer token (SIGHUP) ends the event streams opened with the old one, after the
comment ": the bearer token changed". Clients that hang up, reset or send
garbage are logged at debug only: nothing at warning or above.

Bounded: at most 101 sockets at a time, each test well under 30 s.
"""
import os
import re
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import bearer, tiny_config, write_file  # noqa: E402

TOKEN = "first-token-for-the-connection-tests-0123"
NEW_TOKEN = "second-token-for-the-connection-tests-456"

SLOW_SOCKETS = 100
HEADER_TIMEOUT_S = 6  # longer than the probes below, so the slow sockets are open while they run
BODY_TIMEOUT_S = 3
SLOW_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 64


def closed_by_peer(sock, timeout):
    """True when the peer closes (EOF or reset) within timeout s; False if it stays open."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
            # a response is not a close: keep reading until EOF
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def still_open(sock):
    """The peer has neither closed nor reset this socket (nothing to read, no EOF)."""
    sock.setblocking(False)
    try:
        data = sock.recv(1, socket.MSG_PEEK)
        return bool(data)  # data would be a response: still open, though unexpected
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def warnings_in(text):
    """The log lines at warning or above (<0> .. <4>)."""
    return [l for l in text.splitlines() if re.match(r"<[0-4]>", l)]


class Connections(gandtest.DaemonTest):
    def limits_daemon(self, limits, server="", **kw):
        conf = self.conf("[server]\n%s[limits]\n%s" % (server, limits))
        return self.daemon(config=conf, **kw).start()

    def test_slowloris_keeps_healthz_answering_and_is_closed(self):
        d = self.limits_daemon("header_timeout_s = %d\nmax_connections_per_ip = 200\n"
                               % HEADER_TIMEOUT_S)
        slow, opened = [], []
        stop = threading.Event()
        try:
            for _ in range(SLOW_SOCKETS):
                s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
                opened.append(time.monotonic())
                s.sendall(SLOW_REQUEST[:1])
                slow.append(s)

            def trickle():
                sent = 1
                while not stop.wait(1.0) and sent < len(SLOW_REQUEST):
                    for s in slow:
                        try:
                            s.send(SLOW_REQUEST[sent:sent + 1])
                        except OSError:
                            pass  # closed by the server: the test looks at that below
                    sent += 1

            t = threading.Thread(target=trickle, daemon=True)
            t.start()

            # /healthz answers every time while the 100 connections trickle
            probes, failures = 0, []
            end = opened[0] + HEADER_TIMEOUT_S - 1.5
            while time.monotonic() < end:
                try:
                    r = d.request("GET", "/healthz", timeout=10)
                    if r.status != 200:
                        failures.append(r)
                except OSError as e:
                    failures.append(e)
                probes += 1
                time.sleep(0.02)
            self.assertGreater(probes, 20)
            self.assertEqual(failures, [], "of %d probes" % probes)
            # ... and the slow connections were all held open meanwhile (their deadline is later)
            self.assertEqual([i for i, s in enumerate(slow) if not still_open(s)], [])

            # past header_timeout_s the server closes every one of them
            bound = opened[-1] + 3 * HEADER_TIMEOUT_S
            late = [i for i, s in enumerate(slow)
                    if not closed_by_peer(s, max(0.1, bound - time.monotonic()))]
            closed_at = time.monotonic()
            stop.set()
            t.join(5)
            self.assertEqual(late, [], "still open %.1f s after the first opened"
                             % (closed_at - opened[0]))
            self.assertGreaterEqual(closed_at - opened[0], HEADER_TIMEOUT_S - 0.5)
            self.assertIn("no complete request headers within header_timeout_s (%d s)"
                          % HEADER_TIMEOUT_S, d.log())
            self.assertEqual(d.request("GET", "/healthz").status, 200)
        finally:
            stop.set()
            for s in slow:
                s.close()
        self.assertEqual(d.stop(), 0)

    def test_stalled_body_is_closed_after_body_timeout(self):
        d = self.limits_daemon("body_timeout_s = %d\n" % BODY_TIMEOUT_S)
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        try:
            s.sendall(b"POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                      b'{"epochs":')  # 10 of the 100 bytes, then nothing
            sent = time.monotonic()
            self.assertTrue(closed_by_peer(s, 3 * BODY_TIMEOUT_S),
                            "not closed within %d s" % (3 * BODY_TIMEOUT_S))
            waited = time.monotonic() - sent
            self.assertGreaterEqual(waited, BODY_TIMEOUT_S - 0.5)
        finally:
            s.close()
        # the sweeper logs just after it closes the socket: give the line a moment
        line = "its request body did not arrive within body_timeout_s (%d s)" % BODY_TIMEOUT_S
        deadline = time.monotonic() + 5
        while line not in d.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(line, d.log())
        # nothing was created from the ten bytes, and the daemon answers
        self.assertEqual(d.get_json("/api/v1/runs")["runs"], [])
        self.assertEqual(d.stop(), 0)

    def test_per_address_cap_answers_503_naming_it(self):
        d = self.limits_daemon("max_connections_per_ip = 4\n")
        held = d.hold_connections(4)  # kept alive (HTTP/1.1), and counted
        log_before = len(d.log())
        started = time.monotonic()
        for path in ("/api/v1/runs", "/healthz", "/api/v1/runs", "/api/v1/presets", "/healthz"):
            r = d.request("GET", path)
            p = self.assertProblem(r, 503)
            self.assertEqual(p["type"], "urn:gand:problem:busy")
            self.assertIn("max_connections_per_ip", p["detail"])
            self.assertIn("4 connections from your address (127.0.0.1)", p["detail"])
            self.assertEqual(r.header("Retry-After"), "1")
        elapsed = time.monotonic() - started
        # the held connections still work
        held[0].request("GET", "/healthz")
        r = held[0].getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        # the 503s' warning line is rate-limited: one per 10 s
        if elapsed < 9:
            lines = [l for l in warnings_in(d.log()[log_before:]) if "-> 503" in l]
            self.assertEqual(len(lines), 1, d.log()[log_before:])
        d.release_connections(held)
        self.assertEqual(d.request("GET", "/api/v1/runs").status, 200)
        self.assertEqual(d.stop(), 0)

    def test_new_token_ends_streams_of_the_old_one(self):
        token_path = write_file(os.path.join(self.dir, "token"), TOKEN + "\n")
        conf = write_file(os.path.join(self.dir, "gand.conf"),
                          "[server]\ntoken_file = %s\n" % token_path, 0o644)
        d = self.daemon(config=conf).start()
        r = d.request("POST", "/api/v1/runs", tiny_config(epochs=1000), headers=bearer(TOKEN))
        self.assertEqual(r.status, 201, r)
        rid = r.json()["id"]
        r = d.request("POST", "/api/v1/runs/%s/pause" % rid, headers=bearer(TOKEN))
        self.assertEqual(r.status, 200, r)
        # a quiet stream (its run paused: suspended between events) and a busy one (training)
        r = d.request("POST", "/api/v1/runs", tiny_config(epochs=1000), headers=bearer(TOKEN))
        self.assertEqual(r.status, 201, r)
        busy = r.json()["id"]
        streams = [d.events(rid, headers=bearer(TOKEN), timeout=10),
                   d.events(busy, headers=bearer(TOKEN), timeout=10)]
        its = []
        for s in streams:
            self.assertEqual(s.status, 200)
            it = iter(s)
            self.assertEqual(next(it)[1], "state")
            its.append(it)

        write_file(token_path, NEW_TOKEN + "\n")
        d.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "bearer token read again" not in d.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("bearer token read again", d.log())

        deadline = time.monotonic() + 20
        for s, it in zip(streams, its):
            try:
                for _ in it:  # to its end: the server ends it
                    self.assertLess(time.monotonic(), deadline, "the stream goes on")
            except socket.timeout:
                self.fail("the stream was not ended (comments: %r)" % s.comments)
            self.assertTrue(any(c.startswith(": the bearer token changed") for c in s.comments),
                            s.comments)
            s.close()

        # the old token is refused now; a stream opened with the new one works
        s = d.events(rid, headers=bearer(TOKEN))
        self.assertEqual(s.status, 401)
        s.close()
        s = d.events(rid, headers=bearer(NEW_TOKEN), timeout=30)
        self.assertEqual(s.status, 200)
        first = next(iter(s))
        self.assertEqual(first[1], "state")
        self.assertEqual(s.comments, [])
        s.close()
        for run in (rid, busy):
            r = d.request("POST", "/api/v1/runs/%s/stop" % run, headers=bearer(NEW_TOKEN))
            self.assertEqual(r.status, 200, r)
        self.assertEqual(d.stop(), 0)

    def test_client_noise_is_logged_at_debug_only(self):
        d = self.daemon(extra_args=["--log-level", "debug"]).start()
        log_before = len(d.log())
        requests = [
            None,  # connect, then close at once
            b"GET /heal",  # half a request line
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",  # headers not finished
            b"\x00\xff\xfe garbage \x80\r\n\r\n",
            b"NOT-HTTP AT ALL\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\n\r\n",  # no Host
            b"POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n",
            b"POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"ep",  # then gone mid-body
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # then gone before the answer
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-" + b"a" * 200000 + b": b\r\n\r\n",
        ]
        for i in range(50):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            try:
                data = requests[i % len(requests)]
                if data:
                    try:
                        s.sendall(data)
                    except OSError:
                        pass  # the server may close on a header that does not fit
                if i % 2:  # every other one resets instead of closing (SO_LINGER 0)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finally:
                s.close()
        # the daemon still answers; a moment for the last closes to be handled (and logged)
        time.sleep(1)
        self.assertEqual(d.request("GET", "/healthz").status, 200)
        noise = d.log()[log_before:]
        self.assertEqual(warnings_in(noise), [], noise[-3000:])
        self.assertIn("<7>", noise)  # debug is on: the requests were logged there
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    gandtest.main()
