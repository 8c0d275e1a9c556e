// tests/browser/dashboard.test.mjs GAND_BINARY ARTIFACT_DIR
//
// Starts `gand serve` (loopback, free port, temporary state dir, a 500-image
// slice of the bundled data set as "small"), opens the dashboard in Debian's
// chromium through playwright-core, and uses it as a person would: creates a
// run from the form, watches charts, table and sample grids fill from the
// event stream, steers it with a PATCH, zooms a chart, pauses, resumes,
// reloads, stops, and sees an API problem reported. A second run, on the
// bundled mnist-10k with a tiny model and a digit classifier, has a watch rule
// that fires and pauses it: the alert banner, the sample-quality card, the best
// epoch and the class histogram follow it. Fails on any console error, page
// error or unexpected HTTP error. Screenshots go to ARTIFACT_DIR.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const [gandBin, outDir] = process.argv.slice(2);
if (!gandBin || !outDir) {
  console.error('usage: dashboard.test.mjs GAND_BINARY ARTIFACT_DIR');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const srcRoot = resolve(here, '../..');
const webDir = process.env.GAND_TEST_WEB_DIR || join(srcRoot, 'web');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const T = 60000; /* per wait */

mkdirSync(outDir, { recursive: true });
const tmp = mkdtempSync(join(tmpdir(), 'gand-browser-'));
const t0 = Date.now();
const say = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`);

const problems = [];
let gand = null;
let context = null;

function fail(msg) {
  throw new Error(msg);
}
function check(cond, msg) {
  if (!cond) fail(msg);
}

/* ---- a small data set: the first 500 images of the bundled one ---- */

function makeSmallDataset() {
  const raw = gunzipSync(readFileSync(join(srcRoot, 'data/mnist-10k-images-idx3-ubyte.gz')));
  check(raw.readUInt32BE(0) === 2051, 'the bundled data set is not an idx3 file');
  const n = 500;
  const rows = raw.readUInt32BE(8);
  const cols = raw.readUInt32BE(12);
  const out = Buffer.from(raw.subarray(0, 16 + n * rows * cols));
  out.writeUInt32BE(n, 4);
  const path = join(tmp, 'small-images-idx3-ubyte.gz');
  writeFileSync(path, gzipSync(out));
  return path;
}

/*
 * The digit classifier of mnist-10k, whose evaluations then have a Fréchet distance,
 * precision, recall, modes and a class histogram: the bundled one when the checkout
 * has it, else one trained here for one epoch on the 8,000 digits runs train on
 * (seconds; the 2,000 its evaluations score are held out, as for the bundled one).
 */
async function digitClassifier() {
  const bundled = join(srcRoot, 'data/mnist-10k-classifier.safetensors');
  if (existsSync(bundled)) return bundled;
  const out = join(tmp, 'mnist-10k-classifier.safetensors');
  const args = ['classifier', 'train', '--images', join(srcRoot, 'data/mnist-10k-images-idx3-ubyte.gz'),
    '--labels', join(srcRoot, 'data/mnist-10k-labels-idx1-ubyte.gz'), '--holdout', '2000', '--epochs', '1',
    '--out', out, '--backend', 'cpu'];
  say(`no ${bundled}: ${gandBin} ${args.join(' ')}`);
  const child = spawn(gandBin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
  let text = '';
  child.stdout.on('data', (b) => { text += b; });
  child.stderr.on('data', (b) => { text += b; });
  const code = await new Promise((r) => child.on('exit', (c, sig) => r(c ?? sig)));
  check(code === 0 && existsSync(out), `gand classifier train exited with ${code}:\n${text}`);
  return out;
}

/* ---- gand ---- */

let classifierPath = null;

function startGand(dataPath, listen = '127.0.0.1:0') {
  const conf = join(tmp, 'gand.conf'); /* no installed config leaks in */
  writeFileSync(conf, '# browser test: the last 100 images of "small" are held out to evaluate on\n' +
    '[datasets]\nsmall.holdout = 100\n' +
    (classifierPath ? `mnist-10k.classifier = ${classifierPath}\n` : ''));
  const args = ['serve', '--config', conf, '--listen', listen, '--state-dir', join(tmp, 'state'),
    '--data', `small=${dataPath}`, '--web-dir', webDir, '--device', 'cpu', '--log-level', 'info'];
  say(`starting ${gandBin} ${args.join(' ')}`);
  const child = spawn(gandBin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
  });
  const log = createWriteStream(join(outDir, 'gand.log'), { flags: 'a' });
  let text = '';
  return new Promise((resolveP, rejectP) => {
    const timer = setTimeout(() => rejectP(new Error(`gand did not say where it listens within 30 s:\n${text}`)), 30000);
    const onData = (buf) => {
      log.write(buf);
      text += buf.toString();
      const m = text.match(/listening on http:\/\/(127\.0\.0\.1):(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolveP({ child, base: `http://${m[1]}:${m[2]}` });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      rejectP(new Error(`gand exited (${code ?? sig}) before listening:\n${text}`));
    });
  });
}

async function stopGand() {
  if (!gand || gand.exitCode !== null) return null;
  const done = new Promise((r) => gand.once('exit', (code, sig) => r(code ?? sig)));
  gand.kill('SIGTERM');
  const timer = setTimeout(() => gand.kill('SIGKILL'), 20000);
  const code = await done;
  clearTimeout(timer);
  return code;
}

