/**
 * Learning on the neural world: real networks, trained here, learn through the workflows and the
 * reference trainer. CI-size world models (built once and cached by content hash), a handful of
 * problems, one seed. Each test asserts that something was learnt, and the GRPO test has a
 * negative control (advantages trained with their sign flipped) that must not improve.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionLine } from '../../src/spark/prm/evaluation.js';
import type { RlTrainInput } from '../../src/spark/rl/input.js';
import { evaluatePrm, rlTrain, synthesizeLabels, trainPrm } from '../../src/workflows/index.js';
import { PRM_BASE, WORLD_VERIFIER_SAMPLING, WORLD_ADAPTER, WORLD_MAX_TOKENS, WORLD_PRM_OPTIMIZER, WORLD_RL_OPTIMIZER } from '../../sandbox/neural/settings.js';
import { pairedF1Gain } from '../../sandbox/neural/stats.js';
import { worldDataset, worldProcessBenchSplits } from '../../sandbox/neural/world-data.js';
import type { World, WorldServers } from '../../sandbox/neural/world-models.js';
import { defaultWorldDir, ensureWorld, startWorldServers } from '../../sandbox/neural/world-models.js';
import { connectClient, makeStore, stackEnv, uniqueTaskQueue, withWorker } from '../support/harness.js';

const store = makeStore();
const taskQueue = uniqueTaskQueue('neural-learning');
let world: World;
let servers: WorldServers;
let flipped: WorldServers;
let conn: Awaited<ReturnType<typeof connectClient>>;

beforeAll(async () => {
  world = await ensureWorld({ dir: defaultWorldDir('ci', 0), seed: 0, size: 'ci' });
  [servers, flipped, conn] = await Promise.all([
    startWorldServers(world, { env: stackEnv() }),
    // The negative control's trainer: every GRPO advantage is trained with its sign flipped.
    startWorldServers(world, { env: { ...stackEnv(), SPARK_TRAINER_TEST_NEGATE_ADVANTAGES: '1' } }),
    connectClient(),
  ]);
}, 900_000);

afterAll(async () => {
  await Promise.all([servers?.close(), flipped?.close(), conn?.close()]);
  store.destroy();
});


describe('the neural world learns through the pipeline', () => {
  it('a PRM fine-tuned on stage-1 labels lowers its loss and beats its base on a world ProcessBench by more than the noise', { timeout: 600_000 }, async () => {
    const runName = `neural-prm-${randomUUID().slice(0, 8)}`;
    const settings = world.info.problems;
    await withWorker({ taskQueue }, async () => {
      const dataset = await worldDataset(store, settings, { seed: 'learning-prm', count: 128 });
      const labels = await conn.client.workflow.execute(synthesizeLabels, {
        taskQueue,
        workflowId: `test/${runName}/labels`,
        args: [{
          runName: `${runName}-labels`,
          dataset: { uri: dataset.uri },
          generator: { endpoint: { baseURL: servers.inferenceURL }, model: 'policy', sampling: { temperature: 1, topP: 1, maxTokens: WORLD_MAX_TOKENS.solution } },
          verifier: { endpoint: { baseURL: servers.inferenceURL }, model: 'verifier', sampling: WORLD_VERIFIER_SAMPLING },
          solutionsPerProblem: 4,
          verificationsPerSolution: 5,
          methods: ['step-majority'],
          seed: 1,
        }],
      });
      const trained = await conn.client.workflow.execute(trainPrm, {
        taskQueue,
        workflowId: `test/${runName}/train`,
        args: [{
          runName, labelsManifestUri: labels.manifest.uri, method: 'step-majority', style: 'prm-cot', trainer: { baseURL: servers.trainerURL },
          baseModel: PRM_BASE, adapter: WORLD_ADAPTER, optimizer: WORLD_PRM_OPTIMIZER, epochs: 6, batchSize: 8, checkpointEvery: 8, seed: 2,
          // The policy solves a quarter of its problems: without balance the PRM learns that every solution is wrong.
          data: { balance: 'outcome' },
          publish: { inferenceBaseURL: servers.inferenceURL },
        }],
      });
      const losses = trained.lossCurve.map((p) => p.loss);
      const third = Math.max(1, Math.floor(losses.length / 3));
      const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
      expect(mean(losses.slice(-third))).toBeLessThan(mean(losses.slice(0, third)));

      const splits = await worldProcessBenchSplits(store, settings, { seed: 'learning-processbench', rows: 80 });
      const evaluate = (model: string, suffix: string) => conn.client.workflow.execute(evaluatePrm, {
        taskQueue,
        workflowId: `test/${runName}/evaluate-${suffix}`,
        args: [{
          runName: `${runName}-${suffix}`,
          benchmark: { splits },
          model: { endpoint: { baseURL: servers.inferenceURL }, model, sampling: { temperature: 0, topP: 1, maxTokens: WORLD_MAX_TOKENS.verification } },
          style: 'prm-cot',
          chunkSize: 30,
          concurrency: 2,
        }],
      });
      const [base, prm] = await Promise.all([evaluate(PRM_BASE, 'base'), evaluate(trained.model!.modelName, 'prm')]);
      const lines = async (uri: string) => (await store.getText(uri)).trim().split('\n').map((l) => JSON.parse(l) as PredictionLine);
      const gain = pairedF1Gain(await lines(base.predictions.uri), await lines(prm.predictions.uri), { seed: runName });
      console.error(`[learning] base:\n${base.markdown}\nfine-tuned:\n${prm.markdown}\nlosses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
      console.error(`[learning] PRM F1 ${(base.report.scores.average.f1 ?? 0).toFixed(3)} → ${(prm.report.scores.average.f1 ?? 0).toFixed(3)}; gain ${gain.mean.toFixed(3)} [${gain.lo.toFixed(3)}, ${gain.hi.toFixed(3)}]`);
      // More than the noise: the whole 95% interval of the paired gain lies above 0.
      expect(gain.lo).toBeGreaterThan(0);
    });
  });

  it('GRPO with the verifiable reward raises the mean reward on its prompts; with the advantage sign flipped it does not', { timeout: 600_000 }, async () => {
    const settings = world.info.problems;
    const fields = { question: 'question', answer: 'answer' };
    const prompts = await worldDataset(store, settings, { seed: 'learning-grpo', count: 16, withAnswers: true });
    const input = (runName: string, on: WorldServers): RlTrainInput => ({
      runName,
      policy: {
        baseModel: 'policy', adapter: WORLD_ADAPTER, optimizer: WORLD_RL_OPTIMIZER, endpoint: { baseURL: on.inferenceURL }, model: 'policy',
        sampling: { temperature: 1, topP: 1, maxTokens: WORLD_MAX_TOKENS.solution }, maxInFlight: 8,
      },
      trainer: { baseURL: on.trainerURL },
      reward: { formulation: 'verifiable' },
      dataset: { uri: prompts.uri, fields },
      // The mean reward on the training prompts themselves, sampled as in training (T = 1), before and after.
      evaluation: { sets: [{ name: 'prompts', uri: prompts.uri, fields }], every: STEPS, temperature: 1, samples: 16, maxTokens: WORLD_MAX_TOKENS.solution },
      grpo: { batchSize: 8, groupSize: 8, klCoefficient: 0 },
      totalSteps: STEPS,
      checkpointEvery: STEPS,
      seed: 3,
    });
    const STEPS = 12;
    const id = randomUUID().slice(0, 8);
    const [learnt, control] = await withWorker({ taskQueue }, () => Promise.all([
      conn.client.workflow.execute(rlTrain, { taskQueue, workflowId: `test/neural-grpo-${id}`, args: [input(`neural-grpo-${id}`, servers)] }),
      conn.client.workflow.execute(rlTrain, { taskQueue, workflowId: `test/neural-grpo-flipped-${id}`, args: [input(`neural-grpo-flipped-${id}`, flipped)] }),
    ]));
    const change = (r: typeof learnt) => {
      const at = (step: number) => r.evals.find((e) => e.step === step && e.set === 'prompts')?.accuracy ?? Number.NaN;
      return { before: at(0), after: at(STEPS) };
    };
    const up = change(learnt);
    const down = change(control);
    console.error(`[learning] GRPO mean reward on its prompts: ${up.before.toFixed(3)} → ${up.after.toFixed(3)}; flipped: ${down.before.toFixed(3)} → ${down.after.toFixed(3)}`);
    // Both start from the same weights and sample the same prompts; 16 prompts × 16 samples each.
    expect(up.before).toBeCloseTo(down.before, 5);
    expect(up.after - up.before).toBeGreaterThan(0.05);
    expect(down.after - down.before).toBeLessThan(0.02);
  });
});
