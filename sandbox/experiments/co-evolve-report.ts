/**
 * The co-evolving SPARK on the sandbox: plain RLVR against co-evolution (and ablations).
 *
 *   npm run coevolve:report -- [--steps 100] [--batch 16] [--group 8] [--lr 1e-6] [--every 20] [--seed 1]
 *                              [--runs rlvr,co-evolve,no-pointwise,no-pairwise,no-reflection] [--held-out 200]
 *
 * Runs `coEvolve` once per configuration on the same prompts (sandbox problems with answers; every
 * configuration sees the same prompts at each rollout step), then scores each final policy, and the
 * untrained base, on held-out problems: policy accuracy (4 samples at T=1), judging accuracy on a
 * reward benchmark of pointwise and pairwise items built from the base policy's answers
 * (`evaluateJudging`, 4 verdicts at T=1), and test-time self-reflection with at most 2 re-solves
 * (`evaluateSelfReflection`, 4 episodes at T=1). The sandbox policy never slips when greedy, so
 * everything samples at T=1. Stored results are read back, so re-running is cheap.
 */
import { parseArgs } from 'node:util';
import type { JudgingReport, SelfReflectionReport } from '../../src/spark/co-evolve/activities.js';
import type { CoEvolveInput } from '../../src/spark/co-evolve/input.js';
import { hashParts } from '../../src/core/random.js';
import type { RlMetricsRow } from '../../src/spark/rl/grpo.js';
import { mean } from '../../src/spark/rl/grpo.js';
import { coEvolve, evaluateJudging, evaluateSelfReflection, rlTrainProgress } from '../../src/workflows/index.js';
import { intOption, sandboxDataset, withSandboxWorker } from '../sandbox-worker.js';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '100' },
    batch: { type: 'string', default: '16' },
    group: { type: 'string', default: '8' },
    lr: { type: 'string', default: '1e-6' },
    every: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    'held-out': { type: 'string', default: '200' },
    runs: { type: 'string', default: 'rlvr,co-evolve' },
  },
});
const STEPS = intOption('steps', args.steps);
const BATCH = intOption('batch', args.batch);
const GROUP = intOption('group', args.group);
const EVERY = intOption('every', args.every);
const SEED = intOption('seed', args.seed);
const HELD_OUT = intOption('held-out', args['held-out']);
const LR = Number(args.lr);
if (!(LR > 0)) throw new Error(`--lr must be a positive number, got ${args.lr}`);

const ALL_ON = { pointwise: true, pairwise: true, reflection: true };
/** The configurations the report can run: which recycled item types each builds. */
const CONFIGS: Record<string, { pointwise: boolean; pairwise: boolean; reflection: boolean }> = {
  rlvr: { pointwise: false, pairwise: false, reflection: false },
  'co-evolve': ALL_ON,
  'no-pointwise': { ...ALL_ON, pointwise: false },
  'no-pairwise': { ...ALL_ON, pairwise: false },
  'no-reflection': { ...ALL_ON, reflection: false },
};
const chosen = args.runs.split(',').map((r) => r.trim()).filter(Boolean);
for (const r of chosen) if (!CONFIGS[r]) throw new Error(`--runs: unknown configuration '${r}' (known: ${Object.keys(CONFIGS).join(', ')})`);

const pct = (x: number | null | undefined): string => (x === null || x === undefined ? '—' : (100 * x).toFixed(1));

interface Scored {
  name: string;
  model: string;
  heldOut: { start: number | null; end: number | null };
  judging: JudgingReport;
  reflection: SelfReflectionReport;
  recycledSteps: number;
  metrics: RlMetricsRow[];
}

