"""tests/integration/test_prometheus.py — GET /metrics passes `promtool check metrics`.

A daemon on loopback holds runs in every state — queued, running, paused, stopped,
completed (with a done evaluation, so the Parzen series appear) and failed (its
checkpoint truncated while the daemon was stopped, as test_faults.py does) — and has
answered a few status codes and holds an event stream open. Its live /metrics is piped
to `promtool check metrics` (Debian package `prometheus`), which must exit 0 and print
nothing: no lint warning (abbreviated units such as `_d_`, counters without `_total`,
non-base units, missing HELP) is accepted. The test also checks by itself that every
family has `# HELP` and `# TYPE` and that every state shows up in gand_run_state.

promtool missing is a failure, not a skip: the check is the point of the test. Set
$PROMTOOL to use another binary.
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import tiny_config as config  # noqa: E402

STATES = ("queued", "running", "paused", "stopped", "completed", "failed")
LONG = 1000000  # epochs: a run that trains until it is told otherwise


def promtool():
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        raise AssertionError("promtool not found on PATH (nor $PROMTOOL): install the Debian "
                             "package `prometheus` (apt-get install prometheus), which provides "
                             "/usr/bin/promtool")
    return path


def families(text):
    """{name: {"help": str|None, "type": str|None, "samples": [line]}} of an exposition."""
    fams = {}

    def fam(name):
        return fams.setdefault(name, {"help": None, "type": None, "samples": []})

    for line in text.splitlines():
        m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$", line)
        if m:
            fam(m.group(2))[m.group(1).lower()] = m.group(3)
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
        assert m, "not a sample line: %r" % line
        fam(m.group(1))["samples"].append(line)
    return fams


class Prometheus(gandtest.DaemonTest):
    def post(self, d, rid, action, status=200):
        r = d.request("POST", "/api/v1/runs/%s/%s" % (rid, action))
        self.assertEqual(r.status, status, r)

    def test_metrics_pass_promtool_without_warnings(self):
        tool = promtool()  # first: without it there is nothing to test
        conf = self.conf("[datasets]\nsmall.holdout = 200\n")  # held-out images: evaluations

        # failed: a paused run whose checkpoint is cut short while the daemon is stopped
        d = self.daemon(config=conf).start()
        failing = d.create_run(config(epochs=LONG, checkpoint_every=1, sample_every=0))
        d.wait_for(failing, lambda x: x["epoch"] >= 1, what="epoch 1")
        self.post(d, failing, "pause")
        d.wait_for(failing, lambda x: x["state"] == "paused", what="paused")
        self.assertEqual(d.stop(), 0)
        path = os.path.join(d.state_dir, "runs", failing, "checkpoint.safetensors")
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)

        d = self.daemon(config=conf).start()
        self.assertEqual(d.run(failing)["state"], "failed")

        # completed, with a done evaluation (gand_run_parzen_log_likelihood...)
        completed = d.create_run(config(epochs=1, sample_every=0))
        d.wait_for(completed, lambda x: x["state"] == "completed", what="completed")
        r = d.request("POST", "/api/v1/runs/%s/evaluations" % completed, {"samples": 100})
        self.assertEqual(r.status, 202, r)
        d.wait_for(completed, lambda x: (x["last_evaluation"] or {}).get("state") == "done",
                   what="the evaluation done")

        # stopped and paused, each after an epoch so that its loss series exist
        stopped = d.create_run(config(epochs=LONG, sample_every=0))
        d.wait_for(stopped, lambda x: x["epoch"] >= 1, what="epoch 1")
        self.post(d, stopped, "stop")
        d.wait_for(stopped, lambda x: x["state"] == "stopped", what="stopped")
        paused = d.create_run(config(epochs=LONG, sample_every=0))
        d.wait_for(paused, lambda x: x["epoch"] >= 1, what="epoch 1")
        self.post(d, paused, "pause")
        d.wait_for(paused, lambda x: x["state"] == "paused", what="paused")

        # running holds the one worker; queued waits behind it
        running = d.create_run(config(epochs=LONG, sample_every=0))
        d.wait_for(running, lambda x: x["state"] == "running" and x["epoch"] >= 1,
                   what="running, epoch 1")
        queued = d.create_run(config(epochs=LONG, sample_every=0))
        self.assertEqual(d.run(queued)["state"], "queued")

        # a few status codes, and an event stream open now
        self.assertEqual(d.request("GET", "/api/v1/runs/nosuch").status, 404)
        self.assertEqual(d.request("POST", "/api/v1/runs", {"lr_d": -1}).status, 422)
        stream = d.events(running)
        try:
            self.assertEqual(stream.status, 200)
            r = d.request("GET", "/metrics")
        finally:
            stream.close()
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("text/plain; version=0.0.4"), r)
        text = r.body.decode("utf-8")
        ids = {"queued": queued, "running": running, "paused": paused, "stopped": stopped,
               "completed": completed, "failed": failing}
        for state, rid in ids.items():
            self.assertEqual(d.run(rid)["state"], state, "run %s moved on" % rid)

        # promtool: exit 0, and not a word on stdout or stderr
        p = subprocess.run([tool, "check", "metrics"], input=r.body, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
        self.assertTrue(p.returncode == 0 and not out,
                        "promtool check metrics: exit %d\n%s\n---- the exposition ----\n%s" %
                        (p.returncode, out, text))

        # every family has HELP and TYPE; the per-run series cover every state
        fams = families(text)
        for name, f in fams.items():
            self.assertTrue(f["help"], "%s: no # HELP" % name)
            self.assertIn(f["type"], ("counter", "gauge"), "%s: # TYPE %s" % (name, f["type"]))
            self.assertEqual(f["type"] == "counter", name.endswith("_total"), name)
            self.assertTrue(name.startswith("gand_"), name)
        for state, rid in ids.items():
            self.assertIn('gand_run_state{run="%s",state="%s"} 1' % (rid, state), text)
            self.assertIn('gand_runs{state="%s"} 1' % state, text)
        for name in ("gand_run_epochs_total", "gand_run_discriminator_loss",
                     "gand_run_discriminator_real_loss", "gand_run_discriminator_fake_loss",
                     "gand_run_generator_loss", "gand_run_discriminator_real_output",
                     "gand_run_discriminator_fake_output", "gand_run_samples_per_second"):
            for state in ("running", "paused", "stopped", "completed", "failed"):
                self.assertRegex(text, r'(?m)^%s\{run="%s"\} \S+$' % (name, ids[state]))
        self.assertRegex(text, r'(?m)^gand_run_parzen_log_likelihood\{run="%s"\} \S+$' %
                         completed)
        self.assertRegex(text, r'(?m)^gand_run_parzen_log_likelihood_stderr\{run="%s"\} \S+$' %
                         completed)
        self.assertRegex(text, r'(?m)^gand_http_requests_total\{code="404"\} [1-9]')
        self.assertRegex(text, r'(?m)^gand_http_event_streams [1-9]')
        sys.stderr.write("%s check metrics: exit 0, no output; %d families, %d samples\n" %
                         (tool, len(fams), sum(len(f["samples"]) for f in fams.values())))
        for rid in (running, queued):
            self.post(d, rid, "stop")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    gandtest.main()
