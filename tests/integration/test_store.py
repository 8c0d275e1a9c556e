"""tests/integration/test_store.py — nothing saved is lost (README "Reliability").

Each case damages a run's files the way a crash, a disk or a hostile local user
would, while the daemon is stopped or under it, and checks what is kept:

- a torn last line (an append that did not finish) of events.jsonl and
  metrics.jsonl is cut at start-up, and the next append is a line of its own;
- a changed byte and NUL bytes in the middle of metrics.jsonl, events.jsonl and
  evaluations.jsonl lose those lines only: every other record is served, the run lists the file as
  `damaged`, and NAME.damaged holds the file as it was;
- a finished run whose checkpoint was deleted keeps its history;
- a FIFO as a run's metrics.jsonl or run.json does not hang start-up, nor one in
  web_dir a request or SIGTERM;
- event ids never repeat across SIGKILL, and Last-Event-ID neither replays nor skips;
- a full disk (a small tmpfs as the state directory; the suite runs as root):
  PATCH and stop answer 507 and change nothing, also after a restart; a run that
  paused because its files could not be written keeps its model, writes its
  history and checkpoint once there is room, and Resume goes on from that epoch.
"""
import errno
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import tiny_config as config  # noqa: E402


def run_dir(d, rid):
    return os.path.join(d.state_dir, "runs", rid)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def epochs_served(d, rid):
    return [m["epoch"] for m in d.get_json("/api/v1/runs/%s/metrics" % rid)["epochs"]]


