#!/usr/bin/env python3
"""`gand classifier train|evaluate`: a short training run's output, a clear error
and exit status 2 for every bad input, and the committed classifiers scoring what
data/README.md says they score."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402

DATA = os.path.join(gandtest.SOURCE_ROOT, "data")
IMAGES = os.path.join(DATA, "mnist-10k-images-idx3-ubyte.gz")
LABELS = os.path.join(DATA, "mnist-10k-labels-idx1-ubyte.gz")


def gand(*args):
    p = subprocess.run([gandtest.GAND, "classifier", *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


class ClassifierCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gand-classifier-")
        cls.out = os.path.join(cls.tmp.name, "c.safetensors")
        # two epochs on the first 1,000 digits, scored on the other 9,000
        cls.rc, cls.stdout, cls.stderr = gand(
            "train", "--images", IMAGES, "--labels", LABELS, "--holdout", "9000", "--epochs", "2",
            "--out", cls.out, "--backend", "cpu")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_train_prints_each_epoch_and_the_held_out_accuracy(self):
        self.assertEqual(self.rc, 0, self.stderr)
        lines = [json.loads(line) for line in self.stdout.splitlines()]
        self.assertEqual([e["epoch"] for e in lines[:2]], [1, 2])
        for e in lines[:2]:
            self.assertTrue(0 < e["loss"] and 0 <= e["accuracy"] <= 1, e)
        s = lines[2]
        self.assertEqual((s["train_images"], s["holdout_images"], s["epochs"]), (1000, 9000, 2))
        self.assertGreater(s["holdout_accuracy"], 0.5)
        self.assertNotIn("test_accuracy", s)
        self.assertIn("trains on images 0..999", self.stderr)

    def test_evaluate_reads_what_train_wrote(self):
        rc, out, err = gand("evaluate", "--classifier", self.out, "--images", IMAGES,
                            "--labels", LABELS, "--backend", "cpu")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual(r["images"], [0, 10000])
        self.assertEqual(r["trained_on"], "mnist-10k-images-idx3-ubyte.gz images 0..999")
        self.assertGreater(r["accuracy"], 0.5)

    def test_bad_input_is_a_usage_error_that_says_what_was_wrong(self):
        missing = os.path.join(self.tmp.name, "missing.gz")
        train_labels = os.path.join(DATA, "mnist-train-labels-idx1-ubyte.gz")
        bad_labels = os.path.join(self.tmp.name, "bad-labels")
        with open(bad_labels, "wb") as f:  # IDX1: 10,000 labels, one of them 10
            f.write(bytes([0, 0, 8, 1]) + (10000).to_bytes(4, "big") + bytes([3] * 9999 + [10]))
        base = ["--out", os.path.join(self.tmp.name, "x.safetensors"), "--epochs", "1"]
        cases = [
            (["train", "--images", missing, "--labels", LABELS, *base], missing),
            (["train", "--images", IMAGES, "--labels", train_labels, *base],
             "label count 60000 does not match the image count 10000"),
            (["train", "--images", IMAGES, "--labels", bad_labels, *base],
             "label 10 at index 9999 is out of range"),
            (["train", "--images", IMAGES, "--labels", LABELS, *base, "--epochs", "2x"],
             "--epochs must be an integer in 1..10000, got '2x'"),
            (["train", "--images", IMAGES, "--labels", LABELS, *base, "--lr", "-1"],
             "--lr must be a number"),
            (["train", "--images", IMAGES, "--labels", LABELS, *base, "--holdout", "10000"],
             "--holdout must be an integer in 0..9999"),
            (["train", "--images", IMAGES, "--labels", LABELS, *base, "--test-images", IMAGES],
             "give --test-images and --test-labels together"),
            (["train", "--images", IMAGES, "--out", "x"], "--images, --labels and --out are required"),
            (["train", "--images", IMAGES, "--labels", LABELS, *base, "--backend", "tpu"],
             "unknown device 'tpu'"),
            (["evaluate", "--classifier", IMAGES, "--images", IMAGES, "--labels", LABELS],
             IMAGES),
            (["evaluate", "--classifier", self.out, "--images", IMAGES, "--labels", missing],
             missing),
            (["evaluate", "--classifier", self.out, "--images", IMAGES, "--labels", LABELS,
              "--last", "10001"], "--last must be at most the 10000 images"),
            (["frobnicate"], "unknown subcommand 'frobnicate'"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                rc, out, err = gand(*args)
                self.assertEqual(rc, 2, err)
                self.assertIn(message, err)
                self.assertEqual(out, "")

    def test_the_committed_classifiers_score_what_they_say(self):
        t10k = [os.path.join(DATA, "mnist-t10k-" + k + "-idx" + d + "-ubyte.gz")
                for k, d in (("images", "3"), ("labels", "1"))]
        for name, args, trained_on, least in [
                ("mnist", ["--images", t10k[0], "--labels", t10k[1]],
                 "mnist-train-images-idx3-ubyte.gz images 0..49999", 0.98),
                ("mnist-10k", ["--images", IMAGES, "--labels", LABELS, "--last", "2000"],
                 "mnist-10k-images-idx3-ubyte.gz images 0..7999", 0.97)]:
            with self.subTest(name=name):
                rc, out, err = gand("evaluate", "--classifier",
                                    os.path.join(DATA, name + "-classifier.safetensors"), *args,
                                    "--backend", "cpu")
                self.assertEqual(rc, 0, err)
                r = json.loads(out)
                self.assertGreaterEqual(r["accuracy"], least)
                self.assertEqual(r["accuracy"], r["saved_accuracy"])
                self.assertEqual(r["trained_on"], trained_on)

if __name__ == "__main__":
    unittest.main(verbosity=2)
