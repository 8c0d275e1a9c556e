// quality.js: what the digit classifier makes of a run's samples. The sample-quality
// card charts the automatic evaluations (watch_every, evaluate_every) over the epochs:
// the Fréchet distance on its own axis, precision, recall and modes ÷ 10 on a 0..1
// axis, and the best epoch (the lowest Fréchet distance, whose checkpoint gand keeps)
// as a marker. The histogram shows the classes of the latest evaluation's samples.
//
// Requested evaluations are left out of the chart: they may use another number of
// samples or seed, so their figures do not line up with the automatic ones. The table
// under the chart holds the same numbers and takes its place without Chart.js, as
// the epoch table does for the training curves (charts.js).

import { fmt, lineDataset, chartOptions } from './charts.js';
import { el } from './fields.js';

const AUTOMATIC = new Set(['watch_every', 'evaluate_every']);
const CLASSES = 10;

/* The words for an evaluation's trigger, in tables and the event log. */
export const TRIGGER_TEXT = { request: 'requested', evaluate_every: 'evaluate_every', watch_every: 'watch' };

const SERIES = [
  { key: 'fid', label: 'FID', color: '#6a3d9a', axis: 'fid' },
  { key: 'precision', label: 'precision', color: '#1f77b4', axis: 'share' },
  { key: 'recall', label: 'recall', color: '#e6850e', axis: 'share' },
  { key: 'modes10', label: 'modes ÷ 10', color: '#2e8b57', axis: 'share', borderDash: [5, 3] },
];
const BEST_COLOR = '#c0392b';

/* The point of an evaluation: done, with the classifier's metrics; null otherwise. */
function pointOf(ev) {
  const r = ev.result;
  const m = r && r.metrics;
  if (ev.state !== 'done' || !m) return null;
  return {
    id: ev.id, epoch: r.epoch, trigger: ev.trigger, samples: r.samples, fid: m.fid, precision: m.precision,
    recall: m.recall, modes: m.modes, modes10: m.modes / CLASSES, kl: m.kl, top: m.mean_top_prob,
    histogram: m.histogram,
  };
}

/* The tooltip's line of one series: modes as a count, the rest as numbers. */
function tooltipLine(item) {
  const key = item.dataset.key;
  if (key === 'modes10') return `modes: ${Math.round(item.parsed.y * CLASSES)} of ${CLASSES}`;
  if (key === 'best') return `best: FID ${fmt(item.parsed.y)}`;
  return `${item.dataset.label}: ${fmt(item.parsed.y, key === 'fid' ? 4 : 3)}`;
}

/*
 * The card of one run. root: #quality (data-points, data-chart and data-best-epoch
 * tell tests and styles what is shown); tbody: the table's; hist: the histogram's <ol>.
 */
export class QualityCard {
  constructor({ root, canvas, tbody, countEl, tableDetails, empty, bestText, bestLink, hist, histCaption }) {
    Object.assign(this, { root, canvas, tbody, countEl, tableDetails, empty, bestText, bestLink, hist, histCaption });
    this.chart = null;
    this.points = new Map(); /* epoch → the point of the newest automatic evaluation at that epoch */
    this.latest = null; /* the newest evaluation with metrics, of any trigger: the histogram's */
    this.best = undefined; /* not yet told: the first setBest draws even a null */
    this.frame = 0;
    this.emptyText = '';
    root.dataset.points = '0';
    this.renderHistogram();
  }

  attach(Chart) {
    if (!Chart) {
      this.root.dataset.chart = 'unavailable';
      this.tableDetails.open = true; /* the table is all there is */
      return;
    }
    const datasets = SERIES.map((s) => lineDataset(s.label, s.key, {
      yAxisID: s.axis, borderColor: s.color, backgroundColor: s.color, borderDash: s.borderDash,
      /* evaluations are few and far between: each is a point, until they crowd */
      pointRadius: (ctx) => (ctx.dataset.data.length > 60 ? 0 : 2.5),
    }));
    datasets.push(lineDataset('best epoch', 'best', {
      yAxisID: 'fid', showLine: false, pointStyle: 'star', pointRadius: 9, pointHoverRadius: 11,
      borderWidth: 2, borderColor: BEST_COLOR, backgroundColor: BEST_COLOR,
    }));
    const options = chartOptions(Chart, '');
    delete options.scales.y;
    options.scales.fid = {
      position: 'left', beginAtZero: true, title: { display: true, text: 'FID (lower is better)' },
    };
    options.scales.share = {
      position: 'right', min: 0, max: 1, grid: { drawOnChartArea: false },
      title: { display: true, text: 'precision · recall · modes ÷ 10' },
    };
    options.plugins.tooltip.callbacks.label = tooltipLine;
    this.chart = new Chart(this.canvas, { type: 'line', data: { datasets }, options });
    this.root.dataset.chart = 'ready';
    this.schedule();
  }

  /* Take an evaluation (any state, any order, seen before or not); returns whether it changed what is shown. */
  add(ev) {
    const p = pointOf(ev);
    if (!p) return false;
    let changed = false;
    if (!this.latest || p.id > this.latest.id) {
      this.latest = p;
      this.renderHistogram();
      changed = true;
    }
    const known = this.points.get(p.epoch);
    if (AUTOMATIC.has(p.trigger) && (!known || p.id > known.id)) {
      this.points.set(p.epoch, p);
      changed = true;
      this.renderTable();
      this.schedule();
    }
    return changed;
  }

