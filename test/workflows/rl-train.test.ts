/**
 * rlTrain on the real stack: the sandbox model server (policy and PRM), the sandbox trainer in its
 * own process, real S3 and Temporal. Covers the step record, continue-as-new, evaluations, re-runs
 * and input checks; crashes and controls, shared with coEvolve, are in grpo-loop.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RlTrainInput } from '../../src/spark/rl/input.js';
import {
  rlLatestCheckpoint, rlRecentMetrics, rlTrain, rlTrainProgress, } from '../../src/workflows/index.js';
import { connectClient, makeStore, metricsRows, uniqueTaskQueue, withWorker } from '../support/harness.js';
import { TrainingSandbox } from '../support/training-sandbox.js';
import { mathDatasetsDir } from '../../src/client/math-datasets.js';

const store = makeStore();
const taskQueue = uniqueTaskQueue('rl-train');
let box: TrainingSandbox;
let sim: TrainingSandbox['sim'];
let promptsUri: string;
let heldOutUri: string;

const events = () => box.events();

function input(runName: string, extra: Partial<RlTrainInput> = {}): RlTrainInput {
  const endpoint = { baseURL: sim.url };
  return {
    runName,
    policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
    trainer: { baseURL: box.trainerURL },
    reward: { formulation: 'selective-advantage', prm: { endpoint, model: 'sim-verifier', style: 'prm-cot' } },
    dataset: { uri: promptsUri, fields: { question: 'question', answer: 'answer' } },
    evaluation: { sets: [{ name: 'held-out', uri: heldOutUri, fields: { question: 'question', answer: 'answer' } }], every: 4 },
    grpo: { batchSize: 4, groupSize: 4 },
    totalSteps: 8,
    checkpointEvery: 4,
    publishEvery: 2,
    seed: 11,
    ...extra,
  };
}

const rows = metricsRows;

beforeAll(async () => {
  box = await TrainingSandbox.start(store, { sim: 71, prompts: 72, heldOut: 73 });
  ({ sim, promptsUri, heldOutUri } = box);
}, 60_000);

afterAll(async () => {
  await box.close();
  store.destroy();
});

describe('rlTrain', () => {
  it('records one metrics row per step, checkpoints and publishes on schedule, and evaluates the served policy', { timeout: 120_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const runName = `rl-${randomUUID().slice(0, 8)}`;
        // Three steps per workflow run: the loop continues as new twice, carrying only its state.
        // GSM8K straight from the shared datasets folder on the worker: the loader path and `#### x` answers.
        const gsm8k = { name: 'gsm8k', uri: join(mathDatasetsDir(), 'gsm8k/test.jsonl'), fields: { question: 'question', answer: 'answer' }, limit: 5 };
        const sets = [{ name: 'held-out', uri: heldOutUri, fields: { question: 'question', answer: 'answer' } }, gsm8k];
        const handle = await client.workflow.start(rlTrain, { taskQueue, workflowId: `test/${runName}`, args: [input(runName, { stepsPerRun: 3, evaluation: { sets, every: 4 } })] });
        const result = await handle.result();
        expect(result).toMatchObject({ steps: 8, stopped: false, servedModel: `${runName}-policy-step-000008` });
        expect((await handle.query(rlTrainProgress)).runs).toBe(3);
        const metrics = await rows(store, `runs/${runName}/rl`);
        expect(metrics.map((m) => m.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
        expect(metrics.every((m) => m.rollouts === 16 && m.prompts === 4)).toBe(true);
        // Rollouts come from the policy published every 2 steps.
        expect(metrics.map((m) => m.servedModel)).toEqual(['sim-policy', 'sim-policy', ...[2, 2, 4, 4, 6, 6].map((s) => `${runName}-policy-step-${String(s).padStart(6, '0')}`)]);
        expect(result.checkpoint).toMatch(/\/step-000007$/);
        expect(await store.head(store.keyOf(`${result.checkpoint}/COMMITTED`))).not.toBeNull();
        expect(result.evals.filter((e) => e.set === 'held-out').map((e) => e.step)).toEqual([0, 4, 8]);
        const gsmEval = await store.getJson<{ rows: number; accuracy: number }>(`runs/${runName}/rl/evals/gsm8k/step-000008.json`);
        expect(gsmEval.rows).toBe(5);
        expect(await handle.query(rlTrainProgress)).toMatchObject({ stage: 'completed', step: 8, totalSteps: 8 });
        expect(await handle.query(rlLatestCheckpoint)).toBe(result.checkpoint);
        expect((await handle.query(rlRecentMetrics, 3)).map((m) => m.step)).toEqual([5, 6, 7]);

        // The same input again: it picks up at its own last checkpoint; no model call, no train step.
        const calls = sim.log.entries.length;
        const applied = events().filter((e) => e.event === 'step' && e.applied).length;
        const again = await client.workflow.execute(rlTrain, { taskQueue, workflowId: `test/${runName}-again`, args: [input(runName, { stepsPerRun: 3, evaluation: { sets, every: 4 } })] });
        expect(again).toMatchObject({ steps: 8, checkpoint: result.checkpoint, servedModel: result.servedModel });
        expect(again.evals.find((e) => e.set === 'held-out')).toEqual(result.evals.filter((e) => e.set === 'held-out').at(-1));
        expect(sim.log.entries.length).toBe(calls);
        expect(events().filter((e) => e.event === 'step' && e.applied).length).toBe(applied);
      });
    } finally {
      await close();
    }
  });

  it('refuses bad input naming the field, and a checkpoint of a run with other settings naming what differs', { timeout: 120_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const noPrm = input('bad', { reward: { formulation: 'process-outcome' } });
        const bad = await client.workflow.execute(rlTrain, { taskQueue, workflowId: `test/rl-bad-${randomUUID().slice(0, 8)}`, args: [noPrm] }).catch((e: unknown) => e);
        expect(bad).toBeInstanceOf(WorkflowFailedError);
        expect(String((bad as WorkflowFailedError).cause?.message)).toContain('reward.prm');

        const first = `rl-a-${randomUUID().slice(0, 8)}`;
        const done = await client.workflow.execute(rlTrain, { taskQueue, workflowId: `test/${first}`, args: [input(first, { totalSteps: 4, evaluation: { sets: [] } })] });
        const other = await client.workflow.execute(rlTrain, {
          taskQueue,
          workflowId: `test/rl-b-${randomUUID().slice(0, 8)}`,
          args: [input(`rl-b-${randomUUID().slice(0, 8)}`, { totalSteps: 8, evaluation: { sets: [] }, grpo: { batchSize: 4, groupSize: 4, klCoefficient: 0.5 }, resumeFrom: done.checkpoint! })],
        }).catch((e: unknown) => e);
        const message = String(((other as WorkflowFailedError).cause?.cause as Error | undefined)?.message);
        expect(message).toContain('does not match this run: config');
        // The same settings resume where the first run stopped.
        const resumed = await client.workflow.execute(rlTrain, {
          taskQueue,
          workflowId: `test/rl-c-${randomUUID().slice(0, 8)}`,
          args: [input(first, { totalSteps: 4, evaluation: { sets: [] }, resumeFrom: done.checkpoint!, outputPrefix: `runs/${first}/rl` })],
        });
        expect(resumed.steps).toBe(4);
      });
    } finally {
      await close();
    }
  });
});
