// fields.js: the run config fields the dashboard edits, with the ranges that
// gan/config.c enforces, and form helpers.
//
// The server validates everything again; these checks only spare a round trip.
// The presets' values are not copied here: app.js fetches them from gand
// (GET /api/v1/presets), which serves what gan/config.c defines.

export const FIELDS = [
  /* the options gand offers are those it was built with (GET /healthz backends_built): app.js narrows them */
  { name: 'device', label: 'Device', kind: 'enum', options: ['auto', 'cpu', 'cuda'], help: 'auto: the backend gand runs on' },
  { name: 'batch_size', label: 'Batch size', kind: 'int', min: 1, max: 65536 },
  { name: 'epochs', label: 'Epochs', kind: 'int', min: 1, max: 1000000 },
  { name: 'latent_dim', label: 'Noise dims', kind: 'int', min: 1, max: 4096 },
  { name: 'g_hidden', label: 'G hidden units', kind: 'int', min: 1, max: 16384 },
  { name: 'g_output', label: 'G output', kind: 'enum', options: ['relu', 'sigmoid'] },
  { name: 'd_units', label: 'D maxout units', kind: 'int', min: 1, max: 16384 },
  { name: 'd_pieces', label: 'D maxout pieces', kind: 'int', min: 1, max: 64 },
  { name: 'd_dropout', label: 'D dropout', kind: 'float', min: 0, max: 1, maxOpen: true },
  { name: 'lr_d', label: 'D learning rate', kind: 'float', min: 0, max: 10, minOpen: true },
  { name: 'lr_g', label: 'G learning rate', kind: 'float', min: 0, max: 10, minOpen: true },
  { name: 'beta1', label: 'Adam β1', kind: 'float', min: 0, max: 1, maxOpen: true },
  { name: 'beta2', label: 'Adam β2', kind: 'float', min: 0, max: 1, maxOpen: true },
  { name: 'g_loss', label: 'G loss', kind: 'enum', options: ['nonsaturating', 'minimax'] },
  { name: 'd_steps', label: 'D steps per G step', kind: 'int', min: 1, max: 100 },
  { name: 'seed', label: 'Random seed', kind: 'int', min: 0, max: 2 ** 53 },
  { name: 'sample_every', label: 'Save a grid every (epochs)', kind: 'int', min: 0, max: 1000000, zero: 'never' },
  { name: 'checkpoint_every', label: 'Checkpoint every (epochs)', kind: 'int', min: 1, max: 1000000 },
  { name: 'watch_every', label: 'Watch every (epochs)', kind: 'int', min: 0, max: 1000000, zero: 'never' },
  /* wide: across the grid, for their help lines; last, so that they leave no hole in a row */
  {
    name: 'g_ema', label: 'Average G\'s weights (decay)', kind: 'float', min: 0, max: 1, maxOpen: true, zero: 'off', wide: true,
    help: 'samples, evaluations, generate and interpolate use an exponential moving average of G\'s weights',
  },
  /* an array of objects, edited as JSON text: gand checks each rule and names the bad one */
  {
    name: 'watch', label: 'Watch rules', kind: 'json', maxItems: 8, wide: true,
    help: '[{"kind": "d_wins" | "mode_collapse" | "divergence", "action": "alert" | "pause", and the kind\'s thresholds}]; [] watches nothing; a change replaces the whole list',
  },
];

export const FIELD = Object.fromEntries(FIELDS.map((f) => [f.name, f]));

/* What a PATCH may change from the dashboard (it applies at the next iteration, or at the next epoch). */
export const LIVE_FIELDS = ['lr_d', 'lr_g', 'g_loss', 'd_steps', 'batch_size', 'epochs', 'watch_every', 'watch'];

export function rangeText(f) {
  if (f.kind === 'enum') return f.options.join(' | ');
  if (f.kind === 'json') return `a JSON array, at most ${f.maxItems} items`;
  if (f.kind === 'int') return `${f.min}–${f.max === 2 ** 53 ? '2⁵³' : f.max}${f.zero ? ` (0 = ${f.zero})` : ''}`;
  return `${f.minOpen ? '(' : '['}${f.min}, ${f.max}${f.maxOpen ? ')' : ']'}${f.zero ? ` (0 = ${f.zero})` : ''}`;
}

/* Parse an input's text: {value} or {error}. */
export function parseField(f, text) {
  if (f.kind === 'enum') {
    return f.options.includes(text) ? { value: text } : { error: `must be one of ${f.options.join(', ')}` };
  }
  if (f.kind === 'json') return parseJsonList(f, text);
  const t = String(text).trim();
  if (t === '') return { error: 'is required' };
  const v = Number(t);
  if (!Number.isFinite(v)) return { error: 'must be a number' };
  if (f.kind === 'int' && !Number.isInteger(v)) return { error: `must be a whole number in ${rangeText(f)}` };
  const lowOk = f.minOpen ? v > f.min : v >= f.min;
  const highOk = f.maxOpen ? v < f.max : v <= f.max;
  if (!lowOk || !highOk) return { error: `must be in ${rangeText(f)}` };
  return { value: v };
}

