"""tests/integration/test_slurm_harness.py — the local Slurm cluster of slurmtest.py,
and the Slurm behaviour gand's Slurm executor relies on.

One LocalSlurm (munged, slurmctld, slurmd on loopback, all under a temp dir) for
the class; jobs are bash scripts that leave markers in the cluster's shared
directory. What is checked: sbatch --parsable → job id; exit 0 → COMPLETED and
its file; exit 3 → FAILED with ExitCode 3:0; `scontrol requeue` on a running
--requeue job → SIGTERM to the batch script, PENDING (BeginTime) with
Restarts=1, then a second run with SLURM_RESTART_COUNT=1; `scancel --signal=USR1
--batch` → the script's USR1 trap, job still running; `scancel` → SIGTERM, then
CANCELLED; an unknown partition → sbatch fails with a message; two 1-CPU jobs
run at once. And a cluster stopped with a job running leaves no process behind.

No skip: scripts/deps.sh test installs munge and Slurm; without them this fails.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slurmtest import LocalSlurm, SlurmError, missing_tools  # noqa: E402

# A job that logs its start (with SLURM_RESTART_COUNT) and the signals it gets to
# $PWD/<name>-<job id>.log, then waits: for the file `go` (and exits with $1), or
# forever if there is none. It sleeps in short steps so that bash runs a trap soon.
MARKER_JOB = r"""#!/bin/bash
log=$PWD/%(name)s-$SLURM_JOB_ID.log
echo "start restart=${SLURM_RESTART_COUNT:-none}" >> "$log"
for sig in TERM USR1 INT HUP; do trap "echo $sig >> '$log'" $sig; done
%(body)s
"""


def marker_job(name, body):
    return MARKER_JOB % {"name": name, "body": body}


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.1)


def read_lines(path):
    try:
        with open(path) as f:
            return [l.strip() for l in f if l.strip()]
    except FileNotFoundError:
        return []


class SlurmHarnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = missing_tools()
        if missing:
            raise AssertionError("not installed: %s (run scripts/deps.sh test)" % ", ".join(missing))
        cls.tmp = tempfile.TemporaryDirectory(prefix="gand-slurm-")
        cls.slurm = LocalSlurm(cls.tmp.name, cpus=max(2, os.cpu_count() or 1))
        cls.slurm.start()
        sys.stderr.write("slurm cluster up in %.2fs\n" % cls.slurm.start_seconds)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.slurm.stop()
            sys.stderr.write("slurm cluster stopped in %.2fs\n" % cls.slurm.stop_seconds)
        finally:
            cls.tmp.cleanup()

    def setUp(self):
        self.s = self.slurm
        self.shared = self.s.shared

    def tearDown(self):
        failed = any(e for e in self._outcome_errors())
        if failed:
            sys.stderr.write(self.s.log_tails() + "\n")

    def _outcome_errors(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return []
        return [e for e in list(getattr(result, "errors", [])) + list(getattr(result, "failures", []))
                if e[0] is self]

    def log_of(self, name, job):
        return os.path.join(self.shared, "%s-%s.log" % (name, job))

    def go(self, name):
        """The `go` file a marker job waits for, in its own directory."""
        d = os.path.join(self.shared, name)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o777)
        return d

    def test_completed_job_and_its_file(self):
        job = self.s.sbatch("#!/bin/sh\necho \"written by $SLURM_JOB_ID\" > done.txt\nexit 0\n",
                            "-J", "ok")
        self.assertTrue(job.isdigit(), job)
        info = self.s.wait_job_state(job, "COMPLETED", timeout=60)
        self.assertEqual(info["ExitCode"], "0:0", info)
        self.assertEqual(info["JobName"], "ok", info)
        with open(os.path.join(self.shared, "done.txt")) as f:
            self.assertEqual(f.read().strip(), "written by " + job)
        # Finished jobs are also in the jobcomp file (no sacct without slurmdbd).
        wait_until(lambda: any(r.get("JobId") == job for r in self.s.jobcomp_records()), 10,
                   "job %s in the jobcomp file" % job)
        rec = [r for r in self.s.jobcomp_records() if r.get("JobId") == job][0]
        self.assertEqual(rec["JobState"], "COMPLETED", rec)
        self.assertEqual(rec["ExitCode"], "0:0", rec)

    def test_failed_job_exit_code(self):
        job = self.s.sbatch("#!/bin/sh\necho failing >&2\nexit 3\n")
        info = self.s.wait_job_state(job, "FAILED", timeout=60)
        self.assertEqual(info["ExitCode"], "3:0", info)
        self.assertEqual(info["Reason"], "NonZeroExitCode", info)
        # Its stderr went to the default slurm-<id>.out in the working directory.
        with open(os.path.join(self.shared, "slurm-%s.out" % job)) as f:
            self.assertIn("failing", f.read())

    def test_requeue_running_job(self):
        # The second run (SLURM_RESTART_COUNT=1) exits 0; the first waits.
        body = ('if [ "${SLURM_RESTART_COUNT:-0}" -ge 1 ]; then exit 0; fi\n'
                'while :; do sleep 0.1; done\n')
        job = self.s.sbatch(marker_job("requeue", body), "--requeue", "--signal=B:TERM@60")
        log = self.log_of("requeue", job)
        self.s.wait_job_state(job, "RUNNING", timeout=60)
        wait_until(lambda: read_lines(log), 30, "the first run's start marker")
        self.s.run("scontrol", "requeue", job)
        # The first run gets SIGTERM (and, KillWait later, SIGKILL: the trap does not exit).
        wait_until(lambda: "TERM" in read_lines(log), 30, "SIGTERM in the first run")
        wait_until(lambda: self.s.job_info(job)["Restarts"] == "1", 30, "Restarts=1")
        info = self.s.job_info(job)
        if info["JobState"] == "PENDING":
            # A requeued job may start again only cred_expire (AuthInfo) after it ended.
            self.assertEqual(info["Reason"], "BeginTime", info)
        info = self.s.wait_job_state(job, "COMPLETED", timeout=90)
        self.assertEqual(info["Restarts"], "1", info)
        self.assertEqual(info["ExitCode"], "0:0", info)
        lines = read_lines(log)
        self.assertEqual(lines[0], "start restart=none", lines)
        self.assertIn("start restart=1", lines, lines)
        first = lines[:lines.index("start restart=1")]
        self.assertIn("TERM", first, lines)
        self.assertNotIn("USR1", lines, lines)

    def test_signal_batch_then_cancel(self):
        job = self.s.sbatch(marker_job("signal", "while :; do sleep 0.1; done\n"))
        log = self.log_of("signal", job)
        self.s.wait_job_state(job, "RUNNING", timeout=60)
        wait_until(lambda: read_lines(log), 30, "the start marker")
        self.s.scancel("--signal=USR1", "--batch", job)
        wait_until(lambda: "USR1" in read_lines(log), 30, "USR1 in the batch script")
        self.assertEqual(self.s.job_state(job), "RUNNING")
        self.s.scancel(job)
        info = self.s.wait_job_state(job, "CANCELLED", timeout=60)
        # The trap does not exit, so SIGKILL ends it KillWait after SIGTERM.
        self.assertIn("TERM", read_lines(log))
        self.assertEqual(info["ExitCode"], "0:9", info)

    def test_unknown_partition(self):
        r = self.s.run("sbatch", "--parsable", "-p", "nosuchpartition", "--wrap", "true",
                       check=False)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout.strip(), "", r)
        self.assertIn("invalid partition specified: nosuchpartition", r.stderr)
        self.assertIn("Batch job submission failed: Invalid partition name specified", r.stderr)

    def test_two_jobs_at_once(self):
        d = self.go("two")
        body = 'while [ ! -e "%s/go" ]; do sleep 0.1; done\nexit 0\n' % d
        jobs = [self.s.sbatch(marker_job("two", body), "-c", "1") for _ in range(2)]
        for job in jobs:
            self.s.wait_job_state(job, "RUNNING", timeout=60)
        wait_until(lambda: all(read_lines(self.log_of("two", j)) for j in jobs), 30,
                   "both jobs' start markers")
        self.assertEqual([self.s.job_state(j) for j in jobs], ["RUNNING", "RUNNING"])
        infos = [self.s.job_info(j) for j in jobs]
        self.assertEqual([i["NumCPUs"] for i in infos], ["1", "1"], infos)
        open(os.path.join(d, "go"), "w").close()
        for job in jobs:
            self.s.wait_job_state(job, "COMPLETED", timeout=60)


class SlurmLifecycleTest(unittest.TestCase):
    def test_stop_with_a_running_job_leaves_nothing(self):
        tmp = tempfile.mkdtemp(prefix="gand-slurm-life-")
        try:
            s = LocalSlurm(tmp)
            s.start()
            try:
                job = s.sbatch("#!/bin/sh\nsleep 600\n")
                s.wait_job_state(job, "RUNNING", timeout=60)
                daemons = [p.pid for p in s.procs.values()]
                self.assertTrue(s.processes(), "the cluster's processes are found")
            finally:
                problems = s.stop(check=False)
            self.assertEqual(problems, [])
            self.assertEqual(s.processes(), [])
            for pid in daemons:
                self.assertFalse(os.path.exists("/proc/%d" % pid) and
                                 not _zombie(pid), "pid %d still running" % pid)
            r = subprocess.run(["scontrol", "ping"], env=s.env(), capture_output=True,
                               text=True, stdin=subprocess.DEVNULL)
            self.assertNotEqual(r.returncode, 0, "slurmctld still answers after stop()")
        finally:
            shutil.rmtree(tmp)
        self.assertFalse(os.path.exists(tmp))

    def test_start_failure_reports_logs(self):
        tmp = tempfile.mkdtemp(prefix="gand-slurm-bad-")
        try:
            s = LocalSlurm(tmp)
            # A slurm.conf that slurmctld rejects: start() fails with its log.
            conf_text = s._conf_text
            s._conf_text = lambda: conf_text().replace("SelectType=select/cons_tres",
                                                       "SelectType=select/nosuch")
            with self.assertRaises(SlurmError) as cm:
                s.start(timeout=20)
            msg = str(cm.exception)
            self.assertIn("slurmctld", msg)
            self.assertIn("nosuch", msg)
            self.assertEqual(s.processes(), [])
        finally:
            shutil.rmtree(tmp)


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True


if __name__ == "__main__":
    unittest.main(verbosity=2)
