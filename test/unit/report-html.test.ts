import { describe, expect, it } from 'vitest';
import type { RunReportData } from '../../src/client/report-html.js';
import { escapeHtml, renderCurvesSvg, renderRunReport } from '../../src/client/report-html.js';

const fixture: RunReportData = {
  runName: 'demo <run> & "friends"',
  lineage: [{ label: 'dataset', value: 's3://spark/datasets/a.jsonl?x=<1>' }],
  labelQuality: [
    { method: 'step-majority', solutions: 200, f1: 0.81, accErroneous: 0.75, accCorrect: 0.88, outcomeAccuracy: 0.9 },
    { method: 'single', solutions: 200, f1: null, accErroneous: null, accCorrect: 0.5, outcomeAccuracy: 0.6 },
  ],
  processBench: [
    { split: 'gsm8k', prm: 0.6, base: 0.3 },
    { split: 'average', prm: 0.6, base: null },
  ],
  rlMetrics: Array.from({ length: 12 }, (_, step) => ({ step, rewardMean: 0.2 + step * 0.03, accuracy: 0.4 + step * 0.01, meanSteps: 4, callsMade: 64 })),
  heldOutEvals: [
    { set: 'held-out', step: 10, accuracy: 0.55 },
    { set: 'held-out', step: 0, accuracy: 0.4 },
    { set: 'held-out', step: 20, accuracy: 0.6 },
  ],
  callsPerStage: [{ stage: 'labels', callsMade: 1800, samplesReused: 0 }, { stage: 'evaluate-prm', callsMade: 200, samplesReused: 10 }],
};

/** The `points` of each `.series` polyline inside the element with this id. */
function seriesPoints(html: string, id: string): string[][] {
  const start = html.indexOf(`id="${id}"`);
  expect(start, `#${id} present`).toBeGreaterThan(-1);
  const svg = html.slice(start, html.indexOf('</svg>', start));
  return [...svg.matchAll(/<polyline class="series"[^>]* points="([^"]*)"/g)].map((m) => (m[1] ?? '').split(' '));
}

describe('renderRunReport', () => {
  const html = renderRunReport(fixture);

  it('draws the reward curve with one point per step and held-out accuracy with one per evaluation', () => {
    const reward = seriesPoints(html, 'chart-reward');
    expect(reward).toHaveLength(1);
    expect(reward[0]).toHaveLength(12);
    const heldOut = seriesPoints(html, 'chart-heldout');
    expect(heldOut).toHaveLength(1);
    expect(heldOut[0]).toHaveLength(3);
    // Sorted by step: x grows along the line.
    const xs = (heldOut[0] ?? []).map((p) => Number(p.split(',')[0]));
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
  });

  it('labels the axes with ticks and keeps every point inside the chart', () => {
    const chart = html.slice(html.indexOf('id="chart-reward"'), html.indexOf('</svg>', html.indexOf('id="chart-reward"')));
    expect([...chart.matchAll(/class="tick"/g)].length).toBeGreaterThanOrEqual(4);
    for (const point of seriesPoints(html, 'chart-reward')[0] ?? []) {
      const [x, y] = point.split(',').map(Number);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThanOrEqual(560);
      expect(y).toBeGreaterThanOrEqual(0);
      expect(y).toBeLessThanOrEqual(280);
    }
  });

  it('has the label-quality, ProcessBench, calls and RL tables', () => {
    for (const id of ['table-label-quality', 'table-processbench', 'table-calls', 'table-rl']) expect(html).toContain(`<table id="${id}"`);
    expect(html).toContain('<td>step-majority</td><td>200</td><td>81.0</td><td>75.0</td><td>88.0</td><td>90.0</td>');
    expect(html).toContain('<td>average</td><td>60.0</td><td>—</td>');
    expect([...html.matchAll(/class="bar"/g)]).toHaveLength(2 + 3);
  });

  it('escapes every text and is self-contained', () => {
    expect(html).toContain('demo &lt;run&gt; &amp; &quot;friends&quot;');
    expect(html).not.toContain('<run>');
    expect(html).toContain('a.jsonl?x=&lt;1&gt;');
    expect(html).not.toMatch(/<script|<link|@import|url\(/);
    expect(escapeHtml(`<a href='x'>&</a>`)).toBe('&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;');
  });

  it('says "no data" instead of drawing an empty chart', () => {
    const empty = renderRunReport({ ...fixture, rlMetrics: [], heldOutEvals: [], labelQuality: [] });
    expect(seriesPoints(empty, 'chart-reward')).toEqual([]);
    expect(empty).toContain('class="no-data"');
    expect(empty).toContain('<p id="table-label-quality" class="empty">no data</p>');
  });
});

describe('renderCurvesSvg', () => {
  it('is one standalone SVG holding both curves', () => {
    const svg = renderCurvesSvg(fixture);
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(seriesPoints(svg, 'chart-reward')[0]).toHaveLength(12);
    expect(seriesPoints(svg, 'chart-heldout')[0]).toHaveLength(3);
    expect(svg).not.toMatch(/<script/);
  });
});