/* A JSON array of objects (the watch rules): their contents are gand's to judge. */
function parseJsonList(f, text) {
  const t = String(text).trim();
  if (t === '') return { error: 'is required ([] for none)' };
  let v;
  try {
    v = JSON.parse(t);
  } catch (e) {
    return { error: `is not JSON: ${e.message}` };
  }
  if (!Array.isArray(v)) return { error: 'must be a JSON array, [ … ]' };
  if (v.length > f.maxItems) return { error: `may hold at most ${f.maxItems} items, has ${v.length}` };
  const bad = v.findIndex((x) => x === null || typeof x !== 'object' || Array.isArray(x));
  if (bad >= 0) return { error: `item ${bad} must be an object, { … }` };
  return { value: v };
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...kids);
  return e;
}
export { el };

/*
 * Build the labelled input of one field into container; returns the input. A field
 * with help gets a line of it between the label and the input (inputs stay aligned
 * along a row of the grid).
 */
export function buildField(container, f, prefix) {
  const id = `${prefix}-${f.name}`;
  const err = el('small', { id: `${id}-err`, class: 'field-error' });
  const help = f.help ? el('small', { id: `${id}-help`, class: 'field-help', text: f.help }) : '';
  const label = el('label', { for: id },
    el('span', { class: 'fname', text: f.label }),
    el('span', { class: 'meta' }, el('code', { text: f.name }), ` · ${rangeText(f)}`));
  const describedby = f.help ? `${id}-help ${id}-err` : `${id}-err`;
  let input;
  if (f.kind === 'enum') {
    input = el('select', { id, name: f.name, 'aria-describedby': describedby },
      ...f.options.map((o) => el('option', { value: o, text: o })));
  } else if (f.kind === 'json') {
    input = el('textarea', {
      id, name: f.name, rows: 5, spellcheck: 'false', autocomplete: 'off', class: 'json', 'aria-describedby': describedby,
    });
  } else {
    input = el('input', {
      id, name: f.name, type: 'number', required: true,
      step: f.kind === 'int' ? 1 : 'any',
      min: f.minOpen ? undefined : f.min, max: f.maxOpen ? undefined : f.max,
      inputmode: f.kind === 'int' ? 'numeric' : 'decimal',
      'aria-describedby': describedby,
    });
  }
  container.append(el('div', { class: f.wide ? 'field wide' : 'field', 'data-field': f.name }, label, help, input, err));
  return input;
}

/* Offer only these of an enum field's options (keeping the choice when it stays offered). */
export function offerOptions(input, f, options) {
  const keep = input.value;
  input.replaceChildren(...options.map((o) => el('option', { value: o, text: o })));
  if (options.includes(keep)) input.value = keep;
  const meta = input.closest('.field')?.querySelector('.meta');
  if (meta) meta.replaceChildren(el('code', { text: f.name }), ` · ${options.join(' | ')}`);
}

export function setFieldHelp(input, text) {
  const help = document.getElementById(`${input.id}-help`);
  if (help) help.textContent = text;
}

export function setFieldError(input, message) {
  const err = document.getElementById(`${input.id}-err`);
  if (message) {
    input.setAttribute('aria-invalid', 'true');
    input.setCustomValidity(message);
    if (err) err.textContent = message;
  } else {
    input.removeAttribute('aria-invalid');
    input.setCustomValidity('');
    if (err) err.textContent = '';
  }
}

/* Show a value in an input the way a person would type it; an array of objects one per line. */
export function formatValue(v) {
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return v.length ? `[\n${v.map((x) => `  ${JSON.stringify(x)}`).join(',\n')}\n]` : '[]';
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return v == null ? '' : String(v);
}

/* A value in one line of text (status lines, the event log, the config list). */
export function valueText(v) {
  return v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/* Equal as config values: numbers as numbers, arrays and objects by their JSON (either may be typed text). */
export function sameValue(a, b) {
  if (typeof a === 'object' || typeof b === 'object') {
    const json = (x) => {
      if (typeof x !== 'string') return JSON.stringify(x);
      try { return JSON.stringify(JSON.parse(x)); } catch { return x; }
    };
    return json(a) === json(b);
  }
  if (typeof a === 'number' || typeof b === 'number') return Number(a) === Number(b);
  return String(a) === String(b);
}
