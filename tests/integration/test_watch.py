"""tests/integration/test_watch.py — watch rules in the daemon.

A rule that fires is an `alert` event (SSE and events.jsonl), an entry of the
run's `alerts`, a count in gand_run_alerts_total, and with action pause the
run pauses with the alert as its reason. A restart neither forgets nor
repeats an alert. Every bad rule is a 422 naming its field, on create and on
PATCH, and PATCH changes the rules of a live run.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402
from gandtest import tiny_config  # noqa: E402


def alerts_total(d, rid, kind):
    text = d.request("GET", "/metrics").body.decode()
    m = re.search(r'(?m)^gand_run_alerts_total\{run="%s",kind="%s"\} (\d+)$' % (rid, kind), text)
    return int(m.group(1)) if m else None


# D(G(z)) of the TINY model stays far below 0.99: this rule fires at epoch 2.
ALWAYS = {"kind": "d_wins", "d_g_z_below": 0.99, "epochs": 2}


class WatchRules(gandtest.DaemonTest):
    def test_d_wins_pauses_the_run_and_survives_a_restart(self):
        d = self.daemon().start()
        rid = d.create_run(tiny_config(epochs=6, watch=[dict(ALWAYS, action="pause")]))
        run = d.wait_for(rid, lambda r: r["state"] == "paused", what="the pause")
        self.assertEqual(run["epoch"], 2, "paused at the end of the epoch that fired")
        self.assertTrue(run["reason"].startswith("watch rule 0 (d_wins): The discriminator"),
                        run["reason"])
        self.assertEqual(run["alerts_total"], 1)
        a = run["alerts"][0]
        self.assertEqual((a["kind"], a["action"], a["epoch"], a["count"]),
                         ("d_wins", "pause", 2, 2))
        self.assertLess(a["value"], 0.99)
        self.assertEqual(a["threshold"], 0.99)
        self.assertEqual(alerts_total(d, rid, "d_wins"), 1)
        self.assertEqual(alerts_total(d, rid, "mode_collapse"), 0)
        stream = d.events(rid)  # the run is paused, so the stream stays open: stop at the alert
        for _, event, data in stream:
            if event in ("alert", "state") and data.get("state") != "queued" \
                    and data.get("state") != "running":
                break
        stream.close()
        self.assertEqual((event, data.get("kind")), ("alert", "d_wins"), "the alert comes first")
        with open(os.path.join(d.state_dir, "runs", rid, "events.jsonl")) as f:
            lines = [json.loads(l) for l in f]
        self.assertEqual([l["data"]["kind"] for l in lines if l["event"] == "alert"], ["d_wins"])

        # a restart reads the alert back; resuming, the streak goes on and does not fire again
        d.stop()
        d.start()
        self.assertEqual(d.run(rid)["alerts_total"], 1)
        self.assertEqual(alerts_total(d, rid, "d_wins"), 1)
        r = d.request("POST", "/api/v1/runs/%s/resume" % rid)
        self.assertEqual(r.status, 200, r)
        run = d.wait_for(rid, lambda r: r["state"] == "completed", what="completion")
        self.assertEqual(run["alerts_total"], 1, run["alerts"])

    def test_a_collapsed_generator_is_flagged_and_paused_and_its_best_kept(self):
        # mnist-10k has a digit classifier: every epoch gets a watch evaluation. G of the
        # TINY model after one epoch draws one or two classes: a collapse.
        d = self.daemon().start()
        sets = {s["name"]: s for s in d.get_json("/api/v1/datasets")["datasets"]}
        self.assertEqual(sets["mnist-10k"]["classifier"], "mnist-10k/mnist-10k-classifier.safetensors")
        self.assertIsNone(sets["small"]["classifier"])
        cfg = dict(gandtest.TINY, dataset="mnist-10k", epochs=50,
                   watch=[{"kind": "mode_collapse", "modes_below": 10, "action": "pause"}])
        rid = d.create_run(cfg)
        run = d.wait_for(rid, lambda r: r["state"] == "paused", what="the collapse pause")
        a = run["alerts"][-1]
        self.assertEqual((a["kind"], a["action"]), ("mode_collapse", "pause"))
        self.assertLess(a["value"], 10)
        self.assertIn("Mode collapse", run["reason"])
        evs = d.get_json("/api/v1/runs/%s/evaluations" % rid)["evaluations"]
        watch = [e for e in evs if e["trigger"] == "watch_every"]
        self.assertTrue(watch, evs)
        res = watch[0]["result"]
        self.assertIsNone(res["parzen_ll"])
        self.assertEqual(res["samples"], 1000)  # as many as mnist-10k's test images
        m = res["metrics"]
        self.assertEqual(len(m["histogram"]), 10)
        self.assertEqual(sum(m["histogram"]), 1000)
        at = [e for e in watch if e["result"]["epoch"] == a["epoch"]]
        self.assertEqual(at[0]["result"]["metrics"]["modes"], a["value"])
        self.assertEqual(a["count"], 3)  # three evaluations in a row (the default)
        self.assertEqual(a["epoch"], 3)
        self.assertGreater(m["fid"], 0)
        # the best checkpoint: the epoch of the lowest Fréchet distance, served by which=best
        fids = {e["result"]["epoch"]: e["result"]["metrics"]["fid"] for e in watch}
        best = run["best"]
        self.assertEqual(best["fid"], min(fids.values()))
        self.assertEqual(fids[best["epoch"]], best["fid"])
        r = d.request("GET", "/api/v1/runs/%s/checkpoint?which=best" % rid)
        self.assertEqual(r.status, 200, r)
        self.assertIn('-best.safetensors"', r.header("Content-Disposition"))
        self.assertProblem(d.request("GET", "/api/v1/runs/%s/checkpoint?which=first" % rid),
                           422, "which")
        text = d.request("GET", "/metrics").body.decode()
        self.assertRegex(text, r'(?m)^gand_run_frechet_distance\{run="%s"\} ' % rid)
        self.assertRegex(text, r'(?m)^gand_run_sample_modes\{run="%s"\} \d+$' % rid)
        self.assertEqual(alerts_total(d, rid, "mode_collapse"), 1)
        # a restart keeps the best checkpoint and the evaluations' metrics
        d.stop()
        d.start()
        again = d.run(rid)
        self.assertEqual(again["best"], best)
        self.assertEqual(d.get_json("/api/v1/runs/%s/evaluations" % rid)["evaluations"], evs)
        small = d.create_run(tiny_config(epochs=1))
        done = d.wait_for(small, lambda r: r["state"] == "completed", what="completion")
        self.assertIsNone(done["best"])
        self.assertProblem(d.request("GET", "/api/v1/runs/%s/checkpoint?which=best" % small), 404)

    def test_patch_changes_a_live_runs_rules(self):
        d = self.daemon().start()
        rid = d.create_run(tiny_config(epochs=1000, watch=[]))
        d.wait_for(rid, lambda r: r["epoch"] >= 1, what="epoch 1")
        r = d.request("PATCH", "/api/v1/runs/" + rid, {"watch": [dict(ALWAYS, action="pause")]},
                      headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(r.status, 200, r)
        run = d.wait_for(rid, lambda r: r["state"] == "paused", what="the pause")
        self.assertEqual(run["alerts"][0]["kind"], "d_wins")
        self.assertEqual(run["config"]["watch"], [dict(ALWAYS, action="pause")])

    def test_every_bad_rule_is_a_422_naming_its_field(self):
        d = self.daemon().start()
        bad = [
            ({"watch": {}}, "watch"),
            ({"watch": [{}] * 9}, "watch"),
            ({"watch": [{"action": "alert"}]}, "watch[0].kind"),
            ({"watch": [{"kind": "collapse"}]}, "watch[0].kind"),
            ({"watch": [{"kind": "d_wins", "action": "stop"}]}, "watch[0].action"),
            ({"watch": [{"kind": "d_wins", "d_g_z_below": 0}]}, "watch[0].d_g_z_below"),
            ({"watch": [{"kind": "d_wins", "epochs": 1001}]}, "watch[0].epochs"),
            ({"watch": [{"kind": "d_wins"}, {"kind": "mode_collapse", "modes_below": 0}]},
             "watch[1].modes_below"),
            ({"watch": [{"kind": "divergence", "evaluations": 1.5}]}, "watch[0].evaluations"),
            ({"watch": [{"kind": "divergence", "modes_below": 3}]}, "watch[0].modes_below"),
            ({"watch": [{"kind": "d_wins", "when": 1}]}, "watch[0].when"),
            ({"watch_every": -1}, "watch_every"),
        ]
        for body, field in bad:
            with self.subTest(body=body):
                self.assertProblem(d.request("POST", "/api/v1/runs", tiny_config(**body)), 422,
                                   field)
        rid = d.create_run(tiny_config(epochs=1))
        d.wait_for(rid, lambda r: r["state"] == "completed", what="completion")
        before = d.run(rid)["config"]
        for body, field in bad:
            with self.subTest(patch=body):
                r = d.request("PATCH", "/api/v1/runs/" + rid, body,
                              headers={"Content-Type": "application/merge-patch+json"})
                self.assertProblem(r, 422, field)
        self.assertEqual(d.run(rid)["config"], before, "a bad patch changes nothing")


if __name__ == "__main__":
    gandtest.main()
