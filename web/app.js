// app.js: the gand dashboard. Lists runs, creates them, shows one run live
// (charts, samples, events) and steers it (pause, resume, stop, PATCH).
//
// Data flow for the selected run: GET .../metrics?since=0 (the history), then
// GET the run and its evaluations, then an EventSource on .../events?last_event_id=N. Epochs are
// deduplicated by number, so overlap between history and stream is harmless;
// EventSource reconnects by itself with Last-Event-ID (the server sends id:
// lines), and after any reconnect the page also asks .../metrics?since=<last
// epoch> so that nothing is missed even across a daemon restart.

import { api, fetchBlob, describe, problemFrom, runPath, ApiError, NetworkError } from './api.js';
import { withToken, authHeaders } from './api.js'; /* the bearer token, when gand needs one */
import {
  FIELDS, FIELD, LIVE_FIELDS, parseField, buildField, setFieldError, setFieldHelp, offerOptions,
  formatValue, sameValue, valueText, el,
} from './fields.js';
import { RunCharts, loadChartLib, fmt } from './charts.js';
import { QualityCard, TRIGGER_TEXT } from './quality.js';
import { initCreateForm } from './create.js';
import {
  ALERT_KIND_TEXT, timeOf, duration, evaluationText, alertText, alertKey, qualityEmptyText, pick,
} from './format.js';

const $ = (id) => document.getElementById(id);
const FINAL = new Set(['stopped', 'completed', 'failed']);
const POLL_MS = 3000;
const GRID_MIN_INTERVAL_MS = 700;
const APPLIES_TEXT = {
  next_iteration: 'at the next iteration',
  next_epoch: 'at the next epoch',
  now: 'now',
};
const ALERTS_FOLDED = 3; /* alerts shown before "Show all": the banner must not push the run off the screen */

/* ---- errors: shown on the page until dismissed or resolved, never swallowed ---------------- */

const errors = {
  box: $('errors'),
  items: new Map(),
  show(message, key = `e${Date.now()}${Math.random()}`) {
    let item = this.items.get(key);
    if (!item) {
      const text = el('span', { class: 'error-text' });
      const close = el('button', { type: 'button', class: 'error-close', 'aria-label': 'Dismiss this message', text: '×' });
      item = el('div', { class: 'error' }, el('strong', { text: 'Problem: ' }), text, close);
      close.addEventListener('click', () => this.clear(key));
      this.items.set(key, item);
      this.box.append(item);
      while (this.items.size > 6) this.clear(this.items.keys().next().value);
    }
    item.querySelector('.error-text').textContent = message;
  },
  clear(key) {
    const item = this.items.get(key);
    if (item) {
      item.remove();
      this.items.delete(key);
    }
  },
};

window.addEventListener('unhandledrejection', (ev) => {
  errors.show(describe(ev.reason));
});

function setStatus(id, text, kind = '') {
  const p = $(id);
  p.textContent = text;
  p.dataset.kind = kind;
}

/* ---- health ----------------------------------------------------------------------------- */

async function loadHealth() {
  const h = $('health');
  try {
    const x = await api('/healthz');
    const text = [x.status, x.backend, x.device, x.version && `v${x.version}`].filter(Boolean).join(' · ');
    h.textContent = text;
    h.title = [text, x.why].filter(Boolean).join('\n');
    h.dataset.status = x.status || '';
    showBackends(x);
    errors.clear('health');
  } catch (e) {
    h.textContent = 'gand is not answering';
    h.dataset.status = 'down';
    errors.show(describe(e), 'health');
  }
}

/* ---- the run list ------------------------------------------------------------------------ */

const runRows = new Map(); /* id → <tr> */
const lastPolled = new Map(); /* id → the run as last listed */
let view = null;
let pollTimer = 0;
let listLoaded = false;

function epochText(run) {
  return `${run.epoch ?? 0} / ${run.config ? run.config.epochs : '?'}`;
}

function renderRow(run) {
  let tr = runRows.get(run.id);
  if (!tr) {
    const btn = el('button', { type: 'button', class: 'link run-link', text: run.id });
    btn.addEventListener('click', () => selectRun(run.id));
    tr = el('tr', { 'data-run-id': run.id },
      el('th', { scope: 'row' }, btn),
      el('td', {}, el('span', { class: 'badge' }), el('span', { class: 'alert-count', hidden: true })),
      el('td', { class: 'num' }), el('td', { class: 'num' }), el('td', { class: 'num' }));
    tr.addEventListener('click', (ev) => {
      if (ev.target.closest('button') === null) selectRun(run.id);
    });
    runRows.set(run.id, tr);
  }
  const m = run.last_metrics;
  const badge = tr.cells[1].firstChild;
  badge.textContent = run.state;
  badge.dataset.state = run.state;
  if (run.reason) badge.title = run.reason;
  else badge.removeAttribute('title');
  tr.cells[2].textContent = epochText(run);
  tr.cells[3].textContent = m ? fmt(m.d_loss, 3) : '—';
  tr.cells[4].textContent = m ? fmt(m.g_loss, 3) : '—';
  showAlertCount(tr, run.alerts_total || 0, (run.alerts || []).some((a) => a.action === 'pause'));
  tr.cells[0].firstChild.title = [run.config && `${run.config.preset} on ${run.config.dataset}`,
    run.created_at && `created ${run.created_at}`].filter(Boolean).join(', ');
  const selected = view && view.id === run.id;
  tr.classList.toggle('selected', !!selected);
  if (selected) tr.cells[0].firstChild.setAttribute('aria-current', 'true');
  else tr.cells[0].firstChild.removeAttribute('aria-current');
  return tr;
}

