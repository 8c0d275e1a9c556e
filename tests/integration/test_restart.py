"""tests/integration/test_restart.py — runs survive the daemon: SIGKILL and SIGTERM.

SIGKILL mid-run: after a restart the run resumes from its last checkpoint and the
history past it is cut, so every epoch appears exactly once, in order, in the
metrics and in the event stream. SIGTERM: the run checkpoints at its next
iteration boundary, so after a restart it carries on from where it was — no
completed epoch is trained again.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import tiny_config as config  # noqa: E402


class Restart(gandtest.DaemonTest):
    def assert_history_clean(self, d, rid, epochs):
        run = d.run(rid)
        self.assertEqual(run["state"], "completed", run)
        self.assertEqual(run["epoch"], epochs)
        got = [e["epoch"] for e in d.get_json("/api/v1/runs/%s/metrics" % rid)["epochs"]]
        self.assertEqual(got, list(range(1, epochs + 1)), "metrics: unique, in order")
        with open(os.path.join(d.state_dir, "runs", rid, "metrics.jsonl")) as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        self.assertEqual(len(lines), epochs, "metrics.jsonl: one line per epoch")
        events = list(d.events(rid, timeout=30))
        seqs = [s for s, _, _ in events]
        self.assertEqual(seqs, sorted(set(seqs)), "event ids unique and increasing")
        ep = [data["epoch"] for _, kind, data in events if kind == "epoch"]
        self.assertEqual(ep, list(range(1, epochs + 1)), "epoch events: unique, in order")
        return events

    def test_sigkill_mid_run_then_restart(self):
        epochs = 10
        d = self.daemon().start()
        rid = d.create_run(config(epochs=epochs, checkpoint_every=2))
        d.wait_for(rid, lambda x: x["epoch"] >= 3, what="epoch 3")
        d.kill()

        d2 = self.daemon().start()  # the same state directory
        d2.wait_for(rid, lambda x: x["state"] == "completed", timeout=180, what="completed")
        self.assert_history_clean(d2, rid, epochs)
        self.assertEqual(d2.stop(), 0)

    def test_sigterm_then_restart_redoes_no_epoch(self):
        epochs = 12
        d = self.daemon().start()
        # no periodic checkpoint: only the one SIGTERM makes can keep the progress
        rid = d.create_run(config(epochs=epochs, checkpoint_every=1000))
        d.wait_for(rid, lambda x: x["epoch"] >= 3, what="epoch 3")
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait(timeout=90), 0, d.log())
        self.assertIn("stopped", d.log())
        with open(os.path.join(d.state_dir, "runs", rid, "metrics.jsonl")) as f:
            kept = [line for line in f.read().splitlines() if line.strip()]
        done = len(kept)
        self.assertGreaterEqual(done, 3)
        self.assertLess(done, epochs)

        d2 = self.daemon()
        d2.start()
        run = d2.run(rid)
        self.assertGreaterEqual(run["epoch"], done, "no completed epoch is lost or redone")
        d2.wait_for(rid, lambda x: x["state"] == "completed", timeout=180, what="completed")
        self.assert_history_clean(d2, rid, epochs)
        with open(os.path.join(d2.state_dir, "runs", rid, "metrics.jsonl")) as f:
            after = [line for line in f.read().splitlines() if line.strip()]
        self.assertEqual(after[:done], kept, "the records written before SIGTERM are kept as is")
        self.assertEqual(d2.stop(), 0)

    def test_averaged_generator_survives_a_restart(self):
        """A run with g_ema samples from the average, before and after a restart."""
        d = self.daemon().start()
        rid = d.create_run(config(epochs=2, g_ema=0.99))
        d.wait_for(rid, lambda x: x["state"] == "completed", what="completed")
        path = "/api/v1/runs/%s/samples.png?n=16&seed=5" % rid
        before = d.request("GET", path)
        self.assertEqual(before.status, 200, before)
        self.assertEqual(d.stop(), 0)

        d2 = self.daemon().start()  # the generator now comes from the checkpoint
        after = d2.request("GET", path)
        self.assertEqual(after.status, 200, after)
        self.assertEqual(after.body, before.body, "the same averaged weights, not G's own")
        self.assertEqual(d2.stop(), 0)


if __name__ == "__main__":
    gandtest.main()
