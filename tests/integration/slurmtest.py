"""tests/integration/slurmtest.py — a real one-node Slurm cluster on loopback.

Python 3 standard library only. LocalSlurm(tmpdir) runs its own munged,
slurmctld and slurmd (Debian 12's munge and slurm-wlm 22.05), with their key,
sockets, config, spool, state and logs all under tmpdir and free ports on
127.0.0.1: nothing of /etc/munge, /etc/slurm or a system munged is used, and
the system's daemons, if any run, are not touched. env() is the environment a
client (sbatch, squeue, scontrol, scancel; gand's Slurm executor) needs.

    with LocalSlurm(tmpdir) as slurm:
        job = slurm.sbatch("script.sh", "-c", "1")
        info = slurm.wait_job_state(job, {"COMPLETED"}, timeout=60)

Finished jobs stay visible to `scontrol show job` for MinJobAge (600 s here);
each finished job is also a line of the jobcomp/filetxt file (jobcomp_records()).
There is no slurmdbd, so sacct does not work.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

# The daemons and client tools; Debian puts the daemons in /usr/sbin.
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")

# Job states a job leaves only by being requeued (scontrol show job JobState=).
FINISHED_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
                   "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT"}


class SlurmError(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_tool(name):
    """The path of a Slurm or munge program, or None."""
    path = shutil.which(name)
    if path:
        return path
    for d in SBIN_DIRS:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def missing_tools():
    """The programs LocalSlurm needs that this machine lacks (scripts/deps.sh test installs them)."""
    return [n for n in DAEMONS + CLIENTS if find_tool(n) is None]


def parse_scontrol_record(line):
    """One line of `scontrol -o show ...` as a dict.

    Values may contain spaces (Command=, Reason=, WorkDir=): a word that has no
    '=' (or whose key is not a plain word) belongs to the previous value.
    """
    out = {}
    key = None
    for word in line.strip().split(" "):
        k, sep, v = word.partition("=")
        if sep and k and k.replace("_", "").replace(":", "").replace("/", "").isalnum():
            key = k
            out[key] = v
        elif key is not None:
            out[key] += " " + word
    return out


def tail(path, limit=4000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(%s)" % e


class LocalSlurm:
    """munged + slurmctld + slurmd under tmpdir, one node with this machine's CPUs."""

    def __init__(self, tmpdir, cpus=None, node="gandnode", partition="debug", kill_wait=5,
                 cred_expire=10):
        self.dir = os.path.abspath(tmpdir)
        self.cpus = cpus or os.cpu_count() or 1
        self.node = node
        self.partition = partition
        self.kill_wait = kill_wait
        self.cred_expire = cred_expire
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.procs = {}
        self.logs = {}
        self.start_seconds = None
        self.stop_seconds = None
        d = self.dir
        self.munge_dir = os.path.join(d, "munge")
        self.munge_key = os.path.join(self.munge_dir, "munge.key")
        self.munge_socket = os.path.join(self.munge_dir, "munge.socket")
        self.conf_dir = os.path.join(d, "etc")
        self.conf = os.path.join(self.conf_dir, "slurm.conf")
        self.state_dir = os.path.join(d, "state")
        self.spool_dir = os.path.join(d, "spool")
        self.log_dir = os.path.join(d, "log")
        self.run_dir = os.path.join(d, "run")
        self.shared = os.path.join(d, "shared")  # where jobs and the test exchange files
        self.jobcomp = os.path.join(self.log_dir, "jobcomp.txt")

    # ---- the environment of a client ----

    def env(self, base=None):
        """The environment for sbatch/squeue/scontrol/scancel: base (default os.environ)
        without any SLURM_* of an outer job, with SLURM_CONF set to this cluster's.
        The munge socket is named in slurm.conf (AuthInfo), so clients need nothing more."""
        e = {k: v for k, v in (os.environ if base is None else base).items()
             if not k.startswith("SLURM_") and not k.startswith("SBATCH_")
             and not k.startswith("SQUEUE_") and not k.startswith("SINFO_")}
        e["SLURM_CONF"] = self.conf
        return e

    # ---- start ----

    def start(self, timeout=60):
        missing = missing_tools()
        if missing:
            raise SlurmError("not installed: %s (scripts/deps.sh test installs them)"
                             % ", ".join(missing))
        t0 = time.monotonic()
        for p in (self.munge_dir, self.conf_dir, self.state_dir, self.spool_dir, self.log_dir,
                  self.run_dir, self.shared):
            os.makedirs(p, exist_ok=True)
        # munged checks that its key and directories belong to the user it runs as
        # and that none of them is writable by others (a sticky /tmp is fine).
        os.chmod(self.dir, 0o755)
        # Its socket's directory must be searchable by all (jobs run munge clients too).
        os.chmod(self.munge_dir, 0o755)
        os.chmod(self.shared, 0o777)
        try:
            self._start_munged()
            self._write_conf()
            self._start_daemon("slurmctld", [find_tool("slurmctld"), "-D", "-f", self.conf,
                                             "-L", os.path.join(self.log_dir, "slurmctld.log")])
            self._wait(lambda: self._run(["scontrol", "ping"], check=False).returncode == 0,
                       timeout, "slurmctld answering `scontrol ping`")
            self._start_daemon("slurmd", [find_tool("slurmd"), "-D", "-f", self.conf,
                                          "-N", self.node,
                                          "-L", os.path.join(self.log_dir, "slurmd.log")])
            self._wait(self._node_idle, timeout, "node %s idle in sinfo" % self.node)
        except BaseException:
            self.stop(check=False)
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _start_munged(self):
        with open(self.munge_key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(self.munge_key, 0o400)
        argv = [find_tool("munged"), "--foreground", "--socket", self.munge_socket,
                "--key-file", self.munge_key,
                "--pid-file", os.path.join(self.munge_dir, "munged.pid"),
                "--log-file", os.path.join(self.log_dir, "munged.log"),
                "--seed-file", os.path.join(self.munge_dir, "munged.seed"),
                "--num-threads", "2",
                # munged refuses to start when a directory above its key, seed or
                # socket is group- or world-writable without the sticky bit (a TMPDIR
                # of a CI, say); forced, it logs a warning and runs. The harness's own
                # directories have safe modes either way.
                "--force"]
        self._start_daemon("munged", argv)
        self._wait(lambda: os.path.exists(self.munge_socket), 20, "munged's socket")

    def _conf_text(self):
        slurmctld_port = free_port()
        slurmd_port = free_port()
        while slurmd_port == slurmctld_port:
            slurmd_port = free_port()
        L = self.log_dir
        R = self.run_dir
        return "\n".join([
            "# Written by tests/integration/slurmtest.py: a one-node cluster on loopback.",
            "ClusterName=gandtest",
            "SlurmctldHost=localhost(127.0.0.1)",
            "SlurmctldPort=%d" % slurmctld_port,
            "SlurmdPort=%d" % slurmd_port,
            "SlurmUser=%s" % self.user,
            "SlurmdUser=%s" % self.user,
            "AuthType=auth/munge",
            # cred_expire is also how long a requeued job waits before it may start
            # again (BeginTime; 120 s by default).
            "AuthInfo=socket=%s,cred_expire=%d" % (self.munge_socket, self.cred_expire),
            "CredType=cred/munge",
            "StateSaveLocation=%s" % self.state_dir,
            "SlurmdSpoolDir=%s" % self.spool_dir,
            "SlurmctldPidFile=%s" % os.path.join(R, "slurmctld.pid"),
            "SlurmdPidFile=%s" % os.path.join(R, "slurmd.pid"),
            "SlurmctldLogFile=%s" % os.path.join(L, "slurmctld.log"),
            "SlurmdLogFile=%s" % os.path.join(L, "slurmd.log"),
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "PlugStackConfig=%s" % os.path.join(self.conf_dir, "plugstack.conf"),
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            "JobCompLoc=%s" % self.jobcomp,
            # The main scheduler also runs every second (default 60 s), so that a
            # job that becomes eligible with no event (a requeued job, say) starts.
            "SchedulerParameters=sched_interval=1",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "ReturnToService=2",
        ] + ([
            # More CPUs than the machine has: slurmd reports what slurm.conf says.
            "SlurmdParameters=config_overrides",
        ] if self.cpus > (os.cpu_count() or 1) else []) + [
            "JobRequeue=1",
            # gand train --job exits 75 after checkpointing on SIGTERM: requeue it.
            "RequeueExit=75",
            "MinJobAge=600",
            "KillWait=%d" % self.kill_wait,
            "SlurmctldTimeout=10",
            "SlurmdTimeout=30",
            "MessageTimeout=10",
            "NodeName=%s NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=%d RealMemory=256 State=UNKNOWN"
            % (self.node, self.cpus),
            "PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE State=UP"
            % (self.partition, self.node),
            "",
        ])

    def _write_conf(self):
        with open(self.conf, "w") as f:
            f.write(self._conf_text())
        with open(os.path.join(self.conf_dir, "plugstack.conf"), "w") as f:
            f.write("# no SPANK plugins\n")

    def _start_daemon(self, name, argv):
        out = open(os.path.join(self.log_dir, name + ".out"), "wb")
        self.logs[name] = out.name
        env = self.env()
        try:
            self.procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                                stderr=subprocess.STDOUT, env=env,
                                                start_new_session=True)
        finally:
            out.close()

    def _node_idle(self):
        r = self._run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%T"], check=False)
        return r.returncode == 0 and r.stdout.strip() == "idle"

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise SlurmError("%s exited with status %s while waiting for %s\n%s"
                                     % (name, p.returncode, what, self.log_tails()))
            if predicate():
                return
            if time.monotonic() > deadline:
                raise SlurmError("timed out after %ss waiting for %s\n%s"
                                 % (timeout, what, self.log_tails()))
            time.sleep(0.1)

    def log_tails(self, limit=3000):
        """The ends of the daemons' logs, for an error message."""
        parts = []
        for name in DAEMONS:
            for suffix in (".log", ".out"):
                p = os.path.join(self.log_dir, name + suffix)
                if os.path.exists(p) and os.path.getsize(p):
                    parts.append("---- %s ----\n%s" % (p, tail(p, limit)))
        return "\n".join(parts) or "(no daemon logs)"

    # ---- the client tools ----

    def _run(self, argv, check=True, timeout=30, input=None):
        tool = find_tool(argv[0])
        r = subprocess.run([tool or argv[0]] + list(argv[1:]), env=self.env(),
                           stdin=subprocess.DEVNULL if input is None else None,
                           input=input, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise SlurmError("%s exited %d: %s%s" % (" ".join(argv), r.returncode, r.stderr,
                                                     r.stdout))
        return r

    def run(self, *argv, check=True, timeout=30):
        """Run a client tool (sbatch, squeue, scontrol, scancel, sinfo) against this cluster;
        returns the CompletedProcess (text stdout/stderr)."""
        return self._run(list(argv), check=check, timeout=timeout)

    def sbatch(self, script, *args, cwd=None):
        """Submit script (a path, or the script's text when it starts with '#!') with
        --parsable and args; returns the job id (a string)."""
        argv = ["sbatch", "--parsable", "--chdir", cwd or self.shared] + list(args)
        if script.startswith("#!"):
            r = self._run(argv, input=script)
        else:
            r = self._run(argv + [script])
        return r.stdout.strip().split(";")[0]

    def scancel(self, *args):
        return self._run(["scancel"] + list(args))

    def job_info(self, job_id):
        """`scontrol -o show job JOBID` as a dict (JobState, Reason, ExitCode, Restarts,
        ...), or None when slurmctld no longer knows the job. A requeued job's
        JobState is one word (PENDING); Reason=None means no reason."""
        r = self._run(["scontrol", "-o", "show", "job", str(job_id)], check=False)
        if r.returncode != 0:
            if "Invalid job id" in r.stderr:
                return None
            raise SlurmError("scontrol show job %s: %s" % (job_id, r.stderr))
        line = r.stdout.strip().splitlines()[0]
        return parse_scontrol_record(line)

    def job_state(self, job_id):
        info = self.job_info(job_id)
        return None if info is None else info.get("JobState")

    def wait_job_state(self, job_id, states, timeout=60):
        """Wait until the job's JobState is one of states; returns its job_info. Fails
        at once if it reaches another finished state, with the job's record."""
        states = {states} if isinstance(states, str) else set(states)
        deadline = time.monotonic() + timeout
        info = None
        while True:
            info = self.job_info(job_id)
            state = info and info.get("JobState")
            if state in states:
                return info
            if state in FINISHED_STATES:
                raise SlurmError("job %s is %s, not one of %s: %s"
                                 % (job_id, state, sorted(states), info))
            if time.monotonic() > deadline:
                raise SlurmError("timed out after %ss waiting for job %s to be one of %s; "
                                 "last: %s\n%s" % (timeout, job_id, sorted(states), info,
                                                   self.log_tails()))
            time.sleep(0.1)

    def jobs(self):
        """The ids of the jobs slurmctld lists in squeue (pending, running, completing)."""
        r = self._run(["squeue", "-h", "-o", "%i"])
        return [l.strip() for l in r.stdout.splitlines() if l.strip()]

    def jobcomp_records(self):
        """The jobcomp/filetxt file: one dict per finished job (JobId, JobState, ExitCode...)."""
        try:
            with open(self.jobcomp) as f:
                return [parse_scontrol_record(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    # ---- stop ----

    def processes(self):
        """Pids of processes (other than this one) that belong to this cluster: the
        daemons (their command lines name self.dir) and everything that carries our
        SLURM_CONF in its environment (slurmstepd, job scripts and their children)."""
        mine = []
        needle = ("SLURM_CONF=" + self.conf).encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    cmd = f.read()
                with open("/proc/%s/environ" % entry, "rb") as f:
                    environ = f.read().split(b"\0")
                with open("/proc/%s/stat" % entry, "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if stat.rsplit(b")", 1)[-1].split()[0] == b"Z":
                continue
            if self.dir.encode() in cmd or needle in environ:
                mine.append(int(entry))
        return mine

    def stop(self, check=True, timeout=30):
        """Cancel every job, stop slurmd, slurmctld and munged, and make sure nothing of
        the cluster is left running. With check, raise SlurmError if a process had to
        be killed because it outlived the orderly stop."""
        t0 = time.monotonic()
        problems = []
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            try:
                self._run(["scancel", "--user", self.user], check=False, timeout=10)
                deadline = time.monotonic() + timeout
                while self.jobs() and time.monotonic() < deadline:
                    time.sleep(0.1)
                left = self.jobs()
                if left:
                    problems.append("jobs still listed after scancel: %s" % left)
            except (SlurmError, subprocess.TimeoutExpired) as e:
                problems.append("scancel: %s" % e)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout)
                except subprocess.TimeoutExpired:
                    problems.append("%s did not exit on SIGTERM within %ss" % (name, timeout))
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.procs = {}
        # Job processes outlive slurmd only if slurmstepd failed to kill them.
        deadline = time.monotonic() + 10
        stray = self.processes()
        while stray and time.monotonic() < deadline:
            time.sleep(0.1)
            stray = self.processes()
        if stray:
            problems.append("processes left running: %s" % ", ".join(
                "%d (%s)" % (pid, _cmdline(pid)) for pid in stray))
            for pid in stray:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.stop_seconds = time.monotonic() - t0
        if check and problems:
            raise SlurmError("; ".join(problems) + "\n" + self.log_tails())
        return problems

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "?"
