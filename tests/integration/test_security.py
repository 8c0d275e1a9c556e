"""tests/integration/test_security.py — authentication, TLS and the limits (README "Security").

Auth: with a token file, every request but /healthz, the dashboard's files and
openapi.json needs `Authorization: Bearer <token>` (reads may also use
?access_token=, writes may not); none → 401 + WWW-Authenticate: Bearer; a wrong
one → 401 error="invalid_token"; public_reads = true opens reads only; SIGHUP
reads the file again; a group/world-readable file is warned about; a
non-loopback listen without a token is refused (exit 2).

TLS (class TLS, its own meson test so that a skip shows): a CA and a server
certificate for IP:127.0.0.1 made with openssl; curl --cacert talks HTTPS; the
port does not answer plain HTTP. Exits 77 (skip) without openssl, or with a
libmicrohttpd built without TLS.

Limits: max_body_bytes (413), max_connections (503 + Retry-After, not a silent
drop), connection_timeout_s (idle connections closed, event streams not),
max_event_streams (429), max_sample_n (422), max_runs (429).
"""
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import tiny_config as config  # noqa: E402
from gandtest import write_file  # noqa: E402

TOKEN = "s3cr3t-T0ken_for.gand+tests/0123456789="  # 40 visible characters, some to URL-encode


def bearer(token=TOKEN):
    return gandtest.bearer(token)


def streams_open(d):
    text = d.request("GET", "/metrics").body.decode()
    return int(re.search(r"(?m)^gand_http_event_streams (\d+)$", text).group(1))


