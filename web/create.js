// create.js: the dashboard's form that creates a run. It fills itself from a preset
// (GET /api/v1/presets) and lists the data sets (GET /api/v1/datasets); it sends only
// the fields that differ from the preset, and marks the field gand names in an error.

import { api, describe, ApiError } from './api.js';
import {
  FIELDS, FIELD, parseField, buildField, setFieldError, setFieldHelp, offerOptions, formatValue, sameValue, el,
} from './fields.js';

const $ = (id) => document.getElementById(id);

/*
 * Wire the form. errors and setStatus are the page's; onCreated(run) is called with
 * each run created. Returns { loadPresets, loadDatasets } for the page to call at start,
 * showBackends(health) to offer the devices this gand was built with, and
 * datasetNamed(name): that data set as last listed (its classifier, split), or null.
 */
export function initCreateForm({ errors, setStatus, onCreated }) {

  const createInputs = {};
  for (const f of FIELDS) {
    const input = buildField($('create-fields'), f, 'f');
    input.addEventListener('input', () => setFieldError(input, parseField(f, input.value).error || ''));
    createInputs[f.name] = input;
  }
  /*
   * The presets as gand defines them (GET /api/v1/presets): name → {name, description,
   * config}. Until they are loaded (or when they cannot be) the form starts empty and
   * sends what is typed, without a preset.
   */
  const presets = new Map();
  let presetShown = '';
  const presetConfig = (name) => (presets.has(name) ? presets.get(name).config : null);
  const datasets = new Map(); /* name → the data set as GET /api/v1/datasets lists it */

  /* Fill the form with a preset's values, keeping what the user changed from the last one. */
  function fillPreset(name, { keepChanges = true } = {}) {
    const from = presetConfig(presetShown) || {};
    const to = presetConfig(name);
    if (!to) return;
    for (const f of FIELDS) {
      const input = createInputs[f.name];
      const userChanged = keepChanges && input.value !== '' && !sameValue(input.value, from[f.name]);
      if (!userChanged) {
        input.value = formatValue(to[f.name]);
        setFieldError(input, '');
      }
    }
    const ds = $('f-dataset');
    if (!keepChanges || ds.value === from.dataset || ds.value === '') {
      if ([...ds.options].some((o) => o.value === to.dataset)) ds.value = to.dataset;
    }
    presetShown = name;
    $('f-preset-help').textContent = presets.get(name).description || '';
  }

  async function loadPresets() {
    const sel = $('f-preset');
    try {
      const answer = await api('/api/v1/presets');
      const list = answer.presets || [];
      presets.clear();
      for (const p of list) presets.set(p.name, p);
      /* the option is the name; the chosen preset's description is the line under the select */
      sel.replaceChildren(...list.map((p) => el('option', { value: p.name, text: p.name, title: p.description })));
      sel.disabled = list.length === 0;
      setFieldError(sel, list.length ? '' : 'gand has no presets');
      errors.clear('presets');
      const first = presets.has('seed') ? 'seed' : (list[0] && list[0].name);
      if (first) {
        sel.value = first;
        fillPreset(first, { keepChanges: false });
      }
    } catch (e) {
      presets.clear();
      sel.replaceChildren(el('option', { value: '', text: '(presets not loaded)' }));
      sel.disabled = true;
      $('f-preset-help').textContent = '';
      setFieldError(sel, 'could not load the presets: fill in every field');
      errors.show(describe(e), 'presets');
    }
  }

  async function loadDatasets() {
    const ds = $('f-dataset');
    try {
      const answer = await api('/api/v1/datasets');
      const list = answer.datasets || [];
      datasets.clear();
      for (const d of list) datasets.set(d.name, d);
      const keep = ds.value;
      ds.replaceChildren(...list.map((d) => el('option', {
        value: d.name,
        text: `${d.name} (${Number(d.images).toLocaleString()} images${d.train_images !== undefined && d.train_images !== d.images
          ? `, ${Number(d.train_images).toLocaleString()} to train on` : ''}, ${d.rows}×${d.cols})`,
      })));
      const want = keep || (presetConfig(presetShown) || {}).dataset;
      if (list.some((d) => d.name === want)) ds.value = want;
      setFieldError(ds, list.length ? '' : 'gand has no data sets configured');
    } catch (e) {
      setFieldError(ds, 'could not load the data sets');
      errors.show(describe(e), 'datasets');
    }
  }

  $('f-preset').addEventListener('change', () => fillPreset($('f-preset').value));
  $('f-dataset').addEventListener('change', () => setFieldError($('f-dataset'), '')); /* another choice: gand judges it on submit */
  $('create-reset').addEventListener('click', () => {
    fillPreset($('f-preset').value, { keepChanges: false });
    setStatus('create-status', '');
  });

  $('create-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const preset = $('f-preset').value;
    const base = presetConfig(preset); /* null: the presets are not loaded; send every field */
    const body = base ? { preset } : {};
    let bad = null;
    for (const f of FIELDS) {
      const input = createInputs[f.name];
      const r = parseField(f, input.value);
      setFieldError(input, r.error ? `${f.name} ${r.error}` : '');
      if (r.error) {
        bad = bad || input;
        continue;
      }
      if (!base || !sameValue(r.value, base[f.name])) body[f.name] = r.value;
    }
    const ds = $('f-dataset').value;
    if (ds && (!base || ds !== base.dataset)) body.dataset = ds;
    if (bad) {
      setStatus('create-status', 'Fix the marked fields first.', 'error');
      bad.focus();
      return;
    }
    const submit = ev.submitter || $('create-form').querySelector('[type=submit]');
    submit.disabled = true;
    setStatus('create-status', 'Creating…');
    try {
      const run = await api('/api/v1/runs', { method: 'POST', body });
      setStatus('create-status', `Created run ${run.id} (${run.state}${run.queue_position ? `, position ${run.queue_position} in the queue` : ''}).`, 'ok');
      onCreated(run);
    } catch (e) {
      const input = e instanceof ApiError && e.field ? (createInputs[e.field] || (e.field === 'dataset' ? $('f-dataset') : null)) : null;
      if (input) {
        setFieldError(input, e.detail || e.message);
        input.focus();
      }
      setStatus('create-status', describe(e), 'error');
      errors.show(describe(e));
    } finally {
      submit.disabled = false;
    }
  });

  /* The create form's device: only the backends this gand was built with; what auto means here. */
  function showBackends(x) {
    const input = createInputs.device;
    const built = String(x.backends_built || '').split(',').map((b) => b.trim()).filter(Boolean);
    if (built.length) offerOptions(input, FIELD.device, FIELD.device.options.filter((o) => o === 'auto' || built.includes(o)));
    setFieldHelp(input, x.backend ? `auto: ${x.backend}, gand's own` : FIELD.device.help);
  }

  const datasetNamed = (name) => datasets.get(name) || null;

  return { loadPresets, loadDatasets, showBackends, datasetNamed };
}