/* The run list's ⚠ N beside the state: the runs whose rules fired, seen without opening them. */
function showAlertCount(tr, n, paused) {
  const c = tr.cells[1].querySelector('.alert-count');
  c.hidden = !(n > 0);
  c.textContent = `⚠ ${n}`;
  c.dataset.action = paused ? 'pause' : 'alert';
  c.title = `${n} alert${n === 1 ? '' : 's'}: watch rules of this run fired${paused ? ', one of them paused it' : ''}`;
}

function renderRuns(list) {
  const tbody = $('runs-table').tBodies[0];
  const sorted = [...list].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  const seen = new Set();
  lastPolled.clear();
  for (const r of sorted) lastPolled.set(r.id, r);
  sorted.forEach((run, i) => {
    seen.add(run.id);
    const live = view && view.id === run.id ? view.mergePolled(run) : run;
    const tr = renderRow(live);
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
  for (const [id, tr] of runRows) {
    if (!seen.has(id)) {
      tr.remove();
      runRows.delete(id);
    }
  }
  $('runs-empty').hidden = sorted.length > 0;
  $('runs-table').hidden = sorted.length === 0;
  $('runs-updated').textContent = `updated ${timeOf()}`;
  return sorted;
}

async function pollRuns() {
  clearTimeout(pollTimer);
  try {
    const answer = await api('/api/v1/runs');
    if (errors.items.has('poll')) {
      errors.clear('poll');
      loadHealth();
      if (!presets.size) loadPresets(); /* gand is back: what could not be loaded at start-up */
    }
    const sorted = renderRuns(answer.runs || []);
    if (!listLoaded) {
      listLoaded = true;
      if (!view) {
        const wanted = new URLSearchParams(location.hash.slice(1)).get('run');
        const pick = (wanted && sorted.find((r) => r.id === wanted)) ||
          sorted.find((r) => !FINAL.has(r.state)) || sorted[0];
        if (wanted && !sorted.some((r) => r.id === wanted)) {
          errors.show(`the page address names run ${wanted}, which gand does not have (deleted?)`, 'hash');
        }
        if (pick) selectRun(pick.id);
      }
    }
  } catch (e) {
    errors.show(`${describe(e)}; the run list retries every ${POLL_MS / 1000} s`, 'poll');
  } finally {
    pollTimer = setTimeout(pollRuns, document.hidden ? POLL_MS * 5 : POLL_MS);
  }
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) pollRuns();
});

