"""tests/integration/test_api.py — the HTTP API of a real `gand serve`, end to end.

The life of a run (create, train, stream, pause, patch, resume, images, checkpoint,
stop, delete), the run queue, every class of bad input, /metrics, /healthz and the
OpenAPI document.
"""
import json
import os
import re
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import grid_size, png_size, tiny_config as config  # noqa: E402


class LifeOfARun(gandtest.DaemonTest):
    def test_life_of_a_run(self):
        d = self.daemon().start()

        h = d.get_json("/healthz")
        self.assertEqual(h["status"], "ok")
        self.assertEqual(h["backend"], "cpu")
        for k in ("device", "why", "version", "backends_built"):
            self.assertTrue(h[k], h)
        self.assertIn("cpu", h["backends_built"])

        sets = {s["name"]: s for s in d.get_json("/api/v1/datasets")["datasets"]}
        self.assertEqual(sets["small"]["images"], 2000)
        self.assertEqual((sets["mnist"]["images"], sets["mnist-10k"]["images"]), (60000, 10000))
        for s in sets.values():
            self.assertNotIn("path", s, "a client must never see a server path")

        # create: 201 + Location
        r = d.request("POST", "/api/v1/runs", config(epochs=500, checkpoint_every=1000))
        self.assertEqual(r.status, 201, r)
        run = r.json()
        rid = run["id"]
        self.assertEqual(r.header("Location"), "/api/v1/runs/" + rid)
        self.assertIn(run["state"], ("queued", "running"))
        self.assertEqual(run["config"]["latent_dim"], 16)
        self.assertEqual(run["config"]["lr_d"], 0.001, "absent fields take preset seed's values")
        self.assertIn(rid, [x["id"] for x in d.get_json("/api/v1/runs")["runs"]])

        # epochs arrive over SSE, numbered, in order
        stream = d.events(rid)
        self.assertEqual(stream.status, 200)
        self.assertTrue(stream.content_type.startswith("text/event-stream"))
        seen, epochs = [], []
        for seq, kind, data in stream:
            seen.append((seq, kind, data))
            if kind == "epoch":
                epochs.append(data["epoch"])
                if len(epochs) == 2:
                    break
        stream.close()
        self.assertEqual([s for s, _, _ in seen], list(range(1, len(seen) + 1)))
        self.assertEqual(epochs, [1, 2])
        self.assertEqual(seen[0][1], "state")
        for k in ("d_loss", "g_loss", "d_x", "d_g_z", "lr_d", "batch_size"):
            self.assertIn(k, [data for _, kind, data in seen if kind == "epoch"][0])
        self.assertEqual(d.run(rid)["state"], "running")

        # a running run cannot be deleted
        self.assertProblem(d.request("DELETE", "/api/v1/runs/" + rid), 409)

        # pause: training stops, a checkpoint exists
        r = d.request("POST", "/api/v1/runs/%s/pause" % rid)
        self.assertEqual(r.status, 200, r)
        d.wait_for(rid, lambda x: x["state"] == "paused", what="paused")
        paused = d.settled(rid)  # the iteration in flight may still end an epoch
        time.sleep(0.7)
        self.assertEqual(d.run(rid)["epoch"], paused["epoch"], "a paused run must not train")
        self.assertProblem(d.request("POST", "/api/v1/runs/%s/pause" % rid), 409)

        # PATCH lr_d (merge patch), says when it applies
        r = d.request("PATCH", "/api/v1/runs/" + rid, b'{"lr_d": 0.0005}',
                      {"Content-Type": "application/merge-patch+json"})
        self.assertEqual(r.status, 200, r)
        ans = r.json()
        self.assertIn("lr_d", ans["changed"])
        self.assertIn(ans["applies"]["lr_d"], ("next_iteration", "now"))
        self.assertEqual(ans["run"]["config"]["lr_d"], 0.0005)
        r = d.request("PATCH", "/api/v1/runs/" + rid, {"batch_size": 200})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["applies"]["batch_size"], "next_epoch")
        self.assertProblem(
            d.request("PATCH", "/api/v1/runs/" + rid, {"latent_dim": 8}), 422, "latent_dim")

        # resume: epochs advance again, with the new learning rate
        r = d.request("POST", "/api/v1/runs/%s/resume" % rid)
        self.assertEqual(r.status, 200, r)
        e0 = paused["epoch"]
        run = d.wait_for(rid, lambda x: x["state"] == "running" and x["epoch"] >= e0 + 2,
                         what="two more epochs after resume")
        self.assertEqual(run["last_metrics"]["lr_d"], 0.0005)
        self.assertEqual(run["last_metrics"]["batch_size"], 200)

        # samples.png: a valid PNG of the asked size; defaults n=64, scale=2, seed 0
        r = d.request("GET", "/api/v1/runs/%s/samples.png?n=10&scale=3" % rid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "image/png")
        self.assertEqual(png_size(r.body), grid_size(10, 3))
        r = d.request("GET", "/api/v1/runs/%s/samples.png" % rid)
        self.assertEqual(png_size(r.body), grid_size(64, 2))
        r = d.request("GET", "/api/v1/runs/%s/samples.png?n=1&scale=1&seed=7" % rid)
        self.assertEqual(png_size(r.body), grid_size(1, 1))

        # the fixed-noise grid of epoch 1: immutable, with ETag, 304 on If-None-Match
        self.assertIn(1, d.run(rid)["samples_epochs"])
        r = d.request("GET", "/api/v1/runs/%s/samples/1.png" % rid)
        self.assertEqual(r.status, 200, r)
        png_size(r.body)
        etag = r.header("ETag")
        self.assertTrue(etag and etag.startswith('"'), r.headers)
        self.assertIn("immutable", r.header("Cache-Control"))
        self.assertIn("max-age=31536000", r.header("Cache-Control"))
        r2 = d.request("GET", "/api/v1/runs/%s/samples/1.png" % rid,
                       headers={"If-None-Match": etag})
        self.assertEqual(r2.status, 304)
        self.assertEqual(r2.body, b"")
        self.assertProblem(d.request("GET", "/api/v1/runs/%s/samples/99999.png" % rid), 404)

        # metrics?since=N
        m = d.get_json("/api/v1/runs/%s/metrics?since=2" % rid)
        self.assertTrue(m["epochs"])
        self.assertTrue(all(e["epoch"] > 2 for e in m["epochs"]), m)
        allm = d.get_json("/api/v1/runs/%s/metrics" % rid)["epochs"]
        self.assertEqual([e["epoch"] for e in allm], list(range(1, len(allm) + 1)))

        # checkpoint: a safetensors download
        r = d.request("GET", "/api/v1/runs/%s/checkpoint" % rid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        self.assertEqual(r.header("Content-Disposition"),
                         'attachment; filename="%s.safetensors"' % rid)
        (hlen,) = struct.unpack("<Q", r.body[:8])
        header = json.loads(r.body[8:8 + hlen])
        self.assertTrue(any(k.startswith("generator.") for k in header), list(header)[:5])

        # stop: final; then the event stream replays everything and ends by itself
        r = d.request("POST", "/api/v1/runs/%s/stop" % rid)
        self.assertEqual(r.status, 200, r)
        run = d.wait_for(rid, lambda x: x["state"] == "stopped", what="stopped")
        self.assertProblem(d.request("POST", "/api/v1/runs/%s/resume" % rid), 409)
        self.assertProblem(d.request("POST", "/api/v1/runs/%s/stop" % rid), 409)
        events = list(d.events(rid, timeout=30))
        run = d.run(rid)  # the stream ends once the worker let the run go: nothing comes after
        self.assertEqual([s for s, _, _ in events], list(range(1, len(events) + 1)))
        states = [data["state"] for _, kind, data in events if kind == "state"]
        self.assertEqual(states[:2], ["queued", "running"])
        self.assertIn("paused", states)
        self.assertEqual(states[-1], "stopped")
        self.assertTrue(any(kind == "config" and "lr_d" in data["changed"]
                            for _, kind, data in events), events)
        ep = [data["epoch"] for _, kind, data in events if kind == "epoch"]
        self.assertEqual(ep, list(range(1, run["epoch"] + 1)))

        # samples of a finished run are still there, and reproducible (seed default 0)
        a = d.request("GET", "/api/v1/runs/%s/samples.png?n=4" % rid).body
        b = d.request("GET", "/api/v1/runs/%s/samples.png?n=4&seed=0" % rid).body
        self.assertEqual(a, b)

        # delete: gone, files too
        r = d.request("DELETE", "/api/v1/runs/" + rid)
        self.assertEqual(r.status, 204, r)
        self.assertProblem(d.request("GET", "/api/v1/runs/" + rid), 404)
        self.assertFalse(os.path.exists(os.path.join(d.state_dir, "runs", rid)))
        self.assertEqual(d.stop(), 0)

    def test_queued_run_starts_after_the_first(self):
        d = self.daemon().start()
        a = d.create_run(config(epochs=1000))
        b = d.create_run(config(epochs=2))
        d.wait_for(a, lambda x: x["state"] == "running", what="A running")
        rb = d.run(b)
        self.assertEqual(rb["state"], "queued")
        self.assertEqual(rb["queue_position"], 1)
        time.sleep(0.5)
        self.assertEqual(d.run(b)["state"], "queued", "one worker: B waits for A")
        self.assertEqual(d.request("POST", "/api/v1/runs/%s/stop" % a).status, 200)
        ra = d.wait_for(a, lambda x: x["state"] == "stopped", what="A stopped")
        rb = d.wait_for(b, lambda x: x["state"] == "completed", what="B completed")
        self.assertEqual(rb["epoch"], 2)
        self.assertIsNone(rb["queue_position"])
        self.assertGreaterEqual(rb["started_at"], ra["finished_at"])
        self.assertEqual(d.stop(), 0)

    def test_run_names_its_device(self):
        d = self.daemon().start()
        h = d.get_json("/healthz")
        rid = d.create_run(config(epochs=1, device="cpu"))
        run = d.wait_for(rid, lambda x: x["state"] == "completed", what="completed")
        self.assertEqual(run["config"]["device"], "cpu")
        self.assertEqual(run["device"], h["device"], "the run says which device trained it")
        self.assertEqual(d.run(d.create_run(config(epochs=1)))["config"]["device"], "auto")

        # a run that asks for cuda where there is none: refused at once when gand has no
        # CUDA built in, else (this daemon was told --device cpu and never looked for a GPU)
        # it fails when it starts, saying why
        r = d.request("POST", "/api/v1/runs", config(epochs=1, device="cuda"))
        if "cuda" not in h["backends_built"]:
            self.assertProblem(r, 422, "device")
            self.assertIn("built without CUDA", r.json()["detail"])
        else:
            self.assertEqual(r.status, 201, r)
            run = d.wait_for(r.json()["id"], lambda x: x["state"] in ("failed", "completed"),
                             what="cuda run settled")
            if run["state"] == "failed":
                self.assertIn("device cuda", run["reason"])
        self.assertEqual(d.stop(), 0)


class BadInput(gandtest.DaemonTest):
    def test_every_bad_input_gets_a_problem(self):
        d = self.daemon(extra_args=["--config", self.write_conf()]).start()
        rid = d.create_run(config(epochs=1))
        d.wait_for(rid, lambda x: x["state"] == "completed", what="completed")
        run = "/api/v1/runs/" + rid
        stopped = "/api/v1/runs/" + d.create_run(config(epochs=1000))
        self.assertEqual(d.request("POST", stopped + "/stop").status, 200)
        J = {"Content-Type": "application/json"}
        MP = {"Content-Type": "application/merge-patch+json"}
        cases = [
            # malformed JSON and non-objects: 400
            ("POST", "/api/v1/runs", b"{bad", J, 400, None),
            ("POST", "/api/v1/runs", b"[1, 2]", J, 400, None),
            ("POST", "/api/v1/runs", b'{"epochs": 1} x', J, 400, None),
            ("POST", "/api/v1/runs", b'{"a":"\x00"}', J, 400, None),
            ("PATCH", run, b"", MP, 400, None),
            ("PATCH", run, b"nul", MP, 400, None),
            # well-formed, but a field is unknown, of the wrong type or out of range: 422
            ("POST", "/api/v1/runs", b'{"nope": 1}', J, 422, "nope"),
            ("POST", "/api/v1/runs", b'{"epochs": "many"}', J, 422, "epochs"),
            ("POST", "/api/v1/runs", b'{"lr_d": -1}', J, 422, "lr_d"),
            ("POST", "/api/v1/runs", b'{"batch_size": 1.5}', J, 422, "batch_size"),
            ("POST", "/api/v1/runs", b'{"preset": "fast"}', J, 422, "preset"),
            ("POST", "/api/v1/runs", b'{"dataset": "nosuch"}', J, 422, "dataset"),
            ("POST", "/api/v1/runs", b'{"dataset": "../etc"}', J, 422, "dataset"),
            ("POST", "/api/v1/runs", b'{"device": "gpu"}', J, 422, "device"),
            # this daemon trains on the cpu: tf32 is refused at creation
            ("POST", "/api/v1/runs", b'{"precision": "tf32"}', J, 422, "precision"),
            ("POST", "/api/v1/runs", b'{"device": "cpu", "precision": "tf32"}', J, 422,
             "precision"),
            ("PATCH", run, b'{"latent_dim": 3}', MP, 422, "latent_dim"),
            ("PATCH", run, b'{"lr_g": null}', MP, 422, "lr_g"),
            ("GET", run + "/samples.png?n=0", None, {}, 422, "n"),
            ("GET", run + "/samples.png?n=1025", None, {}, 422, "n"),
            ("GET", run + "/samples.png?n=abc", None, {}, 422, "n"),
            ("GET", run + "/samples.png?scale=9", None, {}, 422, "scale"),
            ("GET", run + "/samples.png?seed=-1", None, {}, 422, "seed"),
            ("GET", run + "/samples.png?size=3", None, {}, 422, "size"),
            ("GET", run + "/metrics?since=x", None, {}, 422, "since"),
            ("GET", run + "/events?last_event_id=-2", None, {}, 422, "last_event_id"),
            ("GET", "/api/v1/runs?limit=3", None, {}, 422, "limit"),
            # a malformed header: 400
            ("GET", run + "/events", None, {"Last-Event-ID": "x"}, 400, None),
            # media types: 415
            ("POST", "/api/v1/runs", b"{}", {"Content-Type": "text/plain"}, 415, None),
            ("PATCH", run, b'{"lr_d": 0.1}', {"Content-Type": "application/x-www-form-urlencoded"},
             415, None),
            # unknown things: 404
            ("GET", "/api/v1/runs/nosuchrun", None, {}, 404, None),
            ("PATCH", "/api/v1/runs/nosuchrun", b'{"lr_d": 0.1}', MP, 404, None),
            ("POST", "/api/v1/runs/nosuchrun/pause", None, {}, 404, None),
            ("DELETE", "/api/v1/runs/nosuchrun", None, {}, 404, None),
            ("GET", "/api/v1/runs/nosuchrun/events", None, {}, 404, None),
            ("GET", "/api/v1/runs/nosuchrun/samples.png", None, {}, 404, None),
            ("GET", "/api/v1/runs/nosuchrun/samples/1.png", None, {}, 404, None),
            ("GET", "/api/v1/runs/nosuchrun/checkpoint", None, {}, 404, None),
            ("GET", "/api/v1/runs/nosuchrun/metrics", None, {}, 404, None),
            ("GET", run + "/samples/abc.png", None, {}, 404, None),
            ("GET", "/api/v1/nothing", None, {}, 404, None),
            ("GET", "/api/v2/runs", None, {}, 404, None),
            ("GET", "/api/v1/runs/", None, {}, 404, None),
            # transitions the state does not allow: 409
            ("POST", run + "/pause", None, {}, 409, None),
            ("POST", run + "/resume", None, {}, 409, None),
            ("POST", run + "/stop", None, {}, 409, None),
            ("PATCH", stopped, b'{"lr_d": 0.1}', MP, 409, None),
            ("POST", stopped + "/resume", None, {}, 409, None),
            # too large: 413 (the daemon runs with max_body_bytes = 2048)
            ("POST", "/api/v1/runs", b'{"epochs": 1' + b" " * 3000 + b"}", J, 413, None),
        ]
        for method, path, body, headers, status, field in cases:
            with self.subTest(method=method, path=path, body=body and body[:40]):
                r = d.request(method, path, body, headers)
                self.assertProblem(r, status, field)

        # wrong method: 405 with Allow
        for method, path, allow in [("PUT", "/api/v1/runs", {"GET", "POST"}),
                                    ("GET", run + "/pause", {"POST"}),
                                    ("POST", run, {"GET", "PATCH", "DELETE"}),
                                    ("DELETE", "/healthz", {"GET"})]:
            with self.subTest(method=method, path=path):
                r = d.request(method, path)
                self.assertProblem(r, 405)
                got = {m.strip() for m in r.header("Allow").split(",")}
                self.assertTrue(allow <= got, (allow, got))
                self.assertNotIn(method, got)

        # a chunked body over the limit: 413 too
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        conn.request("POST", "/api/v1/runs", body=iter([b"{" + b" " * 1500, b" " * 1500 + b"}"]),
                     headers={"Content-Type": "application/json"}, encode_chunked=True)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 413)
        self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")
        conn.close()

        # the run limit: 429 (max_runs = 3)
        d.create_run(config(epochs=1))
        self.assertProblem(d.request("POST", "/api/v1/runs", config(epochs=1)), 429)
        self.assertEqual(d.stop(), 0)

    def write_conf(self):
        path = os.path.join(self.dir, "gand.conf")
        with open(path, "w") as f:
            f.write("[limits]\nmax_body_bytes = 2048\nmax_runs = 3\n")
        return path


