// charts.js: the two training-curve charts (Chart.js from the system's
// libjs-chart.js, loaded at run time) and the epoch table that stands in for
// them when the library is missing; the look they share (lineDataset,
// chartOptions) is quality.js's too.
//
// New epochs are pushed onto the datasets and drawn with chart.update('none'):
// no animation, no re-creation, and the x range the user zoomed into stays.

const COLORS = {
  d_real: '#1f77b4',
  d_fake: '#ff7f0e',
  g_loss: '#2ca02c',
  d_x: '#1f77b4',
  d_g_z: '#d62728',
};

let chartLibPromise = null;

/* Load Chart.js once from the path the page names; resolves to Chart or null. */
export function loadChartLib() {
  if (chartLibPromise) return chartLibPromise;
  chartLibPromise = new Promise((resolve) => {
    if (window.Chart) {
      resolve(window.Chart);
      return;
    }
    const meta = document.querySelector('meta[name="gand-chart-src"]');
    const src = meta ? meta.content : '/javascript/chart.js/chart.min.js';
    const s = document.createElement('script');
    s.src = src;
    s.async = true;
    let done = false;
    const finish = (v) => {
      if (!done) {
        done = true;
        resolve(v);
      }
    };
    s.onload = () => finish(window.Chart || null);
    s.onerror = () => finish(null);
    setTimeout(() => finish(window.Chart || null), 10000);
    document.head.append(s);
  });
  return chartLibPromise;
}

function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (typeof v !== 'number') return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(digits)));
}
export { fmt };

export function lineDataset(label, key, extra = {}) {
  return {
    label,
    key,
    data: [],
    parsing: false,
    normalized: true,
    borderColor: COLORS[key],
    backgroundColor: COLORS[key],
    borderWidth: 1.5,
    pointRadius: (ctx) => (ctx.dataset.data.length === 1 ? 2.5 : 0), /* a line of one point draws nothing */
    pointHitRadius: 6,
    tension: 0,
    ...extra,
  };
}

export function chartOptions(Chart, yTitle, yMin, yMax) {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    normalized: true,
    interaction: { mode: 'nearest', axis: 'x', intersect: false },
    scales: {
      x: { type: 'linear', title: { display: true, text: 'epoch' }, ticks: { precision: 0 } },
      y: { title: { display: true, text: yTitle }, min: yMin, max: yMax },
    },
    plugins: {
      legend: { position: 'top', labels: { boxWidth: 14, boxHeight: 2 } },
      decimation: { enabled: true, algorithm: 'min-max' },
      tooltip: {
        callbacks: {
          title: (items) => (items.length ? `epoch ${items[0].parsed.x}` : ''),
          label: (item) => `${item.dataset.label}: ${fmt(item.parsed.y)}`,
        },
      },
    },
  };
}

/*
 * The charts and table of one run. root: the #charts element (data-points and
 * data-chart tell tests and styles what is shown); table: the epoch table.
 */
export class RunCharts {
  constructor({ root, lossCanvas, dCanvas, tbody, countEl, zoomReset, tableDetails, note }) {
    this.root = root;
    this.tbody = tbody;
    this.countEl = countEl;
    this.zoomReset = zoomReset;
    this.tableDetails = tableDetails;
    this.note = note;
    this.lossCanvas = lossCanvas;
    this.dCanvas = dCanvas;
    this.charts = [];
    this.count = 0;
    this.lastEpoch = 0;
    this.maxRows = 1000;
    this.frame = 0;
    this.zoom = null; /* {min, max} in epochs, or null for everything */
    this.cleanups = [];
    root.dataset.points = '0';
  }

  /* Make the charts once the library is known (Chart or null). */
  attach(Chart) {
    if (!Chart) {
      this.root.dataset.chart = 'unavailable';
      this.note.textContent = 'Charts are unavailable: the chart library could not be loaded ' +
        '(install libjs-chart.js and check gand\'s javascript_dir). The epoch table below has every number.';
      this.note.classList.add('warning');
      /* the table takes the charts' place */
      const home = this.tableDetails.parentElement;
      this.root.after(this.tableDetails);
      if (home && home !== this.root.parentElement) home.hidden = true;
      this.tableDetails.open = true;
      return;
    }
    const lossChart = new Chart(this.lossCanvas, {
      type: 'line',
      data: { datasets: [lineDataset('D real', 'd_real'), lineDataset('D fake', 'd_fake'), lineDataset('G', 'g_loss')] },
      options: chartOptions(Chart, 'BCE loss'),
    });
    const dChart = new Chart(this.dCanvas, {
      type: 'line',
      data: { datasets: [lineDataset('D(x)', 'd_x'), lineDataset('D(G(z))', 'd_g_z')] },
      options: chartOptions(Chart, 'mean D output', 0, 1),
    });
    this.charts = [lossChart, dChart];
    /* epochs that arrived before the library */
    for (const c of this.charts) for (const ds of c.data.datasets) ds.data = this.pending(ds.key);
    this.pendingRecords = null;
    this.root.dataset.chart = 'ready';
    for (const c of this.charts) this.enableZoom(c);
    this.schedule();
  }

