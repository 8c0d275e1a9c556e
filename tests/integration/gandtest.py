"""tests/integration/gandtest.py — start a real `gand serve` and talk HTTP to it.

Python 3 standard library only. The binary comes from $GAND_BIN (meson passes the
built one). Each Daemon gets a free port on 127.0.0.1 and its own state directory;
its stderr goes to a log file that is printed when a test fails.
"""
import gzip
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

GAND = os.environ.get("GAND_BIN", "gand")
SOURCE_ROOT = os.environ.get(
    "GAND_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUNDLED_IMAGES = os.path.join(SOURCE_ROOT, "data", "mnist-10k-images-idx3-ubyte.gz")

# A model small enough that an epoch of the small data set takes a fraction of a second.
TINY = {"latent_dim": 16, "g_hidden": 32, "d_units": 16, "d_pieces": 2, "batch_size": 100}


def tiny_config(**kw):
    """A run config of the TINY model on the test data set `small`, with kw on top."""
    c = dict(TINY, dataset="small")
    c.update(kw)
    return c


def bearer(token):
    """The Authorization header of a bearer token."""
    return {"Authorization": "Bearer " + token}


def write_file(path, text, mode=0o600):
    """Write text to path with the given mode (a token file, say); returns path."""
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_small_dataset(path, count=2000):
    """The first `count` images of the bundled set, as a gzip IDX3 file."""
    with gzip.open(BUNDLED_IMAGES, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    assert magic == 0x803 and n >= count and rows == 28 and cols == 28
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", magic, count, rows, cols))
        f.write(data[16:16 + count * rows * cols])
    return path


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


class Daemon:
    """A `gand serve` process. Use start()/stop(), or as a context manager."""

    def __init__(self, state_dir, extra_args=(), port=None, config=None, env=None):
        self.state_dir = state_dir
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.config = config
        self.env = env
        self.proc = None
        self.log_path = os.path.join(state_dir + ".log")
        self.log_file = None

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def argv(self):
        args = [GAND, "serve", "--listen", "127.0.0.1:%d" % self.port, "--state-dir",
                self.state_dir, "--device", "cpu"]
        if self.config:
            args += ["--config", self.config]
        return args + self.extra_args

    def start(self, timeout=30):
        self.log_file = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "2")
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(self.argv(), stdout=self.log_file, stderr=self.log_file,
                                     env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("gand exited with %s during start-up:\n%s" %
                                     (self.proc.returncode, self.log()))
            try:
                if self.request("GET", "/healthz").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("gand did not answer /healthz within %d s:\n%s" %
                             (timeout, self.log()))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=120):
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout=120):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("gand did not stop within %d s of SIGTERM:\n%s" %
                                     (timeout, self.log()))
        if self.log_file:
            self.log_file.close()
            self.log_file = None
        return self.proc.returncode if self.proc else None

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        if self.log_file:
            self.log_file.close()
            self.log_file = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- HTTP ----

    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def get_json(self, path):
        r = self.request("GET", path)
        if r.status != 200:
            raise AssertionError("GET %s: %r" % (path, r))
        return r.json()

    def create_run(self, config):
        r = self.request("POST", "/api/v1/runs", config)
        if r.status != 201:
            raise AssertionError("POST /api/v1/runs: %r" % (r,))
        return r.json()["id"]

    def run(self, run_id):
        return self.get_json("/api/v1/runs/" + run_id)

    def settled(self, run_id, timeout=10):
        """The run once the worker has finished the iteration it was in when a pause or stop
        changed its state (that iteration may still end, and record, an epoch): two reads
        0.2 s apart agree on its epoch and iteration."""
        last, run = None, None
        deadline = time.time() + timeout
        while time.time() < deadline:
            run = self.run(run_id)
            if (run["epoch"], run["iteration"]) == last:
                return run
            last = (run["epoch"], run["iteration"])
            time.sleep(0.2)
        raise AssertionError("run %s: still training %d s after it left the running state: %s"
                             % (run_id, timeout, json.dumps(run)[:600]))

    def wait_for(self, run_id, predicate, timeout=120, what="a condition"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.run(run_id)
            if predicate(last):
                return last
            time.sleep(0.05)
        raise AssertionError("run %s: timed out waiting for %s; last: %s\n%s" %
                             (run_id, what, json.dumps(last)[:600], self.log()[-3000:]))

    def hold_connections(self, n):
        """n keep-alive connections, each after one answered GET /healthz (they stay counted)."""
        held = []
        for _ in range(n):
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise AssertionError("GET /healthz on connection %d: %d" % (len(held), r.status))
            held.append(c)
        return held

    def release_connections(self, held, timeout=10):
        """Close held connections and wait until a new one is served again."""
        for c in held:
            c.close()
        deadline = time.monotonic() + timeout
        while self.request("GET", "/healthz").status != 200 and time.monotonic() < deadline:
            time.sleep(0.1)

    def events(self, run_id, query="", headers=None, timeout=60):
        """An open event stream: an EventStream (iterate for (id, event, data) tuples)."""
        return EventStream(self.port, "/api/v1/runs/%s/events%s" % (run_id, query), headers,
                           timeout)


class EventStream:
    def __init__(self, port, path, headers, timeout):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.content_type = self.resp.getheader("Content-Type")
        self.comments = []

    def __iter__(self):
        ev = {"id": None, "event": "message", "data": []}
        while True:
            line = self.resp.readline()
            if not line:
                self.close()
                return
            line = line.decode("utf-8").rstrip("\r\n")
            if line == "":
                if ev["data"]:
                    yield (int(ev["id"]) if ev["id"] is not None else None, ev["event"],
                           json.loads("\n".join(ev["data"])))
                ev = {"id": None, "event": "message", "data": []}
            elif line.startswith(":"):
                self.comments.append(line)
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    ev["data"].append(value)
                elif name in ("id", "event"):
                    ev[name] = value

    def close(self):
        self.conn.close()


def png_size(data):
    """(width, height) from a PNG's IHDR; asserts the signature and chunk order."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature: %r" % data[:8]
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, "first chunk is %r" % kind
    return struct.unpack(">II", data[16:24])


def grid_size(n, scale, rows=28, cols=28):
    gc = 1
    while gc * gc < n:
        gc += 1
    gr = (n + gc - 1) // gc
    return ((gc * (cols + 1) + 1) * scale, (gr * (rows + 1) + 1) * scale)


class DaemonTest(unittest.TestCase):
    """A test case with a temp dir, a small data set, and daemons stopped at the end."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="gand-test-")
        self.dir = self.tmp.name
        self.small = make_small_dataset(os.path.join(self.dir, "small-idx3-ubyte.gz"))
        self.daemons = []

    def tearDown(self):
        failed = any(e for e in self._outcome_errors())
        for d in self.daemons:
            if d.proc and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            if d.log_file:
                d.log_file.close()
                d.log_file = None
            if failed:
                sys.stderr.write("---- gand log (%s) ----\n%s\n" % (d.state_dir, d.log()[-6000:]))
        self.tmp.cleanup()

    def _outcome_errors(self):
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        if result is None:
            return []
        return [e for e in list(getattr(result, "errors", [])) + list(getattr(result, "failures", []))
                if e[0] is self]

    def conf(self, text, name="gand.conf"):
        """Write a gand.conf (or another file) into the test's directory; returns its path."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def daemon(self, name="state", **kw):
        extra = ["--data", "small=" + self.small] + list(kw.pop("extra_args", []))
        d = Daemon(os.path.join(self.dir, name), extra_args=extra, **kw)
        self.daemons.append(d)
        return d

    def assertProblem(self, r, status, field=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("Content-Type"), "application/problem+json", r)
        p = r.json()
        for k in ("type", "title", "status", "detail"):
            self.assertIn(k, p, r)
        self.assertEqual(p["status"], status)
        self.assertTrue(p["detail"], r)
        if field is not None:
            self.assertEqual(p.get("field"), field, r)
        return p


def main():
    unittest.main(verbosity=2)
