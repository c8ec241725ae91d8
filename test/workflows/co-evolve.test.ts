/**
 * coEvolve and its evaluations on the real stack: the sandbox model server, the sandbox trainer in
 * its own process, real S3 and Temporal. Covers the recycled-item cache and the extra steps, plain
 * RLVR as the all-off case, input checks, and the self-reflection and judging evaluations; crashes
 * and controls, shared with rlTrain, are in grpo-loop.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoEvolveInput } from '../../src/spark/co-evolve/input.js';
import { detectRole } from '../../sandbox/world/roles.js';
import type { GrpoExample } from '../../src/core/trainer/protocol.js';
import {
  coEvolve, evaluateJudging, evaluateSelfReflection, evaluateSelfReflectionProgress, rlTrain, rlTrainProgress, } from '../../src/workflows/index.js';
import { connectClient, makeStore, metricsRows, uniqueTaskQueue, withWorker } from '../support/harness.js';
import { TrainingSandbox } from '../support/training-sandbox.js';

const store = makeStore();
const taskQueue = uniqueTaskQueue('co-evolve');
const fields = { question: 'question', answer: 'answer' };
let box: TrainingSandbox;
let sim: TrainingSandbox['sim'];
let promptsUri: string;
let heldOutUri: string;

const events = () => box.events();
const BATCH = 4;

function input(runName: string, extra: Partial<CoEvolveInput> = {}): CoEvolveInput {
  const endpoint = { baseURL: sim.url };
  return {
    runName,
    policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
    trainer: { baseURL: box.trainerURL },
    dataset: { uri: promptsUri, fields },
    evaluation: { sets: [{ name: 'held-out', uri: heldOutUri, fields }], every: 3, temperature: 1, samples: 2 },
    grpo: { batchSize: BATCH, groupSize: 4 },
    totalSteps: 6,
    checkpointEvery: 3,
    seed: 5,
    ...extra,
  };
}

const rows = metricsRows;

/** The step kinds the cache rule gives for the recycled-item counts the rollout steps stored. */
async function expectedKinds(prefix: string, totalSteps: number): Promise<string[]> {
  const kinds: string[] = [];
  let cached = 0;
  for (let r = 0; r < totalSteps; r++) {
    kinds.push('rollout');
    const text = await store.getText(`${prefix}/recycled/step-${String(r).padStart(6, '0')}.jsonl`);
    cached += text.split('\n').filter((l) => l.trim() !== '').length;
    while (r < totalSteps - 1 && cached >= BATCH) {
      kinds.push('recycled');
      cached -= BATCH;
    }
  }
  return kinds;
}

beforeAll(async () => {
  box = await TrainingSandbox.start(store, { sim: 81, prompts: 82, heldOut: 83 });
  ({ sim, promptsUri, heldOutUri } = box);
}, 60_000);

afterAll(async () => {
  await box.close();
  store.destroy();
});

