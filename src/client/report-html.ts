/**
 * The run report as one self-contained HTML page (inline CSS and SVG: it opens from a local file
 * or an S3 link with no network) and the main curves as a standalone SVG. Pure: the caller reads
 * the run and passes plain rows in. Chart elements carry stable ids and classes (`#chart-reward`,
 * `.series`, `.bar`) so tests and scripts can find them.
 */

/** One labelling method scored against ground truth (fractions in [0, 1]; null: no value). */
export interface ReportLabelQualityRow {
  method: string;
  solutions: number;
  f1: number | null;
  accErroneous: number | null;
  accCorrect: number | null;
  outcomeAccuracy: number | null;
}

/** ProcessBench F1 of one split (or the average) for the fine-tuned PRM and the base. */
export interface ReportProcessBenchRow {
  split: string;
  prm: number | null;
  base: number | null;
}

export interface ReportRlRow {
  step: number;
  rewardMean: number;
  accuracy: number | null;
  meanSteps: number;
  callsMade: number;
}

export interface ReportEvalPoint {
  set: string;
  step: number;
  accuracy: number;
}

export interface ReportStageCalls {
  stage: string;
  callsMade: number;
  samplesReused: number | null;
}

export interface RunReportData {
  runName: string;
  /** Key facts from the pipeline manifest, in display order (label → value, e.g. a URI). */
  lineage: { label: string; value: string }[];
  labelQuality: ReportLabelQualityRow[];
  processBench: ReportProcessBenchRow[];
  rlMetrics: ReportRlRow[];
  heldOutEvals: ReportEvalPoint[];
  callsPerStage: ReportStageCalls[];
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];
const CHART = { width: 560, height: 280, left: 56, right: 16, top: 36, bottom: 44 };

/** Round numbers for axis ticks, covering [lo, hi]. */
function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    return niceTicks(lo - pad, hi + pad, count);
  }
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const first = Math.floor(lo / step) * step;
  const ticks: number[] = [];
  for (let t = first; t <= hi + step * 1e-9 || ticks.length < 2; t += step) ticks.push(Number(t.toFixed(10)));
  const last = ticks[ticks.length - 1] ?? first;
  if (last < hi) ticks.push(Number((last + step).toFixed(10)));
  return ticks;
}

function tickLabel(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(3)));
}

interface Series {
  name: string;
  points: { x: number; y: number }[];
}

/** A line chart: one `<polyline class="series">` per series, axes with tick labels, a legend. */
function lineChart(id: string, title: string, series: readonly Series[], opts: { xLabel: string; yLabel: string; yRange?: [number, number] }): string {
  const { width, height, left, right, top, bottom } = CHART;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const all = series.flatMap((s) => s.points);
  const parts: string[] = [
    `<svg id="${escapeHtml(id)}" class="chart" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeHtml(title)}</text>`,
  ];
  if (all.length === 0) {
    parts.push(`<text class="no-data" x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#6b7280">no data</text>`, '</svg>');
    return parts.join('');
  }
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const xTicks = niceTicks(Math.min(...xs), Math.max(...xs));
  const yTicks = opts.yRange ? niceTicks(opts.yRange[0], opts.yRange[1]) : niceTicks(Math.min(...ys), Math.max(...ys));
  // niceTicks always returns at least two ticks.
  const [x0, x1] = [xTicks[0] ?? 0, xTicks[xTicks.length - 1] ?? 1];
  const [y0, y1] = [yTicks[0] ?? 0, yTicks[yTicks.length - 1] ?? 1];
  const sx = (x: number) => left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number) => top + plotH - ((y - y0) / (y1 - y0)) * plotH;
  const f = (n: number) => n.toFixed(1);

  parts.push(`<g class="axis x-axis" font-size="11" fill="#374151">`);
  for (const t of xTicks) {
    parts.push(`<line x1="${f(sx(t))}" x2="${f(sx(t))}" y1="${top}" y2="${top + plotH}" stroke="#e5e7eb"/>`,
      `<text class="tick" x="${f(sx(t))}" y="${top + plotH + 16}" text-anchor="middle">${tickLabel(t)}</text>`);
  }
  parts.push(`<text x="${left + plotW / 2}" y="${height - 6}" text-anchor="middle">${escapeHtml(opts.xLabel)}</text></g>`);
  parts.push(`<g class="axis y-axis" font-size="11" fill="#374151">`);
  for (const t of yTicks) {
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${f(sy(t))}" y2="${f(sy(t))}" stroke="#e5e7eb"/>`,
      `<text class="tick" x="${left - 6}" y="${f(sy(t) + 4)}" text-anchor="end">${tickLabel(t)}</text>`);
  }
  parts.push(`<text x="14" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 14 ${top + plotH / 2})">${escapeHtml(opts.yLabel)}</text></g>`);
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#9ca3af"/>`);

  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const points = s.points.map((p) => `${f(sx(p.x))},${f(sy(p.y))}`).join(' ');
    parts.push(`<polyline class="series" data-series="${escapeHtml(s.name)}" points="${points}" fill="none" stroke="${color}" stroke-width="2.5"/>`);
    // A lone point draws no line; a marker keeps it visible.
    const [only] = s.points;
    if (s.points.length === 1 && only) parts.push(`<circle cx="${f(sx(only.x))}" cy="${f(sy(only.y))}" r="4" fill="${color}"/>`);
    parts.push(`<g class="legend" font-size="11"><rect x="${left + 8}" y="${top + 6 + i * 16}" width="12" height="4" fill="${color}"/>`
      + `<text x="${left + 26}" y="${top + 11 + i * 16}">${escapeHtml(s.name)}</text></g>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** A horizontal bar chart: one `<rect class="bar">` per row. */
function barChart(id: string, title: string, rows: readonly { label: string; value: number }[]): string {
  const { width, right } = CHART;
  const labelW = 150;
  const rowH = 26;
  const top = 36;
  const height = top + Math.max(1, rows.length) * rowH + 16;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const plotW = width - labelW - right - 60;
  const parts = [
    `<svg id="${escapeHtml(id)}" class="chart" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeHtml(title)}</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const w = (r.value / max) * plotW;
    parts.push(`<text x="${labelW - 8}" y="${y + 16}" text-anchor="end" font-size="12">${escapeHtml(r.label)}</text>`,
      `<rect class="bar" data-label="${escapeHtml(r.label)}" x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${COLORS[0]}"/>`,
      `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 16}" font-size="12">${r.value.toLocaleString('en-US')}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

function rewardChart(data: RunReportData): string {
  const rows = [...data.rlMetrics].sort((a, b) => a.step - b.step);
  const series: Series[] = [{ name: 'reward mean', points: rows.map((r) => ({ x: r.step, y: r.rewardMean })) }];
  return lineChart('chart-reward', 'RL reward mean per step', series, { xLabel: 'step', yLabel: 'reward mean' });
}

function heldOutChart(data: RunReportData): string {
  const sets = [...new Set(data.heldOutEvals.map((e) => e.set))];
  const series: Series[] = sets.map((set) => ({
    name: set,
    points: data.heldOutEvals.filter((e) => e.set === set).sort((a, b) => a.step - b.step).map((e) => ({ x: e.step, y: e.accuracy })),
  }));
  return lineChart('chart-heldout', 'Held-out accuracy per evaluation step', series, { xLabel: 'step', yLabel: 'accuracy', yRange: [0, 1] });
}

function pct(x: number | null): string {
  return x === null ? '—' : (100 * x).toFixed(1);
}

function table(id: string, head: readonly string[], rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return `<p id="${escapeHtml(id)}" class="empty">no data</p>`;
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table id="${escapeHtml(id)}"><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** The main curves (reward mean, held-out accuracy) side by side as one standalone SVG. */
export function renderCurvesSvg(data: RunReportData): string {
  const { width, height } = CHART;
  const place = (svg: string, x: number) => svg.replace('<svg ', `<svg x="${x}" y="0" `);
  return `<?xml version="1.0" encoding="UTF-8"?>\n`
    + `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * width}" height="${height}" viewBox="0 0 ${2 * width} ${height}" font-family="sans-serif">`
    + `<title>${escapeHtml(`${data.runName}: main curves`)}</title>`
    + place(rewardChart(data), 0) + place(heldOutChart(data), width)
    + '</svg>\n';
}