def replay(d, rid, last_event_id=None):
    """Every event the daemon has for the run, as (id, kind, data), read to the end of the replay."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else None
    s = d.events(rid, headers=headers, timeout=3)
    got = []
    try:
        for ev in s:
            got.append(ev)
    except OSError:  # the replay is over; the stream stays open for new events
        pass
    s.close()
    return got


class Store(gandtest.DaemonTest):
    def completed_run(self, d, epochs, **kw):
        rid = d.create_run(config(epochs=epochs, sample_every=0, **kw))
        d.wait_for(rid, lambda r: r["state"] == "completed", what="completed")
        return rid

    def test_torn_last_lines_are_cut_and_the_next_append_is_whole(self):
        d = self.daemon().start()
        rid = self.completed_run(d, 3)
        d.stop()
        rd = run_dir(d, rid)
        for name, torn in (("events.jsonl", b'{"id":99,"event":"sta'),
                           ("metrics.jsonl", b'{"epoch":4,"d_re')):
            with open(os.path.join(rd, name), "ab") as f:
                f.write(torn)
        d.start()
        run = d.run(rid)
        self.assertEqual(run["state"], "completed")
        self.assertEqual(run["epoch"], 3)
        self.assertEqual(run["damaged"], [], "a torn tail is an interrupted append, not damage")
        self.assertEqual(epochs_served(d, rid), [1, 2, 3])
        self.assertIn("the last line of events.jsonl was torn", d.log())
        for name in ("events.jsonl", "metrics.jsonl"):
            self.assertTrue(read(os.path.join(rd, name)).endswith(b"\n"), name)
        # the next append (a config change is an event) is a line of its own
        r = d.request("PATCH", "/api/v1/runs/" + rid, {"epochs": 4})
        self.assertEqual(r.status, 200, r)
        lines = read(os.path.join(rd, "events.jsonl")).decode().splitlines()
        for line in lines:
            json.loads(line)
        self.assertEqual(json.loads(lines[-1])["event"], "config")
        d.stop()
        d.start()  # and it is read back
        kinds = [k for _, k, _ in replay(d, rid)]
        self.assertEqual(kinds[-1], "config", kinds)
        self.assertEqual(d.run(rid)["damaged"], [])

    def test_damaged_lines_lose_only_themselves(self):
        d = self.daemon().start()
        rid = self.completed_run(d, 10)
        other = self.completed_run(d, 4)
        before = replay(d, rid)
        d.stop()
        rd = run_dir(d, rid)
        mpath = os.path.join(rd, "metrics.jsonl")
        lines = read(mpath).split(b"\n")
        self.assertEqual(len(lines), 11)
        lines[2] = lines[2].replace(b":", b";", 1)  # one changed byte in line 3
        lines[4] = lines[4][:10] + b"\0\0\0\0" + lines[4][14:]  # NUL bytes in line 5
        damaged = b"\n".join(lines)
        with open(mpath, "wb") as f:
            f.write(damaged)
        epath = os.path.join(rd, "events.jsonl")
        ev_lines = read(epath).split(b"\n")
        ev_lines[3] = b"\0" * len(ev_lines[3])
        with open(epath, "wb") as f:
            f.write(b"\n".join(ev_lines))
        os.unlink(os.path.join(run_dir(d, other), "checkpoint.safetensors"))

        d.start()
        run = d.run(rid)
        self.assertEqual(run["state"], "completed")
        self.assertEqual(run["epoch"], 10, "the run still finished 10 epochs")
        self.assertEqual(epochs_served(d, rid), [1, 2, 4, 6, 7, 8, 9, 10])
        self.assertEqual(sorted(run["damaged"]), ["events.jsonl", "metrics.jsonl"])
        self.assertEqual(read(mpath + ".damaged"), damaged, "the copy is the file as it was")
        self.assertTrue(os.path.exists(epath + ".damaged"))
        after = replay(d, rid)
        self.assertEqual(len(after), len(before) - 1, "one event line lost, no more")
        self.assertEqual([e[0] for e in after], sorted(set(e[0] for e in after)))
        self.assertIn("metrics.jsonl", d.log())

        # no checkpoint: the finished run keeps its history and its epoch count
        o = d.run(other)
        self.assertEqual((o["state"], o["epoch"]), ("completed", 4))
        self.assertEqual(epochs_served(d, other), [1, 2, 3, 4])
        self.assertEqual(o["damaged"], [])
        d.stop()
        d.start()  # again: nothing more is lost, and the damage is still listed
        self.assertEqual(epochs_served(d, rid), [1, 2, 4, 6, 7, 8, 9, 10])
        self.assertEqual(sorted(d.run(rid)["damaged"]), ["events.jsonl", "metrics.jsonl"])
        self.assertEqual(read(mpath + ".damaged"), damaged)
        self.assertEqual(epochs_served(d, other), [1, 2, 3, 4])

    def test_damaged_evaluation_record_keeps_the_others(self):
        d = self.daemon(config=self.conf("[datasets]\nsmall.holdout = 200\n")).start()
        rid = self.completed_run(d, 2)
        for seed in (1, 2, 3):
            r = d.request("POST", "/api/v1/runs/%s/evaluations" % rid, {"samples": 200,
                                                                         "seed": seed})
            self.assertEqual(r.status, 202, r)
        base = "/api/v1/runs/%s/evaluations" % rid
        deadline = time.monotonic() + 120
        while [e["state"] for e in d.get_json(base)["evaluations"]] != ["done"] * 3:
            self.assertLess(time.monotonic(), deadline, d.get_json(base))
            time.sleep(0.1)
        before = d.get_json(base)["evaluations"]
        d.stop()
        path = os.path.join(run_dir(d, rid), "evaluations.jsonl")
        lines = read(path).split(b"\n")
        self.assertGreaterEqual(len(lines), 4)
        # every line that names evaluation 2 gets NUL bytes; then a torn tail
        lines = [b"\0" * len(x) if b'"id":2,' in x.replace(b" ", b"") else x for x in lines]
        with open(path, "wb") as f:
            f.write(b"\n".join(lines) + b'{"id":4,"sta')
        d.start()
        after = d.get_json(base)["evaluations"]
        self.assertEqual([e["id"] for e in after], [1, 2, 3])
        self.assertEqual((after[0], after[2]), (before[0], before[2]), "the others as they were")
        self.assertEqual(after[1]["state"], "failed")
        self.assertIn("cannot be read", after[1]["reason"])
        self.assertEqual(d.run(rid)["damaged"], ["evaluations.jsonl"])
        self.assertTrue(os.path.exists(path + ".damaged"))

    def test_fifos_hang_nothing(self):
        web = os.path.join(self.dir, "web")
        os.mkdir(web)
        with open(os.path.join(web, "index.html"), "w") as f:
            f.write("<!doctype html><title>gand</title>\n")
        os.mkfifo(os.path.join(web, "trap.js"))
        d = self.daemon(extra_args=["--web-dir", web]).start()
        a = self.completed_run(d, 2)
        b = self.completed_run(d, 2)
        good = self.completed_run(d, 2)
        d.stop()
        for rid, name in ((a, "metrics.jsonl"), (b, "run.json")):
            path = os.path.join(run_dir(d, rid), name)
            os.unlink(path)
            os.mkfifo(path)
        t0 = time.monotonic()
        d.start(timeout=20)
        self.assertLess(time.monotonic() - t0, 15, "start-up waited on a FIFO")
        self.assertEqual(epochs_served(d, good), [1, 2])
        ra = d.run(a)
        self.assertIn("metrics.jsonl", ra["damaged"])
        self.assertTrue(os.path.exists(os.path.join(run_dir(d, a), "metrics.jsonl.damaged")))
        rb = d.run(b)  # its evidence is kept: failed, with the reason
        self.assertEqual(rb["state"], "failed", rb)
        self.assertIn("run.json is unreadable", rb["reason"])
        t0 = time.monotonic()
        r = d.request("GET", "/static/trap.js", timeout=10)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertProblem(r, 404)
        self.assertIn("trap.js", r.json()["detail"])
        self.assertEqual(d.request("GET", "/").status, 200)
        self.assertEqual(d.request("GET", "/healthz").status, 200)
        t0 = time.monotonic()
        self.assertEqual(d.stop(timeout=20), 0)
        self.assertLess(time.monotonic() - t0, 15)

    def test_event_ids_never_repeat_across_sigkill(self):
        d = self.daemon().start()
        rid = d.create_run(config(epochs=100000, sample_every=0, checkpoint_every=3))
        seen = []
        s = d.events(rid, timeout=30)
        for ev in s:
            seen.append(ev)
            if sum(1 for e in seen if e[1] == "epoch") >= 7:
                break
        s.close()
        d.kill()
        ids = [e[0] for e in seen]
        self.assertEqual(ids, sorted(set(ids)), "ids increase")
        last = ids[-1]

        d.start()
        d.wait_for(rid, lambda r: r["state"] == "running" and r["epoch"] >= 8, what="training")
        d.request("POST", "/api/v1/runs/%s/pause" % rid)
        d.wait_for(rid, lambda r: r["state"] == "paused", what="paused")
        full = replay(d, rid)
        fids = [e[0] for e in full]
        self.assertEqual(fids, sorted(set(fids)), "ids unique and increasing after the restart")
        epochs = [e[2]["epoch"] for e in full if e[1] == "epoch"]
        self.assertEqual(epochs, list(range(1, len(epochs) + 1)), "each epoch once, in order")
        self.assertGreaterEqual(len(epochs), 8, "every epoch trained has its event")
        by_id = {e[0]: e for e in full}
        for e in seen:  # what a client saw keeps its id, unless that epoch was trained again
            if e[0] in by_id:
                self.assertEqual(by_id[e[0]], e)
            else:
                self.assertEqual(e[1], "epoch", e)
        self.assertTrue(all(e[0] in by_id for e in seen if e[1] == "state"))
        self.assertGreater(min(i for i in fids if i not in set(ids)), last,
                           "an event after the restart has an id above every earlier one")
        resumed = replay(d, rid, last)  # a client that reconnects
        self.assertEqual(resumed, [e for e in full if e[0] > last], "no replay, no skip")
        self.assertTrue(os.path.exists(os.path.join(d.state_dir, "event-ids")))


class DiskFull(gandtest.DaemonTest):
    """The state directory on a 6 MiB tmpfs that a filler file fills up."""

    def setUp(self):
        super().setUp()
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0755", "gand-test",
                            self.mnt], capture_output=True, text=True)
        if p.returncode != 0:  # the suite runs as root (scripts/deps.sh installs as root too)
            self.fail("cannot mount a tmpfs for the disk-full test (run the tests as root): "
                      + p.stderr.strip())
        self.filler = os.path.join(self.mnt, "filler")

    def tearDown(self):
        for d in self.daemons:
            if d.proc and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        super().tearDown()

    def fill(self):
        with open(self.filler, "ab", buffering=0) as f:
            for size in (1 << 16, 1 << 10, 64, 1):
                chunk = b"\0" * size
                while True:
                    try:
                        f.write(chunk)
                    except OSError as e:
                        self.assertEqual(e.errno, errno.ENOSPC)
                        break

    def free(self):
        os.unlink(self.filler)

    def mounted_daemon(self):
        d = self.daemon(name="mnt/state")
        d.log_path = os.path.join(self.dir, "state.log")  # the log must not need the full disk
        return d.start()

    def test_full_disk_loses_nothing(self):
        d = self.mounted_daemon()
        rid = d.create_run(config(epochs=100000, sample_every=0, checkpoint_every=1000))
        d.wait_for(rid, lambda r: r["state"] == "running" and r["epoch"] >= 2, what="training")
        self.fill()
        run = d.wait_for(rid, lambda r: r["state"] == "paused", timeout=60,
                         what="paused by the full disk")
        self.assertIn("No space left", run["reason"])
        held = run["epoch"]
        self.assertGreaterEqual(held, 2)
        deadline = time.monotonic() + 20
        while "kept in memory" not in d.log():
            self.assertLess(time.monotonic(), deadline, "no log line about the model held")
            time.sleep(0.05)

        # answered only once it is on disk
        cfg = d.run(rid)["config"]
        p = self.assertProblem(d.request("PATCH", "/api/v1/runs/" + rid, {"epochs": 500}), 507)
        self.assertIn("insufficient-storage", p["type"])
        self.assertIn("not changed", p["detail"])
        self.assertProblem(d.request("POST", "/api/v1/runs/%s/stop" % rid), 507)
        r = d.run(rid)
        self.assertEqual((r["state"], r["config"]), ("paused", cfg))
        self.assertEqual(d.request("POST", "/api/v1/runs", config(epochs=2)).status, 507)
        self.assertEqual(d.request("GET", "/healthz").status, 200)

        # room again: the held model's history and checkpoint are written, Resume goes on
        self.free()
        deadline = time.monotonic() + 30
        while "can be written again" not in d.log():
            self.assertLess(time.monotonic(), deadline, "the held run was not written")
            time.sleep(0.05)
        self.assertEqual(d.run(rid)["checkpoint_epoch"], held)
        self.assertEqual(epochs_served(d, rid), list(range(1, held + 1)))
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/resume" % rid).status, 200)
        d.wait_for(rid, lambda r: r["state"] == "running" and r["epoch"] >= held + 2,
                   what="training on")
        d.request("POST", "/api/v1/runs/%s/pause" % rid)
        d.wait_for(rid, lambda r: r["state"] == "paused", what="paused")
        got = epochs_served(d, rid)
        self.assertEqual(got, list(range(1, len(got) + 1)), "no epoch lost or trained twice")
        self.assertGreater(len(got), held + 1)

        # and after a restart the unanswered changes are still not there
        n = len(got)
        d.stop()
        d.start()
        r = d.run(rid)
        self.assertEqual((r["state"], r["config"]["epochs"]), ("paused", 100000))
        self.assertEqual(epochs_served(d, rid), list(range(1, n + 1)))
        with open(os.path.join(run_dir(d, rid), "metrics.jsonl")) as f:
            self.assertEqual([json.loads(x)["epoch"] for x in f], list(range(1, n + 1)))

    def test_full_disk_at_shutdown_says_what_is_lost(self):
        d = self.mounted_daemon()
        rid = d.create_run(config(epochs=100000, sample_every=0, checkpoint_every=1000))
        d.wait_for(rid, lambda r: r["state"] == "running" and r["epoch"] >= 2, what="training")
        self.fill()
        d.wait_for(rid, lambda r: r["state"] == "paused", timeout=60, what="paused")
        d.stop()
        self.assertIn("is lost", d.log())
        self.free()
        d.start()
        r = d.run(rid)
        # run.json could not say "paused": the run resumes from what is on disk
        self.assertIn(r["state"], ("queued", "running", "paused"))
        got = epochs_served(d, rid)
        self.assertEqual(got, list(range(1, len(got) + 1)))


if __name__ == "__main__":
    gandtest.main()
