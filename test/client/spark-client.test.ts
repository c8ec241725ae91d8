/**
 * The typed client on the real stack, imported the way other services import it (the package's
 * export map): a run started with typed input, its progress and result, finding it by search
 * attributes, client-side validation, and the rlTrain controls on a tiny GRPO run.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SparkClient, SparkInputError } from 'spark-temporal';
import type { RlTrainInput, SampleSolutionsInput } from 'spark-temporal';
import { objectStoreAdapterReader } from '../../sandbox/model-server/models.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import type { TrainerProcess } from '../support/harness.js';
import { connectClient, makeStore, spawnTrainerProcess, uniqueTaskQueue, until, withWorker } from '../support/harness.js';
import { freePort } from '../support/paths.js';

const store = makeStore();
const taskQueue = uniqueTaskQueue('spark-client');
let conn: Awaited<ReturnType<typeof connectClient>>;
let spark: SparkClient;
let sim: SimServer;

beforeAll(async () => {
  conn = await connectClient();
  spark = new SparkClient(conn.client, { taskQueue });
  sim = await startSimServer({ seed: 41, readAdapter: objectStoreAdapterReader(() => store) });
});
afterAll(async () => {
  await sim.close();
  await conn.close();
  store.destroy();
});

describe('SparkClient', () => {
  it('starts sampleSolutions with typed input under spark/<run>/<stage>, answers progress and result, and lists it', async () => {
    const dataset = await uploadSandboxProblems(store, { seed: 42, count: 4 });
    const runName = `client-${randomUUID().slice(0, 8)}`;
    const input: SampleSolutionsInput = {
      runName,
      dataset: { uri: dataset.uri },
      generator: { endpoint: { baseURL: sim.url }, model: 'sim-policy' },
      samplesPerProblem: 2,
    };
    await withWorker({ taskQueue }, async () => {
      const handle = await spark.start('sampleSolutions', input);
      expect(handle.workflowId).toBe(`spark/${runName}/sample-solutions`);
      const result = await handle.result();
      expect(result.solutions).toHaveLength(4);
      const progress = await handle.progress();
      expect(progress).toMatchObject({ problemsTotal: 4, problemsDone: 4 });

      await until(async () => (await spark.list({ runName, status: 'completed' })).length === 1, 'the run in the visibility store', 20_000);
      const [listed] = await spark.list({ runName, stage: 'sampleSolutions' });
      expect(listed).toMatchObject({ workflowId: handle.workflowId, type: 'sampleSolutions', status: 'COMPLETED', stage: 'sample-solutions', sparkStatus: 'completed', itemsDone: 4 });

      // A handle by ID, typed by the workflow named.
      const again = spark.getHandle('sampleSolutions', handle.workflowId);
      expect((await again.result()).manifest.uri).toBe(result.manifest.uri);
    });
  });

  it('refuses bad input before starting anything, naming each field and what was expected', async () => {
    const runName = `client-bad-${randomUUID().slice(0, 8)}`;
    const bad = { runName, dataset: { uri: 'problems.jsonl', limit: 0 }, generator: { endpoint: { baseURL: sim.url } } } as unknown as SampleSolutionsInput;
    const error = await spark.start('sampleSolutions', bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SparkInputError);
    const issues = (error as SparkInputError).issues;
    expect(issues.map((i) => i.field).sort()).toEqual(['dataset.limit', 'dataset.uri', 'generator.model']);
    expect(issues.find((i) => i.field === 'dataset.uri')?.message).toMatch(/S3 URI.*got "problems.jsonl"/);
    expect(issues.find((i) => i.field === 'generator.model')?.message).toMatch(/^required: expected string/);
    expect((error as Error).message).toContain('dataset.limit: ');
    // A misspelt field is refused, also where the workflow would silently drop it and use the default.
    const typo = { runName, dataset: { uri: 's3://spark/problems.jsonl' }, generator: { endpoint: { baseURL: sim.url }, model: 'sim-policy' }, samplesPerProblm: 2 };
    const typoError = await spark.start('sampleSolutions', typo as SampleSolutionsInput).catch((e: unknown) => e);
    expect((typoError as SparkInputError).issues).toEqual([{ field: 'samplesPerProblm', message: expect.stringMatching(/^unknown field/) as string }]);
    const notStarted = await spark.getHandle('sampleSolutions', `spark/${runName}/sample-solutions`).describe().catch((e: unknown) => e);
    expect(notStarted).toBeInstanceOf(WorkflowNotFoundError);
  });

  describe('rlTrain handle', () => {
    let trainer: TrainerProcess;
    beforeAll(async () => {
      trainer = spawnTrainerProcess({ port: await freePort(), eventsFile: join(mkdtempSync(join(tmpdir(), 'spark-client-')), 'events.jsonl') });
      await trainer.ready;
    });
    afterAll(async () => {
      await trainer.kill();
    });

    it('pauses, refuses a bad update, sets hyperparameters, resumes, and stops after a checkpoint', { timeout: 90_000 }, async () => {
      const prompts = await uploadSandboxProblems(store, { seed: 43, count: 24, withAnswers: true });
      const runName = `client-rl-${randomUUID().slice(0, 8)}`;
      const endpoint = { baseURL: sim.url };
      const input: RlTrainInput = {
        runName,
        policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
        trainer: { baseURL: trainer.url },
        reward: { formulation: 'selective-advantage', prm: { endpoint, model: 'sim-verifier', style: 'prm-cot' } },
        dataset: { uri: prompts.uri, fields: { question: 'question', answer: 'answer' } },
        evaluation: { sets: [] },
        grpo: { batchSize: 2, groupSize: 4 },
        totalSteps: 40,
        checkpointEvery: 4,
        publishEvery: 2,
        seed: 5,
      };
      await withWorker({ taskQueue }, async () => {
        const handle = await spark.start('rlTrain', input);
        expect(handle.workflowId).toBe(`spark/${runName}/rl-train`);
        await until(async () => (await handle.progress()).step >= 2, 'two steps', 60_000);
        await handle.pause();
        await until(async () => (await handle.progress()).stage === 'paused', 'the run to pause', 30_000);
        const pausedAt = (await handle.progress()).step;

        const refused = await handle.setHyperparameters({ learningRate: -1 }).catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(SparkInputError);
        expect((refused as SparkInputError).issues[0]).toMatchObject({ field: 'learningRate' });
        expect(await handle.setHyperparameters({ learningRate: 3e-6, klCoefficient: 0.01, reason: 'client test' })).toEqual({ learningRate: 3e-6, klCoefficient: 0.01, fromStep: pausedAt });
        expect((await handle.progress()).klCoefficient).toBe(0.01);

        await handle.resume();
        await until(async () => (await handle.progress()).step > pausedAt, 'a step after resuming', 30_000);
        await handle.stopAfterCheckpoint();
        const result = await handle.result();
        expect(result.stopped).toBe(true);
        expect(result.steps).toBeLessThan(40);
        expect(await handle.latestCheckpoint()).toBe(result.checkpoint);
        const recent = await handle.recentMetrics(2);
        expect(recent.map((m) => m.step)).toEqual([result.steps - 2, result.steps - 1]);
        expect(recent.at(-1)).toMatchObject({ learningRate: 3e-6, klCoefficient: 0.01 });
      });
    });
  });

  it('connects from settings (flags over environment) and reports the namespace', async () => {
    const own = await SparkClient.connect({ address: inject('temporalAddress'), namespace: 'default' }, { taskQueue });
    try {
      expect(own.namespace).toBe('default');
      expect(Array.isArray(await own.list({ runName: 'no-such-run', limit: 1 }))).toBe(true);
    } finally {
      await own.close();
    }
  });
});