/* ---- the page, watched ---- */

function watch(page, label) {
  page.allow = []; /* [{url: RegExp, why}] of failures expected in the current step */
  const allowed = (url) => page.allow.some((a) => a.url.test(url));
  page.on('console', (m) => {
    const where = m.location() && m.location().url ? ` (${m.location().url})` : '';
    if (m.type() === 'error') {
      if (allowed(m.location().url || '')) say(`${label}: expected console error: ${m.text()}${where}`);
      else problems.push(`${label}: console error: ${m.text()}${where}`);
    } else if (m.type() === 'warning') {
      say(`${label}: console warning: ${m.text()}${where}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`${label}: page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && !allowed(r.url())) problems.push(`${label}: HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    const why = r.failure() ? r.failure().errorText : '?';
    if (!allowed(r.url()) && !/ERR_ABORTED/.test(why)) problems.push(`${label}: request failed: ${r.method()} ${r.url()}: ${why}`);
  });
}

const points = (page) => page.$eval('#charts', (e) => Number(e.dataset.points));
const stateText = (page) => page.textContent('#run-state');

async function waitPoints(page, atLeast) {
  await page.waitForFunction((n) => Number(document.querySelector('#charts').dataset.points) >= n, atLeast, { timeout: T });
  return points(page);
}

async function imgLoaded(page, sel, srcPart) {
  await page.waitForFunction(([s, part]) => {
    const i = document.querySelector(s);
    return i && !i.hidden && i.complete && i.naturalWidth > 0 && (!part || i.src.includes(part));
  }, [sel, srcPart || ''], { timeout: T });
  return page.$eval(sel, (i) => ({ w: i.naturalWidth, h: i.naturalHeight, src: i.src }));
}

async function contiguous(page) {
  return page.evaluate(() => {
    const rows = [...document.querySelectorAll('#epoch-table tbody tr')].map((tr) => Number(tr.cells[0].textContent));
    const out = { rows: rows.length, tableOk: rows.every((e, i) => i === 0 || rows[i - 1] === e + 1) };
    const c = window.Chart && window.Chart.getChart('chart-loss');
    if (c) {
      const xs = c.data.datasets[0].data.map((p) => p.x);
      out.chartPoints = xs.length;
      out.chartOk = xs.every((x, i) => x === i + 1);
    }
    return out;
  });
}

/*
 * A run whose watch rule fires, created from the form: mnist-10k with the tiny model
 * for 2 epochs; d_wins below 0.99 for one epoch fires at epoch 1 whatever G does, and
 * pauses the run. The banner, the reason, the log and the run list show the alert;
 * a PATCH of the rules sends an array; resumed, the run completes with a watch
 * evaluation at each epoch: two points on the sample-quality chart, the best one
 * starred and downloadable, and ten bars of the latest histogram. Returns its id.
 */
async function watchedRun(page, base, fields) {
  say('a run whose watch rule fires and pauses it: alert banner, sample quality, best epoch, histogram');
  const rules = [{ kind: 'd_wins', action: 'pause', d_g_z_below: 0.99, epochs: 1 }];
  for (const [k, v] of Object.entries({ ...fields, batch_size: '100', epochs: '2' })) await page.fill(`#f-${k}`, v);
  await page.selectOption('#f-dataset', 'mnist-10k');
  await page.selectOption('#f-device', 'cpu');
  await page.fill('#f-watch', JSON.stringify(rules));
  const [req, resp] = await Promise.all([
    page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/runs'),
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/v1/runs'),
    page.click('#create-form button[type=submit]'),
  ]);
  const sentWatch = req.postDataJSON().watch;
  check(Array.isArray(sentWatch) && JSON.stringify(sentWatch) === JSON.stringify(rules),
    `the form sent watch ${JSON.stringify(sentWatch)}, not the array typed`);
  check(resp.status() === 201, `POST /api/v1/runs answered ${resp.status()}: ${await resp.text()}`);
  const id = (await resp.json()).id;
  await page.waitForFunction((i) => document.querySelector('#run-id').textContent === i, id);

  /* the alert: at the top of the run, styled as a pause, in the reason, the log and the run list */
  await page.waitForSelector('#run-alerts .alert-item[data-action="pause"]');
  await page.waitForFunction(() => document.querySelector('#run-state').textContent === 'paused');
  const banner = await page.$eval('#run-alerts', (b) => ({
    action: b.dataset.action, head: b.querySelector('h3').textContent, item: b.querySelector('.alert-item[data-action="pause"]').textContent,
    top: b.getBoundingClientRect().top, progress: document.querySelector('#run-progress').getBoundingClientRect().top,
  }));
  check(banner.action === 'pause' && /paused the run/.test(banner.head) && /D wins · epoch 1 · rule 0 · paused the run/.test(banner.item) &&
    /discriminator is winning/.test(banner.item), `the alert banner shows ${JSON.stringify(banner)}`);
  check(banner.top < banner.progress, 'the alert banner is not above the run\'s progress');
  check(/watch rule 0 \(d_wins\)/.test(await page.textContent('#run-reason')), `the reason reads "${await page.textContent('#run-reason')}"`);
  await page.waitForFunction(() => [...document.querySelectorAll('#event-log li[data-kind="alert-pause"]')].some((li) => /^epoch 1 alert: D wins/.test(li.textContent)));
  await page.waitForFunction((i) => /⚠ [1-9]/.test(document.querySelector(`#runs-table tr[data-run-id="${i}"] .alert-count:not([hidden])`)?.textContent || ''), id);
  say(`alert shown: ${banner.head}; ${banner.item.slice(0, 90)}…`);

  /* steer the rules: the PATCH body holds an array, not text */
  await page.waitForFunction(() => document.querySelector('#e-watch').value.includes('d_wins'));
  await page.fill('#e-watch', '[]');
  const [patchReq] = await Promise.all([
    page.waitForRequest((r) => r.method() === 'PATCH'),
    page.click('#edit-form button[type=submit]'),
  ]);
  check(JSON.stringify(patchReq.postDataJSON()) === '{"watch":[]}', `the PATCH of the rules sent ${patchReq.postData()}`);
  await page.waitForFunction(() => /Applied: watch = \[\] takes effect/.test(document.querySelector('#edit-status').textContent));

  /* resumed, it completes: a watch evaluation at each epoch */
  await page.click('#btn-resume');
  await page.waitForFunction(() => document.querySelector('#run-state').textContent === 'completed', null, { timeout: 120000 });
  await page.waitForFunction(() => document.querySelector('#quality').dataset.points === '2');
  const run = await (await fetch(`${base}/api/v1/runs/${id}`)).json();
  check(run.best && Number.isInteger(run.best.epoch) && run.alerts_total >= 1, `the run has best ${JSON.stringify(run.best)}, ${run.alerts_total} alerts`);
  await page.waitForFunction((e) => document.querySelector('#quality').dataset.bestEpoch === String(e), run.best.epoch);
  const chart = await page.evaluate(() => {
    const c = window.Chart.getChart('chart-quality');
    return Object.fromEntries(c.data.datasets.map((d) => [d.key, d.data]));
  });
  check(['fid', 'precision', 'recall', 'modes10'].every((k) => chart[k].length === 2 && chart[k].every((p) => Number.isFinite(p.y))) &&
    chart.precision.concat(chart.recall, chart.modes10).every((p) => p.y >= 0 && p.y <= 1),
  `the sample-quality chart holds ${JSON.stringify(chart)}`);
  check(chart.best.length === 1 && chart.best[0].x === run.best.epoch && chart.best[0].y === run.best.fid,
    `the best marker is ${JSON.stringify(chart.best)}, the run's best ${JSON.stringify(run.best)}`);
  const bestText = await page.textContent('.best');
  check(new RegExp(`^Best: epoch ${run.best.epoch}, FID [0-9.]+ — download its checkpoint$`).test(bestText), `the best line reads "${bestText}"`);
  const href = await page.getAttribute('#best-link', 'href');
  check(href === `/api/v1/runs/${id}/checkpoint?which=best`, `the best checkpoint's link is ${href}`);
  const best = await fetch(`${base}${href}`);
  check(best.ok && /best\.safetensors/.test(best.headers.get('content-disposition') || ''), `GET ${href} answered ${best.status}`);
  await best.arrayBuffer();
  const rows = await page.$$eval('#quality-table tbody tr', (trs) => trs.map((tr) => [tr.dataset.epoch, tr.dataset.best || '', tr.cells.length]));
  check(JSON.stringify(rows.map((r) => r[0])) === '["2","1"]' && rows.filter((r) => r[1]).length === 1 &&
    rows.find((r) => r[1])[0] === String(run.best.epoch), `the sample-quality table rows are ${JSON.stringify(rows)}`);

  /* the latest evaluation's classes: ten bars whose counts add up to its samples */
  const evals = (await (await fetch(`${base}/api/v1/runs/${id}/evaluations`)).json()).evaluations;
  const last = evals.filter((e) => e.state === 'done' && e.result.metrics).pop();
  const bars = await page.$$eval('#histogram li', (ls) => ls.map((li) => [Number(li.dataset.count), li.querySelector('.visually-hidden').textContent,
    li.querySelector('.bar').getBoundingClientRect().height]));
  check(bars.length === 10 && JSON.stringify(bars.map((b) => b[0])) === JSON.stringify(last.result.metrics.histogram) &&
    bars.every((b, d) => new RegExp(`^digit ${d}: [0-9,]+ samples`).test(b[1])),
  `the histogram shows ${JSON.stringify(bars)}; evaluation ${last.id} has ${JSON.stringify(last.result.metrics.histogram)}`);
  const tallest = bars.reduce((a, b) => (b[0] > a[0] ? b : a));
  check(tallest[2] > 100, `the tallest bar is ${tallest[2]} px high`);
  check(new RegExp(`^Evaluation ${last.id} \\(watch\\), epoch 2`).test(await page.textContent('#hist-caption')),
    `the histogram's caption reads "${await page.textContent('#hist-caption')}"`);

  /* watch evaluations in the evaluations table and the log: no Parzen estimate, their FID and modes */
  const watchRows = await page.$$eval('#eval-table tbody tr[data-trigger="watch_every"]', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  check(watchRows.length === 2 && watchRows.every((r) => r[2] === 'watch' && r[4] === '— (watch)' && r[5] === '—' &&
    /^[0-9.]+$/.test(r[6]) && /^\d+ \/ 10$/.test(r[7])), `the watch evaluations' rows are ${JSON.stringify(watchRows)}`);
  await page.waitForFunction(() => [...document.querySelectorAll('#event-log li')].some((li) =>
    /evaluation \d+: watch, no Parzen estimate; FID [0-9.]+, precision [0-9.]+, recall [0-9.]+, \d+ of 10 modes \(epoch 2/.test(li.textContent)));
  await page.locator('.quality-card').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(outDir, 'sample-quality.png'), fullPage: true });
  say(`run ${id}: 2 evaluated epochs charted, best epoch ${run.best.epoch} (FID ${run.best.fid.toFixed(1)}), histogram ${last.result.metrics.histogram.join(' ')}`);
  return id;
}

/* ---- the test ---- */

async function main() {
  const small = makeSmallDataset();
  classifierPath = await digitClassifier();
  const started = await startGand(small);
  gand = started.child;
  const base = started.base;
  say(`gand listens on ${base}`);

  const profile = join(tmp, 'chromium-profile');
  mkdirSync(profile);
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    timeout: T,
  });
  context.setDefaultTimeout(T);
  const page = context.pages()[0] || await context.newPage();
  watch(page, 'page');

  say('open the dashboard');
  const resp = await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
  check(resp.ok(), `GET / answered ${resp.status()}`);
  await page.waitForSelector('#f-dataset option[value="small"]', { state: 'attached' });
  await page.waitForFunction(() => !/connecting/.test(document.querySelector('#health').textContent));
  say(`health: ${await page.textContent('#health')}`);
  check(!(await page.isVisible('#run-body')), 'a run is shown before any exists');

  say('the form is filled from the presets gand serves');
  const presetsResp = await fetch(`${base}/api/v1/presets`);
  check(presetsResp.ok, `GET /api/v1/presets answered ${presetsResp.status}: ${await presetsResp.clone().text()}`);
  const served = (await presetsResp.json()).presets;
  check(served.length >= 2 && served[0].name === 'seed', `GET /api/v1/presets: ${JSON.stringify(served).slice(0, 300)}`);
  await page.waitForSelector('#f-preset:not([disabled])');
  const options = await page.$$eval('#f-preset option', (os) => os.map((o) => [o.value, o.textContent]));
  check(JSON.stringify(options) === JSON.stringify(served.map((p) => [p.name, p.name])),
    `the preset options ${JSON.stringify(options)} are not the served presets' names`);
  check(await page.inputValue('#f-preset') === 'seed', 'preset seed is not chosen at start');
  /* the chosen preset's description is the line under the select */
  const presetHelp = async (p) => {
    const help = await page.textContent('#f-preset-help');
    check(p.description && help === p.description, `with preset ${p.name} the line under the select reads "${help}", ` +
      `gand describes it as "${p.description}"`);
    check(await page.isVisible('#f-preset-help'), 'the preset description is not visible');
  };
  await presetHelp(served[0]);
  /* every field of the form shows the chosen preset's served value */
  const formMatches = async (p) => {
    const shown = await page.$$eval('#create-fields [data-field]', (ds) => ds.map((d) => [d.dataset.field, d.querySelector('input, select, textarea').value]));
    check(shown.length >= 10, `the form has only ${shown.length} fields`);
    /* an array (the watch rules) is shown as JSON text */
    const same = (v, want) => (typeof want === 'object' ? JSON.stringify(JSON.parse(v)) === JSON.stringify(want) : String(want) === v);
    const wrong = shown.filter(([k, v]) => !(k in p.config) || !same(v, p.config[k]));
    check(wrong.length === 0, `with preset ${p.name} the form shows ${JSON.stringify(wrong)}, gand serves ` +
      JSON.stringify(Object.fromEntries(wrong.map(([k]) => [k, p.config[k]]))));
  };
  await formMatches(served[0]);
  for (const p of [...served.slice(1), served[0]]) {
    await page.selectOption('#f-preset', p.name);
    await formMatches(p);
    await presetHelp(p);
    if (p.name === 'stable') {
      const ema = await page.inputValue('#f-g_ema');
      check(ema === '0.9995', `with preset stable g_ema shows "${ema}", not 0.9995 (gand serves ${p.config.g_ema})`);
    }
  }
  check(new Set(served.map((p) => p.description)).size === served.length, 'two presets have the same description');
  const paper = served.find((p) => p.name === 'paper');
  check(paper && paper.config.lr_d !== served[0].config.lr_d, 'presets seed and paper do not differ in lr_d');
  check(served.some((p) => p.name === 'stable'), 'gand serves no preset stable');
  say(`${served.map((p) => p.name).join(', ')}: each fills the form with its served values and shows its description`);

  say('the device select offers the backends gand was built with');
  const health = await (await fetch(`${base}/healthz`)).json();
  const built = String(health.backends_built || '').split(',').filter(Boolean);
  check(built.includes('cpu') && health.backend === 'cpu', `/healthz: ${JSON.stringify(health)}`);
  const devices = await page.$$eval('#f-device option', (os) => os.map((o) => o.value));
  const wantDevices = ['auto', ...['cpu', 'cuda'].filter((b) => built.includes(b))];
  check(JSON.stringify(devices) === JSON.stringify(wantDevices),
    `the device select offers ${JSON.stringify(devices)}; gand was built with ${health.backends_built}, so ${JSON.stringify(wantDevices)}`);
  check(await page.inputValue('#f-device') === 'auto', 'device auto is not chosen at start');
  const deviceHelp = await page.textContent('#f-device-help');
  check(/^auto: cpu\b/.test(deviceHelp), `the device help says "${deviceHelp}"; gand runs on ${health.backend}`);
  check(/auto \| cpu/.test(await page.textContent('[data-field="device"] .meta')), 'the device field does not list its options');
  say(`built ${health.backends_built}: offered ${devices.join(', ')}; "${deviceHelp}"`);

  say('create a run from the form');
  const fields = { latent_dim: '16', g_hidden: '32', d_units: '16', d_pieces: '2', batch_size: '50', epochs: '3000' };
  for (const [k, v] of Object.entries(fields)) await page.fill(`#f-${k}`, v);
  await page.selectOption('#f-dataset', 'small');
  await page.selectOption('#f-device', 'cpu');
  const [createReq, createResp] = await Promise.all([
    page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/runs'),
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/v1/runs'),
    page.click('#create-form button[type=submit]'),
  ]);
  const sent = createReq.postDataJSON();
  const want = { preset: 'seed', dataset: 'small', device: 'cpu', latent_dim: 16, g_hidden: 32, d_units: 16, d_pieces: 2, batch_size: 50, epochs: 3000 };
  check(JSON.stringify(Object.keys(sent).sort()) === JSON.stringify(Object.keys(want).sort()) &&
        Object.entries(want).every(([k, v]) => sent[k] === v),
  `the form sent ${JSON.stringify(sent)}, expected only the changed fields ${JSON.stringify(want)}`);
  check(createResp.status() === 201, `POST /api/v1/runs answered ${createResp.status()}`);
  const created = await createResp.json();
  const runId = created.id;
  check(created.config.device === 'cpu', `the run's config.device is ${created.config.device}, asked for cpu`);
  say(`created run ${runId} (config.device ${created.config.device})`);
  await page.waitForFunction((id) => document.querySelector('#run-id').textContent === id, runId);
  await page.waitForSelector(`#runs-table tr[data-run-id="${runId}"]`);

  say('charts fill from the event stream');
  await page.waitForFunction(() => document.querySelector('#charts').dataset.chart !== 'loading');
  const chartState = await page.$eval('#charts', (e) => e.dataset.chart);
  check(chartState === 'ready', `the chart library did not load (data-chart=${chartState}): is Chart.js served at ` +
    '/javascript/chart.js/chart.min.js (gand\'s javascript_dir, Debian libjs-chart.js)?');
  let n = await waitPoints(page, 5);
  await page.waitForFunction(() => document.querySelectorAll('#epoch-table tbody tr').length >= 5);
  const inChart = await page.evaluate(() => window.Chart.getChart('chart-loss').data.datasets.map((d) => d.data.length));
  check(inChart.every((k) => k >= 5), `the loss chart has ${inChart} points`);
  await page.waitForFunction(() => document.querySelector('#stream-status').dataset.stream === 'live');
  say(`${n} epochs shown; loss chart datasets hold ${inChart} points; stream live`);
  /* "small" has no digit classifier: the sample-quality card says so rather than stay blank */
  await page.waitForFunction(() => /small has no digit classifier/.test(document.querySelector('#quality-empty').textContent));
  check(await page.isVisible('#quality-empty') && await page.$eval('#histogram', (h) => h.dataset.bars) === '0',
    'the sample-quality card of a run without a classifier does not say why it is empty');

  say('sample grids');
  const cur = await imgLoaded(page, '#grid-current');
  check(cur.w > 100 && cur.src.startsWith('blob:'), `the current grid is ${JSON.stringify(cur)}`);
  const saved = await imgLoaded(page, '#grid-epoch', '/samples/');
  say(`current grid ${cur.w}×${cur.h}; saved grid ${saved.src.replace(base, '')} ${saved.w}×${saved.h}`);

  say('steer the run: PATCH lr_d and batch_size');
  await page.fill('#e-lr_d', '0.0005');
  await page.fill('#e-batch_size', '25');
  const [patchReq] = await Promise.all([
    page.waitForRequest((r) => r.method() === 'PATCH'),
    page.click('#edit-form button[type=submit]'),
  ]);
  check(patchReq.headers()['content-type'] === 'application/merge-patch+json', `PATCH sent as ${patchReq.headers()['content-type']}`);
  check(JSON.stringify(patchReq.postDataJSON()) === JSON.stringify({ lr_d: 0.0005, batch_size: 25 }),
    `PATCH body ${patchReq.postData()}`);
  await page.waitForFunction(() => /lr_d = 0\.0005 takes effect at the next iteration/.test(document.querySelector('#edit-status').textContent) &&
    /batch_size = 25 takes effect at the next epoch/.test(document.querySelector('#edit-status').textContent));
  say(`edit status: ${await page.textContent('#edit-status')}`);
  await page.waitForFunction(() => [...document.querySelectorAll('#event-log li')].some((li) => /changed .*lr_d = 0\.0005/.test(li.textContent)));
  await page.waitForFunction(() => [...document.querySelectorAll('#epoch-table tbody tr')].some((tr) => tr.cells[11].textContent === '25'));
  say('the config event arrived and epochs now report batch 25');

  say('zoom a chart, and keep the zoom while epochs arrive');
  await page.locator('#chart-loss').scrollIntoViewIfNeeded();
  const box = await page.locator('#chart-loss').boundingBox();
  const area = await page.evaluate(() => window.Chart.getChart('chart-loss').chartArea);
  const y = box.y + (area.top + area.bottom) / 2;
  await page.mouse.move(box.x + area.left + 10, y);
  await page.mouse.down();
  await page.mouse.move(box.x + (area.left + area.right) / 2, y, { steps: 5 });
  await page.mouse.up();
  const zoom = await page.evaluate(() => {
    const c = window.Chart.getChart('chart-loss');
    return { min: c.options.scales.x.min, max: c.options.scales.x.max };
  });
  check(Number.isFinite(zoom.min) && Number.isFinite(zoom.max) && zoom.max > zoom.min, `dragging did not zoom: ${JSON.stringify(zoom)}`);
  n = await points(page);
  await waitPoints(page, n + 3);
  const after = await page.evaluate(() => {
    const c = window.Chart.getChart('chart-loss');
    const d = window.Chart.getChart('chart-d');
    return { min: c.scales.x.min, max: c.scales.x.max, dmin: d.scales.x.min, dmax: d.scales.x.max };
  });
  check(after.min === zoom.min && after.max === zoom.max && after.dmin === zoom.min && after.dmax === zoom.max,
    `appending epochs changed the zoom ${JSON.stringify(zoom)} to ${JSON.stringify(after)}`);
  say(`zoomed to epochs ${zoom.min}–${zoom.max}; unchanged after 3 more epochs`);
  await page.click('#zoom-reset');

  say('pause');
  await page.click('#btn-pause');
  await page.waitForFunction(() => document.querySelector('#run-state').textContent === 'paused');
  await page.waitForFunction((id) => document.querySelector(`#runs-table tr[data-run-id="${id}"] .badge`).textContent === 'paused', runId);
  await page.waitForFunction(() => [...document.querySelectorAll('#event-log li')].some((li) => /^\S+ paused/.test(li.textContent)));
  check(await page.isEnabled('#btn-resume') && !(await page.isEnabled('#btn-pause')), 'buttons do not follow the paused state');
  say(`paused at ${await page.textContent('#run-progress-text')}`);

  say('evaluate the paused run: queued, then its result arrives over the event stream');
  check(/test images 450–499 of small\//.test(await page.textContent('#eval-split')),
    `the evaluation panel names the held-out images as: ${await page.textContent('#eval-split')}`);
  await page.fill('#eval-samples', '300');
  const [evalReq, evalResp] = await Promise.all([
    page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname.endsWith('/evaluations')),
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/evaluations')),
    page.click('#btn-evaluate'),
  ]);
  check(JSON.stringify(evalReq.postDataJSON()) === '{"samples":300}', `POST evaluations sent ${evalReq.postData()}`);
  check(evalResp.status() === 202, `POST evaluations answered ${evalResp.status()}`);
  await page.waitForFunction(() => {
    const tr = document.querySelector('#eval-table tbody tr[data-eval-id="1"]');
    return tr && tr.dataset.state === 'done';
  });
  const evalRow = await page.$eval('#eval-table tbody tr[data-eval-id="1"]', (tr) => [...tr.cells].map((c) => c.textContent));
  check(evalRow[2] === 'requested' && /^-?[0-9.e+-]+ ± [0-9.e+-]+$/.test(evalRow[4]) && evalRow[6] === '—' &&
    evalRow[8].replace(/\D/g, '') === '300', `the evaluation row shows ${JSON.stringify(evalRow)}`);
  await page.waitForFunction(() => [...document.querySelectorAll('#event-log li')].some((li) => /evaluation 1: .* nats/.test(li.textContent)));
  say(`evaluation 1: ${evalRow.join(' | ')}`);

  say('the slider shows an older saved grid');
  await page.$eval('#grid-slider', (s) => {
    s.value = '0';
    s.dispatchEvent(new Event('input', { bubbles: true }));
  });
  const first = await imgLoaded(page, '#grid-epoch', '/samples/1.png');
  check(await page.textContent('#grid-slider-out') === '1', 'the slider label does not say epoch 1');
  say(`epoch-1 grid ${first.w}×${first.h}`);
  await page.waitForTimeout(500); /* let the last epoch of the pause settle into the charts */

  say('screenshots');
  await page.screenshot({ path: join(outDir, 'desktop.png') });
  await page.screenshot({ path: join(outDir, 'desktop-full.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(400);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `at phone width the page is ${overflow}px wider than the screen`);
  await page.screenshot({ path: join(outDir, 'phone.png') });
  await page.screenshot({ path: join(outDir, 'phone-full.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  say('resume, reload mid-run: history + stream without duplicates or gaps');
  await page.click('#btn-resume');
  await page.waitForFunction(() => document.querySelector('#run-state').textContent === 'running');
  n = await waitPoints(page, (await points(page)) + 3);
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.waitForFunction((id) => document.querySelector('#run-id').textContent === id, runId);
  await page.waitForFunction(() => document.querySelector('#charts').dataset.chart === 'ready');
  await waitPoints(page, n + 5);
  const c1 = await contiguous(page);
  check(c1.tableOk && c1.chartOk, `after a reload the epochs are not 1, 2, 3, … once each: ${JSON.stringify(c1)}`);
  say(`after reload: ${c1.chartPoints} chart points, epochs contiguous, no duplicates`);

  say('restart gand: the page shows the outage, the stream reconnects with Last-Event-ID, nothing is missed');
  const port = new URL(base).port;
  const shownBefore = await points(page);
  const eventRequests = [];
  const onRequest = (r) => {
    /* allHeaders: what went on the wire, Last-Event-ID included (headers() omits it) */
    if (new URL(r.url()).pathname.endsWith('/events')) eventRequests.push(r.allHeaders().then((h) => h['last-event-id'] || null, () => null));
  };
  page.on('request', onRequest);
  page.allow = [{ url: new RegExp(`^${base.replace(/[.]/g, '\\.')}/`) }];
  check(await stopGand() === 0, 'gand did not exit cleanly on SIGTERM');
  await page.waitForFunction(() => ['reconnecting', 'down'].includes(document.querySelector('#stream-status').dataset.stream));
  await page.waitForFunction(() => /cannot reach gand/.test(document.querySelector('#errors').textContent), null, { timeout: 15000 });
  say(`outage shown: ${(await page.textContent('#errors')).trim().slice(0, 140)}`);
  gand = (await startGand(small, `127.0.0.1:${port}`)).child;
  await page.waitForFunction(() => document.querySelector('#stream-status').dataset.stream === 'live');
  await waitPoints(page, shownBefore + 5);
  await page.waitForFunction(() => !/cannot reach gand/.test(document.querySelector('#errors').textContent), null, { timeout: 15000 });
  page.allow = [];
  page.off('request', onRequest);
  const lastEventIds = await Promise.all(eventRequests);
  check(lastEventIds.some((h) => h !== null && Number(h) > 0),
    `no reconnect of the event stream sent Last-Event-ID (saw ${JSON.stringify(lastEventIds)})`);
  const c3 = await contiguous(page);
  check(c3.tableOk && c3.chartOk, `after the restart the epochs are not 1, 2, 3, … once each: ${JSON.stringify(c3)}`);
  say(`reconnected (Last-Event-ID ${lastEventIds.filter(Boolean).join(', ')}); ${c3.chartPoints} epochs, contiguous`);

  say('an API problem is shown with its detail and field');
  page.allow = [{ url: /\/api\/v1\/runs$/ }];
  await page.evaluate(() => {
    const s = document.querySelector('#f-dataset');
    s.append(new Option('no-such-set', 'no-such-set'));
    s.value = 'no-such-set';
  });
  await page.click('#create-form button[type=submit]');
  await page.waitForFunction(() => /field: dataset/.test(document.querySelector('#errors').textContent));
  const shown = await page.textContent('#create-status');
  check(/422/.test(shown) && /dataset/.test(shown), `the create form says: ${shown}`);
  check(await page.getAttribute('#f-dataset', 'aria-invalid') === 'true', 'the bad field is not marked');
  say(`shown: ${shown}`);
  await page.selectOption('#f-dataset', 'small');
  await page.click('.error-close');
  check(await page.getAttribute('#f-dataset', 'aria-invalid') === null, 'choosing another data set did not clear its mark');

  /* gand refuses cuda where no device answers; this one runs on cpu without looking, so the answer is staged */
  await page.route('**/api/v1/runs', (route) => (route.request().method() !== 'POST' ? route.fallback() : route.fulfill({
    status: 422, contentType: 'application/problem+json',
    body: JSON.stringify({ type: 'urn:gand:problem:invalid-field', title: 'Unprocessable Content', status: 422,
      detail: 'device cuda: no CUDA device is available (test)', field: 'device', instance: '/api/v1/runs' }),
  })));
  await page.selectOption('#f-device', wantDevices.includes('cuda') ? 'cuda' : 'cpu');
  await page.click('#create-form button[type=submit]');
  await page.waitForFunction(() => /field: device/.test(document.querySelector('#errors').textContent));
  check(await page.getAttribute('#f-device', 'aria-invalid') === 'true', 'the refused device is not marked');
  const deviceErr = await page.textContent('#f-device-err');
  check(/no CUDA device is available/.test(deviceErr) && await page.isVisible('#f-device-err'),
    `the device field says "${deviceErr}"`);
  say(`device refused: ${deviceErr}`);
  await page.unroute('**/api/v1/runs');
  page.allow = [];
  await page.selectOption('#f-device', 'auto');
  check(await page.getAttribute('#f-device', 'aria-invalid') === null, 'choosing another device did not clear its mark');
  await page.click('.error-close');

  say('stop');
  await page.click('#btn-stop');
  await page.waitForFunction(() => document.querySelector('#run-state').textContent === 'stopped');
  await page.waitForFunction(() => document.querySelector('#stream-status').dataset.stream === 'ended');
  check(await page.isVisible('#btn-delete'), 'no delete button on a stopped run');
  const c2 = await contiguous(page);
  check(c2.tableOk && c2.chartOk, `after stopping the epochs are not contiguous: ${JSON.stringify(c2)}`);
  say(`stopped after ${c2.chartPoints} epochs`);

  const qualityRun = await watchedRun(page, base, fields);

  say('when the presets cannot be loaded, the page says so and the form still creates runs; ' +
    'a gand built without CUDA does not offer it');
  const nop = await context.newPage();
  watch(nop, 'no-presets page');
  nop.allow = [{ url: /\/api\/v1\/presets$/ }];
  await nop.route('**/api/v1/presets', (route) => route.fulfill({
    status: 503, contentType: 'application/problem+json',
    body: JSON.stringify({ type: 'urn:gand:problem:busy', title: 'Service Unavailable', status: 503, detail: 'test: no presets now' }),
  }));
  await nop.route('**/healthz', (route) => route.fulfill({
    status: 200, contentType: 'application/json', body: JSON.stringify({ ...health, backends_built: 'cpu' }),
  }));
  await nop.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
  await nop.waitForFunction(() => !/connecting/.test(document.querySelector('#health').textContent));
  const cpuOnly = await nop.$$eval('#f-device option', (os) => os.map((o) => o.value));
  check(JSON.stringify(cpuOnly) === '["auto","cpu"]', `built with cpu only, the device select offers ${JSON.stringify(cpuOnly)}`);
  check(/device · auto \| cpu$/.test(await nop.textContent('[data-field="device"] .meta')),
    `built with cpu only, the device field lists "${await nop.textContent('[data-field="device"] .meta')}"`);
  await nop.waitForFunction(() => /GET \/api\/v1\/presets → 503 .*test: no presets now/.test(document.querySelector('#errors').textContent));
  check(await nop.isDisabled('#f-preset') && /could not load the presets/.test(await nop.textContent('#f-preset-err')),
    'the preset select does not say that the presets could not be loaded');
  check(await nop.textContent('#f-preset-help') === '', 'a preset description is shown without presets');
  check(await nop.inputValue('#f-lr_d') === '', 'the form was filled from somewhere other than gand');
  await nop.waitForSelector('#f-dataset option[value="small"]', { state: 'attached' });
  const numberFields = await nop.$$eval('#create-fields input[type=number]', (is) => is.map((i) => i.name));
  const typed = { ...Object.fromEntries(numberFields.map((k) => [k, served[0].config[k]])), ...fields, epochs: '1' };
  for (const [k, v] of Object.entries(typed)) await nop.fill(`#f-${k}`, String(v));
  await nop.fill('#f-watch', JSON.stringify(served[0].config.watch));
  await nop.selectOption('#f-dataset', 'small');
  const [noPresetReq, noPresetResp] = await Promise.all([
    nop.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/runs'),
    nop.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/v1/runs'),
    nop.click('#create-form button[type=submit]'),
  ]);
  const sentNoPreset = noPresetReq.postDataJSON();
  check(!('preset' in sentNoPreset) && sentNoPreset.lr_d === served[0].config.lr_d && sentNoPreset.epochs === 1,
    `without presets the form sent ${JSON.stringify(sentNoPreset)}`);
  check(noPresetResp.status() === 201, `POST /api/v1/runs without presets answered ${noPresetResp.status()}`);
  const extraRun = (await noPresetResp.json()).id;
  await nop.close();
  await fetch(`${base}/api/v1/runs/${extraRun}/stop`, { method: 'POST' });
  say(`shown, and the form created run ${extraRun} from typed values`);

  say('without the chart library the page falls back to the table');
  const bare = await context.newPage();
  watch(bare, 'no-chart-lib page');
  bare.allow = [{ url: /\/javascript\// }];
  await bare.route('**/javascript/**', (route) => route.abort());
  await bare.goto(`${base}/#run=${runId}`, { waitUntil: 'domcontentloaded' });
  await bare.waitForFunction(() => document.querySelector('#charts').dataset.chart === 'unavailable');
  await bare.waitForFunction(() => document.querySelectorAll('#epoch-table tbody tr').length > 5);
  check(await bare.isVisible('#epoch-table'), 'the epoch table is not shown when charts are unavailable');
  check(/Charts are unavailable/.test(await bare.textContent('#charts-note')), 'no note says why there are no charts');
  await bare.screenshot({ path: join(outDir, 'no-chart-library.png') });
  /* the sample-quality numbers too: in their table; the histogram is CSS and needs no library */
  await bare.goto(`${base}/#run=${qualityRun}`, { waitUntil: 'domcontentloaded' });
  await bare.waitForFunction(() => document.querySelector('#quality').dataset.chart === 'unavailable' &&
    document.querySelectorAll('#quality-table tbody tr').length === 2);
  check(await bare.$eval('#quality-details', (d) => d.open) && await bare.isVisible('#quality-table') &&
    !(await bare.isVisible('#chart-quality')), 'without the chart library the sample-quality table does not take the chart\'s place');
  check(await bare.$$eval('#histogram li', (ls) => ls.length) === 10, 'without the chart library the histogram has no bars');
  await bare.close();

  await context.close();
  context = null;
  const code = await stopGand();
  check(code === 0, `gand exited with ${code} on SIGTERM`);
  say('gand stopped cleanly');
}

let ok = false;
const guard = setTimeout(() => {
  problems.push('the test took more than 360 s');
  cleanup().then(() => report());
}, 360000);

async function cleanup() {
  if (context) await context.close().catch(() => {});
  context = null;
  await stopGand().catch(() => {});
}

function report() {
  clearTimeout(guard);
  if (problems.length) {
    console.error(`FAIL: ${problems.length} problem(s):`);
    for (const p of problems) console.error(`  - ${p}`);
    ok = false;
  }
  console.log(`artifacts: ${outDir}`);
  if (ok && !problems.length) {
    rmSync(tmp, { recursive: true, force: true });
    console.log('PASS: the dashboard works in chromium');
    process.exit(0);
  }
  console.log(`temporary files kept in ${tmp}`);
  process.exit(1);
}

try {
  await main();
  ok = true;
} catch (e) {
  problems.unshift(`step failed: ${e.stack || e.message}`);
  if (context) {
    for (const p of context.pages()) {
      await p.screenshot({ path: join(outDir, 'failure.png'), fullPage: true }).catch(() => {});
    }
  }
} finally {
  await cleanup();
  report();
}
