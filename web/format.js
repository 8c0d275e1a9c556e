// format.js: the dashboard's words for times, durations, evaluations and alerts, and
// small helpers the views share. Pure functions of their arguments: no DOM, no state.

import { fmt } from './charts.js';
import { TRIGGER_TEXT } from './quality.js';

export const ALERT_KIND_TEXT = { d_wins: 'D wins', mode_collapse: 'Mode collapse', divergence: 'Divergence' };

export function timeOf(at) {
  const d = at ? new Date(at) : new Date();
  return Number.isNaN(d.getTime()) ? String(at) : d.toLocaleTimeString([], { hour12: false });
}

export function duration(s) {
  if (!Number.isFinite(s) || s < 0) return '';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

/* An evaluation in one line: the Parzen estimate when it has one (a watch evaluation has not), the classifier's metrics when there are. */
export function evaluationText(ev) {
  const r = ev.result;
  if (!r) return ev.reason ? `failed: ${ev.reason}` : ev.state;
  const m = r.metrics;
  const parts = [];
  if (r.parzen_ll != null) parts.push(`${fmt(r.parzen_ll, 4)} ± ${fmt(r.stderr, 2)} nats (σ ${fmt(r.sigma, 3)})`);
  else parts.push(`${TRIGGER_TEXT[ev.trigger] || ev.trigger}, no Parzen estimate`);
  if (m) parts.push(`FID ${fmt(m.fid, 4)}, precision ${fmt(m.precision, 3)}, recall ${fmt(m.recall, 3)}, ${m.modes} of 10 modes`);
  return `${parts.join('; ')} (epoch ${r.epoch}, ${Number(r.samples).toLocaleString()} samples)`;
}

export function alertText(a) {
  return `alert: ${ALERT_KIND_TEXT[a.kind] || a.kind} (rule ${a.rule}, ${a.action}): ${a.message}`;
}

/* An alert's identity: a rule fires at most once for an epoch's record or evaluation. */
export function alertKey(a) {
  return `${a.rule}/${a.kind}/${a.epoch}/${a.value}`;
}

/* Why the sample-quality card is empty: no classifier, no automatic evaluations, or not yet. */
export function qualityEmptyText(run, dataset) {
  const c = run.config || {};
  if (dataset && dataset.classifier === null) {
    return `Data set ${c.dataset} has no digit classifier (gand.conf: [datasets] ${c.dataset}.classifier = PATH; ` +
      'gand classifier train makes one), so its evaluations have no Fréchet distance, precision, recall or modes.';
  }
  if (!c.watch_every && !c.evaluate_every) return 'watch_every and evaluate_every are 0: this run has no automatic evaluations.';
  const every = [c.watch_every, c.evaluate_every].filter((n) => n > 0);
  return `The first automatic evaluation follows epoch ${Math.min(...every)}.`;
}

export function pick(obj, keys) {
  const o = {};
  for (const k of keys) if (obj && k in obj) o[k] = obj[k];
  return o;
}
