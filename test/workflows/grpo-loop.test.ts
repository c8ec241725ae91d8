/**
 * What `rlTrain` and `coEvolve` share because they run the same GRPO loop
 * (src/spark/rl/grpo-loop.workflow.ts), as one set of scenarios for both: a worker killed mid-run,
 * the trainer killed mid-run, and the controls (pause, a hyperparameter update, resume, stop after
 * a checkpoint) with their audit log. Real stack: the sandbox model server, the sandbox trainer in
 * its own process, real S3 and Temporal. What only one of them does is in rl-train.test.ts and
 * co-evolve.test.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoEvolveInput } from '../../src/spark/co-evolve/input.js';
import type { RlTrainInput } from '../../src/spark/rl/input.js';
import type { AuditEntry, RlTrainResult } from '../../src/spark/rl/rl-train.workflow.js';
import { coEvolve, pauseSignal, resumeSignal, rlTrain, rlTrainProgress, setHyperparametersUpdate, stopSignal } from '../../src/workflows/index.js';
import { connectClient, makeStore, metricsRows, spawnWorkerProcess, uniqueTaskQueue, until, withWorker } from '../support/harness.js';
import { TrainingSandbox } from '../support/training-sandbox.js';

const store = makeStore();
const fields = { question: 'question', answer: 'answer' };

/** How a scenario runs each loop: its workflow, a small input, where its outputs go, and its run lengths. */
interface Loop {
  name: 'rlTrain' | 'coEvolve';
  seeds: { sim: number; prompts: number; heldOut: number };
  /** The folder under runs/<run>/ its outputs go to. */
  folder: string;
  workflow: typeof rlTrain | typeof coEvolve;
  /** A small input on the sandbox, with `extra` over it. */
  input: (box: TrainingSandbox, runName: string, extra: Record<string, unknown>) => RlTrainInput | CoEvolveInput;
  /** Steps for the worker crash, and metrics rows to wait for before the kill. */
  workerCrash: { totalSteps: number; killAfterRows: number };
  /** For the trainer crash: the settings, and how often a checkpoint is saved under them. */
  trainerCrash: { extra: Record<string, unknown>; checkpointEvery: number };
}

const LOOPS: Loop[] = [
  {
    name: 'rlTrain',
    seeds: { sim: 71, prompts: 72, heldOut: 73 },
    folder: 'rl',
    workflow: rlTrain,
    input: (box, runName, extra): RlTrainInput => {
      const endpoint = { baseURL: box.sim.url };
      return {
        runName,
        policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
        trainer: { baseURL: box.trainerURL },
        reward: { formulation: 'selective-advantage', prm: { endpoint, model: 'sim-verifier', style: 'prm-cot' } },
        dataset: { uri: box.promptsUri, fields },
        evaluation: { sets: [{ name: 'held-out', uri: box.heldOutUri, fields }], every: 4 },
        grpo: { batchSize: 4, groupSize: 4 },
        totalSteps: 8,
        checkpointEvery: 4,
        publishEvery: 2,
        seed: 11,
        ...extra,
      };
    },
    workerCrash: { totalSteps: 12, killAfterRows: 5 },
    trainerCrash: { extra: { totalSteps: 12, publishEvery: 4, evaluation: { sets: [] } }, checkpointEvery: 4 },
  },
  {
    name: 'coEvolve',
    seeds: { sim: 81, prompts: 82, heldOut: 83 },
    folder: 'co-evolve',
    workflow: coEvolve,
    input: (box, runName, extra): CoEvolveInput => {
      const endpoint = { baseURL: box.sim.url };
      return {
        runName,
        policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
        trainer: { baseURL: box.trainerURL },
        dataset: { uri: box.promptsUri, fields },
        evaluation: { sets: [{ name: 'held-out', uri: box.heldOutUri, fields }], every: 3, temperature: 1, samples: 2 },
        grpo: { batchSize: 4, groupSize: 4 },
        totalSteps: 6,
        checkpointEvery: 3,
        seed: 5,
        ...extra,
      };
    },
    workerCrash: { totalSteps: 9, killAfterRows: 6 },
    // coEvolve publishes every step, so every step is also a checkpoint.
    trainerCrash: { extra: { totalSteps: 9, checkpointEvery: 4, evaluation: { sets: [] } }, checkpointEvery: 1 },
  },
];

