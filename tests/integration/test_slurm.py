"""gand serve with [executor] kind = slurm, on a real one-node Slurm on loopback.

One LocalSlurm (munged, slurmctld, slurmd: slurmtest.py) serves every test of
the class; each test starts its own gand with the Slurm executor on a state
directory of its own. The node is this machine with 2 CPUs, each job asks for
one (-c 1), so two runs train at once.
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gandtest import DaemonTest, tiny_config, main  # noqa: E402
from slurmtest import LocalSlurm, missing_tools  # noqa: E402

# Epochs of the TINY model on the small data set take a fraction of a second;
# a requeued job waits about cred_expire (10 s) before it starts again.
EPOCHS = 150


def tensors(path):
    """The tensors of a safetensors file, name -> bytes (the metadata left out)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    return {k: body[v["data_offsets"][0]:v["data_offsets"][1]]
            for k, v in header.items() if k != "__metadata__"}


class SlurmExecutorTest(DaemonTest):
    @classmethod
    def setUpClass(cls):
        missing = missing_tools()
        if missing:
            raise AssertionError("Slurm is not installed (scripts/deps.sh test installs it): "
                                 "missing %s" % ", ".join(missing))
        cls.slurm_tmp = tempfile.TemporaryDirectory(prefix="gand-slurm-")
        cls.slurm = LocalSlurm(cls.slurm_tmp.name, cpus=2)
        cls.slurm.start()

    @classmethod
    def tearDownClass(cls):
        cls.slurm.stop()
        cls.slurm_tmp.cleanup()

    def tearDown(self):
        # the jobs of this test's runs go on without gand: cancel them before its files go
        self.slurm.run("scancel", "--user", self.slurm.user, check=False)
        deadline = time.monotonic() + 30
        while self.slurm.jobs() and time.monotonic() < deadline:
            time.sleep(0.2)
        super().tearDown()

    def gand(self, name="state", partition="", extra="", datasets="", poll_ms=200):
        conf = self.conf("\n".join([
            "[executor]",
            "kind = slurm",
            "gres =",
            "partition = %s" % partition,
            "poll_ms = %d" % poll_ms,
            "command_timeout_s = 20",
            # one CPU per job, and the same threads in every job: bit-identical runs
            "sbatch_args = -c 1 --export=ALL,OPENBLAS_NUM_THREADS=1,OMP_NUM_THREADS=1",
            extra, datasets, ""]), name=name + ".conf")
        d = self.daemon(name, config=conf, env=self.slurm.env())
        d.start()
        return d

    def wait_run(self, d, rid, predicate, timeout=120, what="a condition"):
        """Wait for predicate; a run that fails meanwhile (unless awaited) fails the test."""
        def check(r):
            if r["state"] == "failed" and not predicate(r):
                raise AssertionError("run %s failed waiting for %s: %s\n%s"
                                     % (rid, what, r["reason"], d.log()[-3000:]))
            return predicate(r)
        try:
            return d.wait_for(rid, check, timeout=timeout, what=what)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.job_files(d, rid))) from None

    def job_files(self, d, rid):
        """What the run's jobs wrote (job/state.json, their output), for a failure message."""
        job = os.path.join(d.state_dir, "runs", rid, "job")
        out = []
        for name in sorted(os.listdir(job)) if os.path.isdir(job) else []:
            if name == "state.json" or name.startswith("slurm-"):
                with open(os.path.join(job, name), errors="replace") as f:
                    out.append("---- %s ----\n%s" % (name, f.read()[-3000:]))
        out.append("---- squeue ----\n" + self.slurm.run("squeue", check=False).stdout)
        return "\n".join(out)

    def epochs_seen(self, d, rid):
        """The epochs of a finished run's epoch events, in stream order."""
        return [data["epoch"] for _, kind, data in d.events(rid) if kind == "epoch"]

    def test_two_runs_requeue_resumes_bit_identically(self):
        d = self.gand()
        cfg = tiny_config(epochs=EPOCHS, seed=7)
        a = d.create_run(cfg)
        b = d.create_run(cfg)
        # both run at once, each as its own Slurm job on the node
        ra = self.wait_run(d, a, lambda r: r["state"] == "running" and r["epoch"] >= 2,
                           what="run A training")
        rb = self.wait_run(d, b, lambda r: r["state"] == "running" and r["epoch"] >= 1,
                           what="run B training")
        self.assertEqual(ra["executor"], "slurm")
        self.assertEqual(ra["node"], self.slurm.node)
        self.assertNotEqual(ra["slurm_job_id"], rb["slurm_job_id"])
        self.assertEqual(self.slurm.job_state(ra["slurm_job_id"]), "RUNNING",
                         (ra, rb, self.slurm.run("squeue", "-a").stdout))
        self.assertEqual(self.slurm.job_state(rb["slurm_job_id"]), "RUNNING")
        # A is requeued mid-run: SIGTERM, a checkpoint, exit 75, and a new start
        job = ra["slurm_job_id"]
        self.slurm.run("scontrol", "requeue", str(job))
        self.wait_run(d, a, lambda r: r["slurm_state"] == "PENDING", timeout=60,
                      what="run A's job requeued")
        info = self.slurm.job_info(job)
        self.assertEqual(info["Restarts"], "1", info)
        ra = self.wait_run(d, a, lambda r: r["state"] == "completed", timeout=240,
                           what="run A completed")
        rb = self.wait_run(d, b, lambda r: r["state"] == "completed", timeout=240,
                           what="run B completed")
        self.assertEqual(ra["slurm_job_id"], job)  # the same job, requeued
        self.assertEqual(ra["epoch"], EPOCHS)
        # epochs unique and in order, over SSE, for both
        self.assertEqual(self.epochs_seen(d, a), list(range(1, EPOCHS + 1)))
        self.assertEqual(self.epochs_seen(d, b), list(range(1, EPOCHS + 1)))
        # the requeued run's final weights are those of the uninterrupted one
        ta = tensors(os.path.join(d.state_dir, "runs", a, "checkpoint.safetensors"))
        tb = tensors(os.path.join(d.state_dir, "runs", b, "checkpoint.safetensors"))
        self.assertEqual(sorted(ta), sorted(tb))
        for k in ta:
            self.assertEqual(ta[k], tb[k], "tensor %s differs" % k)
        # the job said it resumed; the daemon rendered grids from the published G
        with open(os.path.join(d.state_dir, "runs", a, "job", "slurm-%d.out" % job)) as f:
            self.assertIn("resumed from", f.read())
        r = d.request("GET", "/api/v1/runs/%s/samples.png" % a)
        self.assertEqual(r.status, 200, r)

    def test_pause_patch_resume(self):
        d = self.gand()
        rid = d.create_run(tiny_config(epochs=EPOCHS))
        r = self.wait_run(d, rid, lambda r: r["state"] == "running" and r["epoch"] >= 1,
                          what="the run training")
        first_job = r["slurm_job_id"]
        # a PATCH reaches the running job through control.json and SIGUSR1
        p = d.request("PATCH", "/api/v1/runs/" + rid, {"lr_d": 0.0004})
        self.assertEqual(p.status, 200, p)
        self.assertEqual(p.json()["applies"], {"lr_d": "next_iteration"})
        state = os.path.join(d.state_dir, "runs", rid, "job", "state.json")
        deadline = time.time() + 30
        applied = 0
        while time.time() < deadline:
            try:
                with open(state) as f:
                    applied = json.load(f).get("config_version", 0)
            except (OSError, ValueError):
                pass
            if applied >= 1:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(applied, 1, "the job did not apply the patch")
        # pause: the job checkpoints and ends; the run stays, paused
        p = d.request("POST", "/api/v1/runs/%s/pause" % rid)
        self.assertEqual(p.status, 200, p)
        r = self.wait_run(d, rid, lambda r: r["slurm_state"] == "COMPLETED", timeout=60,
                          what="the paused run's job ended")
        self.assertEqual(r["state"], "paused")
        paused_at = r["epoch"]
        self.assertLess(paused_at, EPOCHS)
        self.assertGreaterEqual(r["checkpoint_epoch"], paused_at)
        # generate renders on the daemon from the job's latest published generator
        g = d.request("GET", "/api/v1/runs/%s/samples.png?n=4" % rid)
        self.assertEqual(g.status, 200, g)
        # resume: a new job from the checkpoint, with the patched config
        p = d.request("POST", "/api/v1/runs/%s/resume" % rid)
        self.assertEqual(p.status, 200, p)
        r = self.wait_run(d, rid, lambda r: r["state"] == "completed", timeout=240,
                          what="the resumed run completed")
        self.assertNotEqual(r["slurm_job_id"], first_job)
        self.assertEqual(r["config"]["lr_d"], 0.0004)
        self.assertEqual(self.epochs_seen(d, rid), list(range(1, EPOCHS + 1)))

    def test_evaluations_alerts_and_metrics_follow_the_job(self):
        # held-out images, so that the daemon evaluates what the job publishes
        d = self.gand(datasets="[datasets]\nsmall.holdout = 200")
        rule = {"kind": "d_wins", "d_g_z_below": 0.99, "epochs": 2, "action": "pause"}
        rid = d.create_run(tiny_config(epochs=EPOCHS, evaluate_every=2, watch=[rule]))
        r = self.wait_run(d, rid, lambda r: r["state"] == "paused" and r["slurm_state"] in
                          ("COMPLETED", "CANCELLED"), timeout=90,
                          what="the watch rule's pause to end the job")
        self.assertTrue(r["reason"].startswith("watch rule 0 (d_wins)"), r["reason"])
        self.assertEqual(r["alerts"][0]["epoch"], 2)
        self.assertLess(r["epoch"], EPOCHS)
        evals = d.wait_for(rid, lambda r: r["last_evaluation"] is not None, timeout=60,
                           what="an evaluation done")["last_evaluation"]
        self.assertEqual(evals["state"], "done")
        self.assertEqual(evals["trigger"], "evaluate_every")
        self.assertEqual(evals["result"]["epoch"] % 2, 0)
        # the stream of the paused run, up to the evaluation's event (it stays open)
        kinds = []
        stream = d.events(rid, timeout=30)
        for _, kind, data in stream:
            kinds.append(kind)
            if kind == "evaluation" and data.get("state") == "done":
                break
        stream.close()
        self.assertIn("epoch", kinds)
        self.assertIn("alert", kinds)
        text = d.request("GET", "/metrics").body.decode()
        self.assertRegex(text, r'(?m)^gand_run_alerts_total\{run="%s",kind="d_wins"\} 1$'
                         % re.escape(rid))

    def test_a_daemon_behind_its_job_takes_every_epoch(self):
        # epochs of milliseconds, looked at every 1.5 s: the job has long dropped the
        # published checkpoints of the first epochs when the daemon first reads them
        d = self.gand(poll_ms=1500)
        rid = d.create_run(tiny_config(epochs=10000))
        r = self.wait_run(d, rid, lambda r: r["state"] == "running" and r["epoch"] >= 20,
                          timeout=60, what="20 epochs taken while the job runs")
        got = [e["epoch"] for e in d.get_json("/api/v1/runs/%s/metrics" % rid)["epochs"]]
        self.assertEqual(got, list(range(1, len(got) + 1)))
        # no grid of an epoch whose G the job no longer published; samples.png shows the newest
        self.assertEqual(d.request("GET", "/api/v1/runs/%s/samples.png?n=4" % rid).status, 200)

    def test_a_job_slurm_ends_fails_the_run_with_slurms_reason(self):
        d = self.gand()
        rid = d.create_run(tiny_config(epochs=10000))
        r = self.wait_run(d, rid, lambda r: r["state"] == "running" and r["epoch"] >= 1,
                          what="the run training")
        self.slurm.scancel(str(r["slurm_job_id"]))
        r = self.wait_run(d, rid, lambda r: r["state"] == "failed", timeout=60,
                          what="the cancelled run failed")
        self.assertIn("Slurm job %d ended CANCELLED" % r["slurm_job_id"], r["reason"])
        self.assertEqual(d.request("GET", "/healthz").status, 200)

    def test_sbatch_refusing_fails_the_run_and_gand_keeps_serving(self):
        d = self.gand(partition="nosuch")
        rid = d.create_run(tiny_config(epochs=2))
        r = self.wait_run(d, rid, lambda r: r["state"] == "failed", timeout=60,
                          what="the run failed")
        self.assertIn("sbatch refused the job", r["reason"])
        self.assertIn("Invalid partition name specified", r["reason"])
        self.assertEqual(d.request("GET", "/healthz").status, 200)

    def test_without_slurms_tools_gand_says_so(self):
        conf = self.conf("[executor]\nkind = slurm\n", name="noslurm.conf")
        empty = os.path.join(self.dir, "empty-bin")
        os.mkdir(empty)
        d = self.daemon("noslurm", config=conf, env=dict(self.slurm.env(), PATH=empty))
        with self.assertRaises(AssertionError) as cm:
            d.start()
        self.assertIn("[executor] kind = slurm needs Slurm's client tools", str(cm.exception))

    def test_restart_follows_the_job_and_submits_nothing_twice(self):
        d = self.gand()
        rid = d.create_run(tiny_config(epochs=EPOCHS))
        r = self.wait_run(d, rid, lambda r: r["state"] == "running" and r["epoch"] >= 1,
                          what="the run training")
        job = r["slurm_job_id"]
        d.stop()
        time.sleep(1)
        self.assertEqual(self.slurm.job_state(job), "RUNNING")  # the job trains on
        d.start()
        r = self.wait_run(d, rid, lambda r: r["state"] == "completed", timeout=240,
                          what="the run completed after the restart")
        self.assertEqual(r["slurm_job_id"], job)
        self.assertIn("following 1 runs", d.log())
        self.assertIn("the nodes share it", d.log())  # the start-up check of the state dir
        self.assertEqual(self.epochs_seen(d, rid), list(range(1, EPOCHS + 1)))
        mine = [j for j in self.slurm.jobcomp_records() if rid in j.get("Name", j.get("JobName", ""))]
        self.assertEqual([j["JobId"] for j in mine], [str(job)], mine)


if __name__ == "__main__":
    main()