class ServiceEndpoints(gandtest.DaemonTest):
    def test_metrics(self):
        d = self.daemon().start()
        rid = d.create_run(config(epochs=1))
        d.wait_for(rid, lambda x: x["state"] == "completed", what="completed")
        d.request("GET", "/api/v1/runs/nosuch")
        r = d.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/plain"))
        text = r.body.decode()
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertTrue(line.startswith("gand_"), line)
                self.assertRegex(line, r"^[a-z_]+(\{[^}]*\})? [-+0-9.eE]+|NaN|[+-]Inf$")
        m = re.search(r'^gand_http_requests_total\{code="404"\} (\d+)$', text, re.M)
        self.assertTrue(m and int(m.group(1)) >= 1, text)
        self.assertRegex(text, r'(?m)^gand_http_requests_total\{code="201"\} 1$')
        self.assertRegex(text, r'(?m)^gand_build_info\{version="[^"]+",backends="[^"]*cpu')
        self.assertIn(rid, text, "the registry's per-run series are there")

    def test_openapi_describes_every_route(self):
        d = self.daemon().start()
        doc = d.get_json("/api/v1/openapi.json")
        self.assertTrue(doc["openapi"].startswith("3."))
        want = {("get", "/healthz"), ("get", "/metrics"), ("get", "/api/v1/openapi.json"),
                ("get", "/api/v1/datasets"), ("get", "/api/v1/presets"),
                ("get", "/api/v1/presets/{name}"), ("get", "/api/v1/runs"), ("post", "/api/v1/runs"),
                ("get", "/api/v1/runs/{id}"), ("patch", "/api/v1/runs/{id}"),
                ("delete", "/api/v1/runs/{id}"), ("post", "/api/v1/runs/{id}/pause"),
                ("post", "/api/v1/runs/{id}/resume"), ("post", "/api/v1/runs/{id}/stop"),
                ("get", "/api/v1/runs/{id}/metrics"), ("get", "/api/v1/runs/{id}/events"),
                ("get", "/api/v1/runs/{id}/samples.png"),
                ("get", "/api/v1/runs/{id}/samples/{epoch}.png"),
                ("get", "/api/v1/runs/{id}/checkpoint"),
                ("get", "/api/v1/runs/{id}/evaluations"), ("post", "/api/v1/runs/{id}/evaluations"),
                ("get", "/api/v1/runs/{id}/evaluations/{n}"), ("get", "/api/v1/runs/{id}/samples"),
                ("post", "/api/v1/runs/{id}/generate"), ("get", "/api/v1/runs/{id}/interpolate")}
        have = {(m, p) for p, ops in doc["paths"].items() for m in ops}
        self.assertEqual(want, have)
        # the documented config fields are exactly the ones a run has
        rid = d.create_run(config(epochs=1))
        fields = set(d.run(rid)["config"])
        self.assertEqual(set(doc["components"]["schemas"]["RunConfig"]["properties"]), fields)
        # and the file in the source tree is what is served
        with open(os.path.join(gandtest.SOURCE_ROOT, "api", "openapi.json"), "rb") as f:
            self.assertEqual(json.loads(f.read()), doc)

    def test_presets(self):
        d = self.daemon().start()
        r = d.request("GET", "/api/v1/presets")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(r.header("Cache-Control"), "no-cache")
        etag = r.header("ETag")
        self.assertRegex(etag or "", r'^"presets-[0-9a-f]+"$')
        listed = r.json()["presets"]
        # gan/config.c's gan_config_presets, in its order
        self.assertEqual([p["name"] for p in listed], ["seed", "paper", "stable"])
        doc = d.get_json("/api/v1/openapi.json")
        fields = set(doc["components"]["schemas"]["RunConfig"]["properties"])
        for p in listed:
            with self.subTest(preset=p["name"]):
                self.assertEqual(set(p), {"name", "description", "config"})
                self.assertTrue(p["description"])
                self.assertEqual(p["config"]["preset"], p["name"])
                self.assertEqual(set(p["config"]), fields, "every field, as a run's config")
                one = d.request("GET", "/api/v1/presets/" + p["name"])
                self.assertEqual(one.status, 200, one)
                self.assertEqual(one.json(), p)
                self.assertEqual(one.header("Cache-Control"), "no-cache")
                # the served values are what a run naming the preset gets, field by field
                # (dataset and epochs overridden so that the run is cheap)
                r = d.request("POST", "/api/v1/runs",
                              {"preset": p["name"], "dataset": "small", "epochs": 1})
                self.assertEqual(r.status, 201, r)
                got = r.json()["config"]
                self.assertEqual(got, dict(p["config"], dataset="small", epochs=1))
                self.assertEqual(d.run(r.json()["id"])["config"], got)
                self.assertIn(d.request("POST", "/api/v1/runs/%s/stop" % r.json()["id"]).status,
                              (200, 409))
        # the presets differ where they should (so the comparison above means something)
        cfg = {p["name"]: p["config"] for p in listed}
        self.assertEqual((cfg["seed"]["lr_d"], cfg["paper"]["optimizer"],
                          cfg["stable"]["g_activation"]), (0.001, "sgd", "leaky_relu"))

        # validators: the answer never changes while the daemon runs
        r = d.request("GET", "/api/v1/presets", headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304, r)
        self.assertEqual(r.header("ETag"), etag)
        self.assertEqual(d.request("HEAD", "/api/v1/presets").status, 200)

        # unknown preset: 404 naming it and the known ones
        p = self.assertProblem(d.request("GET", "/api/v1/presets/fast"), 404)
        self.assertEqual(p["type"], "urn:gand:problem:not-found")
        for name in ("'fast'", "seed", "paper", "stable"):
            self.assertIn(name, p["detail"])
        # unknown query parameters: 422 naming them
        for path in ("/api/v1/presets?name=seed", "/api/v1/presets/seed?verbose=1"):
            with self.subTest(path=path):
                self.assertProblem(d.request("GET", path), 422, path.split("?")[1].split("=")[0])
        # reads only
        r = d.request("POST", "/api/v1/presets", {})
        self.assertProblem(r, 405)
        self.assertIn("GET", r.header("Allow"))
        self.assertEqual(d.stop(), 0)

    def test_no_subcommand_is_serve(self):
        d = self.daemon()
        d.argv = lambda: [gandtest.GAND, "--listen", "127.0.0.1:%d" % d.port, "--state-dir",
                          d.state_dir, "--device", "cpu", "--data", "small=" + self.small]
        d.start()
        self.assertEqual(d.get_json("/healthz")["status"], "ok")
        self.assertEqual(d.stop(), 0)


