/**
 * The stage-3 report on the sandbox: GRPO curves for the reward formulations and the guards.
 *
 *   npm run rl:report -- [--steps 200] [--batch 16] [--group 8] [--lr 1e-6] [--every 20] [--seed 1]
 *                        [--runs process-outcome,selective-advantage,step-augmented-unguarded,step-augmented]
 *
 * Runs `rlTrain` once per configuration on the same prompts (sandbox problems with answers),
 * `sim-verifier` as the PRM (PRM-CoT, greedy), and prints per configuration a table every
 * `--every` steps: held-out accuracy (4 samples at T=1), mean reward, mean steps per response and the share
 * of responses outside 4..20 steps over the window, plus a summary table. Runs whose results are
 * stored are read back, so re-running is cheap.
 */
import { parseArgs } from 'node:util';
import type { RlTrainInput } from '../../src/spark/rl/input.js';
import { hashParts } from '../../src/core/random.js';
import type { RlMetricsRow } from '../../src/spark/rl/grpo.js';
import { mean } from '../../src/spark/rl/grpo.js';
import type { RlTrainResult } from '../../src/spark/rl/rl-train.workflow.js';
import { rlTrain, rlTrainProgress } from '../../src/workflows/index.js';
import { intOption, sandboxDataset, withSandboxWorker } from '../sandbox-worker.js';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '200' },
    batch: { type: 'string', default: '16' },
    group: { type: 'string', default: '8' },
    lr: { type: 'string', default: '1e-6' },
    every: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    runs: { type: 'string', default: 'process-outcome,selective-advantage,step-augmented-unguarded,step-augmented' },
  },
});
const int = (name: string, v: string): number => intOption(name, v);
const STEPS = int('steps', args.steps);
const BATCH = int('batch', args.batch);
const GROUP = int('group', args.group);
const EVERY = int('every', args.every);
const SEED = int('seed', args.seed);
const LR = Number(args.lr);
if (!(LR > 0)) throw new Error(`--lr must be a positive number, got ${args.lr}`);

/** The configurations the report can run. */
/** The configurations the report can run; the step-count experiments start from a wordy policy whose answers often run past 20 steps. */
const CONFIGS: Record<string, { formulation: 'process-outcome' | 'selective-advantage' | 'step-augmented' | 'global-step' | 'verifiable'; guards: boolean; policy: string }> = {
  'process-outcome': { formulation: 'process-outcome', guards: true, policy: 'sim-policy' },
  'selective-advantage': { formulation: 'selective-advantage', guards: true, policy: 'sim-policy' },
  'global-step': { formulation: 'global-step', guards: true, policy: 'sim-policy' },
  'step-augmented': { formulation: 'step-augmented', guards: true, policy: 'sim-policy-wordy' },
  'step-augmented-unguarded': { formulation: 'step-augmented', guards: false, policy: 'sim-policy-wordy' },
  verifiable: { formulation: 'verifiable', guards: true, policy: 'sim-policy' },
};
const chosen = args.runs.split(',').map((r) => r.trim()).filter(Boolean);
for (const r of chosen) if (!CONFIGS[r]) throw new Error(`--runs: unknown configuration '${r}' (known: ${Object.keys(CONFIGS).join(', ')})`);

const pct = (x: number | null | undefined): string => (x === null || x === undefined ? '—' : (100 * x).toFixed(1));