await withSandboxWorker('spark-coevolve-report', async ({ client, store, stack, taskQueue }) => {
  const endpoint = { baseURL: stack.simBaseURL };
  const prompts = await sandboxDataset(store, { seed: 1000 + SEED, count: 2000, withAnswers: true });
  const heldOut = await sandboxDataset(store, { seed: 3000 + SEED, count: HELD_OUT, withAnswers: true });
  const fields = { question: 'question', answer: 'answer' };
  const heldOutSet = { uri: heldOut.uri, fields };
  const reportRun = `coevolve-report-${hashParts(STEPS, BATCH, GROUP, LR, SEED, HELD_OUT).slice(0, 8)}`;

  /** Judging and self-reflection of one served model, on the shared held-out items. */
  const score = async (model: string): Promise<{ judging: JudgingReport; reflection: SelfReflectionReport }> => {
    const [judging, reflection] = await Promise.all([
      client.workflow.execute(evaluateJudging, {
        taskQueue, workflowId: `spark/${reportRun}/judging/${model}`, args: [{
          runName: reportRun, judge: { endpoint, model },
          benchmark: { dataset: heldOutSet, generator: { endpoint, model: 'sim-policy' }, samplesPerQuestion: 8 },
          temperature: 1, samples: 4, seed: SEED,
        }],
      }),
      client.workflow.execute(evaluateSelfReflection, {
        taskQueue, workflowId: `spark/${reportRun}/self-reflection/${model}`, args: [{
          runName: reportRun, policy: { endpoint, model }, dataset: heldOutSet, maxRounds: 2, temperature: 1, samples: 4, seed: SEED,
        }],
      }),
    ]);
    return { judging, reflection };
  };

  const rows: Scored[] = [];
  console.error('[report] scoring the base policy sim-policy');
  const base = await score('sim-policy');
  rows.push({ name: 'base (sim-policy)', model: 'sim-policy', heldOut: { start: null, end: null }, ...base, recycledSteps: 0, metrics: [] });

  for (const name of chosen) {
    const recycling = CONFIGS[name]!;
    const runName = `coevolve-report-${name}-${hashParts(STEPS, BATCH, GROUP, LR, SEED).slice(0, 8)}`;
    const input: CoEvolveInput = {
      runName,
      policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy', optimizer: { name: 'adamw', learningRate: LR, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0, maxGradNorm: 1 } },
      trainer: { baseURL: stack.trainerURL },
      dataset: { uri: prompts.uri, fields },
      // The sandbox policy never slips when greedy, so accuracy is measured on samples at T=1.
      evaluation: { sets: [{ name: 'held-out', ...heldOutSet }], every: EVERY, temperature: 1, samples: 4 },
      grpo: { batchSize: BATCH, groupSize: GROUP },
      recycling,
      totalSteps: STEPS,
      checkpointEvery: EVERY,
      publishEvery: 1,
      seed: SEED,
    };
    console.error(`[report] ${name}: ${STEPS} rollout steps × ${BATCH} prompts × ${GROUP} rollouts`);
    const handle = await client.workflow.start(coEvolve, { taskQueue, workflowId: `spark/${runName}/co-evolve`, args: [input] });
    const timer = setInterval(() => {
      handle.query(rlTrainProgress).then((p) => console.error(`[report] ${name}: step ${p.step}/${p.totalSteps} (+${p.recycledSteps ?? 0} recycled, ${p.cachedItems ?? 0} cached), `
        + `reward ${p.latest?.rewardMean.toFixed(3) ?? '—'}, held-out ${pct(p.latestEvals[0]?.accuracy)}`)).catch(() => undefined);
    }, 10_000);
    const result = await handle.result().finally(() => clearInterval(timer));
    const keys = (await store.list(`runs/${runName}/co-evolve/metrics/`)).sort();
    const metrics = await Promise.all(keys.map((k) => store.getJson<RlMetricsRow>(k)));
    const evalKeys = (await store.list(`runs/${runName}/co-evolve/evals/held-out/`)).sort();
    const evals = await Promise.all(evalKeys.map((k) => store.getJson<{ step: number; accuracy: number }>(k)));
    console.error(`[report] ${name}: scoring ${result.servedModel}`);
    const scored = await score(result.servedModel);
    rows.push({
      name, model: result.servedModel, heldOut: { start: evals[0]?.accuracy ?? null, end: evals.at(-1)?.accuracy ?? null },
      ...scored, recycledSteps: metrics.filter((m) => m.kind === 'recycled').length, metrics,
    });
  }

  const bench = base.judging;
  console.log(`Co-evolving SPARK on the sandbox: ${STEPS} rollout steps × ${BATCH} prompts × ${GROUP} rollouts, verifiable reward, lr ${LR}, seed ${SEED}`);
  console.log(`Held-out: ${HELD_OUT} unseen problems. Policy accuracy: 4 samples at T=1. Judging: ${bench.pointwise.items} pointwise (${bench.pointwise.yesItems} Yes) and ${bench.pairwise.items} pairwise items from sim-policy's answers, 4 verdicts each at T=1.`);
  console.log('Self-reflection: answer, judge itself, re-solve after anything but Yes, at most 2 re-solves; 4 episodes per problem at T=1.\n');
  console.log('| run | recycled steps | held-out acc (start → end) | pointwise judging (on Yes / on No) | pairwise judging (answers A / A right) | self-reflection acc (0 → 1 → 2 re-solves) | fixed | broke | self-verdicts right |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const j = r.judging;
    const s = r.reflection;
    console.log(`| ${r.name} | ${r.recycledSteps} | ${pct(r.heldOut.start)} → ${pct(r.heldOut.end)} | ${pct(j.pointwise.accuracy)} (${pct(j.pointwise.accuracyOnYes)} / ${pct(j.pointwise.accuracyOnNo)}) | ${pct(j.pairwise.accuracy)} (${pct(j.pairwise.choseA)} / ${pct(j.pairwise.labelA)}) `
      + `| ${s.accuracyByRound.map(pct).join(' → ')} | ${s.fixed} | ${s.broke} | ${pct(s.selfJudgeAccuracy)} |`);
  }
  for (const r of rows.filter((x) => x.metrics.length > 0)) {
    console.log(`\n### ${r.name}: training, per window of ${EVERY} rollout steps\n`);
    console.log('| rollout steps | train acc | recycled steps | pointwise reward | pairwise reward | reflection reward |');
    console.log('|---|---|---|---|---|---|');
    for (let at = EVERY; at <= STEPS; at += EVERY) {
      const window = r.metrics.filter((m) => (m.rlStep ?? m.step) < at && (m.rlStep ?? m.step) >= at - EVERY);
      const rollout = window.filter((m) => m.kind !== 'recycled');
      const recycled = window.filter((m) => m.kind === 'recycled');
      const judged = (kind: 'pointwise' | 'pairwise' | 'reflection') => {
        const xs = recycled.map((m) => m.judging?.[kind]).filter((x) => x !== undefined);
        return xs.length === 0 ? null : xs.reduce((a, x) => a + x.accuracy * x.items, 0) / xs.reduce((a, x) => a + x.items, 0);
      };
      console.log(`| ${at - EVERY}–${at} | ${pct(mean(rollout.map((m) => m.accuracy ?? 0)))} | ${recycled.length} | ${pct(judged('pointwise'))} | ${pct(judged('pairwise'))} | ${pct(judged('reflection'))} |`);
    }
  }
});
