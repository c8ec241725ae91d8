/**
 * The run report end to end: a small run's objects in S3 → `buildRunReport` → the HTML opened in
 * headless Chromium. The screenshot is decoded and compared with one of the same page without
 * its curves, so "the plots rendered" is a pixel fact, not a string match.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inflateSync } from 'node:zlib';
import { sha256Hex } from '../../src/core/store/s3-store.js';
import { buildRunReport } from '../../src/client/run-report.js';
import { labelQuality } from '../../sandbox/label-quality.js';
import { formatValue, generateProblems, opSymbol } from '../../sandbox/arith.js';
import { makeStore } from '../support/harness.js';

const WIDTH = 1200;
const HEIGHT = 1600;

function chromiumBinary(): string {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim();
    } catch {
      // not this one
    }
  }
  throw new Error('no chromium binary on PATH: run `npm run setup` (it installs Debian\'s chromium package)');
}

async function screenshot(chromium: string, htmlPath: string, pngPath: string, profileDir: string): Promise<void> {
  await promisify(execFile)(chromium, [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--force-device-scale-factor=1',
    `--user-data-dir=${profileDir}`, `--screenshot=${pngPath}`, `--window-size=${WIDTH},${HEIGHT}`, `file://${htmlPath}`,
  ], { timeout: 60_000 });
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes) to RGBA pixels. */
function decodePng(bytes: Buffer): { width: number; height: number; rgba: Uint8Array } {
  expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  let offset = 8;
  let width = 0, height = 0, colorType = 0;
  const idat: Buffer[] = [];
  while (offset < bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('ascii', offset + 4, offset + 8);
    const body = bytes.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      expect(body[8], 'bit depth').toBe(8);
      colorType = body[9] ?? 0;
      expect(body[12], 'interlace').toBe(0);
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    offset += 12 + length;
  }
  expect([2, 6], 'colour type RGB or RGBA').toContain(colorType);
  const channels = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const value = raw[y * (stride + 1) + 1 + x] ?? 0;
      const a = x >= channels ? out[y * stride + x - channels] ?? 0 : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] ?? 0 : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels] ?? 0 : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = (value + predictor) & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    for (let k = 0; k < 3; k++) rgba[i * 4 + k] = out[i * channels + k] ?? 0;
    rgba[i * 4 + 3] = channels === 4 ? out[i * channels + 3] ?? 255 : 255;
  }
  return { width, height, rgba };
}

function nonWhitePixels(rgba: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < rgba.length; i += 4) if ((rgba[i] ?? 255) < 240 || (rgba[i + 1] ?? 255) < 240 || (rgba[i + 2] ?? 255) < 240) n++;
  return n;
}

/** Pixels whose colour is the curves' blue (#2563eb), give or take antialiasing. */
function seriesBluePixels(rgba: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < rgba.length; i += 4) {
    const [r, g, b] = [rgba[i] ?? 0, rgba[i + 1] ?? 0, rgba[i + 2] ?? 0];
    if (Math.abs(r - 0x25) < 40 && Math.abs(g - 0x63) < 40 && Math.abs(b - 0xeb) < 40) n++;
  }
  return n;
}

function differingPixels(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i += 4) {
    if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2]) n++;
  }
  return n;
}