await withSandboxWorker('spark-rl-report', async ({ client, store, stack, taskQueue }) => {
  const endpoint = { baseURL: stack.simBaseURL };
  const prompts = await sandboxDataset(store, { seed: 1000 + SEED, count: 2000, withAnswers: true });
  const heldOut = await sandboxDataset(store, { seed: 2000 + SEED, count: 200, withAnswers: true });
  const fields = { question: 'question', answer: 'answer' };
  const results = new Map<string, { result: RlTrainResult; metrics: RlMetricsRow[]; evals: { step: number; accuracy: number }[] }>();

  for (const name of chosen) {
    const c = CONFIGS[name]!;
    const variant = c.policy === 'sim-policy' ? '' : `-${c.policy.replace(/^sim-policy-/, '')}`;
    const runName = `rl-report-${name}${variant}-${hashParts(STEPS, BATCH, GROUP, LR, SEED).slice(0, 8)}`;
    const input: RlTrainInput = {
      runName,
      policy: { baseModel: c.policy, endpoint, model: c.policy, optimizer: { name: 'adamw', learningRate: LR, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0, maxGradNorm: 1 } },
      trainer: { baseURL: stack.trainerURL },
      reward: { formulation: c.formulation, prm: { endpoint, model: 'sim-verifier', style: 'prm-cot' }, guards: { enabled: c.guards } },
      dataset: { uri: prompts.uri, fields },
      // The sandbox policy never slips when greedy, so accuracy is measured on samples at T=1.
      evaluation: { sets: [{ name: 'held-out', uri: heldOut.uri, fields }], every: EVERY, temperature: 1, samples: 4 },
      grpo: { batchSize: BATCH, groupSize: GROUP },
      totalSteps: STEPS,
      checkpointEvery: EVERY,
      publishEvery: 1,
      seed: SEED,
    };
    console.error(`[report] ${name}: ${STEPS} steps × ${BATCH} prompts × ${GROUP} rollouts`);
    const handle = await client.workflow.start(rlTrain, { taskQueue, workflowId: `spark/${runName}/rl-train`, args: [input] });
    const timer = setInterval(() => {
      handle.query(rlTrainProgress).then((p) => console.error(`[report] ${name}: step ${p.step}/${p.totalSteps}, reward ${p.latest?.rewardMean.toFixed(3) ?? '—'}, `
        + `steps/response ${p.latest?.meanSteps.toFixed(1) ?? '—'}, held-out ${pct(p.latestEvals[0]?.accuracy)}`)).catch(() => undefined);
    }, 10_000);
    const result = await handle.result().finally(() => clearInterval(timer));
    const keys = (await store.list(`runs/${runName}/rl/metrics/`)).sort();
    const metrics = await Promise.all(keys.map((k) => store.getJson<RlMetricsRow>(k)));
    // From S3, not the result: a re-run picks up at its last checkpoint and evaluates only there.
    const evalKeys = (await store.list(`runs/${runName}/rl/evals/held-out/`)).sort();
    const evals = await Promise.all(evalKeys.map((k) => store.getJson<{ step: number; accuracy: number }>(k)));
    results.set(name, { result, metrics, evals });
  }

  console.log(`Stage 3 on the sandbox: GRPO, PRM sim-verifier (PRM-CoT, greedy), ${BATCH} prompts × ${GROUP} rollouts per step, lr ${LR}, seed ${SEED}`);
  console.log('Windows are the steps before each row; held-out accuracy is the mean over 4 samples at T=1 on 200 unseen problems.\n');
  for (const [name, { metrics, evals }] of results) {
    console.log(`### ${name} (from ${CONFIGS[name]!.policy})\n`);
    console.log('| step | held-out acc | train acc | mean reward | steps/response | outside 4..20 steps | gate rejections |');
    console.log('|---|---|---|---|---|---|---|');
    for (let at = 0; at <= STEPS; at += EVERY) {
      const window = metrics.filter((m) => m.step < at && m.step >= at - EVERY);
      const evalAt = evals.find((e) => e.step === at);
      const share = (f: (m: RlMetricsRow) => number) => (window.length === 0 ? null : window.reduce((a, m) => a + f(m), 0) / window.reduce((a, m) => a + m.rollouts, 0));
      console.log(`| ${at} | ${pct(evalAt?.accuracy)} | ${pct(window.length ? mean(window.map((m) => m.accuracy ?? 0)) : null)} | ${window.length ? mean(window.map((m) => m.rewardMean)).toFixed(3) : '—'} | ${window.length ? mean(window.map((m) => m.meanSteps)).toFixed(1) : '—'} | ${pct(share((m) => m.outsideStepRange))} | ${pct(share((m) => m.gateRejections))} |`);
    }
    console.log('');
  }
  console.log('### Summary\n');
  console.log('| run | held-out acc (start → end) | mean reward (first → last window) | steps/response (first → last window) | outside 4..20 (last window) |');
  console.log('|---|---|---|---|---|');
  for (const [name, { metrics, evals }] of results) {
    const first = metrics.filter((m) => m.step < EVERY);
    const last = metrics.filter((m) => m.step >= STEPS - EVERY);
    const outside = last.reduce((a, m) => a + m.outsideStepRange, 0) / Math.max(1, last.reduce((a, m) => a + m.rollouts, 0));
    console.log(`| ${name} | ${pct(evals[0]?.accuracy)} → ${pct(evals.at(-1)?.accuracy)} | ${mean(first.map((m) => m.rewardMean)).toFixed(3)} → ${mean(last.map((m) => m.rewardMean)).toFixed(3)} | ${mean(first.map((m) => m.meanSteps)).toFixed(1)} → ${mean(last.map((m) => m.meanSteps)).toFixed(1)} | ${pct(outside)} |`);
  }
});
