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