describe('coEvolve', () => {
  it('recycles every rollout step into the item cache and trains an extra step on each full batch of items', { timeout: 180_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const runName = `co-${randomUUID().slice(0, 8)}`;
        const prefix = `runs/${runName}/co-evolve`;
        // Four trainer steps per workflow run: the cache goes through continue-as-new.
        const handle = await client.workflow.start(coEvolve, { taskQueue, workflowId: `test/${runName}`, args: [input(runName, { stepsPerRun: 4 })] });
        const result = await handle.result();
        const metrics = await rows(store, prefix);
        expect(result.steps).toBe(6);
        expect(result.trainerSteps).toBe(metrics.length);
        expect(metrics.map((m) => m.step)).toEqual(metrics.map((_, i) => i));
        expect(metrics.map((m) => m.kind)).toEqual(await expectedKinds(prefix, 6));
        expect(metrics.filter((m) => m.kind === 'rollout').map((m) => m.rlStep)).toEqual([0, 1, 2, 3, 4, 5]);
        const recycled = metrics.filter((m) => m.kind === 'recycled');
        expect(recycled.length).toBeGreaterThan(0);
        for (const m of recycled) {
          expect(m).toMatchObject({ prompts: BATCH, rollouts: BATCH * 4 });
          expect(Object.values(m.judging ?? {}).reduce((n, j) => n + j.items, 0)).toBe(BATCH);
          // Each extra step trains on judging and reflection prompts, scored against their labels.
          const batch = (await store.getText(`${prefix}/batches/step-${String(m.step).padStart(6, '0')}.jsonl`)).trim().split('\n').map((l) => JSON.parse(l) as GrpoExample);
          expect(batch).toHaveLength(BATCH * 4);
          for (const ex of batch) expect(['pointwise-judge', 'pairwise-judge', 'reflection']).toContain(detectRole(ex.prompt));
        }
        const rolloutRows = metrics.filter((m) => m.kind === 'rollout');
        expect(rolloutRows.every((m) => m.recycledItems !== undefined)).toBe(true);
        expect(result.evals.map((e) => e.step)).toEqual([0, 3, 6]);
        expect(await handle.query(rlTrainProgress)).toMatchObject({ stage: 'completed', step: 6, recycledSteps: recycled.length });
        expect((await handle.query(rlTrainProgress)).runs).toBeGreaterThan(1);

        // The judge moved: the trained self-judge parameters differ from the base model's.
        const state = await store.getJson<{ selfJudge?: number[] }>(`${result.checkpoint!}/state.json`);
        const adapter = await store.getJson<{ selfJudge?: Record<string, number> }>(`${result.checkpoint!}/adapter.json`);
        expect(state.selfJudge).toBeDefined();
        expect(adapter.selfJudge).toBeDefined();

        // The same input again: it picks up at its own last checkpoint, cache included; no call, no step.
        const calls = sim.log.entries.length;
        const applied = events().filter((e) => e.event === 'step' && e.applied).length;
        const again = await client.workflow.execute(coEvolve, { taskQueue, workflowId: `test/${runName}-again`, args: [input(runName, { stepsPerRun: 4 })] });
        expect(again).toMatchObject({ steps: 6, trainerSteps: result.trainerSteps, checkpoint: result.checkpoint, servedModel: result.servedModel });
        expect(sim.log.entries.length).toBe(calls);
        expect(events().filter((e) => e.event === 'step' && e.applied).length).toBe(applied);
      });
    } finally {
      await close();
    }
  });

  it('with every item type off is plain RLVR: the same trajectory as rlTrain with the verifiable reward', { timeout: 180_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const plain = `co-off-${randomUUID().slice(0, 8)}`;
        const off = await client.workflow.execute(coEvolve, {
          taskQueue, workflowId: `test/${plain}`,
          args: [input(plain, { evaluation: { sets: [] }, recycling: { pointwise: false, pairwise: false, reflection: false } })],
        });
        expect(off.trainerSteps).toBe(6);
        const rl = `rl-ver-${randomUUID().slice(0, 8)}`;
        const { recycling: _r, ...rest } = input(rl, { evaluation: { sets: [] } });
        const reference = await client.workflow.execute(rlTrain, {
          taskQueue, workflowId: `test/${rl}`, args: [{ ...rest, reward: { formulation: 'verifiable', guards: { enabled: false } }, publishEvery: 1 }],
        });
        expect(await store.getText(`${off.checkpoint!}/state.json`)).toBe(await store.getText(`${reference.checkpoint!}/state.json`));
      });
    } finally {
      await close();
    }
  });

  it('refuses bad input naming the field', { timeout: 60_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const failure = async (bad: CoEvolveInput) => {
          const e = await client.workflow.execute(coEvolve, { taskQueue, workflowId: `test/co-bad-${randomUUID().slice(0, 8)}`, args: [bad] }).catch((x: unknown) => x);
          expect(e).toBeInstanceOf(WorkflowFailedError);
          return String((e as WorkflowFailedError).cause?.message);
        };
        expect(await failure(input('bad', { publishEvery: 2 }))).toContain('publishEvery: must be 1');
        expect(await failure(input('bad', { dataset: { uri: promptsUri, fields: { question: 'question' } } }))).toContain('dataset.fields.answer');
        expect(await failure({ ...input('bad'), recycling: { pointwise: 'yes' } } as unknown as CoEvolveInput)).toContain('recycling.pointwise');
      });
    } finally {
      await close();
    }
  });
});

