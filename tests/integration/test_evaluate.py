"""tests/integration/test_evaluate.py — what a run learned, through the API.

Held-out images (a data set's holdout, or a separate test file) and how they are
reported; the Parzen evaluation's life (POST → 202 + Location → queued → running
→ done), its list, its SSE event, its /metrics line, evaluate_every, its survival
across a restart; the gzip IDX3 export of generated images; G applied to given
latent vectors (PNG or JSON) and the interpolation strip; and a problem for every
kind of bad input of these endpoints.
"""
import gzip
import json
import math
import os
import re
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import grid_size, png_size, tiny_config as config  # noqa: E402

J = {"Content-Type": "application/json"}


def strip_size(steps, scale, rows=28, cols=28):
    return ((steps * (cols + 1) + 1) * scale, (rows + 2) * scale)


def parse_idx_gz(data):
    raw = gzip.decompress(data)
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    return magic, n, rows, cols, raw[16:]


class Base(gandtest.DaemonTest):
    def evaluated(self, d, location, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            ev = d.get_json(location)
            if ev["state"] in ("done", "failed"):
                return ev
            time.sleep(0.05)
        raise AssertionError("evaluation %s did not finish: %s\n%s" % (location, ev, d.log()[-3000:]))


class Evaluations(Base):
    def test_lifecycle_list_event_metrics_restart(self):
        # the small set (2000 images) holds out its last 200: 1800..1900 validate, 1900..2000 test
        d = self.daemon(config=self.conf("[datasets]\nsmall.holdout = 200\n")).start()
        sets = {s["name"]: s for s in d.get_json("/api/v1/datasets")["datasets"]}
        small = sets["small"]
        self.assertEqual((small["images"], small["train_images"], small["holdout"]), (2000, 1800, 200))
        self.assertIsNone(small["test_images"])
        self.assertEqual(small["split"], {"train_data": "small/small-idx3-ubyte.gz", "train": [0, 1800],
                                          "validation_data": "small/small-idx3-ubyte.gz",
                                          "data": "small/small-idx3-ubyte.gz",
                                          "validation": [1800, 1900], "test": [1900, 2000]})
        # the bundled sets: the full MNIST under the paper's protocol (sigma on training
        # digits 50,000..59,999, the 10,000 test digits scored), all 60,000 trained on with
        # the test digits in halves, and the 10,000-digit set with its last 2,000 held out
        train, t10k = "mnist-train-images-idx3-ubyte.gz", "mnist-t10k-images-idx3-ubyte.gz"
        self.assertEqual({k: v for k, v in sets["mnist"].items() if k != "name"},
                         {"images": 60000, "rows": 28, "cols": 28, "train_images": 50000,
                          "holdout": 10000, "test_images": 10000,
                          "classifier": "mnist/mnist-classifier.safetensors",
                          "split": {"train_data": "mnist/" + train, "train": [0, 50000],
                                    "validation_data": "mnist/" + train, "validation": [50000, 60000],
                                    "data": "mnist/" + t10k, "test": [0, 10000]}})
        m60 = sets["mnist-60k"]
        self.assertEqual((m60["train_images"], m60["holdout"], m60["test_images"]), (60000, 0, 10000))
        self.assertEqual(m60["split"], {"train_data": "mnist-60k/" + train, "train": [0, 60000],
                                        "validation_data": "mnist-60k/" + t10k, "validation": [0, 5000],
                                        "data": "mnist-60k/" + t10k, "test": [5000, 10000]})
        m10 = sets["mnist-10k"]
        self.assertEqual((m10["images"], m10["train_images"], m10["holdout"]), (10000, 8000, 2000))
        self.assertEqual((m10["split"]["validation"], m10["split"]["test"]), ([8000, 9000], [9000, 10000]))

        # a queued run has no generator yet: 409
        busy = d.create_run(config(epochs=100000))
        waiting = d.create_run(config(epochs=2))
        p = self.assertProblem(d.request("POST", "/api/v1/runs/%s/evaluations" % waiting, {}), 409)
        self.assertIn("no generator", p["detail"])
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/stop" % busy).status, 200)
        run = d.wait_for(waiting, lambda x: x["state"] == "completed", what="completed")
        self.assertEqual(run["iterations_per_epoch"], 18, "trains on the first 1800 images only")
        self.assertEqual(run["split"], small["split"])
        self.assertIsNone(run["last_evaluation"])
        rid = waiting

        n_events = len(list(d.events(rid)))  # the stream of a completed run ends by itself

        r = d.request("POST", "/api/v1/runs/%s/evaluations" % rid, {"samples": 500, "seed": 3})
        self.assertEqual(r.status, 202, r)
        # the stream of a completed run stays open while an evaluation of it is pending
        got = []
        for seq, kind, data in d.events(rid, "?last_event_id=%d" % n_events, timeout=60):
            self.assertEqual(kind, "evaluation")
            got.append((seq, data["id"], data["state"]))
        self.assertEqual([(s, i, st) for s, i, st in got],
                         [(n_events + 1, 1, "queued"), (n_events + 2, 1, "running"),
                          (n_events + 3, 1, "done")])
        location = r.header("Location")
        self.assertEqual(location, "/api/v1/runs/%s/evaluations/1" % rid)
        ev = r.json()
        self.assertEqual((ev["id"], ev["run"], ev["samples"], ev["seed"], ev["trigger"]),
                         (1, rid, 500, 3, "request"))
        self.assertIn(ev["state"], ("queued", "running", "done"))
        self.assertIsNone(ev["result"] if ev["state"] != "done" else None)

        ev = self.evaluated(d, location)
        self.assertEqual(ev["state"], "done", ev)
        self.assertIsNone(ev["reason"])
        res = ev["result"]
        for k in ("parzen_ll", "stderr", "sigma"):
            self.assertTrue(math.isfinite(res[k]), res)
        self.assertGreater(res["stderr"], 0)
        self.assertIn(round(res["sigma"], 6), [round(10 ** (-1 + k / 9), 6) for k in range(10)])
        self.assertEqual(res["samples"], 500)
        self.assertEqual(res["epoch"], 2)
        self.assertEqual(res["split"], {"validation": [1800, 1900], "test": [1900, 2000]})
        self.assertEqual(res["data"], "small/small-idx3-ubyte.gz")
        for k in ("created_at", "started_at", "finished_at"):
            self.assertRegex(ev[k], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

        # the same request again gives the same numbers (same G, same noise)
        r2 = d.request("POST", "/api/v1/runs/%s/evaluations" % rid, b'{"samples": 500, "seed": 3}', J)
        self.assertEqual(r2.status, 202, r2)
        ev2 = self.evaluated(d, r2.header("Location"))
        self.assertEqual(ev2["id"], 2)
        self.assertEqual(ev2["result"]["parzen_ll"], res["parzen_ll"])
        # no body at all: the defaults (10,000 samples, seed 0)
        r3 = d.request("POST", "/api/v1/runs/%s/evaluations" % rid)
        self.assertEqual(r3.status, 202, r3)
        self.assertEqual((r3.json()["samples"], r3.json()["seed"]), (10000, 0))
        ev3 = self.evaluated(d, r3.header("Location"))
        self.assertEqual(ev3["state"], "done", ev3)

        # the list, oldest first; the run shows the latest
        lst = d.get_json("/api/v1/runs/%s/evaluations" % rid)
        self.assertEqual(lst["run"], rid)
        self.assertEqual([e["id"] for e in lst["evaluations"]], [1, 2, 3])
        self.assertEqual(lst["evaluations"][0], ev)
        self.assertEqual(d.run(rid)["last_evaluation"]["id"], 3)

        # the events of all three, in order; the stream ends once nothing is pending
        rest = list(d.events(rid, "?last_event_id=%d" % n_events, timeout=30))
        self.assertEqual([(dt["id"], dt["state"]) for _, k, dt in rest if k == "evaluation"],
                         [(i, s) for i in (1, 2, 3) for s in ("queued", "running", "done")])
        self.assertEqual(rest[2][2], ev, "the event's data is the evaluation")

        # /metrics: the latest estimate
        text = d.request("GET", "/metrics").body.decode()
        m = re.search(r'(?m)^gand_run_parzen_log_likelihood\{run="%s"\} (\S+)$' % rid, text)
        self.assertTrue(m, text[-2000:])
        self.assertAlmostEqual(float(m.group(1)), ev3["result"]["parzen_ll"], places=3)
        self.assertRegex(text, r'(?m)^gand_run_parzen_log_likelihood_stderr\{run="%s"\} \S+$' % rid)
        self.assertRegex(text, r"(?m)^gand_evaluations_queued 0$")

        # evaluations.jsonl keeps them across a restart; the events too
        self.assertEqual(d.stop(), 0)
        with open(os.path.join(d.state_dir, "runs", rid, "evaluations.jsonl")) as f:
            lines = [json.loads(x) for x in f if x.strip()]
        self.assertEqual([(x["id"], x["state"]) for x in lines],
                         [(1, "queued"), (1, "done"), (2, "queued"), (2, "done"), (3, "queued"), (3, "done")])
        d.start()
        self.assertEqual(d.get_json("/api/v1/runs/%s/evaluations" % rid), lst)
        self.assertEqual(d.get_json(location), ev)
        again = list(d.events(rid, timeout=30))
        self.assertEqual([(dt["id"], dt["state"]) for _, k, dt in again if k == "evaluation"],
                         [(i, s) for i in (1, 2, 3) for s in ("queued", "running", "done")])
        self.assertEqual([s for s, _, _ in again], list(range(1, len(again) + 1)))
        self.assertEqual(d.stop(), 0)

    def test_evaluate_every_and_while_training(self):
        d = self.daemon(config=self.conf("[datasets]\nsmall.holdout = 200\n")).start()
        rid = d.create_run(config(epochs=3, evaluate_every=2))
        d.wait_for(rid, lambda x: x["state"] == "completed", what="completed")
        lst = d.get_json("/api/v1/runs/%s/evaluations" % rid)["evaluations"]
        self.assertEqual([(e["id"], e["trigger"], e["state"]) for e in lst],
                         [(1, "evaluate_every", "done")])
        self.assertEqual(lst[0]["result"]["epoch"], 2, "the G of the epoch that asked for it")
        self.assertEqual(lst[0]["samples"], 10000)

        # a running run is evaluated between two iterations, and keeps training
        rid = d.create_run(config(epochs=100000, checkpoint_every=1000))
        run = d.wait_for(rid, lambda x: x["epoch"] >= 1, what="a first epoch")
        # while it trains, iterations_per_epoch is the trainer's own: 1800 images / batch 100
        self.assertEqual((run["state"], run["iterations_per_epoch"]), ("running", 18),
                         "the trainer holds the training images only")
        r = d.request("POST", "/api/v1/runs/%s/evaluations" % rid, {"samples": 500})
        self.assertEqual(r.status, 202, r)
        ev = self.evaluated(d, r.header("Location"))
        self.assertEqual(ev["state"], "done", ev)
        self.assertGreaterEqual(ev["result"]["epoch"], 1)
        e0 = d.run(rid)["epoch"]
        d.wait_for(rid, lambda x: x["epoch"] >= e0 + 1, what="training goes on")
        # a paused run (the worker let go of it) is evaluated from its checkpoint's G
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/pause" % rid).status, 200)
        d.wait_for(rid, lambda x: x["state"] == "paused", what="paused")
        paused = d.settled(rid)
        r = d.request("POST", "/api/v1/runs/%s/evaluations" % rid, {"samples": 300})
        ev = self.evaluated(d, r.header("Location"))
        self.assertEqual(ev["state"], "done", ev)
        self.assertLessEqual(ev["result"]["epoch"], paused["epoch"])
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/stop" % rid).status, 200)
        # after a restart the stopped run's G comes from its checkpoint
        self.assertEqual(d.stop(), 0)
        d.start()
        r = d.request("POST", "/api/v1/runs/%s/evaluations" % rid, {"samples": 300})
        self.assertEqual(r.status, 202, r)
        ev = self.evaluated(d, r.header("Location"))
        self.assertEqual(ev["state"], "done", ev)
        self.assertEqual(ev["id"], 3)
        self.assertEqual(d.stop(), 0)

    def test_test_file_and_no_holdout(self):
        test_file = gandtest.make_small_dataset(os.path.join(self.dir, "t-idx3-ubyte.gz"), count=301)
        d = self.daemon(config=self.conf("[datasets]\nfashion.test = %s\n" % test_file),
                        extra_args=["--data", "fashion=" + self.small]).start()
        sets = {s["name"]: s for s in d.get_json("/api/v1/datasets")["datasets"]}
        f = sets["fashion"]
        # a separate test file: the training file is trained on whole; the test file is split in half
        self.assertEqual((f["images"], f["train_images"], f["holdout"], f["test_images"]), (2000, 2000, 0, 301))
        self.assertEqual(f["split"], {"train_data": "fashion/small-idx3-ubyte.gz", "train": [0, 2000],
                                      "validation_data": "fashion/t-idx3-ubyte.gz",
                                      "data": "fashion/t-idx3-ubyte.gz",
                                      "validation": [0, 150], "test": [150, 301]})
        # nothing held out: no evaluation (409), and the data set says why
        s = sets["small"]
        self.assertEqual((s["train_images"], s["holdout"]), (2000, 0))
        self.assertEqual((s["split"]["data"], s["split"]["validation"], s["split"]["test"]), (None, None, None))
        self.assertIn("holdout", s["evaluation"])
        for k in ("path", "test_path"):
            self.assertNotIn(k, f, "a client never sees a server path")

        rid = d.create_run(config(dataset="fashion", epochs=1))
        d.wait_for(rid, lambda x: x["state"] == "completed", what="completed")
        r = d.request("POST", "/api/v1/runs/%s/evaluations" % rid, {"samples": 200})
        ev = self.evaluated(d, r.header("Location"))
        self.assertEqual(ev["state"], "done", ev)
        self.assertEqual(ev["result"]["split"], {"validation": [0, 150], "test": [150, 301]})
        self.assertEqual(ev["result"]["data"], "fashion/t-idx3-ubyte.gz")

        other = d.create_run(config(epochs=1))
        d.wait_for(other, lambda x: x["state"] == "completed", what="completed")
        p = self.assertProblem(d.request("POST", "/api/v1/runs/%s/evaluations" % other, {}), 409)
        self.assertIn("small.holdout", p["detail"])
        self.assertEqual(d.stop(), 0)


class Images(Base):
    def test_export_generate_interpolate(self):
        d = self.daemon().start()
        rid = d.create_run(config(epochs=1))
        d.wait_for(rid, lambda x: x["state"] == "completed", what="completed")
        base = "/api/v1/runs/" + rid

        # gzip IDX3: magic, count, 28×28, one byte per pixel; the seed decides the images
        r = d.request("GET", base + "/samples?n=50&format=idx&seed=4")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        self.assertEqual(r.header("Content-Disposition"),
                         'attachment; filename="%s-samples-50-seed4-idx3-ubyte.gz"' % rid)
        magic, n, rows, cols, px = parse_idx_gz(r.body)
        self.assertEqual((magic, n, rows, cols, len(px)), (0x803, 50, 28, 28, 50 * 784))
        self.assertEqual(d.request("GET", base + "/samples?n=50&seed=4").body, r.body, "format defaults to idx")
        other = parse_idx_gz(d.request("GET", base + "/samples?n=50&seed=5").body)[4]
        self.assertNotEqual(other, px)
        # the first 20 of 50 are the 20 of n=20: one noise stream
        self.assertEqual(parse_idx_gz(d.request("GET", base + "/samples?n=20&seed=4").body)[4], px[:20 * 784])
        big = d.request("GET", base + "/samples?n=10000")
        self.assertEqual(big.status, 200)
        self.assertEqual(parse_idx_gz(big.body)[1], 10000)

        # generate: PNG grid by default, scale from the query or the body
        z = [[0.1 * i - 0.5 * j for i in range(16)] for j in range(3)]
        r = d.request("POST", base + "/generate", {"z": z})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "image/png")
        self.assertEqual(png_size(r.body), grid_size(3, 2))
        r = d.request("POST", base + "/generate?scale=3", {"z": z})
        self.assertEqual(png_size(r.body), grid_size(3, 3))
        r = d.request("POST", base + "/generate", {"z": z[:1], "scale": 1})
        self.assertEqual(png_size(r.body), grid_size(1, 1))
        # ... or the pixels as JSON
        r = d.request("POST", base + "/generate", {"z": z}, {"Accept": "application/json"})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("application/json"))
        images = r.json()["images"]
        self.assertEqual(len(images), 3)
        for im in images:
            self.assertEqual(len(im), 784)
            self.assertTrue(all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in im))
        self.assertEqual(r.json()["epoch"], 1)
        one = d.request("POST", base + "/generate", {"z": z[1:2]}, {"Accept": "application/json"}).json()
        self.assertEqual(one["images"][0], images[1], "each vector gives its own image")
        r = d.request("POST", base + "/generate", {"z": [[0] * 16] * 1024}, {"Accept": "application/json"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json()["images"]), 1024)

        # interpolate: one row of `steps` cells
        r = d.request("GET", base + "/interpolate?from=1&to=2&steps=7&scale=2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "image/png")
        self.assertEqual(png_size(r.body), strip_size(7, 2))
        self.assertEqual(png_size(d.request("GET", base + "/interpolate").body), strip_size(10, 2))
        r64 = d.request("GET", base + "/interpolate?steps=64&scale=8")
        self.assertEqual(png_size(r64.body), strip_size(64, 8))
        self.assertEqual(d.request("GET", base + "/interpolate?from=1&to=2&steps=7&scale=2").body,
                         r.body, "the same seeds give the same strip")
        self.assertEqual(d.stop(), 0)


class BadInput(Base):
    def test_every_bad_input_gets_a_problem(self):
        d = self.daemon(config=self.conf("[datasets]\nsmall.holdout = 200\n")).start()
        rid = d.create_run(config(epochs=1))
        d.wait_for(rid, lambda x: x["state"] == "completed", what="completed")
        queued_busy = d.create_run(config(epochs=100000))
        fresh = d.create_run(config(epochs=1))  # queued behind the busy one: no G yet
        run = "/api/v1/runs/" + rid
        z16 = [0.0] * 16
        cases = [
            # evaluations
            ("POST", run + "/evaluations", b'{"samples": 0}', J, 422, "samples"),
            ("POST", run + "/evaluations", b'{"samples": 100001}', J, 422, "samples"),
            ("POST", run + "/evaluations", b'{"samples": 1.5}', J, 422, "samples"),
            ("POST", run + "/evaluations", b'{"samples": "many"}', J, 422, "samples"),
            ("POST", run + "/evaluations", b'{"seed": -1}', J, 422, "seed"),
            ("POST", run + "/evaluations", b'{"nope": 1}', J, 422, "nope"),
            ("POST", run + "/evaluations?x=1", b'{}', J, 422, "x"),
            ("POST", run + "/evaluations", b'{bad', J, 400, None),
            ("POST", run + "/evaluations", b'[1]', J, 400, None),
            ("POST", run + "/evaluations", b'{}', {"Content-Type": "text/plain"}, 415, None),
            ("POST", "/api/v1/runs/nosuchrun/evaluations", b'{}', J, 404, None),
            ("POST", "/api/v1/runs/%s/evaluations" % fresh, b'{}', J, 409, None),
            ("GET", "/api/v1/runs/nosuchrun/evaluations", None, {}, 404, None),
            ("GET", run + "/evaluations/99", None, {}, 404, None),
            ("GET", run + "/evaluations/0", None, {}, 404, None),
            ("GET", run + "/evaluations/abc", None, {}, 404, None),
            ("GET", "/api/v1/runs/nosuchrun/evaluations/1", None, {}, 404, None),
            # the export
            ("GET", run + "/samples?format=png", None, {}, 422, "format"),
            ("GET", run + "/samples?format=", None, {}, 422, "format"),
            ("GET", run + "/samples?n=0", None, {}, 422, "n"),
            ("GET", run + "/samples?n=10001", None, {}, 422, "n"),
            ("GET", run + "/samples?n=x", None, {}, 422, "n"),
            ("GET", run + "/samples?seed=-3", None, {}, 422, "seed"),
            ("GET", run + "/samples?count=3", None, {}, 422, "count"),
            ("GET", "/api/v1/runs/nosuchrun/samples", None, {}, 404, None),
            ("GET", "/api/v1/runs/%s/samples" % fresh, None, {}, 409, None),
            # generate
            ("POST", run + "/generate", json.dumps({"z": [z16, z16, z16, [0.0] * 99]}).encode(), J, 422, "z[3]"),
            ("POST", run + "/generate", json.dumps({"z": [z16, z16[:15] + ["x"]]}).encode(), J, 422, "z[1]"),
            ("POST", run + "/generate", json.dumps({"z": [z16, 7]}).encode(), J, 422, "z[1]"),
            ("POST", run + "/generate", b'{"z": [[' + b"0," * 15 + b'1e999]]}', J, 422, "z[0]"),
            ("POST", run + "/generate", json.dumps({"z": [z16] * 1025}).encode(), J, 422, "z"),
            ("POST", run + "/generate", b'{"z": []}', J, 422, "z"),
            ("POST", run + "/generate", b'{"z": 3}', J, 422, "z"),
            ("POST", run + "/generate", b'{}', J, 422, "z"),
            ("POST", run + "/generate", json.dumps({"z": [z16], "seed": 1}).encode(), J, 422, "seed"),
            ("POST", run + "/generate", json.dumps({"z": [z16], "scale": 9}).encode(), J, 422, "scale"),
            ("POST", run + "/generate?scale=2", json.dumps({"z": [z16], "scale": 2}).encode(), J, 422, "scale"),
            ("POST", run + "/generate?scale=0", json.dumps({"z": [z16]}).encode(), J, 422, "scale"),
            ("POST", run + "/generate", b'', J, 400, None),
            ("POST", run + "/generate", b'{"z": [[0]]', J, 400, None),
            ("POST", run + "/generate", json.dumps({"z": [z16]}).encode(), {"Content-Type": "text/plain"}, 415, None),
            ("POST", "/api/v1/runs/nosuchrun/generate", json.dumps({"z": [z16]}).encode(), J, 404, None),
            ("POST", "/api/v1/runs/%s/generate" % fresh, json.dumps({"z": [z16]}).encode(), J, 409, None),
            # interpolate
            ("GET", run + "/interpolate?steps=1", None, {}, 422, "steps"),
            ("GET", run + "/interpolate?steps=65", None, {}, 422, "steps"),
            ("GET", run + "/interpolate?from=-1", None, {}, 422, "from"),
            ("GET", run + "/interpolate?to=x", None, {}, 422, "to"),
            ("GET", run + "/interpolate?scale=9", None, {}, 422, "scale"),
            ("GET", run + "/interpolate?via=3", None, {}, 422, "via"),
            ("GET", "/api/v1/runs/nosuchrun/interpolate", None, {}, 404, None),
            ("GET", "/api/v1/runs/%s/interpolate" % fresh, None, {}, 409, None),
        ]
        for method, path, body, headers, status, field in cases:
            with self.subTest(method=method, path=path, body=body and body[:60]):
                r = d.request(method, path, body, headers)
                p = self.assertProblem(r, status, field)
                if field == "z[3]":
                    self.assertIn("z[3] has 99 numbers; this run's latent_dim is 16", p["detail"])
        # wrong methods: 405 with Allow
        for method, path, allow in [("DELETE", run + "/evaluations", {"GET", "POST"}),
                                    ("GET", run + "/generate", {"POST"}),
                                    ("POST", run + "/interpolate", {"GET"}),
                                    ("POST", run + "/samples", {"GET"})]:
            with self.subTest(method=method, path=path):
                r = d.request(method, path)
                self.assertProblem(r, 405)
                self.assertTrue(allow <= {m.strip() for m in r.header("Allow").split(",")})
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/stop" % queued_busy).status, 200)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    gandtest.main()
