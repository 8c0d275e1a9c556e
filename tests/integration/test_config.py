"""tests/integration/test_config.py — gand.conf and the serve flags.

Every bad setting stops start-up with exit status 2 and one line naming the file,
line, key and what is allowed; the shipped config/gand.conf is valid; SIGHUP
applies what can change live, says what needs a restart, and keeps the old
settings when the new file is bad.
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402


def check(*args):
    p = subprocess.run([gandtest.GAND, "serve", "--check"] + list(args), capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


class Settings(gandtest.DaemonTest):
    def test_shipped_config_is_valid_and_is_the_defaults(self):
        shipped = os.path.join(gandtest.SOURCE_ROOT, "config", "gand.conf")
        rc, out, err = check("--config", shipped)
        self.assertEqual(rc, 0, err)
        rc2, out2, _ = check("--config", self.conf(""))
        self.assertEqual(rc2, 0)
        # the commented defaults are the built-in ones
        strip = lambda s: [l for l in s.splitlines() if not l.startswith("config =")]  # noqa
        self.assertEqual(strip(out), strip(out2))
        # and each commented key, uncommented, parses to the same settings (paths that
        # depend on the install are left out)
        with open(shipped) as f:
            lines = f.read().splitlines()
        skip = ("state_dir", "web_dir", "javascript_dir", "mnist", "train60k")
        active = []
        for l in lines:
            m = re.match(r"^#([a-z_0-9]+) = ", l)
            active.append(l[1:] if m and m.group(1) not in skip else l)
        self.assertGreaterEqual(sum(a != l for a, l in zip(active, lines)), 9)
        rc3, out3, err3 = check("--config", self.conf("\n".join(active) + "\n", "active.conf"))
        self.assertEqual(rc3, 0, err3)
        self.assertEqual(strip(out3), strip(out2))

    def test_every_bad_setting_is_named_and_exits_2(self):
        cases = [
            ("[server]\nlisten = 127.0.0.1\n", 2, "listen", "HOST:PORT"),
            ("[server]\nlisten = 127.0.0.1:99999\n", 2, "listen", "0..65535"),
            ("[server]\ndevice = gpu\n", 2, "device", "auto, cpu, cuda"),
            ("[server]\nlog_level = loud\n", 2, "log_level", "err, warning, notice, info, debug"),
            ("[server]\nstate_dir =\n", 2, "state_dir", "directory"),
            ("[server]\nport = 80\n", 2, "port", "listen, state_dir"),
            ("\n[limits]\nmax_body_bytes = 10\n", 3, "max_body_bytes", "1024..1073741824"),
            ("[limits]\nmax_connections = lots\n", 2, "max_connections", "2..10000"),
            ("[limits]\nconnection_timeout_s = -1\n", 2, "connection_timeout_s", "0..86400"),
            ("[limits]\nmax_event_streams = 1e3\n", 2, "max_event_streams", "0..10000"),
            ("[limits]\nmax_sample_n = 2048\n", 2, "max_sample_n", "1..1024"),
            ("[limits]\nmax_runs = -5\n", 2, "max_runs", "0..1000000"),
            ("[limits]\nmax_runs = 5\nmax_runs = 6\n", 3, "max_runs", "twice"),
            ("[datasets]\nsmall = /nonexistent/x.gz\n", 2, "small", "cannot read"),
            ("[datasets]\nbad name = x\n", 2, "bad name", "A-Z a-z 0-9"),
            ("[servr]\nlisten = 127.0.0.1:1\n", 2, "servr",
             "[server], [limits], [tls], [executor] and [datasets]"),
            ("[executor]\nkind = kubernetes\n", 2, "kind", "must be local (the worker thread) or slurm"),
            ("[executor]\npoll_ms = 5\n", 2, "poll_ms", "100..600000"),
            ("[executor]\npartition = %s\n" % ("p" * 200), 2, "partition", "longer than 127 bytes"),
            ("[executor]\nqueue = gpu\n", 2, "queue", "the keys of [executor] are: kind, partition"),
            ("[server]\nthis is not a setting\n", 2, None, "syntax error"),
        ]
        for text, line, key, allowed in cases:
            with self.subTest(text=text):
                path = self.conf(text)
                rc, out, err = check("--config", path)
                self.assertEqual(rc, 2, (out, err))
                self.assertIn("%s:%d:" % (path, line), err)
                if key:
                    self.assertIn(key, err)
                self.assertIn(allowed, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)

        flags = [
            (["--listen", "nowhere"], "--listen"),
            (["--device", "tpu"], "--device"),
            (["--log-level", "verbose"], "--log-level"),
            (["--data", "nopath"], "--data"),
            (["--data", "x=/nonexistent"], "--data"),
            (["--config", os.path.join(self.dir, "missing.conf")], "missing.conf"),
        ]
        for args, named in flags:
            with self.subTest(args=args):
                rc, out, err = check(*args)
                self.assertEqual(rc, 2, err)
                self.assertIn(named, err)

        # flags override the file
        path = self.conf("[server]\nlisten = 127.0.0.1:1234\nlog_level = debug\n")
        rc, out, err = check("--config", path, "--listen", "127.0.0.1:4321")
        self.assertEqual(rc, 0, err)
        self.assertIn("listen = 127.0.0.1:4321", out)
        self.assertIn("log_level = debug", out)

        # an unknown flag is a usage error
        p = subprocess.run([gandtest.GAND, "serve", "--bogus"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)

    def test_dataset_holdout_and_test_file(self):
        """[datasets] NAME.holdout / NAME.test: checked, and reported by /api/v1/datasets."""
        test_file = gandtest.make_small_dataset(os.path.join(self.dir, "t10k-idx3-ubyte.gz"), 100)
        small = ["--data", "small=" + self.small]
        cases = [  # (file, extra flags, file:line or None, named, allowed)
            ("[datasets]\nsmall.holdout = -1\n", small, 2, "small.holdout", "0..100000000"),
            ("[datasets]\nsmall.holdout = many\n", small, 2, "small.holdout", "0..100000000"),
            ("[datasets]\nmnist.holdout = 5\nmnist.holdout = 6\n", [], 3, "mnist.holdout", "twice"),
            ("[datasets]\nsmall.test = /nonexistent/t.gz\n", small, 2, "small.test", "cannot read"),
            ("[datasets]\nbad name.holdout = 3\n", [], 2, "bad name", "A-Z a-z 0-9"),
            ("[datasets]\nnothere.holdout = 10\n", [], None, "nothere.holdout",
             "no data set 'nothere' is configured"),
            ("[datasets]\nnothere.test = %s\n" % test_file, [], None, "nothere.test",
             "no data set 'nothere' is configured"),
            ("[datasets]\nsmall.holdout = 2000\n", small, None, "small.holdout",
             "less than the 2000 images"),
            ("[datasets]\nmnist.holdout = 60000\n", [], None, "mnist.holdout",
             "less than the 60000 images"),
        ]
        for text, flags, line, key, allowed in cases:
            with self.subTest(text=text):
                path = self.conf(text)
                rc, out, err = check("--config", path, *flags)
                self.assertEqual(rc, 2, (out, err))
                self.assertIn("%s:%d:" % (path, line) if line else path + ":", err)
                self.assertIn(key, err)
                self.assertIn(allowed, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)

        # attributes before the path, or for a data set that --data names; relative paths
        # are relative to the config file
        path = self.conf("[datasets]\nsmall.holdout = 300\nother.test = t10k-idx3-ubyte.gz\n"
                         "other = small-idx3-ubyte.gz\nmnist.test = %s\n" % test_file)
        rc, out, err = check("--config", path, *small)
        self.assertEqual(rc, 0, err)
        d = self.daemon(config=path).start()
        sets = {x["name"]: x for x in d.get_json("/api/v1/datasets")["datasets"]}
        self.assertEqual((sets["small"]["train_images"], sets["small"]["split"]["validation"],
                          sets["small"]["split"]["test"]), (1700, [1700, 1850], [1850, 2000]))
        self.assertEqual((sets["other"]["train_images"], sets["other"]["test_images"],
                          sets["other"]["split"]["data"], sets["other"]["split"]["validation"]),
                         (2000, 100, "other/t10k-idx3-ubyte.gz", [0, 50]))
        # the bundled digits with another test file: their holdout still chooses sigma, and
        # the whole test file is scored
        self.assertEqual((sets["mnist"]["train_images"], sets["mnist"]["holdout"],
                          sets["mnist"]["split"]["validation"], sets["mnist"]["split"]["data"],
                          sets["mnist"]["split"]["test"]),
                         (50000, 10000, [50000, 60000], "mnist/t10k-idx3-ubyte.gz", [0, 100]))
        self.assertEqual(d.stop(), 0)

    def test_sighup_reload(self):
        path = self.conf("[limits]\nmax_body_bytes = 2048\nmax_connections = 32\n")
        d = self.daemon(config=path).start()
        big = b'{"nope": 1' + b" " * 3000 + b"}"
        self.assertEqual(d.request("POST", "/api/v1/runs", big,
                                   {"Content-Type": "application/json"}).status, 413)

        self.conf("[server]\nlog_level = debug\n"
                  "[limits]\nmax_body_bytes = 8192\nmax_connections = 40\n")
        d.signal(signal.SIGHUP)
        self.wait_log(d, "reload:")
        log = d.log()
        line = [l for l in log.splitlines() if "reload:" in l][-1]
        applied, _, restart = line.partition("need a restart")
        self.assertIn("limits.max_body_bytes", applied)
        self.assertIn("server.log_level", applied)
        self.assertIn("limits.max_connections", restart)
        # the new limit is in force: the body is read, and refused for its content instead
        r = d.request("POST", "/api/v1/runs", big, {"Content-Type": "application/json"})
        self.assertProblem(r, 422, "nope")
        # debug logs every request
        d.request("GET", "/api/v1/datasets")
        self.wait_log(d, "GET /api/v1/datasets -> 200")

        # a bad file on reload: logged, the running settings stay
        self.conf("[limits]\nmax_body_bytes = tiny\n")
        d.signal(signal.SIGHUP)
        self.wait_log(d, "keeping the current settings")
        self.assertProblem(d.request("POST", "/api/v1/runs", big,
                                     {"Content-Type": "application/json"}), 422)
        self.assertEqual(d.stop(), 0)

    def test_non_loopback_listen_warns(self):
        # without a token it is refused (test_security.py); with one, it warns about clear text
        token = os.path.join(self.dir, "token")
        with open(token, "w") as f:
            f.write("0123456789abcdef0123\n")
        os.chmod(token, 0o600)
        d = self.daemon()
        d.argv = lambda: [gandtest.GAND, "serve", "--listen", "0.0.0.0:%d" % d.port,
                          "--state-dir", d.state_dir, "--device", "cpu", "--token-file", token]
        d.start()
        self.assertEqual(d.stop(), 0)
        warn = [l for l in d.log().splitlines() if "not a loopback address" in l]
        self.assertTrue(warn and warn[0].startswith("<4>"), d.log())

    def wait_log(self, d, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in d.log():
                return
            time.sleep(0.05)
        self.fail("%r did not appear in the log:\n%s" % (text, d.log()))


if __name__ == "__main__":
    gandtest.main()
