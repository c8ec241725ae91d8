/**
 * The stage-1 label-quality report on the sandbox, where the ground truth is known:
 *
 *   npm run labels:report -- [--problems 200] [--solutions 4] [--verifications 16] [--seed 1]
 *
 * Runs `synthesizeLabels` three ways on the same problems and prints one table: every
 * aggregation method at full K; step-majority with the adaptive stop (how many verifications it
 * saves, and what it costs in quality); and the reference-guided baseline. Per row: first-error
 * F1 (ProcessBench-style), the accuracies, outcome accuracy, and the model calls per solution
 * the method needs. The runs share stored samples, so each sample is paid for once.
 */
import { parseArgs } from 'node:util';
import { readLabelsDataset } from '../../src/spark/labels/labels-dataset.js';
import type { AggregationMethod } from '../../src/spark/labels/aggregation.js';
import type { SynthesizeLabelsInput } from '../../src/spark/labels/input.js';
import { AGGREGATION_METHODS } from '../../src/spark/labels/input.js';
import type { ExtraCells, MethodQuality } from '../label-quality.js';
import { formatQualityTable, labelQuality } from '../label-quality.js';
import type { LabelLine } from '../../src/spark/labels/labels.js';
import { isCritiqueMethod } from '../../src/spark/labels/labels.js';
import { synthesizeLabels, synthesizeLabelsProgress } from '../../src/workflows/index.js';
import type { SandboxContext } from '../sandbox-worker.js';
import { intOption, sandboxDataset, withSandboxWorker } from '../sandbox-worker.js';

const { values: args } = parseArgs({
  options: {
    problems: { type: 'string', default: '200' },
    solutions: { type: 'string', default: '4' },
    verifications: { type: 'string', default: '16' },
    seed: { type: 'string', default: '1' },
  },
});
const positive = (name: string, v: string): number => intOption(name, v);
const PROBLEMS = positive('problems', args.problems);
const M = positive('solutions', args.solutions);
const K = positive('verifications', args.verifications);
const SEED = Number(args.seed);

const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Verifier samples a method needs per solution: one for `single` (plus unparseable ones before it), all drawn otherwise. */
function verifierSamples(method: AggregationMethod, lines: readonly LabelLine[]): number {
  if (method === 'single' || method === 'critique-single') {
    return mean(lines.map((l) => {
      const s = l.labels[method === 'single' ? 'single' : 'critique-single'];
      return s?.ok && s.target.sampleIndex !== null ? s.target.sampleIndex + 1 : l.verifications.drawn;
    }));
  }
  return mean(lines.map((l) => l.verifications.drawn));
}

async function runLabels(ctx: SandboxContext, name: string, input: Omit<SynthesizeLabelsInput, 'runName'>): Promise<LabelLine[]> {
  const runName = `label-report-${name}-p${PROBLEMS}-m${M}-k${K}-s${SEED}`;
  const handle = await ctx.client.workflow.start(synthesizeLabels, {
    taskQueue: ctx.taskQueue,
    workflowId: `spark/${runName}/synthesize-labels`,
    args: [{ ...input, runName }],
  });
  const timer = setInterval(() => {
    handle.query(synthesizeLabelsProgress)
      .then((p) => console.error(`[report] ${name}: problems ${p.counts.problems}/${p.problemsTotal}, calls ${p.counts.callsMade}`))
      .catch(() => undefined);
  }, 5000);
  const result = await handle.result().finally(() => clearInterval(timer));
  console.error(`[report] ${name}: ${result.lines} solutions, ${result.counts.callsMade} calls made, ${result.counts.samplesReused} samples reused`);
  return (await readLabelsDataset(ctx.store, result.manifest.uri)).lines;
}

await withSandboxWorker('spark-label-report', async (ctx) => {
  const dataset = await sandboxDataset(ctx.store, { seed: SEED, count: PROBLEMS, withAnswers: true });
  const endpoint = { baseURL: ctx.stack.simBaseURL };
  const base: Omit<SynthesizeLabelsInput, 'runName'> = {
    dataset: { uri: dataset.uri, fields: { question: 'question', answer: 'answer' } },
    generator: { endpoint, model: 'sim-policy', sampling: { temperature: 1 } },
    verifier: { endpoint, model: 'sim-verifier' },
    solutionsPerProblem: M,
    verificationsPerSolution: K,
    seed: SEED,
  };
  const full = await runLabels(ctx, 'full', { ...base, methods: [...AGGREGATION_METHODS] });
  const adaptive = await runLabels(ctx, 'adaptive', { ...base, methods: ['step-majority'], adaptive: { enabled: true, initial: 4, step: 2 } });
  const guided = await runLabels(ctx, 'reference', { ...base, methods: ['single', 'step-majority'], referenceGuided: true });

  const rows: (Omit<MethodQuality, 'method'> & { method: string })[] = [];
  const extras: ExtraCells[] = [];
  const add = (lines: LabelLine[], method: AggregationMethod, label: string): void => {
    rows.push({ ...labelQuality(lines, [method]).rows[0]!, method: label });
    extras.push({ 'verifier samples/sol': verifierSamples(method, lines), 'critic calls/sol': isCritiqueMethod(method) ? 2 : 0 });
  };
  for (const m of AGGREGATION_METHODS) add(full, m, m);
  add(adaptive, 'step-majority', 'step-majority (adaptive)');
  add(guided, 'single', 'single (reference-guided)');
  add(guided, 'step-majority', 'step-majority (reference-guided)');

  const fullDrawn = full.reduce((n, l) => n + l.verifications.drawn, 0);
  const adaptiveDrawn = adaptive.reduce((n, l) => n + l.verifications.drawn, 0);
  const labelsOf = (l: LabelLine | undefined): string => {
    const s = l?.labels['step-majority'];
    return JSON.stringify(s?.ok ? [s.stepLabels, s.outcome] : null);
  };
  const changed = adaptive.filter((l, i) => labelsOf(l) !== labelsOf(full[i])).length;
  console.log(`Stage-1 label quality on the sandbox: ${PROBLEMS} problems × ${M} solutions × K=${K} verifications (seed ${SEED})\n`);
  console.log(formatQualityTable(rows, extras));
  console.log(`\nadaptive stop: ${adaptiveDrawn} of ${fullDrawn} verifier samples drawn (${(100 * (1 - adaptiveDrawn / fullDrawn)).toFixed(1)}% saved); `
    + `${adaptive.filter((l) => l.verifications.stop === 'decided').length} of ${adaptive.length} solutions stopped early; `
    + `${changed} solutions with step-majority labels different from full K`);
});