  pending(key) {
    return (this.pendingRecords || []).map((r) => ({ x: r.epoch, y: r[key] }));
  }

  /* Add epoch records (sorted, any may be old); returns the number added. */
  append(records) {
    let added = 0;
    for (const r of records) {
      if (!r || typeof r.epoch !== 'number' || r.epoch <= this.lastEpoch) continue; /* dedupe by epoch */
      this.lastEpoch = r.epoch;
      added++;
      this.count++;
      if (this.charts.length) {
        for (const c of this.charts) for (const ds of c.data.datasets) ds.data.push({ x: r.epoch, y: r[ds.key] });
      } else {
        (this.pendingRecords ||= []).push(r);
      }
      this.addRow(r);
    }
    if (added) {
      this.root.dataset.points = String(this.count);
      this.root.dataset.lastEpoch = String(this.lastEpoch);
      this.countEl.textContent = `(${this.count} epoch${this.count === 1 ? '' : 's'}` +
        `${this.count > this.maxRows ? `, last ${this.maxRows} shown` : ''})`;
      this.schedule();
    }
    return added;
  }

  addRow(r) {
    const tr = document.createElement('tr');
    const cells = [r.epoch, r.d_real, r.d_fake, r.d_loss, r.g_loss, r.d_x, r.d_g_z, r.seconds,
      r.samples_per_sec, r.lr_d, r.lr_g, r.batch_size];
    cells.forEach((v, i) => {
      const td = document.createElement(i === 0 ? 'th' : 'td');
      if (i === 0) td.scope = 'row';
      td.textContent = i === 0 || i === 11 ? String(v) : fmt(v);
      tr.append(td);
    });
    this.tbody.prepend(tr); /* newest first */
    while (this.tbody.rows.length > this.maxRows) this.tbody.lastElementChild.remove();
  }

  /* Coalesce the epochs of one frame into one draw per chart. */
  schedule() {
    if (!this.charts.length || this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      for (const c of this.charts) c.update('none');
    });
  }

  setZoom(range) {
    this.zoom = range;
    for (const c of this.charts) {
      c.options.scales.x.min = range ? range.min : undefined;
      c.options.scales.x.max = range ? range.max : undefined;
      c.update('none');
    }
    this.zoomReset.hidden = !range;
  }

  /* Drag across a chart to zoom both into those epochs; double-click to reset. */
  enableZoom(chart) {
    const canvas = chart.canvas;
    const sel = canvas.parentElement.querySelector('.zoom-sel');
    let start = null;
    const xOf = (ev) => ev.clientX - canvas.getBoundingClientRect().left;
    const inArea = (x) => x >= chart.chartArea.left && x <= chart.chartArea.right;
    const down = (ev) => {
      if (ev.button !== 0 || ev.pointerType === 'touch') return; /* touch scrolls the page */
      const x = xOf(ev);
      if (!inArea(x)) return;
      start = x;
      canvas.setPointerCapture(ev.pointerId);
    };
    const move = (ev) => {
      if (start === null) return;
      const x = Math.min(Math.max(xOf(ev), chart.chartArea.left), chart.chartArea.right);
      sel.hidden = false;
      sel.style.left = `${Math.min(start, x)}px`;
      sel.style.width = `${Math.abs(x - start)}px`;
      sel.style.top = `${chart.chartArea.top}px`;
      sel.style.height = `${chart.chartArea.bottom - chart.chartArea.top}px`;
    };
    const up = (ev) => {
      if (start === null) return;
      const x = Math.min(Math.max(xOf(ev), chart.chartArea.left), chart.chartArea.right);
      sel.hidden = true;
      const a = chart.scales.x.getValueForPixel(Math.min(start, x));
      const b = chart.scales.x.getValueForPixel(Math.max(start, x));
      start = null;
      if (Math.abs(b - a) >= 1) this.setZoom({ min: Math.floor(a), max: Math.ceil(b) });
    };
    const reset = () => this.setZoom(null);
    const cancel = () => {
      start = null;
      sel.hidden = true;
    };
    canvas.addEventListener('pointerdown', down);
    canvas.addEventListener('pointermove', move);
    canvas.addEventListener('pointerup', up);
    canvas.addEventListener('pointercancel', cancel);
    canvas.addEventListener('dblclick', reset);
    this.cleanups.push(() => {
      canvas.removeEventListener('pointerdown', down);
      canvas.removeEventListener('pointermove', move);
      canvas.removeEventListener('pointerup', up);
      canvas.removeEventListener('pointercancel', cancel);
      canvas.removeEventListener('dblclick', reset);
      sel.hidden = true;
    });
  }

  destroy() {
    if (this.frame) cancelAnimationFrame(this.frame);
    for (const f of this.cleanups) f();
    for (const c of this.charts) c.destroy();
    this.charts = [];
    this.tbody.replaceChildren();
    this.countEl.textContent = '';
    this.zoomReset.hidden = true;
    this.root.dataset.points = '0';
    delete this.root.dataset.lastEpoch;
  }
}