afterAll(() => store.destroy());

describe.each(LOOPS)('the GRPO loop of $name', (loop) => {
  const taskQueue = uniqueTaskQueue(`grpo-${loop.folder}`);
  let box: TrainingSandbox;
  let client: Client;
  let closeClient: () => Promise<void>;
  const run = (tag: string) => `${loop.folder}-${tag}-${randomUUID().slice(0, 8)}`;
  const rowsOf = (runName: string) => metricsRows(store, `runs/${runName}/${loop.folder}`);
  /** Starts the loop's workflow on `queue` under `test/<runName>`. */
  const start = (queue: string, runName: string, extra: Record<string, unknown>): Promise<WorkflowHandle<typeof rlTrain>> =>
    client.workflow.start(loop.workflow as typeof rlTrain, { taskQueue: queue, workflowId: `test/${runName}`, args: [loop.input(box, runName, extra) as RlTrainInput] });
  const finalState = (result: RlTrainResult) => store.getText(`${result.checkpoint!}/state.json`);

  beforeAll(async () => {
    box = await TrainingSandbox.start(store, loop.seeds);
    ({ client, close: closeClient } = await connectClient());
  }, 60_000);

  afterAll(async () => {
    await closeClient();
    await box.close();
  });

  it('finishes on the same trajectory after its worker is killed mid-run', { timeout: 300_000 }, async () => {
    const queue = `${taskQueue}-crash`;
    let worker = spawnWorkerProcess({ taskQueue: queue });
    try {
      const { totalSteps, killAfterRows } = loop.workerCrash;
      const refName = run('ref');
      const reference = await withWorker({ taskQueue }, async () => (await start(taskQueue, refName, { totalSteps })).result());
      await worker.ready;
      const runName = run('wcrash');
      const handle = await start(queue, runName, { totalSteps });
      await until(async () => (await store.list(`runs/${runName}/${loop.folder}/metrics/`)).length >= killAfterRows, `${killAfterRows} steps`);
      await worker.kill();
      worker = spawnWorkerProcess({ taskQueue: queue });
      await worker.ready;
      const result = await handle.result();
      expect(await finalState(result)).toBe(await finalState(reference));
      const [mine, theirs] = [await rowsOf(runName), await rowsOf(refName)];
      expect(mine.map((m) => m.step)).toEqual(mine.map((_, i) => i));
      expect(mine.map((m) => [m.step, m.kind, m.rlStep])).toEqual(theirs.map((m) => [m.step, m.kind, m.rlStep]));
      expect(result.evals.map((e) => e.accuracy)).toEqual(reference.evals.map((e) => e.accuracy));
    } finally {
      await worker.kill();
    }
  });

  it('finishes on the same trajectory after the trainer is killed mid-run, re-applying lost steps from their stored batches', { timeout: 300_000 }, async () => {
    await withWorker({ taskQueue }, async () => {
      const { extra, checkpointEvery } = loop.trainerCrash;
      const refName = run('tref');
      const reference = await (await start(taskQueue, refName, extra)).result();
      const runName = run('tcrash');
      const handle = await start(taskQueue, runName, extra);
      const mine = () => box.appliedSteps(runName);
      await until(() => mine().length >= 6, 'six applied steps');
      const killedPid = mine()[0]!.pid;
      await box.restartTrainer();
      const result = await handle.result();
      expect(await finalState(result)).toBe(await finalState(reference));
      const metrics = await rowsOf(runName);
      expect(metrics.map((m) => m.step)).toEqual(metrics.map((_, i) => i));
      expect(metrics.map((m) => m.kind)).toEqual((await rowsOf(refName)).map((m) => m.kind));
      // The new trainer picked up at the last checkpoint before the kill: nothing earlier was applied again.
      const after = mine().filter((e) => e.pid !== killedPid).map((e) => e.step!);
      const before = mine().filter((e) => e.pid === killedPid).map((e) => e.step!);
      expect(Math.min(...after) % checkpointEvery).toBe(0);
      expect(Math.min(...after)).toBeGreaterThanOrEqual(Math.floor(Math.max(...before) / checkpointEvery) * checkpointEvery);
    });
  });

  it('pauses, refuses a bad update, takes a hyperparameter update, resumes, and stops after a checkpoint, every change audited', { timeout: 180_000 }, async () => {
    await withWorker({ taskQueue }, async () => {
      const runName = run('ctl');
      const handle = await start(taskQueue, runName, { totalSteps: 40, evaluation: { sets: [] } });
      await until(async () => (await handle.query(rlTrainProgress)).step >= 2, 'two rollout steps');
      await handle.signal(pauseSignal);
      await until(async () => (await handle.query(rlTrainProgress)).stage === 'paused', 'the run to pause');
      const pausedAt = (await handle.query(rlTrainProgress)).step;
      await new Promise((r) => setTimeout(r, 1500));
      expect((await handle.query(rlTrainProgress)).step).toBe(pausedAt);

      const refused = await handle.executeUpdate(setHyperparametersUpdate, { args: [{ learningRate: -1 }] }).then(() => null, (e: unknown) => e as Error & { cause?: Error });
      expect(refused?.cause?.message).toMatch(/learningRate: /);
      const applied = await handle.executeUpdate(setHyperparametersUpdate, { args: [{ learningRate: 3e-6, klCoefficient: 0.01, reason: 'test' }] });
      expect(applied).toMatchObject({ learningRate: 3e-6, klCoefficient: 0.01 });
      await handle.signal(resumeSignal);
      await until(async () => (await handle.query(rlTrainProgress)).step >= pausedAt + 2, 'two more rollout steps');
      await handle.signal(stopSignal);
      const result = await handle.result();
      expect(result.stopped).toBe(true);
      const trainerSteps = result.trainerSteps ?? result.steps;
      expect(result.steps).toBeLessThan(40);
      expect(result.checkpoint).toMatch(new RegExp(`/step-${String(trainerSteps - 1).padStart(6, '0')}$`));

      // What the steps were trained with changed exactly at the trainer step the update names.
      const metrics = await rowsOf(runName);
      expect(metrics.map((m) => m.step)).toEqual(Array.from({ length: trainerSteps }, (_, i) => i));
      for (const m of metrics) {
        expect(m.klCoefficient).toBe(m.step < applied.fromStep ? 0.001 : 0.01);
        if (m.step >= applied.fromStep) expect(m.learningRate).toBe(3e-6);
      }
      const request = await store.getJson<{ learningRate: number; loss: { klCoefficient: number } }>(`runs/${runName}/${loop.folder}/batches/step-${String(applied.fromStep).padStart(6, '0')}.request.json`);
      expect(request).toMatchObject({ learningRate: 3e-6, loss: { klCoefficient: 0.01 } });

      const audit = await Promise.all((await store.list(`runs/${runName}/${loop.folder}/audit/`)).sort().map((k) => store.getJson<AuditEntry>(k)));
      expect(audit.map((a) => a.action)).toEqual(['pause', 'set-hyperparameters', 'resume', 'stop']);
      expect(audit.map((a) => a.seq)).toEqual([1, 2, 3, 4]);
      expect(audit[1]).toMatchObject({ step: applied.fromStep, details: { before: { learningRate: null, klCoefficient: 0.001 }, after: { learningRate: 3e-6, klCoefficient: 0.01 }, reason: 'test' } });
    });
  });
});