def wait_log(test, d, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in d.log():
            return
        time.sleep(0.05)
    test.fail("%r did not appear in the log:\n%s" % (text, d.log()))


class Auth(gandtest.DaemonTest):
    def token_daemon(self, extra_conf="", mode=0o600, name="state"):
        self.token_path = write_file(os.path.join(self.dir, "token"), TOKEN + "\n", mode)
        conf = write_file(os.path.join(self.dir, name + ".conf"),
                          "[server]\ntoken_file = %s\n%s" % (self.token_path, extra_conf), 0o644)
        return self.daemon(name=name, config=conf)

    def assert401(self, r, error=None):
        p = self.assertProblem(r, 401)
        self.assertEqual(p["type"], "urn:gand:problem:unauthorized")
        challenge = r.header("WWW-Authenticate") or ""
        self.assertTrue(challenge.startswith("Bearer"), r.headers)
        if error:
            self.assertIn('error="%s"' % error, challenge)
        else:
            self.assertNotIn("error=", challenge)
        return p

    def test_token_required_for_reads_and_writes(self):
        d = self.token_daemon().start()
        self.assertNotIn("chmod 600", d.log())  # mode 600: no warning
        # public: liveness, the dashboard's files, the API description
        for path in ("/healthz", "/", "/static/app.js", "/api/v1/openapi.json"):
            self.assertEqual(d.request("GET", path).status, 200, path)
        # everything else needs the token
        for method, path in (("GET", "/api/v1/runs"), ("GET", "/api/v1/datasets"),
                             ("GET", "/api/v1/presets"), ("GET", "/api/v1/presets/seed"),
                             ("GET", "/metrics"), ("GET", "/api/v1/runs/nope"),
                             ("POST", "/api/v1/runs"), ("DELETE", "/api/v1/runs/nope"),
                             ("OPTIONS", "/api/v1/runs"), ("GET", "/no/such/path")):
            self.assert401(d.request(method, path))
        self.assert401(d.request("GET", "/api/v1/runs", headers=bearer("wrong" + TOKEN[5:])),
                       "invalid_token")
        # prefixes, extensions and oversized guesses are all just wrong
        for guess in (TOKEN[:-1], TOKEN + "x", TOKEN * 10, "x"):
            self.assert401(d.request("GET", "/api/v1/runs", headers=bearer(guess)),
                           "invalid_token")
        self.assert401(d.request("GET", "/api/v1/runs",
                                 headers={"Authorization": "Basic " + TOKEN}), "invalid_request")
        self.assertEqual(d.request("GET", "/api/v1/runs", headers=bearer()).status, 200)
        self.assertEqual(d.request("GET", "/api/v1/runs",
                                   headers={"Authorization": "bearer  " + TOKEN}).status, 200)

        # writes: a refused POST creates nothing (its body is not even read)
        self.assert401(d.request("POST", "/api/v1/runs", config(epochs=1000)))
        r = d.request("POST", "/api/v1/runs", config(epochs=1000), headers=bearer())
        self.assertEqual(r.status, 201, r)
        rid = r.json()["id"]
        runs = d.request("GET", "/api/v1/runs", headers=bearer()).json()["runs"]
        self.assertEqual([x["id"] for x in runs], [rid])

        # ?access_token= works for reads (URL-encoded), never for writes
        q = "access_token=" + urllib.parse.quote(TOKEN, safe="")
        self.assertEqual(d.request("GET", "/api/v1/runs/%s?%s" % (rid, q)).status, 200)
        self.assertEqual(d.request("GET", "/api/v1/runs/%s/metrics?since=0&%s" % (rid, q)).status,
                         200)
        self.assert401(d.request("GET", "/api/v1/runs/%s?access_token=nope" % rid),
                       "invalid_token")
        self.assert401(d.request("POST", "/api/v1/runs/%s/pause?%s" % (rid, q)),
                       "invalid_request")

        # the event stream: with the header, with ?access_token= (EventSource), not without
        s = d.events(rid, headers=bearer())
        self.assertEqual((s.status, s.content_type), (200, "text/event-stream"))
        first = next(iter(s))
        self.assertEqual(first[1], "state")
        s.close()
        s = d.events(rid, "?last_event_id=0&" + q)
        self.assertEqual(s.status, 200)
        s.close()
        s = d.events(rid)
        self.assertEqual(s.status, 401)
        s.close()

        r = d.request("POST", "/api/v1/runs/%s/stop" % rid, headers=bearer())
        self.assertEqual(r.status, 200, r)
        # refused attempts are counted, and a wrong token is logged (not the token itself)
        metrics = d.request("GET", "/metrics", headers=bearer()).body.decode()
        self.assertIn('gand_http_requests_total{code="401"}', metrics)
        self.assertIn("refused: invalid_token", d.log())
        self.assertNotIn(TOKEN, d.log())
        self.assertEqual(d.stop(), 0)

    def test_public_reads(self):
        d = self.token_daemon("public_reads = true\n").start()
        self.assertEqual(d.request("GET", "/api/v1/runs").status, 200)
        self.assert401(d.request("POST", "/api/v1/runs", config(epochs=2)))
        r = d.request("POST", "/api/v1/runs", config(epochs=2), headers=bearer())
        self.assertEqual(r.status, 201, r)
        rid = r.json()["id"]
        d.wait_for(rid, lambda x: x["state"] == "completed", what="completed")
        self.assertEqual([k for _, k, _ in d.events(rid)][-1], "state")  # no token needed
        self.assert401(d.request("DELETE", "/api/v1/runs/" + rid))
        self.assertEqual(d.request("DELETE", "/api/v1/runs/" + rid, headers=bearer()).status, 204)
        self.assertEqual(d.stop(), 0)

    def test_sighup_reads_the_token_again_and_permissions_warn(self):
        d = self.token_daemon(mode=0o644).start()
        warn = [l for l in d.log().splitlines() if "chmod 600" in l]
        self.assertTrue(warn and warn[0].startswith("<4>") and "0644" in warn[0], d.log())
        new = "another-token-0123456789abcdef"
        write_file(self.token_path, new + "\n")
        d.signal(signal.SIGHUP)
        wait_log(self, d, "bearer token read again")
        self.assert401(d.request("GET", "/api/v1/runs", headers=bearer()), "invalid_token")
        self.assertEqual(d.request("GET", "/api/v1/runs", headers=bearer(new)).status, 200)
        # a bad file on reload: logged, and the token in force stays
        write_file(self.token_path, "short\n")
        d.signal(signal.SIGHUP)
        wait_log(self, d, "keeping the current token")
        self.assertEqual(d.request("GET", "/api/v1/runs", headers=bearer(new)).status, 200)
        # removing token_file does not switch authentication off
        conf = write_file(os.path.join(self.dir, "state.conf"), "[server]\n", 0o644)
        self.assertTrue(conf)
        d.signal(signal.SIGHUP)
        wait_log(self, d, "authentication cannot be switched off by a reload")
        self.assert401(d.request("GET", "/api/v1/runs"))
        self.assertEqual(d.stop(), 0)

    def test_bad_token_files_exit_2(self):
        cases = [
            (None, "cannot open it"),
            ("short\n", "16..256 characters, got 5"),
            ("", "16..256 characters, got 0"),
            ("has a space in it somewhere\n", "visible ASCII"),
            ("x" * 300, "16..256 characters, got 300"),
        ]
        for text, why in cases:
            with self.subTest(text=text):
                path = os.path.join(self.dir, "tok")
                if os.path.exists(path):
                    os.unlink(path)
                if text is not None:
                    write_file(path, text)
                p = subprocess.run([gandtest.GAND, "serve", "--check", "--token-file", path],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 2, p)
                self.assertIn("token_file " + path, p.stderr)
                self.assertIn(why, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        # a good one: --check shows it (never its content)
        write_file(os.path.join(self.dir, "tok"), TOKEN)
        p = subprocess.run([gandtest.GAND, "serve", "--check", "--token-file",
                            os.path.join(self.dir, "tok")], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("token_file = " + os.path.join(self.dir, "tok"), p.stdout)
        self.assertNotIn(TOKEN, p.stdout + p.stderr)

    def test_non_loopback_needs_a_token(self):
        d = self.daemon()
        argv = [gandtest.GAND, "serve", "--listen", "0.0.0.0:%d" % d.port, "--state-dir",
                d.state_dir, "--device", "cpu"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("refusing to listen on http://0.0.0.0:%d without authentication" % d.port,
                      p.stderr)
        self.assertIn("token_file", p.stderr)
        # with a token it starts, and warns that the token crosses the network in clear text
        tok = write_file(os.path.join(self.dir, "tok"), TOKEN)
        d.argv = lambda: argv + ["--token-file", tok]
        d.start()
        self.assertIn("without TLS", d.log())
        self.assert401(d.request("GET", "/api/v1/runs"))
        self.assertEqual(d.request("GET", "/api/v1/runs", headers=bearer()).status, 200)
        self.assertEqual(d.stop(), 0)


# ---- TLS -------------------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def make_pki(dirname):
    """A CA and a server certificate for IP:127.0.0.1 signed by it; returns (ca, cert, key)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=gand test CA", "-keyout", "ca.key",
            "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
            "keyUsage=critical,keyCertSign,cRLSign", cwd=dirname)
    openssl("req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr",
            cwd=dirname)
    write_file(os.path.join(dirname, "ext.cnf"),
               "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n"
               "extendedKeyUsage = serverAuth\n", 0o644)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem",
            cwd=dirname)
    os.chmod(os.path.join(dirname, "server.key"), 0o600)
    return tuple(os.path.join(dirname, n) for n in ("ca.pem", "server.pem", "server.key"))


def tls_unavailable():
    """Why the TLS test cannot run here, or None."""
    if not shutil.which("openssl"):
        return "openssl is not installed (Debian package openssl)"
    if not shutil.which("curl"):
        return "curl is not installed"
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        cert = write_file(os.path.join(tmp, "c.pem"), "-----BEGIN CERTIFICATE-----\n")
        conf = write_file(os.path.join(tmp, "g.conf"),
                          "[tls]\ntls_cert = %s\ntls_key = %s\n" % (cert, cert))
        p = subprocess.run([gandtest.GAND, "serve", "--check", "--config", conf],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0 and "built without TLS support" in p.stderr:
            return "this libmicrohttpd was built without TLS support: " + p.stderr.strip()
    return None


class TLSDaemon(gandtest.Daemon):
    ca = None

    @property
    def base(self):
        return "https://127.0.0.1:%d" % self.port

    def request(self, method, path, body=None, headers=None, timeout=30):
        ctx = ssl.create_default_context(cafile=self.ca)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return gandtest.Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()


class TLS(gandtest.DaemonTest):
    @classmethod
    def setUpClass(cls):
        why = tls_unavailable()
        if why:
            raise unittest.SkipTest(why)

    def curl(self, *args):
        return subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args),
                              capture_output=True, text=True, timeout=30)

    def test_https_with_own_ca_and_no_plain_http(self):
        ca, cert, key = make_pki(self.dir)
        tok = write_file(os.path.join(self.dir, "tok"), TOKEN)
        conf = write_file(os.path.join(self.dir, "tls.conf"),
                          "[server]\ntoken_file = %s\n[tls]\ntls_cert = %s\ntls_key = %s\n"
                          % (tok, cert, key), 0o644)
        d = TLSDaemon(os.path.join(self.dir, "state"), config=conf,
                      extra_args=["--data", "small=" + self.small])
        d.ca = ca
        self.daemons.append(d)
        d.start()
        self.assertIn("listening on https://127.0.0.1:%d" % d.port, d.log())
        url = "https://127.0.0.1:%d" % d.port
        p = self.curl("--cacert", ca, "-w", "\n%{http_code}", url + "/healthz")
        self.assertEqual(p.returncode, 0, p)
        self.assertTrue(p.stdout.endswith("\n200"), p.stdout)
        self.assertIn('"status":"ok"', p.stdout)
        # the token over TLS
        p = self.curl("--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}",
                      url + "/api/v1/runs")
        self.assertEqual(p.stdout, "401")
        p = self.curl("--cacert", ca, "-H", "Authorization: Bearer " + TOKEN, "-w",
                      "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json",
                      "-d", '{"latent_dim":16,"g_hidden":32,"d_units":16,"d_pieces":2,'
                      '"batch_size":100,"epochs":2,"dataset":"small"}', url + "/api/v1/runs")
        self.assertTrue(p.stdout.endswith("\n201"), p)
        # curl without our CA refuses the certificate
        p = self.curl(url + "/healthz")
        self.assertEqual(p.returncode, 60, p)
        # plain HTTP on the same port is not served
        p = self.curl("-o", "/dev/null", "-w", "%{http_code}",
                      "http://127.0.0.1:%d/healthz" % d.port)
        self.assertNotEqual(p.returncode, 0, p)
        self.assertEqual(p.stdout, "000")
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        self.assertFalse(got.startswith(b"HTTP/"), got[:100])
        self.assertEqual(d.request("GET", "/healthz").status, 200)  # still serving
        self.assertEqual(d.stop(), 0)

    def test_tls_settings_errors_exit_2(self):
        ca, cert, key = make_pki(self.dir)
        notpem = write_file(os.path.join(self.dir, "not.pem"), "hello\n")
        cases = [
            ("[tls]\ntls_cert = %s\n" % cert, "tls_key: must be set together with tls_cert"),
            ("[tls]\ntls_key = %s\n" % key, "tls_cert: must be set together with tls_key"),
            ("[tls]\ntls_cert = /nonexistent.pem\ntls_key = %s\n" % key, "cannot open it"),
            ("[tls]\ntls_cert = %s\ntls_key = %s\n" % (notpem, key), "not a PEM file"),
            ("[tls]\ntls_certificate = %s\n" % cert, "the keys of [tls] are: tls_cert, tls_key"),
        ]
        for text, why in cases:
            with self.subTest(text=text):
                conf = write_file(os.path.join(self.dir, "bad.conf"), text, 0o644)
                p = subprocess.run([gandtest.GAND, "serve", "--check", "--config", conf],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 2, p)
                self.assertIn(why, p.stderr)
        # a key that is not the certificate's: MHD refuses to start, and says so
        os.rename(key, key + ".1")
        make_pki(self.dir)
        conf = write_file(os.path.join(self.dir, "mismatch.conf"),
                          "[tls]\ntls_cert = %s\ntls_key = %s\n" % (cert + "", key + ".1"), 0o644)
        d = self.daemon(name="mismatch", config=conf)
        p = subprocess.run(d.argv(), capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0, p)
        self.assertIn("with TLS", p.stderr)


# ---- limits ----------------------------------------------------------------------------------

class Limits(gandtest.DaemonTest):
    def test_every_limit_answers_clearly(self):
        conf = write_file(os.path.join(self.dir, "gand.conf"),
                          "[limits]\nmax_body_bytes = 1024\nmax_connections = 4\n"
                          "connection_timeout_s = 1\nmax_event_streams = 2\nmax_sample_n = 16\n"
                          "max_runs = 2\n", 0o644)
        d = self.daemon(config=conf).start()

        # max_body_bytes: 413, by Content-Length and chunked
        big = b'{"epochs": 1' + b" " * 2000 + b"}"
        p = self.assertProblem(d.request("POST", "/api/v1/runs", big,
                                         {"Content-Type": "application/json"}), 413)
        self.assertIn("max_body_bytes (1024 bytes)", p["detail"])
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        conn.request("POST", "/api/v1/runs", body=iter([big[:1000], big[1000:]]),
                     headers={"Content-Type": "application/json"}, encode_chunked=True)
        self.assertEqual(conn.getresponse().status, 413)
        conn.close()
        p = self.assertProblem(d.request("POST", "/api/v1/runs", b'{"nope": 1}',
                                         {"Content-Type": "application/json"}), 422)

        # max_runs: 429
        a = d.create_run(config(epochs=1000))
        b = d.create_run(config(epochs=1000))
        p = self.assertProblem(d.request("POST", "/api/v1/runs", config(epochs=1)), 429)
        self.assertEqual(p["type"], "urn:gand:problem:limit-reached")
        self.assertIn("at most 2 runs (max_runs)", p["detail"])
        d.wait_for(a, lambda x: x["epoch"] >= 1, what="epoch 1")

        # max_sample_n: 422 naming n
        self.assertEqual(d.request("GET", "/api/v1/runs/%s/samples.png?n=16" % a).status, 200)
        self.assertProblem(d.request("GET", "/api/v1/runs/%s/samples.png?n=17" % a), 422, "n")

        # connection_timeout_s: an idle connection is closed ...
        idle = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        started = time.time()
        self.assertEqual(idle.recv(100), b"")
        self.assertLess(time.time() - started, 5)
        idle.close()
        # ... an event stream is not: it is quiet for longer, then still delivers
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/pause" % a).status, 200)
        # "left the worker": the pause's last epoch event, if any, is out too
        d.wait_for(a, lambda x: x["state"] == "paused" and "left the worker" in d.log(),
                   what="paused, with the worker let go")
        seq = max(s for s, _, _ in self.events_so_far(d, a))
        s1 = d.events(a, "?last_event_id=%d" % seq, timeout=30)
        self.assertEqual(s1.status, 200)
        time.sleep(2.5)  # more than connection_timeout_s without a byte

        # max_event_streams: the third stream is 429
        s2 = d.events(b)
        self.assertEqual(s2.status, 200)
        s3 = d.events(a)
        self.assertEqual(s3.status, 429)
        p = gandtest.Response(429, s3.resp.getheaders(), s3.resp.read())
        self.assertIn("max_event_streams", p.json()["detail"])
        s3.close()
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/stop" % a).status, 200)
        got = next(iter(s1))
        self.assertEqual((got[1], got[2]["state"]), ("state", "stopped"))
        s1.close()
        s2.close()
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/stop" % b).status, 200)
        deadline = time.time() + 10  # a closed stream is noticed within a second
        while streams_open(d) and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(streams_open(d), 0)
        time.sleep(0.2)

        # max_connections: beyond it, 503 with Retry-After (not a silently dropped connection)
        held = d.hold_connections(4)  # kept alive (HTTP/1.1), and counted
        r = d.request("GET", "/api/v1/runs")
        p = self.assertProblem(r, 503)
        self.assertEqual(p["type"], "urn:gand:problem:busy")
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertIn("max_connections", p["detail"])
        d.release_connections(held, timeout=5)
        self.assertEqual(d.request("GET", "/api/v1/runs").status, 200)
        self.assertEqual(d.stop(), 0)

    def events_so_far(self, d, rid):
        """Every event the run has now: the replay, read until the stream goes quiet."""
        s = d.events(rid, timeout=1)
        out = []
        try:
            for ev in s:
                out.append(ev)
        except OSError:  # quiet for a second: the replay is over
            pass
        finally:
            s.close()
        return out


class Origins(gandtest.DaemonTest):
    """A web page of another site cannot drive gand: Host must name this server, and a
    browser's cross-origin writes are refused; curl-like clients are not affected."""

    def test_host_must_name_this_server(self):
        d = self.daemon(config=self.conf("[server]\nallowed_hosts = gand.lab, Trainer-1\n")).start()
        for host in ("127.0.0.1:%d" % d.port, "localhost:%d" % d.port, "LOCALHOST",
                     "[::1]:%d" % d.port, "10.0.0.7", "gand.lab:8080", "trainer-1"):
            with self.subTest(host=host):
                self.assertEqual(d.request("GET", "/api/v1/runs", headers={"Host": host}).status,
                                 200)
        # DNS rebinding: the attacker's own name, for reads and writes alike
        for method, path in (("GET", "/api/v1/runs"), ("POST", "/api/v1/runs"),
                             ("GET", "/healthz")):
            for host in ("evil.example", "evil.example:%d" % d.port, "gand.lab.evil.example"):
                with self.subTest(method=method, host=host):
                    r = d.request(method, path, headers={"Host": host})
                    p = self.assertProblem(r, 403)
                    self.assertEqual(p["type"], "urn:gand:problem:host-not-allowed")
                    self.assertIn(host.split(":")[0], p["detail"])
                    self.assertIn("allowed_hosts", p["detail"])
        self.assertEqual(d.get_json("/api/v1/runs")["runs"], [], "no run was created")
        self.assertEqual(d.stop(), 0)

    def test_cross_origin_writes_are_refused(self):
        d = self.daemon().start()
        rid = d.create_run(gandtest.tiny_config(epochs=100000, checkpoint_every=1000))
        own = "http://127.0.0.1:%d" % d.port
        attacks = [
            ("POST", "/api/v1/runs", {"Origin": "http://evil.example"}),           # no body
            ("POST", "/api/v1/runs/%s/stop" % rid, {"Origin": "null"}),            # sandboxed
            ("POST", "/api/v1/runs/%s/stop" % rid, {"Origin": own + "1"}),         # other port
            ("DELETE", "/api/v1/runs/%s" % rid, {"Sec-Fetch-Site": "cross-site"}),
            ("PATCH", "/api/v1/runs/%s" % rid, {"Sec-Fetch-Site": "same-site"}),
        ]
        for method, path, headers in attacks:
            with self.subTest(method=method, headers=headers):
                r = d.request(method, path, headers=dict(headers, **{"Content-Type": "text/plain"}))
                p = self.assertProblem(r, 403)
                self.assertEqual(p["type"], "urn:gand:problem:cross-origin")
        self.assertEqual(len(d.get_json("/api/v1/runs")["runs"]), 1)
        self.assertEqual(d.run(rid)["state"], "running")
        # reads from anywhere are fine (the same-origin policy keeps their answers from the
        # page); its own pages and non-browser clients may write
        self.assertEqual(d.request("GET", "/api/v1/runs", headers={"Origin": "http://evil.example",
                                                                   "Sec-Fetch-Site": "cross-site"}
                                   ).status, 200)
        r = d.request("POST", "/api/v1/runs/%s/pause" % rid,
                      headers={"Origin": own, "Sec-Fetch-Site": "same-origin"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/stop" % rid,
                                   headers={"Sec-Fetch-Site": "none"}).status, 200)
        self.assertEqual(d.stop(), 0)

    def test_allowed_hosts_is_checked(self):
        rc = subprocess.run([gandtest.GAND, "serve", "--check", "--config",
                             self.conf("[server]\nallowed_hosts = good.name, bad/name\n")],
                            capture_output=True, text=True)
        self.assertEqual(rc.returncode, 2, rc)
        self.assertIn("allowed_hosts", rc.stderr)
        self.assertIn("host names", rc.stderr)


def main():
    if sys.argv[1:] == ["TLS"]:
        why = tls_unavailable()
        if why:
            print("SKIP: " + why)
            sys.exit(77)  # meson shows SKIP
    gandtest.main()


if __name__ == "__main__":
    main()
