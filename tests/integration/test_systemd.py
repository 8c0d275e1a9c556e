"""tests/integration/test_systemd.py — what gand tells systemd, and socket activation.

No systemd needed: the test plays the service manager. It binds the
$NOTIFY_SOCKET datagram socket and reads READY=1, STATUS=, WATCHDOG=1 (with
$WATCHDOG_USEC set), RELOADING=1 and STOPPING=1; and it passes a listening socket
the way systemd does (fd 3, $LISTEN_FDS, $LISTEN_PID = the daemon's pid).
"""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import tiny_config  # noqa: E402


class Notify:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []

    def drain(self, until=None, timeout=10):
        """Read messages; stop when one contains `until` (or after timeout)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                if until is None:
                    return None
                continue
            self.messages.append(msg)
            if until is not None and until in msg:
                return msg
        if until is not None:
            raise AssertionError("no %r from gand within %d s; got %r" %
                                 (until, timeout, self.messages))
        return None

    def close(self):
        self.sock.close()


class Systemd(gandtest.DaemonTest):
    def test_notify_watchdog_reload_stop(self):
        notify = Notify(os.path.join(self.dir, "notify.sock"))
        d = self.daemon(env={"NOTIFY_SOCKET": os.path.join(self.dir, "notify.sock"),
                             "WATCHDOG_USEC": "2000000"})
        d.start()
        notify.drain("READY=1")
        status = notify.drain("STATUS=")
        self.assertIn("idle", status)
        # a run shows in STATUS (updated every few seconds)
        rid = d.create_run(tiny_config(epochs=1000))
        msg = notify.drain("STATUS=training run " + rid, timeout=15)
        self.assertRegex(msg, r"epoch \d+/1000")
        # WATCHDOG=1 keeps coming while the worker's heartbeat advances
        t0 = time.time()
        pings = 0
        while time.time() - t0 < 4.5:
            if "WATCHDOG=1" in (notify.drain("WATCHDOG=1", timeout=3) or ""):
                pings += 1
        self.assertGreaterEqual(pings, 3)
        # SIGHUP: RELOADING=1 then READY=1 again
        d.signal(signal.SIGHUP)
        notify.drain("RELOADING=1")
        notify.drain("READY=1")
        # SIGTERM: STOPPING=1, exit 0
        d.signal(signal.SIGTERM)
        notify.drain("STOPPING=1")
        self.assertEqual(d.wait(timeout=60), 0)
        notify.close()

    def test_socket_activation(self):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        port = lsock.getsockname()[1]
        state = os.path.join(self.dir, "state")
        log = open(os.path.join(self.dir, "activated.log"), "wb")
        fd = lsock.fileno()

        def as_fd3():
            os.dup2(fd, 3)
            os.set_inheritable(3, True)

        # --listen names another port: with a socket passed, it must be ignored
        argv = ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", gandtest.GAND, "serve",
                "--listen", "127.0.0.1:1", "--state-dir", state, "--device", "cpu"]
        proc = subprocess.Popen(argv, stdout=log, stderr=log, preexec_fn=as_fd3, pass_fds=(fd,))
        try:
            d = gandtest.Daemon(state, port=port)
            deadline = time.time() + 30
            while True:
                try:
                    if d.request("GET", "/healthz").status == 200:
                        break
                except OSError:
                    pass
                self.assertIsNone(proc.poll(), open(log.name).read())
                self.assertLess(time.time(), deadline)
                time.sleep(0.05)
            self.assertEqual(d.request("GET", "/api/v1/runs").status, 200)
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
            log.close()
        text = open(log.name).read()
        self.assertEqual(rc, 0, text)
        self.assertIn("socket from systemd", text)
        lsock.close()


if __name__ == "__main__":
    gandtest.main()
