/**
 * `npm run neural:labels -- [--size ci|default] [--seeds 3] [--problems 100]`: the papers' first
 * comparison on the neural world. Stage 1 labels fresh problems once per seed (each seed its own
 * problems and sampling, as its own `synthesizeLabels` run with a fixed workflow ID, so a command
 * that stops picks up where it was), then every method's labels are scored against the world's
 * truth with ProcessBench's F1.
 *
 * The interval is a percentile bootstrap over problems and seeds: a resample draws (seed, problem)
 * units with replacement, every solution of a drawn problem comes along, and F1 is computed on the
 * pooled solutions; 2,000 resamples. Nothing is tuned on these problems: every setting is fixed
 * before (`sandbox/neural/settings.ts`).
 */
import { parseArgs } from 'node:util';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import type { AggregationMethod } from '../../src/spark/labels/aggregation.js';
import { readLabelsDataset } from '../../src/spark/labels/labels-dataset.js';
import type { LabelLine } from '../../src/spark/labels/labels.js';
import { synthesizeLabels } from '../../src/workflows/index.js';
import { labelQuality } from '../label-quality.js';
import { intOption, withSandboxWorker } from '../sandbox-worker.js';
import { WORLD_MAX_TOKENS, WORLD_VERIFIER_SAMPLING } from './settings.js';
import type { Interval } from './stats.js';
import { bootstrap } from './stats.js';
import { worldDataset } from './world-data.js';
import { defaultWorldDir, ensureWorld, startWorldServers } from './world-models.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: 'ci' },
    seeds: { type: 'string', default: '3' },
    problems: { type: 'string', default: '100' },
    'world-seed': { type: 'string', default: '0' },
  },
});
if (values.size !== 'default' && values.size !== 'ci') throw new Error(`--size must be default or ci, got ${values.size}`);
const size = values.size;
const seeds = intOption('seeds', values.seeds);
const problems = intOption('problems', values.problems);
const worldSeed = intOption('world-seed', values['world-seed'], 0);

/** Self-consistency and its baseline; meta-critique (hybrid) needs a critic the world has not learnt. */
const METHODS: AggregationMethod[] = ['single', 'outcome-majority', 'step-majority'];

interface Unit {
  seed: number;
  lines: LabelLine[];
}

function f1Of(units: readonly Unit[], method: AggregationMethod): number {
  return labelQuality(units.flatMap((u) => u.lines), [method]).rows[0]?.f1 ?? 0;
}

const fmt = (i: Interval) => `${(100 * i.mean).toFixed(1)} [${(100 * i.lo).toFixed(1)}, ${(100 * i.hi).toFixed(1)}]`;

async function main(): Promise<void> {
  const world = await ensureWorld({ dir: defaultWorldDir(size, worldSeed), seed: worldSeed, size });
  await withSandboxWorker('spark-neural-experiments', async ({ client, store, taskQueue }) => {
    const servers = await startWorldServers(world);
    try {
      const units: Unit[] = [];
      for (let seed = 0; seed < seeds; seed++) {
        const runName = `neural-exp-labels-${size}-w${worldSeed}-p${problems}-s${seed}`;
        const dataset = await worldDataset(store, world.info.problems, { seed: `experiment-labels-${seed}`, count: problems });
        const started = performance.now();
        const result = await client.workflow.execute(synthesizeLabels, {
          taskQueue,
          workflowId: `spark/${runName}/labels`,
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          args: [{
            runName,
            dataset: { uri: dataset.uri },
            generator: { endpoint: { baseURL: servers.inferenceURL }, model: 'policy', sampling: { temperature: 1, topP: 1, maxTokens: WORLD_MAX_TOKENS.solution } },
            verifier: { endpoint: { baseURL: servers.inferenceURL }, model: 'verifier', sampling: WORLD_VERIFIER_SAMPLING },
            solutionsPerProblem: 4,
            verificationsPerSolution: 8,
            methods: METHODS,
            seed,
          }],
        });
        const { lines } = await readLabelsDataset(store, result.manifest.uri);
        console.error(`[experiment] seed ${seed}: ${lines.length} solutions labelled in ${((performance.now() - started) / 1000).toFixed(0)} s`);
        // One unit per (seed, problem): its solutions stay together in a resample.
        const byProblem = new Map<string, LabelLine[]>();
        for (const line of lines) byProblem.set(line.problemId, [...(byProblem.get(line.problemId) ?? []), line]);
        for (const group of byProblem.values()) units.push({ seed, lines: group });
      }
      const rows = METHODS.map((method) => ({ method, f1: bootstrap(units, (sample) => f1Of(sample, method), { seed: `labels-${method}` }) }));
      const perSeed = (method: AggregationMethod) => Array.from({ length: seeds }, (_, s) => (100 * f1Of(units.filter((u) => u.seed === s), method)).toFixed(1)).join(' / ');
      const table = [
        `Label quality on the neural world (${size}, world seed ${worldSeed}): ${seeds} seeds × ${problems} problems × 4 solutions, K = 8 verifications; F1 (%) of the first wrong step against the truth`,
        '',
        '| method | F1, mean [95% CI] | per seed |',
        '|---|---|---|',
        ...rows.map((r) => `| ${r.method} | ${fmt(r.f1)} | ${perSeed(r.method)} |`),
      ].join('\n');
      console.log(table);
    } finally {
      await servers.close();
    }
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
