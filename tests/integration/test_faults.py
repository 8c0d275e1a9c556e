"""tests/integration/test_faults.py — faults the daemon must survive (README "Reliability").

- SIGKILL at random moments of training, 20+ times (GAND_FAULT_TRIALS): after each
  restart every run is consistent — no epoch up to the last checkpoint lost or
  duplicated, metrics.jsonl parses, the checkpoint is a whole safetensors file
  (parsed here), and a finished run on the side is untouched.
- Unwritable state (metrics.jsonl, then checkpoint.safetensors replaced by a
  directory while training — chmod does not stop root, and the CI runs as root):
  the run pauses with the reason, the daemon keeps serving and training others,
  and once the path is fixed the run resumes with a clean history.
- A corrupted checkpoint (truncated; header bytes overwritten) while the daemon is
  stopped: that run fails with the reason on restart, the others are untouched.
- A non-finite loss: the run fails with "non-finite loss at epoch N, iteration M".
  No config within the validated ranges reliably diverges on the tiny model (BCE is
  clamped at 100 and a saturated sigmoid zeroes the gradient: lr 10 with SGD or Adam
  only saturates), so the test writes NaN into the weights of a checkpoint, which the
  run then resumes from.

Bounded: a random seed (printed; GAND_FAULT_SEED repeats it), tiny models on 1000
images, about a minute and a half in all on two cores.
"""
import hashlib
import json
import os
import random
import re
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import tiny_config as config  # noqa: E402

TRIALS = int(os.environ.get("GAND_FAULT_TRIALS", "20"))
SEED = int(os.environ.get("GAND_FAULT_SEED", str(int(time.time() * 1000) % 1000000)))


# ---- the files of a run, read while the daemon is stopped --------------------------------------

def read_safetensors(path):
    """(header dict, metadata dict) of a whole safetensors file; raises ValueError otherwise."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: %d bytes, shorter than the header length" % (path, len(data)))
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("%s: header of %d bytes in a file of %d" % (path, n, len(data)))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    body = len(data) - 8 - n
    end = 0
    sizes = {"F32": 4, "F64": 8, "I64": 8, "U8": 1, "I32": 4}
    for name, t in header.items():
        lo, hi = t["data_offsets"]
        count = 1
        for dim in t["shape"]:
            count *= dim
        if not (0 <= lo <= hi <= body) or hi - lo != count * sizes[t["dtype"]]:
            raise ValueError("%s: tensor %s does not fit: %r, %d bytes of data" %
                             (path, name, t, body))
        end = max(end, hi)
    if end != body:
        raise ValueError("%s: %d bytes of data, tensors cover %d" % (path, body, end))
    return header, meta, data, 8 + n


def checkpoint_epoch(run_dir):
    """Completed epochs in the run's checkpoint (-1: none yet)."""
    path = os.path.join(run_dir, "checkpoint.safetensors")
    if not os.path.exists(path):
        return -1
    _, meta, _, _ = read_safetensors(path)
    return int(meta["epoch"])


