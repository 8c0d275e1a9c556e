#!/usr/bin/env python3
"""`gand train` and `gand evaluate` on the bundled data sets: which images each trains
on, chooses sigma on and scores, the training digits as the ceiling, a clear error for
every bad data option, and the same numbers from `gand train` as from `gand serve`."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402

TRAIN = "mnist-train-images-idx3-ubyte.gz"
T10K = "mnist-t10k-images-idx3-ubyte.gz"


def gand(*args):
    p = subprocess.run([gandtest.GAND, *args], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gand-cli-")
        cls.dir = cls.tmp.name
        # one epoch of the tiny model on the 10,000-digit set gives a checkpoint to evaluate
        cfg = os.path.join(cls.dir, "tiny.json")
        with open(cfg, "w") as f:
            json.dump(gandtest.tiny_config(dataset="mnist-10k", epochs=1, sample_every=0), f)
        cls.out = os.path.join(cls.dir, "run")
        rc, out, err = gand("train", "--config", cfg, "--out", cls.out, "--device", "cpu")
        assert rc == 0, err
        cls.train_err = err
        cls.ckpt = os.path.join(cls.out, "checkpoint.safetensors")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_train_takes_the_configs_bundled_data_set(self):
        self.assertRegex(self.train_err, r"trains on images 0\.\.7999 of \S*mnist-10k-images"
                                         r"\S*; sigma on 8000\.\.8999 of \S*, scores 9000\.\.9999")
        with open(os.path.join(self.out, "metrics.jsonl")) as f:
            self.assertEqual(json.loads(f.readline())["epoch"], 1)

    def evaluate(self, *args):
        rc, out, err = gand("evaluate", "--checkpoint", self.ckpt, "--samples", "50",
                            "--device", "cpu", *args)
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def test_evaluate_the_papers_protocol_by_default(self):
        r = self.evaluate()
        self.assertEqual(r["split"], {"validation": [50000, 60000], "test": [0, 10000]})
        self.assertTrue(r["validation_data"].endswith("/" + TRAIN), r)
        self.assertTrue(r["data"].endswith("/" + T10K), r)
        self.assertEqual(r["samples"], 50)

    def test_evaluate_each_bundled_data_set(self):
        r = self.evaluate("--dataset", "mnist-60k")
        self.assertEqual(r["split"], {"validation": [0, 5000], "test": [5000, 10000]})
        self.assertTrue(r["validation_data"].endswith("/" + T10K) and r["data"] == r["validation_data"])
        r = self.evaluate("--dataset", "mnist-10k")
        self.assertEqual(r["split"], {"validation": [8000, 9000], "test": [9000, 10000]})
        # a file and a test file of one's own, with a holdout: sigma on the holdout
        small = gandtest.make_small_dataset(os.path.join(self.dir, "small-idx3-ubyte.gz"), 300)
        r = self.evaluate("--data", gandtest.BUNDLED_IMAGES, "--test", small, "--holdout", "100")
        self.assertEqual(r["split"], {"validation": [9900, 10000], "test": [0, 300]})
        self.assertEqual(r["data"], small)

    def test_training_digits_as_the_samples(self):
        rc, out, err = gand("evaluate", "--training-digits", "--samples", "300", "--dataset",
                            "mnist-10k", "--device", "cpu")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual((r["samples_from"], r["epoch"], r["samples"]), ("training_digits", None, 300))
        g = self.evaluate("--dataset", "mnist-10k")
        self.assertEqual(g["samples_from"], "checkpoint")
        # one epoch of a tiny G is far from the digits themselves
        self.assertGreater(r["parzen_ll"], g["parzen_ll"] + 100, (r, g))
        rc, out, err = gand("evaluate", "--training-digits", "--dataset", "mnist-10k")
        self.assertEqual(rc, 2)
        self.assertIn("--samples must be at most the 8000 training images", err)
        rc, out, err = gand("evaluate", "--training-digits", "--checkpoint", self.ckpt)
        self.assertEqual(rc, 2)
        self.assertIn("usage: gand evaluate (--checkpoint FILE | --training-digits)", err)

    def test_bad_data_options_are_named(self):
        for args, named in [
            (["--dataset", "nope"], "--dataset must be one of the bundled data sets (mnist, "
                                    "mnist-60k, mnist-10k), got 'nope'"),
            (["--dataset", "mnist", "--data", gandtest.BUNDLED_IMAGES], "either --dataset or --data"),
            (["--dataset", "mnist-10k", "--holdout", "10000"], "--holdout must be an integer in 0..9999"),
            (["--data", os.path.join(self.dir, "missing.gz")], "missing.gz"),
        ]:
            for cmd in (["evaluate", "--checkpoint", self.ckpt], ["train", "--out", self.out]):
                with self.subTest(cmd=cmd[0], args=args):
                    rc, out, err = gand(*cmd, *args)
                    self.assertEqual(rc, 2, (out, err))
                    self.assertIn(named, err)
                    self.assertTrue(err.startswith("gand %s: " % cmd[0]), err)


class TrainAndServeAgree(gandtest.DaemonTest):
    """One epoch-end policy (gan/epoch.c): the same config gives the same epoch records,
    grids and Parzen figures from `gand train` as from a run of `gand serve`."""

    def test_same_config_same_numbers(self):
        # the small set (2,000 digits), its last 200 held out, in both
        cfg = gandtest.tiny_config(epochs=5, evaluate_every=2, sample_every=2, checkpoint_every=1)
        path = os.path.join(self.dir, "cfg.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        out = os.path.join(self.dir, "cli")
        rc, _, err = gand("train", "--config", path, "--data", self.small, "--holdout", "200",
                          "--out", out, "--device", "cpu")
        self.assertEqual(rc, 0, err)
        with open(os.path.join(out, "metrics.jsonl")) as f:
            cli = [json.loads(line) for line in f]

        d = self.daemon(config=self.conf("[datasets]\nsmall.holdout = 200\n"),
                        extra_args=["--device", "cpu"]).start()
        rid = d.create_run(cfg)
        d.wait_for(rid, lambda x: x["state"] == "completed", what="completed")
        d.wait_for(rid, lambda x: (x["last_evaluation"] or {}).get("result", {}).get("epoch") == 4,
                   what="epoch 4's evaluation")
        served = d.get_json("/api/v1/runs/%s/metrics" % rid)["epochs"]
        evals = {e["result"]["epoch"]: e for e in
                 d.get_json("/api/v1/runs/%s/evaluations" % rid)["evaluations"]}

        timing = ("seconds", "samples_per_sec")
        self.assertEqual(len(cli), 5)
        for a, b in zip(cli, served):
            mine = {k: v for k, v in a.items() if k not in timing and not k.startswith("parzen")}
            self.assertEqual(mine, {k: v for k, v in b.items() if k not in timing})
        # evaluated every 2 epochs, with the same noise (seed 0)
        self.assertEqual([r["epoch"] for r in cli if "parzen_ll" in r], [2, 4])
        self.assertEqual(sorted(evals), [2, 4])
        for r in (cli[1], cli[3]):
            e = evals[r["epoch"]]
            self.assertEqual((e["seed"], e["samples"], e["trigger"]), (0, 10000, "evaluate_every"))
            self.assertEqual(r["parzen_ll"], round(e["result"]["parzen_ll"], 3))
            self.assertEqual(r["parzen_sigma"], round(e["result"]["sigma"], 4))
        # grids every 2 epochs and at the last, byte for byte
        self.assertEqual(sorted(os.listdir(os.path.join(out, "samples"))),
                         ["epoch-000002.png", "epoch-000004.png", "epoch-000005.png"])
        for epoch in (2, 4, 5):
            with open(os.path.join(out, "samples", "epoch-%06d.png" % epoch), "rb") as f:
                self.assertEqual(f.read(), d.request(
                    "GET", "/api/v1/runs/%s/samples/%d.png" % (rid, epoch)).body)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
