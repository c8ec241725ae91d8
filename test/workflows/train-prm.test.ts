/**
 * trainPrm end to end on the real stack: stage-1 labels → PRM data → train steps on the sandbox
 * trainer (its own process, so it can be killed) → checkpoints in S3 → publish to the model server.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrainPrmInput } from '../../src/spark/prm/train-prm.input.js';
import { objectStoreAdapterReader } from '../../sandbox/model-server/models.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { synthesizeLabels, trainPrm, trainPrmProgress } from '../../src/workflows/index.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import type { TrainerProcess } from '../support/harness.js';
import { connectClient, makeStore, readTrainerEvents, spawnTrainerProcess, uniqueTaskQueue, until, withWorker } from '../support/harness.js';
import { freePort } from '../support/paths.js';

const store = makeStore();
const dir = mkdtempSync(join(tmpdir(), 'train-prm-'));
const taskQueue = uniqueTaskQueue('train-prm');
let sim: SimServer;
let trainer: TrainerProcess;
let trainerPort: number;
let labelsManifestUri: string;
const eventsFile = join(dir, 'events.jsonl');

const events = () => readTrainerEvents(eventsFile);

function input(runName: string, extra: Partial<TrainPrmInput> = {}): TrainPrmInput {
  return {
    runName,
    labelsManifestUri,
    method: 'step-majority',
    style: 'prm',
    trainer: { baseURL: trainer.url },
    baseModel: 'sim-policy',
    epochs: 2,
    batchSize: 8,
    checkpointEvery: 3,
    seed: 5,
    ...extra,
  };
}

beforeAll(async () => {
  sim = await startSimServer({ seed: 61, readAdapter: objectStoreAdapterReader(() => store) });
  trainerPort = await freePort();
  trainer = spawnTrainerProcess({ port: trainerPort, eventsFile, stepLatencyMs: 40 });
  await trainer.ready;
  const dataset = await uploadSandboxProblems(store, { seed: 62, count: 30 });
  const { client, close } = await connectClient();
  try {
    const labels = await withWorker({ taskQueue }, () => client.workflow.execute(synthesizeLabels, {
      taskQueue,
      workflowId: `test/${taskQueue}/labels`,
      args: [{
        runName: `labels-${taskQueue}`,
        dataset: { uri: dataset.uri },
        generator: { endpoint: { baseURL: sim.url }, model: 'sim-policy', sampling: { temperature: 1 } },
        verifier: { endpoint: { baseURL: sim.url }, model: 'sim-verifier' },
        solutionsPerProblem: 2,
        verificationsPerSolution: 4,
        methods: ['single', 'step-majority'],
        seed: 63,
      }],
    }));
    labelsManifestUri = labels.manifest.uri;
  } finally {
    await close();
  }
}, 120_000);

afterAll(async () => {
  await trainer.kill();
  await sim.close();
  store.destroy();
});

describe('trainPrm', () => {
  it('trains in checkpointed chunks, publishes the model, and a re-run applies nothing again', { timeout: 120_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const runName = `prm-${randomUUID().slice(0, 8)}`;
        const handle = await client.workflow.start(trainPrm, {
          taskQueue,
          workflowId: `test/${runName}`,
          // A learning rate that moves the sandbox's few parameters visibly within 16 steps.
          args: [input(runName, { publish: { inferenceBaseURL: sim.url }, optimizer: { name: 'adamw', learningRate: 5e-5, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0 } })],
        });
        const result = await handle.result();
        // 60 labelled solutions, 8 per batch, 2 epochs.
        expect(result.examples).toBeGreaterThan(50);
        expect(result.steps).toBe(2 * Math.ceil(result.examples / 8));
        expect(result.lossCurve).toHaveLength(Math.ceil(result.steps / 3));
        // Per-batch losses are too noisy at this size to compare; the fitted judge is not: labels
        // from the strong verifier's majority teach the weak base more detections and fewer false alarms.
        const adapter = await store.getJson<{ base: string; prm: { falseAlarm: number; detectBias: number; style: string } }>(`${result.checkpoint}/adapter.json`);
        expect(adapter).toMatchObject({ base: 'sim-policy', prm: { style: 'prm' } });
        // K=4 majorities with ties marked incorrect still flag about a tenth of right steps.
        expect(adapter.prm.falseAlarm).toBeLessThan(0.12);
        expect(adapter.prm.detectBias).toBeGreaterThan(-0.4 + 0.3);
        expect(result.checkpoint).toMatch(new RegExp(`/step-${String(result.steps).padStart(6, '0')}$`));
        expect(await store.head(store.keyOf(`${result.checkpoint}/COMMITTED`))).not.toBeNull();
        expect(result.model).toMatchObject({ modelName: `${runName}-prm`, checkpointUri: result.checkpoint, step: result.steps - 1 });
        const served = await (await fetch(`${sim.url}/models`)).json() as { data: { id: string; parent: string | null }[] };
        expect(served.data.find((m) => m.id === `${runName}-prm`)).toMatchObject({ parent: 'sim-policy' });
        expect(await handle.query(trainPrmProgress)).toMatchObject({ stage: 'completed', stepsDone: result.steps, steps: result.steps, recreatedSessions: 0 });

        const applied = events().filter((e) => e.event === 'step' && e.session === result.sessionId && e.applied);
        expect(applied.map((e) => e.step)).toEqual(Array.from({ length: result.steps }, (_, i) => i));

        // The same run again (a new workflow run): every checkpoint is found, no step is trained again.
        const before = events().filter((e) => e.event === 'step' && e.applied).length;
        const again = await client.workflow.execute(trainPrm, { taskQueue, workflowId: `test/${runName}-again`, args: [input(runName, { optimizer: { name: 'adamw', learningRate: 5e-5, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0 } })] });
        expect(again.checkpoint).toBe(result.checkpoint);
        expect(again.lossCurve).toEqual(result.lossCurve);
        expect(events().filter((e) => e.event === 'step' && e.applied).length).toBe(before);
      });
    } finally {
      await close();
    }
  });

  it('survives the trainer being killed and restarted mid-run: same weights, no step applied twice to the same weights', { timeout: 180_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const reference = await client.workflow.execute(trainPrm, { taskQueue, workflowId: `test/ref-${randomUUID().slice(0, 8)}`, args: [input(`ref-${randomUUID().slice(0, 8)}`)] });

        const runName = `crash-${randomUUID().slice(0, 8)}`;
        const handle = await client.workflow.start(trainPrm, { taskQueue, workflowId: `test/${runName}`, args: [input(runName)] });
        const mine = () => events().filter((e) => e.event === 'step' && e.applied && e.session?.includes(runName));
        await until(() => mine().length >= 8, 'eight applied steps');
        const killedPid = mine()[0]!.pid;
        await trainer.kill();
        const appliedBeforeKill = mine().map((e) => e.step!);
        const committedBeforeKill = events().filter((e) => e.event === 'checkpoint' && e.session?.includes(runName)).map((e) => e.step!);
        await new Promise((r) => setTimeout(r, 1500));
        trainer = spawnTrainerProcess({ port: trainerPort, eventsFile, stepLatencyMs: 40 });
        await trainer.ready;
        const result = await handle.result();

        // The weights, optimiser state and step log are those of the uninterrupted run.
        expect(await store.getText(`${result.checkpoint}/state.json`)).toBe(await store.getText(`${reference.checkpoint}/state.json`));
        expect(result.lossCurve).toEqual(reference.lossCurve);
        const log = (await store.getJson<{ log: { step: number }[] }>(`${result.checkpoint}/state.json`)).log.map((s) => s.step);
        expect(log).toEqual(Array.from({ length: result.steps }, (_, i) => i));
        expect((await handle.query(trainPrmProgress)).recreatedSessions).toBeGreaterThanOrEqual(1);

        // Only steps after the last checkpoint committed before the kill were trained again, on the
        // weights restored from it; everything up to that checkpoint was applied exactly once.
        const lastCommitted = Math.max(-1, ...committedBeforeKill);
        const after = mine().filter((e) => e.pid !== killedPid).map((e) => e.step!);
        expect(Math.min(...after)).toBe(lastCommitted + 1);
        const redone = after.filter((s) => appliedBeforeKill.includes(s));
        expect(redone.every((s) => s > lastCommitted)).toBe(true);
        expect(redone.length).toBeLessThanOrEqual(3);
        expect(new Set([...appliedBeforeKill.filter((s) => s <= lastCommitted), ...after]).size).toBe(result.steps);
      });
    } finally {
      await close();
    }
  });

  it('fails at once naming the field for bad input, and for labels without the method', { timeout: 60_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const bad = await client.workflow.execute(trainPrm, { taskQueue, workflowId: `test/bad-${randomUUID().slice(0, 8)}`, args: [{ ...input('bad'), epochs: 0, optimizer: { name: 'adamw', learningRate: -1 } } as TrainPrmInput] }).catch((e: unknown) => e);
        expect(bad).toBeInstanceOf(WorkflowFailedError);
        const message = String((bad as WorkflowFailedError).cause?.message);
        expect(message).toContain('epochs');
        expect(message).toContain('optimizer.learningRate');
        const missing = await client.workflow.execute(trainPrm, { taskQueue, workflowId: `test/missing-${randomUUID().slice(0, 8)}`, args: [input('missing', { method: 'hybrid' })] }).catch((e: unknown) => e);
        expect(String(((missing as WorkflowFailedError).cause?.cause as Error | undefined)?.message)).toContain('no labels by method "hybrid"');
      });
    } finally {
      await close();
    }
  });
});