def metrics_lines(run_dir):
    """The complete lines of metrics.jsonl, each parsed (a torn last line is left out)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    lines = text.split("\n")
    complete = lines[:-1]  # after the last "\n": empty, or a line cut by the kill
    return [json.loads(line) for line in complete if line.strip()]


def file_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def replace_with_dir(path, keep=None, timeout=10):
    """Make path a directory, however often the daemon recreates the file meanwhile; the
    file is moved to keep (when given) instead of deleted."""
    deadline = time.time() + timeout
    while not os.path.isdir(path):
        if time.time() > deadline:
            raise AssertionError("could not replace %s with a directory" % path)
        try:
            if keep:
                os.rename(path, keep)
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass
        try:
            os.mkdir(path)
        except FileExistsError:
            pass


class Faults(gandtest.DaemonTest):
    def setUp(self):
        super().setUp()
        self.small = gandtest.make_small_dataset(os.path.join(self.dir, "tiny-idx3-ubyte.gz"),
                                                 1000)
        sys.stderr.write("fault seed %d (GAND_FAULT_SEED repeats it)\n" % SEED)

    def run_dir(self, d, rid):
        return os.path.join(d.state_dir, "runs", rid)

    def assert_consistent(self, d, rid, kept=None, ckpt=-1):
        """The run's history, by the API and on disk: epochs 1..n once each, n ≥ ckpt,
        and the records up to the checkpoint exactly those kept before the fault."""
        api = [e for e in d.get_json("/api/v1/runs/%s/metrics" % rid)["epochs"]]
        epochs = [e["epoch"] for e in api]
        self.assertEqual(epochs, list(range(1, len(epochs) + 1)), "API history: 1..n once each")
        self.assertGreaterEqual(len(epochs), max(ckpt, 0), "no epoch up to the checkpoint lost")
        disk = metrics_lines(self.run_dir(d, rid))
        on_disk = [e["epoch"] for e in disk]
        self.assertEqual(on_disk, list(range(1, len(on_disk) + 1)), "metrics.jsonl: 1..n once")
        if kept is not None and ckpt > 0:
            self.assertEqual(disk[:ckpt], kept[:ckpt], "records up to the checkpoint kept as is")
            self.assertEqual(api[:ckpt], kept[:ckpt])
        return len(epochs)

    # ---- SIGKILL ---------------------------------------------------------------------------

    def test_sigkill_at_random_moments(self):
        rng = random.Random(SEED)
        d = self.daemon().start()
        side = d.create_run(config(epochs=2))
        # "completed" shows before run.json says so; the log line comes after it is written
        d.wait_for(side, lambda x: x["state"] == "completed"
                   and "run %s completed" % side in d.log(), what="the side run completed")
        side_dir = self.run_dir(d, side)
        side_files = {n: file_hash(os.path.join(side_dir, n))
                      for n in ("metrics.jsonl", "checkpoint.safetensors", "run.json")}
        rid = d.create_run(config(epochs=1000000, checkpoint_every=2, sample_every=3))
        d.wait_for(rid, lambda x: x["state"] == "running", what="running")
        seen_cut = 0
        for trial in range(TRIALS):
            time.sleep(rng.uniform(0.2, 2.0))
            d.kill()  # SIGKILL
            run_dir = self.run_dir(d, rid)
            kept = metrics_lines(run_dir)
            ckpt = checkpoint_epoch(run_dir)  # raises when the checkpoint is not whole
            self.assertLessEqual(ckpt, len(kept), "a checkpoint never runs ahead of the metrics")
            seen_cut += len(kept) > max(ckpt, 0)

            d = self.daemon().start()  # the same state directory
            run = d.run(rid)
            self.assertIn(run["state"], ("queued", "running"), run)
            # the checkpoint found on disk, or a later one: the resumed run trains (an epoch
            # of this model takes milliseconds) and may checkpoint again before this request
            reported = run["checkpoint_epoch"]
            if ckpt >= 0:
                self.assertIsNotNone(reported, run)
                self.assertGreaterEqual(reported, ckpt, run)
            self.assertLessEqual(reported or 0, run["epoch"], run)
            n = self.assert_consistent(d, rid, kept, ckpt)
            # let it train a little before the next kill: it resumed where the checkpoint was
            d.wait_for(rid, lambda x: x["epoch"] > n or x["iteration"] > 0, timeout=30,
                       what="training again after restart %d" % (trial + 1))
            side_run = d.run(side)
            self.assertEqual((side_run["state"], side_run["epoch"]), ("completed", 2))
            for name, h in side_files.items():
                self.assertEqual(file_hash(os.path.join(side_dir, name)), h, name)
        sys.stderr.write("%d kills, %d of them with epochs past the checkpoint to redo\n" %
                         (TRIALS, seen_cut))
        # the surviving checkpoint is served whole and loads
        d.request("POST", "/api/v1/runs/%s/pause" % rid)
        # "paused" comes at once; the worker writes the pause's checkpoint at its next
        # iteration boundary, and a run killed before its first one has none until then
        # "left the worker" is logged once the pause's checkpoint is on disk: before it, the
        # checkpoint served may still be the one the restart found
        d.wait_for(rid, lambda x: x["state"] == "paused" and x["checkpoint_epoch"] is not None
                   and "left the worker" in d.log(), what="paused with its checkpoint written")
        r = d.request("GET", "/api/v1/runs/%s/checkpoint" % rid)
        self.assertEqual(r.status, 200)
        path = os.path.join(self.dir, "served.safetensors")
        with open(path, "wb") as f:
            f.write(r.body)
        header, meta, _, _ = read_safetensors(path)
        self.assertIn("generator.linear_1.weight", header)
        self.assertEqual(int(meta["epoch"]), d.run(rid)["checkpoint_epoch"])
        self.assertEqual(d.stop(), 0)

    # ---- unwritable state ------------------------------------------------------------------

    def test_unwritable_state_pauses_the_run_and_the_daemon_serves(self):
        d = self.daemon().start()
        rid = d.create_run(config(epochs=1000000, checkpoint_every=1, sample_every=0))
        d.wait_for(rid, lambda x: x["epoch"] >= 2, what="epoch 2")
        run_dir = self.run_dir(d, rid)
        for name, what in (("metrics.jsonl", "metrics.jsonl"),
                           ("checkpoint.safetensors", "checkpoint")):
            with self.subTest(path=name):
                path = os.path.join(run_dir, name)
                keep = path + ".saved" if name == "checkpoint.safetensors" else None
                replace_with_dir(path, keep)
                run = d.wait_for(rid, lambda x: x["state"] == "paused", timeout=30,
                                 what="paused for the unwritable " + name)
                self.assertIn(what, run["reason"])
                self.assertIn("Is a directory", run["reason"])
                # the daemon keeps serving, and training other runs
                self.assertEqual(d.request("GET", "/healthz").status, 200)
                self.assertEqual(d.request("GET", "/api/v1/runs").status, 200)
                other = d.create_run(config(epochs=2))
                d.wait_for(other, lambda x: x["state"] == "completed", what="the other run")
                self.assertEqual(d.request("DELETE", "/api/v1/runs/" + other).status, 204)
                # fixed: resume, and the history is whole again
                os.rmdir(path)
                if keep:  # the checkpoint is back: epochs past it are trained again
                    os.rename(keep, path)
                self.assertEqual(d.request("POST", "/api/v1/runs/%s/resume" % rid).status, 200)
                before = d.run(rid)["epoch"]
                d.wait_for(rid, lambda x: x["state"] == "running" and x["epoch"] >= before + 2,
                           timeout=60, what="training on after the fix")
                self.assertIsNone(d.run(rid)["reason"])
                self.assert_consistent(d, rid)
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/stop" % rid).status, 200)
        d.wait_for(rid, lambda x: x["state"] == "stopped", what="stopped")
        n = self.assert_consistent(d, rid)
        self.assertEqual(checkpoint_epoch(run_dir), n)
        self.assertEqual(d.stop(), 0)

    # ---- corrupted checkpoints -------------------------------------------------------------

    def test_corrupted_checkpoint_fails_that_run_only(self):
        d = self.daemon().start()
        runs = {}
        for name in ("truncated", "header", "intact"):
            rid = d.create_run(config(epochs=1000000, checkpoint_every=1, sample_every=0))
            d.wait_for(rid, lambda x: x["epoch"] >= 2, what="epoch 2")
            self.assertEqual(d.request("POST", "/api/v1/runs/%s/pause" % rid).status, 200)
            d.wait_for(rid, lambda x: x["state"] == "paused", what="paused")
            runs[name] = rid
        done = d.create_run(config(epochs=2))
        d.wait_for(done, lambda x: x["state"] == "completed", what="completed")
        runs["completed"] = done
        self.assertEqual(d.stop(), 0)

        before = {}
        for name, rid in runs.items():
            run_dir = self.run_dir(d, rid)
            before[name] = (metrics_lines(run_dir),
                            file_hash(os.path.join(run_dir, "checkpoint.safetensors")))
        path = os.path.join(self.run_dir(d, runs["truncated"]), "checkpoint.safetensors")
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        path = os.path.join(self.run_dir(d, runs["header"]), "checkpoint.safetensors")
        with open(path, "r+b") as f:
            f.seek(12)
            f.write(b"\xff" * 24)

        d = self.daemon().start()
        for name in ("truncated", "header"):
            run = d.run(runs[name])
            self.assertEqual(run["state"], "failed", run)
            self.assertIn("checkpoint", run["reason"])
            self.assertEqual(d.request("POST", "/api/v1/runs/%s/resume" % runs[name]).status, 409)
        # the others: untouched, and the paused one trains on from its checkpoint
        self.assertEqual(d.run(runs["completed"])["state"], "completed")
        self.assertEqual(d.run(runs["intact"])["state"], "paused")
        for name in ("intact", "completed"):
            run_dir = self.run_dir(d, runs[name])
            self.assertEqual(metrics_lines(run_dir), before[name][0])
            self.assertEqual(file_hash(os.path.join(run_dir, "checkpoint.safetensors")),
                             before[name][1])
        rid = runs["intact"]
        n = d.run(rid)["epoch"]
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/resume" % rid).status, 200)
        d.wait_for(rid, lambda x: x["epoch"] >= n + 1, what="the intact run training on")
        self.assert_consistent(d, rid, before["intact"][0], n)
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/stop" % rid).status, 200)
        self.assertEqual(d.stop(), 0)

    # ---- non-finite loss -------------------------------------------------------------------

    def test_non_finite_loss_fails_the_run_with_where(self):
        d = self.daemon().start()
        rid = d.create_run(config(epochs=1000000, checkpoint_every=1, sample_every=0))
        d.wait_for(rid, lambda x: x["epoch"] >= 2, what="epoch 2")
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/pause" % rid).status, 200)
        d.wait_for(rid, lambda x: x["state"] == "paused", what="paused")
        other = d.create_run(config(epochs=3))
        d.wait_for(other, lambda x: x["state"] == "completed", what="the other run")
        self.assertEqual(d.stop(), 0)

        # NaN into the discriminator's last layer, the file otherwise intact
        path = os.path.join(self.run_dir(d, rid), "checkpoint.safetensors")
        header, meta, data, base = read_safetensors(path)
        ckpt = int(meta["epoch"])
        lo, hi = header["discriminator.linear.weight"]["data_offsets"]
        nan = struct.pack("<f", float("nan"))
        data = data[:base + lo] + nan * ((hi - lo) // 4) + data[base + hi:]
        with open(path, "wb") as f:
            f.write(data)
        read_safetensors(path)

        d = self.daemon().start()
        run = d.run(rid)
        self.assertEqual(run["state"], "paused")  # it loads: the values are not checked
        # A pause can land after an epoch's last iteration and before its end. Then the
        # resumed run ends that epoch first (its losses were finite) and fails in the next.
        done = ckpt + (1 if int(meta["iteration"]) == run["iterations_per_epoch"] else 0)
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/resume" % rid).status, 200)
        run = d.wait_for(rid, lambda x: x["state"] == "failed", timeout=60, what="failed")
        m = re.match(r"^non-finite loss at epoch (\d+), iteration (\d+)", run["reason"] or "")
        self.assertTrue(m, run["reason"])
        self.assertEqual(int(m.group(1)), done + 1, run["reason"])
        self.assertGreaterEqual(int(m.group(2)), 1)
        self.assertEqual(run["epoch"], done, "the failed epoch is not recorded")
        events = [(k, e) for _, k, e in d.events(rid)]
        self.assertEqual(events[-1][0], "state")
        self.assertEqual(events[-1][1]["state"], "failed")
        self.assertEqual(events[-1][1]["reason"], run["reason"])
        self.assertIn(run["reason"], d.log())
        # the daemon and the other run are fine
        self.assertEqual(d.run(other)["state"], "completed")
        again = d.create_run(config(epochs=1))
        d.wait_for(again, lambda x: x["state"] == "completed", what="a new run after it")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    gandtest.main()