  /* The run's best ({epoch, fid} or null) and the URL of its checkpoint. */
  setBest(best, href) {
    const next = best ? { epoch: best.epoch, fid: best.fid } : null;
    if (JSON.stringify(next) === JSON.stringify(this.best) && (!best || this.bestLink.getAttribute('href') === href)) return;
    this.best = next;
    if (best) {
      this.root.dataset.bestEpoch = String(best.epoch);
      this.bestText.textContent = `Best: epoch ${best.epoch}, FID ${fmt(best.fid, 4)} — `;
      this.bestLink.href = href;
      this.bestLink.hidden = false;
    } else {
      delete this.root.dataset.bestEpoch;
      this.bestText.textContent = 'No best checkpoint yet: gand keeps that of the automatic evaluation with the lowest Fréchet distance.';
      this.bestLink.removeAttribute('href');
      this.bestLink.hidden = true;
    }
    this.renderTable();
    this.schedule();
  }

  /* Why there is nothing to show yet (the page knows the run's config and data set). */
  setEmptyText(text) {
    if (text === this.emptyText) return;
    this.emptyText = text;
    this.empty.textContent = text;
    this.renderHistogram();
  }

  sorted() {
    return [...this.points.values()].sort((a, b) => a.epoch - b.epoch);
  }

  renderTable() {
    const rows = this.sorted().reverse().map((p) => {
      const best = this.best && this.best.epoch === p.epoch;
      const tr = el('tr', { 'data-epoch': p.epoch, 'data-best': best ? 'true' : null },
        el('th', { scope: 'row' }, String(p.epoch), best ? el('span', { class: 'best-mark', title: 'the best epoch', text: ' ★ best' }) : ''),
        ...[fmt(p.fid, 4), fmt(p.precision, 3), fmt(p.recall, 3), `${p.modes}`, fmt(p.kl, 3), fmt(p.top, 3)]
          .map((text) => el('td', { text })),
        el('td', { class: 'trigger', text: TRIGGER_TEXT[p.trigger] || p.trigger }));
      return tr;
    });
    this.tbody.replaceChildren(...rows);
    const n = rows.length;
    this.countEl.textContent = n ? `(${n} evaluation${n === 1 ? '' : 's'})` : '';
    this.root.dataset.points = String(n);
    this.empty.hidden = n > 0;
  }

  /* One draw per frame, however many evaluations arrived in it. */
  schedule() {
    if (!this.chart || this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const pts = this.sorted();
      for (const ds of this.chart.data.datasets) {
        if (ds.key === 'best') ds.data = this.best ? [{ x: this.best.epoch, y: this.best.fid }] : [];
        else ds.data = pts.map((p) => ({ x: p.epoch, y: p[ds.key] }));
      }
      this.chart.update('none');
    });
  }

  /* The latest evaluation's classes as ten bars (CSS, so they need no chart library), each with its count. */
  renderHistogram() {
    const p = this.latest;
    const h = p && Array.isArray(p.histogram) && p.histogram.length === CLASSES ? p.histogram : null;
    this.hist.dataset.bars = h ? String(CLASSES) : '0';
    if (!h) {
      this.hist.replaceChildren();
      this.histCaption.textContent = this.emptyText || 'No evaluation with the digit classifier\'s metrics yet.';
      return;
    }
    const total = h.reduce((a, b) => a + b, 0);
    const max = Math.max(1, ...h);
    this.hist.style.setProperty('--even', String(total / CLASSES / max));
    this.hist.replaceChildren(...h.map((count, digit) => {
      const share = total ? count / total : 0;
      const pct = `${fmt(share * 100, 3)} %`;
      return el('li', { 'data-digit': digit, 'data-count': count, style: `--h: ${count / max}` },
        el('span', { class: 'bar-count', 'aria-hidden': 'true', text: count.toLocaleString() }),
        el('span', { class: 'bar', 'aria-hidden': 'true', title: `digit ${digit}: ${count.toLocaleString()} samples, ${pct}` }),
        el('span', { class: 'bar-digit', 'aria-hidden': 'true', text: String(digit) }),
        el('span', { class: 'visually-hidden', text: `digit ${digit}: ${count.toLocaleString()} samples (${pct})` }));
    }));
    this.histCaption.textContent = `Evaluation ${p.id} (${TRIGGER_TEXT[p.trigger] || p.trigger}), epoch ${p.epoch}: ` +
      `the classes the digit classifier gives ${total.toLocaleString()} samples; ${p.modes} of ${CLASSES} modes. ` +
      'The dashed line is an even share.';
  }

  destroy() {
    if (this.frame) cancelAnimationFrame(this.frame);
    if (this.chart) this.chart.destroy();
    this.chart = null;
    this.points.clear();
    this.latest = null;
    this.best = null;
    this.tbody.replaceChildren();
    this.countEl.textContent = '';
    this.root.dataset.points = '0';
    delete this.root.dataset.bestEpoch;
    this.hist.replaceChildren();
    this.hist.dataset.bars = '0';
  }
}