function selectRun(id) {
  if (view && view.id === id) return;
  if (view) view.close();
  view = id ? new RunView(id) : null;
  const hash = id ? `#run=${encodeURIComponent(id)}` : ' ';
  if (location.hash !== hash) history.replaceState(null, '', hash === ' ' ? location.pathname : hash);
  for (const [rid, tr] of runRows) {
    tr.classList.toggle('selected', rid === id);
    const b = tr.cells[0].firstChild;
    if (rid === id) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
  $('run-none').hidden = !!id;
  $('run-body').hidden = !id;
  if (view) view.open();
  else document.title = 'gand';
}

window.addEventListener('hashchange', () => {
  const id = new URLSearchParams(location.hash.slice(1)).get('run');
  if (id && (!view || view.id !== id)) selectRun(id);
});

/* ---- one run ----------------------------------------------------------------------------- */

const editInputs = {};
for (const name of LIVE_FIELDS) {
  const input = buildField($('edit-fields'), FIELD[name], 'e');
  input.addEventListener('input', () => {
    input.dataset.dirty = '1';
    setFieldError(input, parseField(FIELD[name], input.value).error || '');
  });
  editInputs[name] = input;
}

class RunView {
  constructor(id) {
    this.id = id;
    this.run = null;
    this.es = null;
    this.lastSeq = 0;
    this.closed = false;
    this.hadError = false;
    this.stateEvents = 0; /* state events seen: an answer older than one must not undo it */
    this.retryTimer = 0;
    this.abort = new AbortController();
    this.sampleEpochs = [];
    this.evals = new Map(); /* id → the evaluation as last seen */
    this.alerts = new Map(); /* alertKey → alert, from the run JSON (the newest 10) and the stream */
    this.alertsUnfolded = false;
    this.grid = { busy: false, pending: false, last: -1e9, timer: 0, url: null };
    this.logged = new Set();
    this.charts = new RunCharts({
      root: $('charts'),
      lossCanvas: $('chart-loss'),
      dCanvas: $('chart-d'),
      tbody: $('epoch-table').tBodies[0],
      countEl: $('table-count'),
      zoomReset: $('zoom-reset'),
      tableDetails: $('table-details'),
      note: $('charts-note'),
    });
    this.quality = new QualityCard({
      root: $('quality'),
      canvas: $('chart-quality'),
      tbody: $('quality-table').tBodies[0],
      countEl: $('quality-count'),
      tableDetails: $('quality-details'),
      empty: $('quality-empty'),
      bestText: $('quality-best'),
      bestLink: $('best-link'),
      hist: $('histogram'),
      histCaption: $('hist-caption'),
    });
  }

  async open() {
    $('run-id').textContent = this.id;
    $('event-log').replaceChildren();
    $('charts').dataset.chart = 'loading';
    for (const id of ['run-action-status', 'edit-status', 'samples-status', 'eval-status']) setStatus(id, '');
    $('eval-table').tBodies[0].replaceChildren();
    $('eval-empty').hidden = false;
    $('quality').dataset.chart = 'loading';
    delete $('run-alerts').dataset.key;
    this.renderAlerts();
    setFieldError($('eval-samples'), '');
    for (const input of Object.values(editInputs)) {
      delete input.dataset.dirty;
      setFieldError(input, '');
    }
    const gc = $('grid-current');
    gc.removeAttribute('src');
    gc.alt = '';
    $('grid-current-cap').textContent = 'Current generator';
    const ge = $('grid-epoch');
    ge.hidden = true;
    ge.removeAttribute('src');
    delete ge.dataset.src;
    this.setStream('connecting', 'loading');
    loadChartLib().then((Chart) => {
      if (this.closed) return;
      this.charts.attach(Chart);
      this.quality.attach(Chart);
    });
    try {
      const m = await api(`${runPath(this.id)}/metrics?since=0`, { signal: this.abort.signal });
      if (this.closed) return;
      const run = await api(runPath(this.id), { signal: this.abort.signal });
      if (this.closed) return;
      this.charts.append(m.epochs || []);
      this.setRun(run);
      await this.loadEvaluations();
      if (this.closed) return;
      /* G is published at the end of each epoch: before the first there is nothing to draw */
      if ((run.epoch || 0) >= 1) this.refreshGrid();
      else $('grid-current-cap').textContent = 'The generator\'s samples appear after the first epoch.';
      /*
       * Where the stream starts. The server numbers events from 1 and each epoch
       * record is one event after at least one state event, so the number of epoch
       * records we hold is never past the last event they came from: starting there
       * replays a little (deduplicated) and misses nothing. An exact event_seq is
       * used when the API provides one.
       */
      const exact = [m.event_seq, run.event_seq].find((v) => Number.isInteger(v));
      this.connect(exact !== undefined ? exact : (m.epochs || []).length);
    } catch (e) {
      if (e.name === 'AbortError' || this.closed) return;
      errors.show(describe(e), 'view');
      this.setStream('down', 'not loaded');
    }
  }

  close() {
    this.closed = true;
    this.abort.abort();
    if (this.es) this.es.close();
    this.es = null;
    clearTimeout(this.retryTimer);
    clearTimeout(this.grid.timer);
    if (this.grid.url) URL.revokeObjectURL(this.grid.url);
    this.charts.destroy();
    this.quality.destroy();
    errors.clear('view');
    errors.clear('stream');
    errors.clear('grid');
  }

  /* ---- the event stream ---- */

  connect(after) {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    if (this.es) this.es.close();
    this.lastSeq = Math.max(this.lastSeq, after);
    const url = `${runPath(this.id)}/events?last_event_id=${this.lastSeq}`;
    const es = new EventSource(withToken(url));
    this.es = es;
    this.setStream('connecting', 'connecting');
    es.onopen = () => {
      if (this.es !== es) return;
      this.setStream('live', 'live');
      errors.clear('stream');
      if (this.hadError) {
        this.hadError = false;
        this.resync();
      }
    };
    for (const kind of ['epoch', 'state', 'config', 'evaluation', 'alert']) {
      es.addEventListener(kind, (ev) => {
        if (this.es === es) this.onEvent(kind, ev);
      });
    }
    es.onerror = () => {
      if (this.es !== es || this.closed) return;
      this.hadError = true;
      if (es.readyState === EventSource.CONNECTING) {
        this.setStream('reconnecting', `reconnecting after event ${this.lastSeq}`);
      } else {
        this.es = null;
        this.streamRefused();
      }
    };
  }

  /* EventSource gave up (the server answered with an error): say why, retry later. */
  async streamRefused() {
    const url = `${runPath(this.id)}/events?last_event_id=${this.lastSeq}`;
    let why;
    const ctrl = new AbortController();
    try {
      const res = await fetch(url, { cache: 'no-store', signal: ctrl.signal, headers: authHeaders() });
      if (res.ok) why = 'the stream was cut';
      else why = describe(await problemFrom(res, 'GET', url));
      ctrl.abort();
    } catch (e) {
      why = e.name === 'AbortError' ? 'the stream was cut' : describe(new NetworkError('GET', url, e));
    }
    if (this.closed) return;
    errors.show(`live updates of run ${this.id} stopped: ${why}; retrying in 10 s`, 'stream');
    this.setStream('down', 'not live');
    this.retryTimer = setTimeout(() => this.connect(this.lastSeq), 10000);
  }

  async resync() {
    try {
      const m = await api(`${runPath(this.id)}/metrics?since=${this.charts.lastEpoch}`, { signal: this.abort.signal });
      const run = await api(runPath(this.id), { signal: this.abort.signal });
      if (this.closed) return;
      if (this.charts.append(m.epochs || [])) this.refreshGrid();
      this.setRun(run);
      await this.loadEvaluations();
    } catch (e) {
      if (e.name !== 'AbortError' && !this.closed) errors.show(describe(e), 'view');
    }
  }

  onEvent(kind, ev) {
    const seq = Number(ev.lastEventId);
    if (Number.isFinite(seq) && seq > this.lastSeq) this.lastSeq = seq;
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch (e) {
      errors.show(`event ${ev.lastEventId} (${kind}) of run ${this.id} is not JSON: ${e.message}`);
      return;
    }
    const run = this.run;
    if (!run) return;
    if (kind === 'epoch') {
      if (!this.charts.append([data])) return;
      if (data.epoch > (run.epoch || 0)) run.epoch = data.epoch;
      run.last_metrics = data;
      this.render();
      this.refreshGrid();
    } else if (kind === 'state') {
      this.stateEvents++;
      run.state = data.state;
      run.reason = data.reason ?? null;
      if (typeof data.epoch === 'number' && data.epoch > (run.epoch || 0)) run.epoch = data.epoch;
      this.log(seq, data.at, `${data.state}${data.epoch ? ` at epoch ${data.epoch}` : ''}${data.reason ? `: ${data.reason}` : ''}`, data.state);
      this.render();
      if (FINAL.has(data.state)) {
        /* the server ends the stream after a final state (and evaluations); do not let EventSource knock again */
        if (!this.evaluationsPending()) this.endStream();
        this.resync();
      }
    } else if (kind === 'evaluation') {
      /*
       * Only an evaluation the page waited for may end a finished run's stream: the
       * replay of one that was long done (a watch evaluation each epoch) must not cut
       * the replay short; the final state event ends that.
       */
      const prior = this.evals.get(data.id);
      const awaited = !prior || prior.state === 'queued' || prior.state === 'running';
      this.showEvaluation(data);
      if (data.state === 'done' || data.state === 'failed') {
        this.log(seq, data.finished_at, `evaluation ${data.id}: ${evaluationText(data)}`, data.state === 'done' ? 'evaluation' : 'failed');
      }
      if (FINAL.has(run.state) && awaited && !this.evaluationsPending()) this.endStream();
    } else if (kind === 'config') {
      const changed = data.changed || {};
      Object.assign(run.config, changed);
      const parts = Object.entries(changed).map(([k, v]) =>
        `${k} = ${valueText(v)} (${APPLIES_TEXT[(data.applies || {})[k]] || (data.applies || {})[k] || 'applies'})`);
      this.log(seq, data.at, `changed ${parts.join(', ') || 'nothing'}`, 'config');
      this.render();
    } else if (kind === 'alert') {
      /* alerts carry no time: a replayed one would be shown at the time it was replayed */
      this.log(seq, null, alertText(data), data.action === 'pause' ? 'alert-pause' : 'alert', `epoch ${data.epoch}`);
      if (this.addAlerts([data])) this.render();
    }
  }

  /* One line of the event log; an event without a time (an alert) is placed by `when` instead. */
  log(seq, at, text, kind, when = null) {
    if (Number.isFinite(seq) && seq > 0) {
      if (this.logged.has(seq)) return;
      this.logged.add(seq);
    }
    const li = el('li', { 'data-kind': kind },
      when ? el('span', { class: 'when', text: when }) : el('time', { datetime: at || '', text: timeOf(at) }), ' ', el('span', { text }));
    const list = $('event-log');
    list.prepend(li);
    while (list.children.length > 100) list.lastElementChild.remove();
  }

  endStream() {
    if (this.es) this.es.close();
    this.es = null;
    this.setStream('ended', 'finished');
  }

  /* ---- evaluations ---- */

  async loadEvaluations() {
    try {
      const answer = await api(`${runPath(this.id)}/evaluations`, { signal: this.abort.signal });
      if (this.closed) return;
      for (const ev of answer.evaluations || []) this.showEvaluation(ev);
    } catch (e) {
      if (e.name !== 'AbortError' && !this.closed) errors.show(describe(e), 'view');
    }
  }

  evaluationsPending() {
    for (const ev of this.evals.values()) if (ev.state === 'queued' || ev.state === 'running') return true;
    return false;
  }

  /* Add or update the row of an evaluation (newest first); an older answer never undoes a newer state. */
  showEvaluation(ev) {
    const ORDER = { queued: 0, running: 1, done: 2, failed: 2 };
    const known = this.evals.get(ev.id);
    if (known && ORDER[known.state] > ORDER[ev.state]) return;
    this.evals.set(ev.id, ev);
    const tbody = $('eval-table').tBodies[0];
    let tr = tbody.querySelector(`tr[data-eval-id="${ev.id}"]`);
    if (!tr) {
      tr = el('tr', { 'data-eval-id': ev.id },
        el('th', { scope: 'row', text: String(ev.id) }), el('td', {}, el('span', { class: 'badge' })),
        el('td'), el('td'), el('td'), el('td'), el('td'), el('td'), el('td'));
      const newer = [...tbody.rows].find((r) => Number(r.dataset.evalId) < ev.id);
      tbody.insertBefore(tr, newer || null);
    }
    tr.dataset.state = ev.state;
    tr.dataset.trigger = ev.trigger || 'request';
    const badge = tr.cells[1].firstChild;
    badge.textContent = ev.state;
    badge.dataset.state = ev.state;
    tr.cells[2].textContent = TRIGGER_TEXT[ev.trigger] || ev.trigger || 'requested';
    const r = ev.result;
    const m = r && r.metrics;
    tr.cells[3].textContent = r ? String(r.epoch) : '—';
    /* a watch evaluation has no Parzen estimate: say so rather than show an empty number */
    const parzen = r && r.parzen_ll != null;
    tr.cells[4].textContent = r ? (parzen ? `${fmt(r.parzen_ll, 4)} ± ${fmt(r.stderr, 2)}` : `— (${TRIGGER_TEXT[ev.trigger] || 'no estimate'})`)
      : (ev.state === 'failed' ? ev.reason || 'failed' : '…');
    tr.cells[4].title = !r ? '' : (parzen
      ? `test images ${r.split.test[0]}..${r.split.test[1] - 1} of ${r.data}, σ on ${r.split.validation[0]}..${r.split.validation[1] - 1} of ${r.validation_data || r.data}; ${fmt(r.seconds, 2)} s`
      : `a watch evaluation: the digit classifier's metrics only, no Parzen estimate; ${fmt(r.seconds, 2)} s`);
    tr.cells[5].textContent = r && r.sigma != null ? fmt(r.sigma, 3) : '—';
    tr.cells[6].textContent = m ? fmt(m.fid, 4) : '—';
    tr.cells[6].title = m ? `precision ${fmt(m.precision, 3)}, recall ${fmt(m.recall, 3)}, KL ${fmt(m.kl, 3)} nats` : (r ? 'the data set has no digit classifier' : '');
    tr.cells[7].textContent = m ? `${m.modes} / 10` : '—';
    tr.cells[8].textContent = Number(ev.samples).toLocaleString();
    $('eval-empty').hidden = this.evals.size > 0;
    this.quality.add(ev);
  }

  /* ---- alerts ---- */

  /* Take alerts (the run JSON's and the stream's overlap); returns how many were new. */
  addAlerts(list) {
    let added = 0;
    for (const a of list || []) {
      const key = alertKey(a);
      if (this.alerts.has(key)) continue;
      this.alerts.set(key, a);
      added++;
    }
    if (added) this.renderAlerts();
    return added;
  }

  /* The banner at the top of the run: newest first, the first few unless unfolded; a pause is the loudest. */
  renderAlerts() {
    const box = $('run-alerts');
    const list = [...this.alerts.values()].map((a, i) => ({ a, i }))
      .sort((x, y) => y.a.epoch - x.a.epoch || y.i - x.i).map(({ a }) => a);
    const total = Math.max(this.run ? this.run.alerts_total || 0 : 0, list.length);
    const pauses = list.filter((a) => a.action === 'pause').length;
    box.hidden = list.length === 0;
    box.dataset.count = String(total);
    box.dataset.action = pauses ? 'pause' : 'alert';
    $('alerts-h').textContent = `⚠ ${total} alert${total === 1 ? '' : 's'}` +
      (pauses ? ` — ${pauses === 1 ? 'a watch rule' : `${pauses} watch rules`} paused the run` : '') +
      (total > list.length ? ` (the newest ${list.length} here)` : '');
    const folded = !this.alertsUnfolded && list.length > ALERTS_FOLDED;
    /* render() calls this at every event: redraw only what changed, or a screen reader hears the list again */
    const key = JSON.stringify([total, folded, list.map(alertKey)]);
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    $('alert-list').replaceChildren(...list.slice(0, folded ? ALERTS_FOLDED : list.length).map((a) =>
      el('li', { class: 'alert-item', 'data-kind': a.kind, 'data-action': a.action },
        el('div', { class: 'alert-where' },
          el('strong', { text: ALERT_KIND_TEXT[a.kind] || a.kind }),
          ` · epoch ${a.epoch} · rule ${a.rule}${a.action === 'pause' ? ' · paused the run' : ''}`),
        el('div', { class: 'alert-message', text: a.message || '' }))));
    const more = $('alerts-more');
    more.hidden = list.length <= ALERTS_FOLDED;
    more.textContent = folded ? `Show all ${list.length}` : 'Show fewer';
    more.setAttribute('aria-expanded', String(!folded));
  }

  toggleAlerts() {
    this.alertsUnfolded = !this.alertsUnfolded;
    this.renderAlerts();
  }

  async evaluate() {
    const input = $('eval-samples');
    const parsed = parseField({ name: 'samples', kind: 'int', min: 1, max: 100000 }, input.value);
    setFieldError(input, parsed.error ? `samples ${parsed.error}` : '');
    if (parsed.error) {
      setStatus('eval-status', 'Fix the number of samples first.', 'error');
      input.focus();
      return;
    }
    const btn = $('btn-evaluate');
    btn.disabled = true;
    setStatus('eval-status', 'Queueing…');
    try {
      const ev = await api(`${runPath(this.id)}/evaluations`, { method: 'POST', body: { samples: parsed.value } });
      if (this.closed) return;
      this.showEvaluation(ev);
      setStatus('eval-status', `Evaluation ${ev.id} queued: the worker runs it between two training iterations, or now if it is idle.`, 'ok');
      /* a finished run's stream has ended: follow this evaluation's events */
      if (!this.es) this.connect(this.lastSeq);
    } catch (e) {
      if (e instanceof ApiError && e.field === 'samples') setFieldError(input, e.detail || e.message);
      setStatus('eval-status', describe(e), 'error');
      errors.show(describe(e));
    } finally {
      this.render();
    }
  }

  setStream(kind, text) {
    const s = $('stream-status');
    s.dataset.stream = kind;
    s.textContent = text;
  }

  /* ---- the run's state on the page ---- */

  /* A polled run: take what the stream does not carry; keep the stream's live state. */
  mergePolled(polled) {
    if (!this.run) return polled;
    const live = this.es && $('stream-status').dataset.stream === 'live';
    const run = { ...polled };
    if (live) {
      run.state = this.run.state;
      run.reason = this.run.reason;
      run.config = { ...polled.config, ...pick(this.run.config, LIVE_FIELDS) };
    }
    if ((this.run.epoch || 0) > (run.epoch || 0)) {
      run.epoch = this.run.epoch;
      run.last_metrics = this.run.last_metrics;
    }
    this.setRun(run);
    return run;
  }

  /*
   * A run from an answer to our request. The stream may have told us of newer
   * states while the request was in flight (a resumed run is queued, then
   * running at once): those win over the answer's state.
   */
  takeAnswer(run, stateEventsBefore) {
    const merged = { ...run };
    if (this.run && this.stateEvents !== stateEventsBefore) {
      merged.state = this.run.state;
      merged.reason = this.run.reason;
    }
    if (this.run && (this.run.epoch || 0) > (merged.epoch || 0)) {
      merged.epoch = this.run.epoch;
      merged.last_metrics = this.run.last_metrics;
    }
    this.setRun(merged);
  }

  setRun(run) {
    this.run = run;
    this.addAlerts(run.alerts);
    if (!FINAL.has(run.state) && !this.es && this.lastSeq >= 0 && $('stream-status').dataset.stream === 'ended') {
      this.connect(this.lastSeq); /* resumed after completing (epochs raised) */
    }
    this.render();
  }

  render() {
    const run = this.run;
    if (!run || this.closed) return;
    const c = run.config || {};
    const epoch = run.epoch || 0;
    const state = $('run-state');
    state.textContent = run.state;
    state.dataset.state = run.state;
    const prog = $('run-progress');
    prog.max = c.epochs || 1;
    prog.value = Math.min(epoch, c.epochs || 1);
    const m = run.last_metrics;
    const bits = [`epoch ${epoch} of ${c.epochs}`];
    if (run.state === 'running' && run.iterations_per_epoch) {
      bits.push(`iteration ${run.iteration ?? 0}/${run.iterations_per_epoch}`);
    }
    if (m && m.samples_per_sec) bits.push(`${Math.round(m.samples_per_sec).toLocaleString()} img/s`);
    if (run.state === 'running' && m && m.seconds && c.epochs > epoch) {
      bits.push(`≈ ${duration(m.seconds * (c.epochs - epoch))} left`);
    }
    if (run.state === 'queued' && run.queue_position) bits.push(`position ${run.queue_position} in the queue`);
    $('run-progress-text').textContent = bits.join(' · ');
    const reason = $('run-reason');
    reason.hidden = !run.reason;
    /* a watch rule's pause: the banner above already has its message */
    const rule = run.reason && this.alerts.size ? /^watch rule \d+ \([a-z_]+\)/.exec(run.reason) : null;
    reason.textContent = !run.reason ? '' : (rule ? `Reason: ${rule[0]} paused the run; the alert above says why.` : `Reason: ${run.reason}`);
    reason.title = rule ? run.reason : '';

    const s = run.state;
    $('btn-pause').disabled = !(s === 'running' || s === 'queued');
    $('btn-resume').disabled = !(s === 'paused' || (s === 'completed' && c.epochs > epoch));
    $('btn-stop').disabled = !(s === 'running' || s === 'queued' || s === 'paused');
    $('btn-delete').hidden = !FINAL.has(s);
    $('btn-delete').disabled = !FINAL.has(s);
    /* an evaluation needs held-out images and a generator (made when training starts) */
    const split = run.split;
    const canEvaluate = !!(split && split.test) && (epoch > 0 || run.checkpoint_epoch != null || s === 'running');
    $('btn-evaluate').disabled = !canEvaluate;
    $('btn-evaluate').title = !split || !split.test
      ? `data set ${c.dataset} holds out no images to evaluate on (gand.conf: [datasets] ${c.dataset}.holdout or ${c.dataset}.test)`
      : (canEvaluate ? '' : 'the run has no generator yet');
    $('eval-split').textContent = split && split.test
      ? `σ is chosen on images ${split.validation[0]}–${split.validation[1] - 1} of ${split.validation_data || split.data} and test images ${split.test[0]}–${split.test[1] - 1} of ${split.data} are scored; the run trains on images 0–${split.train[1] - 1} of ${split.train_data}.`
      : `Data set ${c.dataset} holds out no images, so this run cannot be evaluated (gand.conf: [datasets] ${c.dataset}.holdout = N or ${c.dataset}.test = PATH).`;
    const ck = $('checkpoint-link');
    ck.hidden = run.checkpoint_epoch == null;
    if (run.checkpoint_epoch != null) {
      ck.href = withToken(`${runPath(this.id)}/checkpoint`);
      ck.textContent = `Checkpoint (epoch ${run.checkpoint_epoch})`;
    }

    for (const [name, input] of Object.entries(editInputs)) {
      if (!input.dataset.dirty && document.activeElement !== input) input.value = formatValue(c[name]);
    }
    this.renderConfig(c, run);
    if (Array.isArray(run.samples_epochs)) this.setSampleEpochs(run.samples_epochs);
    this.quality.setBest(run.best || null, withToken(`${runPath(this.id)}/checkpoint?which=best`));
    this.quality.setEmptyText(qualityEmptyText(run, datasetNamed(c.dataset)));
    if (this.alerts.size) this.renderAlerts(); /* alerts_total may have grown past what the page holds */
    document.title = `${s} ${epoch}/${c.epochs} · run ${this.id} · gand`;
    if (runRows.has(this.id)) {
      const tr = runRows.get(this.id);
      const b = tr.cells[1].firstChild;
      b.textContent = s;
      b.dataset.state = s;
      tr.cells[2].textContent = epochText(run);
      tr.cells[3].textContent = m ? fmt(m.d_loss, 3) : '—';
      tr.cells[4].textContent = m ? fmt(m.g_loss, 3) : '—';
      const alerts = [...this.alerts.values()];
      showAlertCount(tr, Math.max(run.alerts_total || 0, alerts.length), alerts.some((a) => a.action === 'pause'));
    }
  }

  renderConfig(c, run) {
    const dl = $('config-list');
    /* config.device is what the run asked for (auto, cpu, cuda); run.device what it got */
    /* a Slurm run also says which job, in which of Slurm's states, on which node */
    const slurm = run.executor === 'slurm' && run.slurm_job_id != null
      ? [['slurm job', `${run.slurm_job_id} (${run.slurm_state || '?'}${run.node ? ` on ${run.node}` : ''})`]] : [];
    const rows = [...Object.entries(c), ['running on', run.device], ...slurm, ['created', run.created_at],
      ['started', run.started_at], ['finished', run.finished_at]];
    const key = JSON.stringify(rows);
    if (dl.dataset.key === key) return;
    dl.dataset.key = key;
    dl.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v == null ? '—' : valueText(v) })]));
  }

  /* ---- samples ---- */

  refreshGrid() {
    const g = this.grid;
    if (this.closed) return;
    if (g.busy) {
      g.pending = true;
      return;
    }
    const wait = g.last + GRID_MIN_INTERVAL_MS - performance.now();
    if (wait > 0) {
      if (!g.timer) {
        g.timer = setTimeout(() => {
          g.timer = 0;
          this.refreshGrid();
        }, wait);
      }
      return;
    }
    g.busy = true;
    g.last = performance.now();
    const epoch = this.run ? this.run.epoch || 0 : 0;
    fetchBlob(`${runPath(this.id)}/samples.png?n=64&scale=2`, { signal: this.abort.signal })
      .then((blob) => {
        if (this.closed) return;
        const url = URL.createObjectURL(blob);
        const img = $('grid-current');
        const old = g.url;
        g.url = url;
        img.onload = () => {
          if (old) URL.revokeObjectURL(old);
        };
        img.src = url;
        img.alt = `64 digits drawn by the generator after epoch ${epoch}`;
        $('grid-current-cap').textContent = `Current generator, after epoch ${epoch}`;
        errors.clear('grid');
        if ($('samples-status').dataset.kind === 'error') setStatus('samples-status', '');
      })
      .catch((e) => {
        if (e.name === 'AbortError' || this.closed) return;
        setStatus('samples-status', describe(e), 'error');
        /* 409: no generator to draw yet (the run is starting); the next epoch retries */
        if (!(e instanceof ApiError && e.status === 409)) errors.show(describe(e), 'grid');
      })
      .finally(() => {
        g.busy = false;
        if (g.pending && !this.closed) {
          g.pending = false;
          this.refreshGrid();
        }
      });
  }

  setSampleEpochs(list) {
    const slider = $('grid-slider');
    if (list.length === this.sampleEpochs.length && list[list.length - 1] === this.sampleEpochs[this.sampleEpochs.length - 1]) return;
    const follow = this.sampleEpochs.length === 0 || Number(slider.value) >= this.sampleEpochs.length - 1;
    const current = this.sampleEpochs[Number(slider.value)];
    this.sampleEpochs = list.slice();
    slider.max = String(Math.max(0, list.length - 1));
    slider.disabled = list.length === 0;
    if (follow) slider.value = String(Math.max(0, list.length - 1));
    else slider.value = String(Math.max(0, list.indexOf(current)));
    this.showEpochGrid();
  }

  showEpochGrid() {
    const slider = $('grid-slider');
    const e = this.sampleEpochs[Number(slider.value)];
    const out = $('grid-slider-out');
    const img = $('grid-epoch');
    out.textContent = e === undefined ? '—' : String(e);
    slider.setAttribute('aria-valuetext', e === undefined ? 'no saved grids yet' : `epoch ${e}`);
    if (e === undefined) {
      img.hidden = true;
      return;
    }
    const src = `${runPath(this.id)}/samples/${e}.png`;
    if (img.dataset.src !== src) {
      img.dataset.src = src;
      img.src = withToken(src);
      img.alt = `the fixed-noise grid saved at epoch ${e}`;
    }
    img.hidden = false;
  }

  /* ---- actions ---- */

  async action(name) {
    const buttons = ['btn-pause', 'btn-resume', 'btn-stop', 'btn-delete'].map($);
    buttons.forEach((b) => { b.disabled = true; });
    setStatus('run-action-status', `${name}…`);
    const before = this.stateEvents;
    try {
      if (name === 'delete') {
        await api(runPath(this.id), { method: 'DELETE' });
        setStatus('run-action-status', '');
        runRows.get(this.id)?.remove();
        runRows.delete(this.id);
        selectRun(null);
        pollRuns();
        return;
      }
      const run = await api(`${runPath(this.id)}/${name}`, { method: 'POST' });
      if (this.closed) return;
      const done = { pause: 'Pause', resume: 'Resume', stop: 'Stop' }[name];
      setStatus('run-action-status', `${done} accepted: gand answered "${run.state}".`, 'ok');
      this.takeAnswer(run, before);
      if (!FINAL.has(this.run.state) && !this.es) this.connect(this.lastSeq);
    } catch (e) {
      setStatus('run-action-status', describe(e), 'error');
      errors.show(describe(e));
      this.render();
    }
  }

  async applyEdit() {
    const patch = {};
    let bad = null;
    for (const [name, input] of Object.entries(editInputs)) {
      const r = parseField(FIELD[name], input.value);
      setFieldError(input, r.error ? `${FIELD[name].name} ${r.error}` : '');
      if (r.error) {
        bad = bad || input;
        continue;
      }
      if (!sameValue(r.value, this.run.config[name])) patch[name] = r.value;
    }
    if (bad) {
      setStatus('edit-status', 'Fix the marked field first.', 'error');
      bad.focus();
      return;
    }
    if (!Object.keys(patch).length) {
      setStatus('edit-status', 'Nothing to apply: these are the run\'s current values.');
      return;
    }
    setStatus('edit-status', 'Applying…');
    const before = this.stateEvents;
    try {
      const answer = await api(runPath(this.id), { method: 'PATCH', body: patch, contentType: 'application/merge-patch+json' });
      if (this.closed) return;
      for (const input of Object.values(editInputs)) delete input.dataset.dirty;
      const changed = answer.changed || [];
      const applies = answer.applies || {};
      const text = changed.length
        ? `Applied: ${changed.map((k) => `${k} = ${valueText(answer.run.config[k])} takes effect ${APPLIES_TEXT[applies[k]] || applies[k] || '(not said)'}`).join('; ')}.`
        : 'No change: the run already had these values.';
      setStatus('edit-status', text, 'ok');
      $('edit-status').dataset.applies = JSON.stringify(applies);
      this.takeAnswer(answer.run, before);
    } catch (e) {
      const input = e instanceof ApiError && e.field ? editInputs[e.field] : null;
      if (input) {
        setFieldError(input, e.detail || e.message);
        input.focus();
      }
      setStatus('edit-status', describe(e), 'error');
      errors.show(describe(e));
    }
  }
}