describe('co-evolution evaluations', () => {
  it('scores test-time self-reflection per round in chunks, with fixes and breaks that account for the change', { timeout: 120_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const runName = `sr-${randomUUID().slice(0, 8)}`;
        const args = { runName, policy: { endpoint: { baseURL: sim.url }, model: 'sim-policy' }, dataset: { uri: heldOutUri, fields }, maxRounds: 2, samples: 3, seed: 2, chunkSize: 5 };
        const handle = await client.workflow.start(evaluateSelfReflection, { taskQueue, workflowId: `test/${runName}`, args: [args] });
        const report = await handle.result();
        expect(report).toMatchObject({ rows: 12, samples: 3, episodes: 36, maxRounds: 2 });
        expect(await handle.query(evaluateSelfReflectionProgress)).toMatchObject({ stage: 'completed', chunksTotal: 3, chunksDone: 3, done: 12 });
        expect(report.accuracyByRound).toHaveLength(3);
        // What reflection changed is exactly the answers it fixed minus those it broke.
        expect(Math.round((report.accuracyByRound[2]! - report.accuracyByRound[0]!) * 36)).toBe(report.fixed - report.broke);
        expect(report.meanResolves).toBeGreaterThan(0);
        expect(report.meanResolves).toBeLessThanOrEqual(2);
        expect(await store.getJson(`runs/${runName}/co-evolve-eval/self-reflection/sim-policy.json`)).toEqual(report);
        // In one chunk: the same episodes, every call read back from the sample store.
        const calls = sim.log.entries.length;
        const whole = await client.workflow.execute(evaluateSelfReflection, { taskQueue, workflowId: `test/${runName}-whole`, args: [{ ...args, chunkSize: 100 }] });
        expect(whole).toEqual({ ...report, callsMade: 0 });
        expect(sim.log.entries.length).toBe(calls);
      });
    } finally {
      await close();
    }
  });

  it('scores judges on one shared held-out benchmark of pointwise and pairwise items; a stronger judge scores higher', { timeout: 120_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const runName = `jb-${randomUUID().slice(0, 8)}`;
        const endpoint = { baseURL: sim.url };
        const args = (model: string, chunkSize = 5) => ({
          runName, judge: { endpoint, model }, benchmark: { dataset: { uri: heldOutUri, fields }, generator: { endpoint, model: 'sim-policy' }, samplesPerQuestion: 6 }, samples: 4, seed: 3, chunkSize,
        });
        const weak = await client.workflow.execute(evaluateJudging, { taskQueue, workflowId: `test/${runName}-weak`, args: [args('sim-policy')] });
        const generatorCalls = sim.log.entries.filter((e) => e.role === 'generator').length;
        const strong = await client.workflow.execute(evaluateJudging, { taskQueue, workflowId: `test/${runName}-strong`, args: [args('sim-verifier')] });
        expect(strong.benchmark).toBe(weak.benchmark);
        expect((await store.list(`${weak.benchmark}/`)).length).toBe(3);
        expect(sim.log.entries.filter((e) => e.role === 'generator').length).toBe(generatorCalls);
        expect(weak.items).toBe(weak.pointwise.items + weak.pairwise.items);
        expect(weak.pointwise.items).toBeGreaterThan(0);
        expect(weak.pairwise.items).toBeGreaterThan(0);
        expect(strong.pointwise.accuracy).toBeGreaterThan(weak.pointwise.accuracy);
        expect(strong.pairwise.accuracy).toBeGreaterThan(weak.pairwise.accuracy);
        // Cut into one chunk, the benchmark has the same items and the judge the same scores.
        const whole = await client.workflow.execute(evaluateJudging, { taskQueue, workflowId: `test/${runName}-whole`, args: [args('sim-policy', 100)] });
        expect(whole.benchmark).not.toBe(weak.benchmark);
        expect({ ...whole, benchmark: '', callsMade: 0 }).toEqual({ ...weak, benchmark: '', callsMade: 0 });
      });
    } finally {
      await close();
    }
  });
});