/** A tiny run as the pipeline would leave it: manifest, labels, two ProcessBench reports, RL rows. */
async function writeFixtureRun(runName: string): Promise<void> {
  const store = makeStore();
  const run = `runs/${runName}`;
  const problems = generateProblems({ seed: `report-${runName}`, count: 6, minOps: 3, maxOps: 3 });
  const lines = problems.map((p, i) => {
    // Every other solution has a wrong second step; step-majority finds it, single says all fine.
    const wrongAt = i % 2 === 0 ? 1 : -1;
    const steps = p.ops.map((op, k) => {
      const input = k === 0 ? p.start : p.values[k - 1] ?? 0;
      return `${formatValue(input)} ${opSymbol(op.kind)} ${formatValue(op.operand)} = ${formatValue((p.values[k] ?? 0) + (k === wrongAt ? 1 : 0))}`;
    });
    const stored = (firstErrorStep: number) => ({
      ok: true, stepLabels: steps.map((_, k) => firstErrorStep === -1 || k < firstErrorStep), outcome: firstErrorStep === -1, firstErrorStep,
      target: { rule: 'majority', sampleIndex: null, text: null }, ties: { outcome: false, steps: [] }, fallback: null,
    });
    return { question: p.question, steps, labels: { 'step-majority': stored(wrongAt), single: stored(-1) } };
  });
  const part = `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;
  const partRef = await store.put(`${run}/labels/parts/part-000000.jsonl`, part, 'application/x-ndjson');
  const labelsManifest = await store.putJson(`${run}/labels/manifest.json`, {
    kind: 'spark.labels', version: 1, workflowId: `spark/${runName}/pipeline/labels`, runName, configHash: 'c0ffee', codeVersion: 'test',
    dataset: { uri: store.uri('datasets/fixture.jsonl'), sha256: 'a'.repeat(64) }, methods: ['step-majority', 'single'], config: {},
    counts: { problems: 6, solutions: 6, callsMade: 54, samplesDrawn: 54, samplesReused: 0, verificationsValid: 48, parseFailures: 0, stoppedEarly: 0, unlabelled: 0 },
    lines: lines.length, parts: [{ uri: partRef.uri, sha256: sha256Hex(part), bytes: Buffer.byteLength(part), lines: lines.length }],
  });
  const pbReport = (f1s: number[], callsMade: number) => {
    const splits = ['gsm8k', 'math'].map((split, i) => ({ split, n: 10, nErroneous: 5, nCorrect: 5, errorAcc: f1s[i] ?? 0, correctAcc: f1s[i] ?? 0, f1: f1s[i] ?? 0 }));
    const f1 = splits.reduce((a, s) => a + s.f1, 0) / splits.length;
    return { kind: 'spark.processbench-eval', version: 1, scores: { splits, average: { split: 'average', n: 20, nErroneous: 10, nCorrect: 10, errorAcc: f1, correctAcc: f1, f1, skipped: [] } }, cost: { callsMade, samplesDrawn: callsMade, samplesReused: 0 } };
  };
  const prmReport = await store.putJson(`${run}/evaluate-prm/prm/report.json`, pbReport([0.7, 0.55], 20));
  const baseReport = await store.putJson(`${run}/evaluate-prm/base/report.json`, pbReport([0.35, 0.2], 20));
  for (let step = 0; step < 10; step++) {
    await store.putJson(`${run}/rl/metrics/step-${String(step).padStart(6, '0')}.json`, {
      step, servedModel: 'sim-policy', rewardMean: 0.3 + 0.04 * step + (step % 3) * 0.02, rewardStd: 0.1, accuracy: 0.4 + 0.02 * step, meanSteps: 4, callsMade: 64, samplesReused: 0,
    });
  }
  for (const [step, accuracy] of [[0, 0.42], [5, 0.5], [10, 0.58]] as const) {
    await store.putJson(`${run}/rl/evals/held-out/step-${String(step).padStart(6, '0')}.json`, { set: 'held-out', step, servedModel: 'sim-policy', rows: 20, accuracy, callsMade: 80 });
  }
  const evaluation = (ref: { uri: string }, model: string) => ({ model, reportJson: ref, reportMarkdown: ref, predictions: ref, averageF1: null });
  await store.putJson(`${run}/pipeline/manifest.json`, {
    kind: 'spark.pipeline', version: 1, runName, workflowId: `spark/${runName}/pipeline`, runId: 'r-1', configHash: 'c0ffee', codeVersion: 'test',
    stages: { labels: { status: 'completed', workflows: [] }, 'rl-train': { status: 'completed', workflows: [] } },
    lineage: {
      dataset: { uri: store.uri('datasets/fixture.jsonl'), sha256: 'a'.repeat(64) },
      labels: { manifest: { uri: labelsManifest.uri }, lines: lines.length, methods: ['step-majority', 'single'] },
      prmData: null, prmCheckpoint: null,
      prm: { servedModel: `${runName}-prm`, inferenceBaseURL: 'http://sim', baseModel: 'sim-policy' },
      processBench: { prm: evaluation(prmReport, `${runName}-prm`), base: evaluation(baseReport, 'sim-policy') },
      policy: { baseModel: 'sim-policy', prompts: { uri: null }, rewardModel: `${runName}-prm`, checkpoint: 'sim://ckpt', steps: 10, servedModel: 'sim-policy', metricsPrefix: `${store.uri(`${run}/rl/metrics`)}/`, finalEvals: [] },
    },
    config: {},
  });
}

describe('run report', () => {
  const runName = `report-${randomUUID().slice(0, 8)}`;
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'spark-report-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the report to S3 and a local folder, and Chromium renders its plots', async () => {
    const chromium = chromiumBinary();
    await writeFixtureRun(runName);
    const report = await buildRunReport(makeStore(), { runName, scoreLabels: (lines, methods) => labelQuality(lines, methods).rows, localDir: join(dir, 'report') });

    expect(report.html.uri).toMatch(new RegExp(`/runs/${runName}/report/report\\.html$`));
    expect(report.curvesSvg.uri).toMatch(new RegExp(`/runs/${runName}/report/curves\\.svg$`));
    const html = readFileSync(report.html.path, 'utf8');
    expect(await makeStore().getText(report.html.uri)).toBe(html);
    expect(readFileSync(report.curvesSvg.path, 'utf8')).toContain('id="chart-reward"');
    // Label quality comes from the lines against the arithmetic truth: step-majority is exact, single misses the errors.
    expect(report.data.labelQuality.map((r) => [r.method, r.f1])).toEqual([['step-majority', 1], ['single', 0]]);
    expect(report.data.processBench.map((r) => r.split)).toEqual(['gsm8k', 'math', 'average']);
    expect(report.data.callsPerStage.map((c) => [c.stage, c.callsMade])).toEqual([
      ['labels', 54], ['evaluate-prm', 20], ['evaluate-prm-base', 20], ['rl-train rollouts', 640], ['rl-train evaluations', 240],
    ]);

    // The same page without its curves: what the polylines add is the difference.
    const withoutCurves = join(dir, 'without-curves.html');
    writeFileSync(withoutCurves, html.replace(/<polyline class="series"[^>]*\/>/g, ''));
    const [png, pngWithout] = [join(dir, 'report.png'), join(dir, 'without-curves.png')];
    await Promise.all([
      screenshot(chromium, report.html.path, png, join(dir, 'profile-a')),
      screenshot(chromium, withoutCurves, pngWithout, join(dir, 'profile-b')),
    ]);
    expect(existsSync(png) && statSync(png).size > 0).toBe(true);

    const shot = decodePng(readFileSync(png));
    const bare = decodePng(readFileSync(pngWithout));
    expect([shot.width, shot.height]).toEqual([WIDTH, HEIGHT]);
    expect(nonWhitePixels(shot.rgba), 'the page is not blank').toBeGreaterThan(0.02 * WIDTH * HEIGHT);
    const curvePixels = differingPixels(shot.rgba, bare.rgba);
    expect(curvePixels, 'the curves changed the rendering').toBeGreaterThan(1500);
    expect(seriesBluePixels(shot.rgba) - seriesBluePixels(bare.rgba), 'the curves are drawn in the series colour').toBeGreaterThan(1000);
  }, 90_000);
});