/** The whole report: lineage, the two curves, label quality, ProcessBench, RL steps, calls per stage. */
export function renderRunReport(data: RunReportData): string {
  const title = `SPARK run report: ${data.runName}`;
  const lineage = data.lineage.map((l) => `<dt>${escapeHtml(l.label)}</dt><dd>${escapeHtml(l.value)}</dd>`).join('\n');
  const labelRows = data.labelQuality.map((r) => [r.method, String(r.solutions), pct(r.f1), pct(r.accErroneous), pct(r.accCorrect), pct(r.outcomeAccuracy)]);
  const pbRows = data.processBench.map((r) => [r.split, pct(r.prm), pct(r.base)]);
  const rlRows = [...data.rlMetrics].sort((a, b) => a.step - b.step)
    .map((r) => [String(r.step), r.rewardMean.toFixed(3), pct(r.accuracy), r.meanSteps.toFixed(2), String(r.callsMade)]);
  const callRows = data.callsPerStage.map((c) => [c.stage, String(c.callsMade), c.samplesReused === null ? '—' : String(c.samplesReused)]);
  const pbBars = data.processBench.flatMap((r) => [
    ...(r.prm === null ? [] : [{ label: `${r.split} PRM`, value: Math.round(1000 * r.prm) / 10 }]),
    ...(r.base === null ? [] : [{ label: `${r.split} base`, value: Math.round(1000 * r.base) / 10 }]),
  ]);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #111827; background: #ffffff; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #e5e7eb; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { border: 1px solid #e5e7eb; font-family: sans-serif; margin-top: 8px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d1d5db; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f4f6; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 13px; }
dt { font-weight: 600; } dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
.empty { color: #6b7280; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<h2>Curves</h2>
<div class="charts">
${rewardChart(data)}
${heldOutChart(data)}
</div>
<h2>Label quality against ground truth (%)</h2>
${table('table-label-quality', ['method', 'solutions', 'F1', 'acc (erroneous)', 'acc (correct)', 'outcome acc'], labelRows)}
<h2>ProcessBench F1 (%)</h2>
${table('table-processbench', ['split', 'fine-tuned PRM', 'base'], pbRows)}
${pbBars.length ? barChart('chart-processbench', 'ProcessBench F1 (%)', pbBars) : ''}
<h2>Calls per stage</h2>
${table('table-calls', ['stage', 'model calls', 'samples reused'], callRows)}
${callRows.length ? barChart('chart-calls', 'Model calls per stage', data.callsPerStage.map((c) => ({ label: c.stage, value: c.callsMade }))) : ''}
<h2>RL steps</h2>
${table('table-rl', ['step', 'reward mean', 'train accuracy', 'mean steps', 'calls'], rlRows)}
<h2>Lineage</h2>
<dl id="lineage">
${lineage}
</dl>
</body>
</html>
`;
}