$('btn-pause').addEventListener('click', () => view && view.action('pause'));
$('btn-resume').addEventListener('click', () => view && view.action('resume'));
$('btn-stop').addEventListener('click', () => view && view.action('stop'));
$('btn-delete').addEventListener('click', () => {
  if (view && window.confirm(`Delete run ${view.id} and all its files?`)) view.action('delete');
});
$('edit-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (view && view.run) view.applyEdit();
});
$('grid-slider').addEventListener('input', () => view && view.showEpochGrid());
$('eval-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (view && view.run) view.evaluate();
});
$('zoom-reset').addEventListener('click', () => view && view.charts.setZoom(null));
$('alerts-more').addEventListener('click', () => view && view.toggleAlerts());
$('grid-epoch').addEventListener('error', async () => {
  const img = $('grid-epoch');
  const src = img.dataset.src;
  if (!src || !view) return;
  try {
    await fetchBlob(src);
    setStatus('samples-status', `the grid ${src} could not be shown`, 'error');
  } catch (e) {
    setStatus('samples-status', describe(e), 'error');
    errors.show(describe(e), 'grid');
  }
});

/* ---- the create form (create.js) ------------------------------------------------------------ */

const { loadPresets, loadDatasets, showBackends, datasetNamed } = initCreateForm({
  errors,
  setStatus,
  onCreated: (run) => {
    renderRuns([...lastPolled.values(), run]);
    selectRun(run.id);
    pollRuns();
  },
});

/* ---- start ----------------------------------------------------------------------------------- */

loadPresets();
loadHealth();
loadDatasets();
pollRuns();