# OpenBLAS's kernels for x86 CPUs from before AVX: its fallbacks for a CPU it does not know
SSE_ERA_CORES = ("Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2",
                 "Penryn", "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron_SSE3",
                 "Barcelona", "Nano", "Bobcat")


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


class BlasKernels(gandtest.DaemonTest):
    """gand has OpenBLAS choose kernels that fit the CPU where OpenBLAS fell back."""

    def test_kernels_fit_the_cpu(self):
        d = self.daemon()
        saved = os.environ.pop("OPENBLAS_CORETYPE", None)  # gand's own choice, not the caller's
        try:
            d.start()
        finally:
            if saved is not None:
                os.environ["OPENBLAS_CORETYPE"] = saved
        device = d.get_json("/healthz")["device"]
        words = set(device.replace("(", " ").replace(")", " ").split())
        if {"avx2", "fma"} <= cpu_flags() and "DYNAMIC_ARCH" in words:
            self.assertFalse(words & set(SSE_ERA_CORES),
                             "OpenBLAS runs SSE kernels on a CPU with AVX2: %s" % device)
        chose = "had it choose again with OPENBLAS_CORETYPE=" in d.log()
        self.assertEqual(d.stop(), 0)
        print("  BLAS: %s%s" % (device, " (corrected by gand)" if chose else ""))

    def test_users_choice_is_kept(self):
        d = self.daemon(env={"OPENBLAS_CORETYPE": "Prescott"})
        d.start()
        device = d.get_json("/healthz")["device"]
        if "DYNAMIC_ARCH" in device:
            self.assertIn("Prescott", device)
        self.assertNotIn("choose again", d.log())
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    gandtest.main()
