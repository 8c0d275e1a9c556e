"""tests/integration/test_exact.py — what the API says is exactly what it holds.

Numbers (class Numbers): integers at the edges of their ranges and doubles with 17
significant digits, a subnormal and 1e-300 go through POST, GET, PATCH, run.json and
a restart unchanged; the seed 2^53 is kept and 2^53 + 1 refused, in a config and in
an evaluation request.

Error bodies (class ErrorBodies): every problem is valid UTF-8 JSON whatever bytes
the request quoted (%FF in a path, bytes that are not UTF-8 in keys, strings and
headers, long multibyte names cut by the truncations).

Framing (class Framing, raw sockets): what a proxy could read as another request
than gand does (white space before a header's colon, Content-Length twice,
Content-Length with Transfer-Encoding, a transfer coding other than chunked, no
Host) is refused before the body is read, and the body is never answered as a
second request; 500 query parameters get an answer.

Media types (class MediaTypes): a write with a body that is not JSON is 415 and
changes nothing; bodiless control POSTs need no Content-Type.
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import tiny_config as config  # noqa: E402

TWO53 = 2 ** 53
J = {"Content-Type": "application/json"}
# the tiny model as JSON members, to put in front of a field written as text
TINY = ('"latent_dim": 16, "g_hidden": 32, "d_units": 16, "d_pieces": 2, "dataset": "small"')


def tiny_with(field, text):
    members = [m for m in TINY.split(", ") if not m.startswith('"%s"' % field)]
    if field != "batch_size":
        members.append('"batch_size": 100')
    return "{%s, \"%s\": %s}" % (", ".join(members), field, text)


def discard(d, rid):
    """Stop and delete a run (DELETE refuses a live one)."""
    d.request("POST", "/api/v1/runs/%s/stop" % rid)
    for _ in range(100):
        if d.request("DELETE", "/api/v1/runs/" + rid).status == 204:
            return
        time.sleep(0.05)


def raw_json(d, method, path, text, headers=None):
    """A request whose JSON body is given as text (bytes), so numbers go as written."""
    h = dict(J)
    h.update(headers or {})
    return d.request(method, path, text if isinstance(text, bytes) else text.encode(), h)


class Numbers(gandtest.DaemonTest):
    # doubles a 15-digit print would change, each within its field's range
    EXACT = {
        "lr_d": "0.30000000000000004",        # 0.1 + 0.2
        "lr_g": "0.00012345678901234567",      # 17 significant digits
        "lr_min": "5e-324",                    # the smallest subnormal
        "d_input_dropout": "1e-300",
        "momentum": "0.9999999999999999",      # the largest double below 1 (unused by Adam)
        "g_ema": "0.99999999999999989",        # the same, written with 17 digits
    }

    def assertExact(self, cfg, seed):
        self.assertEqual(type(cfg["seed"]), int, cfg)
        self.assertEqual(cfg["seed"], seed)
        for k, text in self.EXACT.items():
            self.assertEqual(cfg[k], float(text), "%s: %r" % (k, cfg[k]))  # Python: bit equality

    def test_round_trips_through_run_json_and_a_restart(self):
        d = self.daemon(config=self.conf("[datasets]\nsmall.holdout = 200\n")).start()
        fields = ", ".join('"%s": %s' % kv for kv in self.EXACT.items())
        body = ('{"latent_dim": 16, "g_hidden": 32, "d_units": 16, "d_pieces": 2, '
                '"batch_size": 100, "dataset": "small", "epochs": 1, '
                '"momentum_epochs": 1000000, "seed": 9007199254740992, %s}' % fields)
        r = raw_json(d, "POST", "/api/v1/runs", body)
        self.assertEqual(r.status, 201, r)
        self.assertIn(b'"seed":9007199254740992,', r.body)  # digits, never 9.00719925474099e+15
        self.assertIn(b'"lr_d":0.30000000000000004,', r.body)
        self.assertIn(b'"lr_min":5e-324,', r.body)
        rid = r.json()["id"]
        self.assertExact(r.json()["config"], TWO53)
        self.assertEqual(r.json()["config"]["momentum_epochs"], 1000000)
        done = d.wait_for(rid, lambda x: x["state"] == "completed", what="completion")
        self.assertExact(done["config"], TWO53)

        # an evaluation's seed: 2^53 kept, 2^53 + 1 refused
        r = raw_json(d, "POST", "/api/v1/runs/%s/evaluations" % rid,
                     '{"samples": 100, "seed": 9007199254740993}')
        self.assertProblem(r, 422, "seed")
        self.assertIn("9007199254740993", r.json()["detail"])
        r = raw_json(d, "POST", "/api/v1/runs/%s/evaluations" % rid,
                     '{"samples": 100, "seed": 9007199254740992}')
        self.assertEqual(r.status, 202, r)
        self.assertIn(b'"seed":9007199254740992', r.body)
        ev = r.json()["id"]
        path = "/api/v1/runs/%s/evaluations/%d" % (rid, ev)
        for _ in range(600):
            e = d.get_json(path)
            if e["state"] in ("done", "failed"):
                break
            time.sleep(0.05)
        self.assertEqual(e["state"], "done", e)

        # a second run, paused, patched with exact numbers
        r = raw_json(d, "POST", "/api/v1/runs",
                     '{"latent_dim": 16, "g_hidden": 32, "d_units": 16, "d_pieces": 2, '
                     '"batch_size": 100, "dataset": "small", "epochs": 1000000, "seed": 0}')
        self.assertEqual(r.status, 201, r)
        other = r.json()["id"]
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/pause" % other).status, 200)
        r = raw_json(d, "PATCH", "/api/v1/runs/" + other,
                     '{"lr_d": 0.30000000000000004, "lr_g": 1e-300, "batch_size": 1.8e3, '
                     '"checkpoint_every": 1000000}')
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'"lr_d":0.30000000000000004', r.body)
        r = raw_json(d, "PATCH", "/api/v1/runs/" + other, '{"epochs": 2.0000000000000001}')
        self.assertProblem(r, 422, "epochs")  # 2.0 as a double, not an integer as sent

        with open(os.path.join(d.state_dir, "runs", rid, "run.json"), "rb") as f:
            saved = f.read()
        self.assertIn(b"9007199254740992", saved)
        self.assertNotIn(b"e+15", saved)
        d.stop()

        d.start()
        again = d.run(rid)
        self.assertExact(again["config"], TWO53)
        self.assertEqual(again["config"], done["config"])
        self.assertEqual(d.get_json(path)["seed"], TWO53)
        p = d.run(other)["config"]
        self.assertEqual((p["lr_d"], p["lr_g"], p["batch_size"], p["checkpoint_every"]),
                         (0.30000000000000004, 1e-300, 1800, 1000000))
        d.stop()

    def test_integer_edges(self):
        d = self.daemon().start()
        ok = [("seed", "9007199254740992"), ("seed", "0"), ("seed", "1e3"),
              ("batch_size", "1"), ("batch_size", "1.8e3"), ("epochs", "1000000"),
              ("epochs", "1.0"), ("d_steps", "100"), ("momentum_epochs", "0")]
        for field, text in ok:
            r = raw_json(d, "POST", "/api/v1/runs", tiny_with(field, text))
            self.assertEqual(r.status, 201, (field, text, r))
            self.assertEqual(r.json()["config"][field], int(float(text)))
            discard(d, r.json()["id"])
        bad = [("seed", "9007199254740993"), ("seed", "9007199254740992.5"), ("seed", "-1"),
               ("seed", "18446744073709551615"), ("batch_size", "65537"), ("batch_size", "0"),
               ("epochs", "1000001"), ("epochs", "2.0000000000000001"), ("d_steps", "101"),
               ("checkpoint_every", "0"), ("latent_dim", "4097"), ("lr_d", "1e-400")]
        for field, text in bad:
            r = raw_json(d, "POST", "/api/v1/runs", tiny_with(field, text))
            p = self.assertProblem(r, 422, field)
            self.assertIn("got " + text, p["detail"])  # the number as it was sent
        # samples.png's seed is a query integer: the same range, read from its digits
        self.assertProblem(d.request("GET", "/api/v1/runs/nope/samples.png?seed=9007199254740993"),
                           422, "seed")
        d.stop()


def is_utf8_json(body):
    text = body.decode("utf-8")  # strict: raises on any byte that is not UTF-8
    return json.loads(text)


class ErrorBodies(gandtest.DaemonTest):
    def check(self, r, status=None):
        if status is not None:
            self.assertEqual(r.status, status, r)
        self.assertGreaterEqual(r.status, 400, r)
        self.assertEqual(r.header("Content-Type"), "application/problem+json", r)
        p = is_utf8_json(r.body)
        for k in ("type", "title", "status", "detail", "instance"):
            self.assertIsInstance(p[k], (str, int), r)
        return p

    def test_every_problem_is_utf8_json(self):
        d = self.daemon().start()
        rid = d.create_run(config(epochs=1000000))
        e40 = "é" * 40
        cases = [
            ("GET", "/api/v1/runs/%FF", None, {}, 404),
            ("GET", "/api/v1/runs/%C3", None, {}, 404),        # a cut character
            ("GET", "/api/v1/nothing%FF%FE/x", None, {}, 404),
            ("DELETE", "/api/v1/runs/%FF%FF", None, {}, 404),
            ("PUT", "/api/v1/runs/%FF", None, {}, 405),
            ("GET", "/api/v1/presets/%FF" + "%C3%A9" * 40, None, {}, 404),
            ("GET", "/api/v1/runs?%FF=1", None, {}, 422),
            ("GET", "/api/v1/runs?" + "%C3%A9" * 40 + "=1", None, {}, 422),
            ("GET", "/api/v1/runs/%s/metrics?since=%%FF%s" % (rid, "%C3%A9" * 30), None, {}, 422),
            ("GET", "/api/v1/runs/%s/samples/%%FF.png" % rid, None, {}, 404),
            ("GET", "/api/v1/runs/%s/evaluations/%%FF" % rid, None, {}, 404),
            ("POST", "/api/v1/runs", b'{"\xff\xfe": 1}', J, 422),
            ("POST", "/api/v1/runs", b'{"dataset": "\xff\xfe"}', J, 422),
            ("POST", "/api/v1/runs", b'{"preset": "\xc3"}', J, 422),
            ("POST", "/api/v1/runs", ('{"%s": 1}' % e40).encode(), J, 422),
            ("POST", "/api/v1/runs", ('{"preset": "%s"}' % e40).encode(), J, 422),
            ("POST", "/api/v1/runs", ('{"dataset": "%s"}' % e40).encode(), J, 422),
            ("POST", "/api/v1/runs", ('{"watch": [{"kind": "d_wins", "%s": 1}]}' % e40).encode(),
             J, 422),
            ("POST", "/api/v1/runs", b'{"watch": [{"kind": "\xff"}]}', J, 422),
            ("POST", "/api/v1/runs", b'{"\\ud800": 1}', J, 400),
            ("POST", "/api/v1/runs", b'{"a": "\xff', J, 400),
            ("PATCH", "/api/v1/runs/" + rid, b'{"\xff": 1}', J, 422),
            ("PATCH", "/api/v1/runs/" + rid, ('{"%s": 1}' % e40).encode(), J, 422),
            ("POST", "/api/v1/runs/%s/evaluations" % rid, ('{"%s": 1}' % e40).encode(), J, 422),
            ("POST", "/api/v1/runs/%s/generate" % rid, b'{"\xff\xc3": 1}', J, 422),
            ("POST", "/api/v1/runs", b"{}", {"Content-Type": "text/\xff\xc3" + "é" * 40}, 415),
            ("GET", "/healthz", None, {"Host": "\xff\xfe" + "é" * 60}, 403),
            ("POST", "/api/v1/runs", b"{}", dict(J, Origin="http://\xff" + "é" * 60), 403),
            ("POST", "/api/v1/runs", b"{}", dict(J, **{"Sec-Fetch-Site": "\xff" + "é" * 30}), 403),
            ("GET", "/api/v1/runs/%s/events" % rid, None, {"Last-Event-ID": "\xff"}, 400),
        ]
        for method, path, body, headers, status in cases:
            # http.client sends str header values as Latin-1: "\xff" is the byte 0xFF
            r = d.request(method, path, body, headers)
            p = self.check(r, status)
            if "field" in p:
                self.assertIsInstance(p["field"], str)
            if status == 422 and body and b"\xff" in body:
                self.assertIn("\ufffd", p["detail"], r)  # the bytes are shown, as U+FFFD
        # cut at a character boundary, and marked as cut
        r = d.request("POST", "/api/v1/runs", ('{"%s": 1}' % e40).encode(), J)
        p = self.check(r, 422)
        self.assertIn("é" * 28 + "...'", p["detail"])
        d.stop()


class Framing(gandtest.DaemonTest):
    SECOND = b"DELETE /api/v1/runs/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    def exchange(self, d, data):
        """Send data on one connection; all it gets back until the server closes it."""
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        try:
            s.sendall(data)
            out = b""
            while True:
                try:
                    c = s.recv(65536)
                except socket.timeout:
                    break
                if not c:
                    break
                out += c
            return out
        finally:
            s.close()

    def statuses(self, out):
        return [int(line.split(b" ")[1]) for line in out.split(b"\r\n") if line.startswith(b"HTTP/1.")]

    def test_smuggling_forms_are_refused(self):
        d = self.daemon().start()
        rid = d.create_run(config(epochs=1000000))
        d.request("POST", "/api/v1/runs/%s/stop" % rid)  # a stopped run: DELETE would work
        second = self.SECOND % rid.encode()
        head = b"POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        cases = [
            ("space before colon", head + b"Content-Length : %d\r\n\r\n" % len(second) + second, 400),
            ("tab before colon", head + b"Content-Length\t: %d\r\n\r\n" % len(second) + second, 400),
            ("two Content-Lengths", head + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n"
             % len(second) + second, 400),
            ("the same one twice", head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n"
             % (len(second), len(second)) + second, 400),
            ("Content-Length and chunked", head + b"Content-Length: 5\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + second, 400),
            ("gzip, chunked", head + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + second,
             501),
            ("no Host in HTTP/1.1", b"POST /api/v1/runs HTTP/1.1\r\nContent-Type: application/json"
             b"\r\nContent-Length: 2\r\n\r\n{}" + second, 400),
            ("two Hosts", head + b"Host: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}" + second, 400),
        ]
        for name, data, status in cases:
            out = self.exchange(d, data)
            self.assertEqual(self.statuses(out), [status], (name, out[:600]))
            body = out.split(b"\r\n\r\n", 1)[1]
            self.assertIn(b"Content-Type: application/problem+json", out, name)
            p = is_utf8_json(body)
            self.assertEqual(p["type"], "urn:gand:problem:invalid-header", (name, p))
        # libmicrohttpd's own refusal of a malformed Content-Length (HTML, see README):
        # still one request, and the body is not read as the next one
        out = self.exchange(d, head + b"Content-Length: 2x\r\n\r\n" + second)
        self.assertEqual(set(self.statuses(out)), {400}, out[:600])
        # nothing was created, and the smuggled DELETE never ran
        runs = d.get_json("/api/v1/runs")["runs"]
        self.assertEqual([x["id"] for x in runs], [rid])
        # a proper request on the same daemon still works, chunked included
        cfg = json.dumps(config(epochs=1)).encode()
        out = self.exchange(d, head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                            b"%x\r\n%s\r\n0\r\n\r\n" % (len(cfg), cfg))
        self.assertEqual(self.statuses(out), [201], out[:300])
        d.stop()

    def test_many_query_parameters_get_an_answer(self):
        d = self.daemon().start()
        for n in (500, 1000):
            q = "&".join("a%d=1" % i for i in range(n))
            r = d.request("GET", "/api/v1/runs?" + q)
            p = self.assertProblem(r, 422, "a0")
            self.assertIn("unknown query parameter 'a0'", p["detail"])
        # past what a connection's memory holds, libmicrohttpd's own 414 and 431 (HTML)
        out = self.exchange(d, b"GET /api/v1/runs?a=" + b"x" * 300000 +
                            b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.assertEqual(self.statuses(out), [414], out[:300])
        out = self.exchange(d, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                            b"x" * 300000 + b"\r\n\r\n")
        self.assertEqual(self.statuses(out), [431], out[:300])
        self.assertEqual(d.request("GET", "/healthz").status, 200)
        d.stop()


class MediaTypes(gandtest.DaemonTest):
    def test_writes_with_a_body_must_be_json(self):
        d = self.daemon().start()
        rid = d.create_run(config(epochs=1000000))
        cases = [
            ("POST", "/api/v1/runs", b'{"epochs": 1}', {"Content-Type": "text/plain"}, "text/plain"),
            ("POST", "/api/v1/runs", b"epochs=1",
             {"Content-Type": "application/x-www-form-urlencoded"}, "x-www-form-urlencoded"),
            ("POST", "/api/v1/runs", b'{"epochs": 1}', {}, "no Content-Type"),
            ("POST", "/api/v1/runs", b'{"epochs": 1}',
             {"Content-Type": "application/json; charset=latin1"}, "latin1"),
            ("POST", "/api/v1/runs/%s/stop" % rid, b"x", {"Content-Type": "text/plain"},
             "text/plain"),
            ("POST", "/api/v1/runs/%s/pause" % rid, b"{}", {"Content-Type": "multipart/form-data; "
             "boundary=x"}, "multipart/form-data"),
            ("DELETE", "/api/v1/runs/" + rid, b"{}", {"Content-Type": "text/plain"}, "text/plain"),
            ("PATCH", "/api/v1/runs/" + rid, b'{"epochs": 5}', {"Content-Type": "text/plain"},
             "text/plain"),
            ("POST", "/api/v1/runs/%s/evaluations" % rid, b"{}", {"Content-Type": "text/json"},
             "text/json"),
        ]
        for method, path, body, headers, named in cases:
            p = self.assertProblem(d.request(method, path, body, headers), 415)
            self.assertEqual(p["type"], "urn:gand:problem:unsupported-media-type")
            self.assertIn(named, p["detail"])
        # nothing changed: one run, still training, its epochs unpatched
        self.assertEqual(len(d.get_json("/api/v1/runs")["runs"]), 1)
        run = d.run(rid)
        self.assertIn(run["state"], ("queued", "running"))
        self.assertEqual(run["config"]["epochs"], 1000000)

        # accepted: charset utf-8 in any spelling, merge-patch for PATCH
        for ct in ("application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"'):
            r = d.request("POST", "/api/v1/runs", json.dumps(config(epochs=1)).encode(),
                          {"Content-Type": ct})
            self.assertEqual(r.status, 201, (ct, r))
            discard(d, r.json()["id"])
        r = d.request("PATCH", "/api/v1/runs/" + rid, b'{"epochs": 7}',
                      {"Content-Type": "application/merge-patch+json; charset=utf-8"})
        self.assertEqual(r.status, 200, r)
        # bodiless controls need no Content-Type, whatever one they carry
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/pause" % rid).status, 200)
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/resume" % rid, b"",
                                   {"Content-Type": "text/plain"}).status, 200)
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/stop" % rid).status, 200)
        d.stop()


if __name__ == "__main__":
    gandtest.main()
