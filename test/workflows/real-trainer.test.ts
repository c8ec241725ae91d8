/**
 * The stages after labelling on the reference trainer for real models (`trainer/`, PyTorch) and its
 * development model server, with the tiny random-weight model, on the suite's real Temporal and S3:
 * trainPrm then evaluatePrm on the published PRM, rlTrain and coEvolve, and a SIGKILL of the
 * trainer mid-run. A random model writes garbage, so these tests check what the control plane and
 * the trainer do with it (steps, checkpoints, publishes, unreadable answers, exact resume), not
 * what is learnt.
 */
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoEvolveInput } from '../../src/spark/co-evolve/input.js';
import type { RlTrainInput } from '../../src/spark/rl/input.js';
import { SANDBOX_PROCESSBENCH_SPLITS, generateSandboxProcessBench } from '../../sandbox/processbench-sandbox.js';
import type { Adapter, Optimizer } from '../../src/core/trainer/protocol.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import type { RlTrainResult } from '../../src/spark/rl/grpo-loop.workflow.js';
import { coEvolve, evaluatePrm, rlTrain, synthesizeLabels, trainPrm } from '../../src/workflows/index.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import { connectClient, makeStore, metricsRows, uniqueTaskQueue, until, withWorker } from '../support/harness.js';
import { uploadSandboxBenchmark } from '../support/processbench.js';
import { PythonTrainerStack, TINY } from '../support/python-trainer.js';

const store = makeStore();
const taskQueue = uniqueTaskQueue('real-trainer');
const fields = { question: 'question', answer: 'answer' };
let stack: PythonTrainerStack;
let conn: Awaited<ReturnType<typeof connectClient>>;
let promptsUri: string;
let heldOutUri: string;

/** Small enough for two busy cores: rank 4 on two projections of a 2-layer model. */
const ADAPTER: Adapter = { kind: 'lora', rank: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'], dropout: 0 };
const OPTIMIZER: Optimizer = { name: 'adamw', learningRate: 1e-3, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0, maxGradNorm: 1 };
/** The files of a committed checkpoint of the Python trainer (PEFT's layout, then its own state and marker). */
const CHECKPOINT_FILES = ['COMMITTED', 'adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'trainer-state.json'];

beforeAll(async () => {
  [stack, conn] = await Promise.all([PythonTrainerStack.start(), connectClient()]);
  promptsUri = (await uploadSandboxProblems(store, { seed: 91, count: 8, withAnswers: true })).uri;
  heldOutUri = (await uploadSandboxProblems(store, { seed: 92, count: 2, withAnswers: true })).uri;
}, 240_000);

afterAll(async () => {
  await stack?.close();
  await conn?.close();
  store.destroy();
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const adapterSha256 = async (checkpoint: string) => sha256(await store.getBytes(`${checkpoint}/adapter_model.safetensors`));

async function checkpointFiles(checkpoint: string): Promise<string[]> {
  const key = store.keyOf(checkpoint);
  return (await store.list(`${key}/`)).map((k) => k.slice(key.length + 1)).sort();
}

describe('trainPrm and evaluatePrm on the Python trainer', () => {
  it('fine-tunes the tiny model on stage-1 labels, publishes it to the model server, and evaluatePrm reports its garbage as unreadable', { timeout: 240_000 }, async () => {
    // Stage-1 labels from the sandbox (its verifiers write the formats SPARK parses).
    const sim = await startSimServer({ seed: 93 });
    const runName = `prm-real-${randomUUID().slice(0, 8)}`;
    try {
      await withWorker({ taskQueue }, async () => {
        const dataset = await uploadSandboxProblems(store, { seed: 94, count: 6 });
        const labels = await conn.client.workflow.execute(synthesizeLabels, {
          taskQueue,
          workflowId: `test/${runName}/labels`,
          args: [{
            runName: `${runName}-labels`,
            dataset: { uri: dataset.uri },
            generator: { endpoint: { baseURL: sim.url }, model: 'sim-policy', sampling: { temperature: 1 } },
            verifier: { endpoint: { baseURL: sim.url }, model: 'sim-verifier' },
            solutionsPerProblem: 2,
            verificationsPerSolution: 3,
            methods: ['step-majority'],
            seed: 95,
          }],
        });

        const trained = await conn.client.workflow.execute(trainPrm, {
          taskQueue,
          workflowId: `test/${runName}`,
          args: [{
            runName, labelsManifestUri: labels.manifest.uri, method: 'step-majority', style: 'prm', trainer: { baseURL: stack.trainerURL },
            baseModel: TINY, adapter: ADAPTER, optimizer: OPTIMIZER, epochs: 1, batchSize: 4, checkpointEvery: 2, seed: 5,
            publish: { inferenceBaseURL: stack.inferenceURL },
          }],
        });
        // 12 labelled solutions, 4 per step, one epoch.
        expect(trained.examples).toBe(12);
        expect(trained.steps).toBe(3);
        expect(stack.appliedSteps(trained.sessionId).map((s) => s.step)).toEqual([0, 1, 2]);
        expect(trained.lossCurve.every((p) => Number.isFinite(p.loss))).toBe(true);
        expect(trained.checkpoint).toMatch(/\/step-000003$/);
        expect(await checkpointFiles(trained.checkpoint)).toEqual(CHECKPOINT_FILES);
        expect(trained.model).toMatchObject({ modelName: `${runName}-prm`, checkpointUri: trained.checkpoint, step: 2 });
        expect(await stack.servedModels()).toContain(`${runName}-prm`);

        // The published PRM, greedy, as ProcessBench asks it: the random model's answers have no
        // step labels, so every row is unreadable and scored as wrong; the run still completes.
        const benchmark = generateSandboxProcessBench({ seed: 7, countPerSplit: 4, splits: SANDBOX_PROCESSBENCH_SPLITS.slice(0, 2) });
        const evaluated = await conn.client.workflow.execute(evaluatePrm, {
          taskQueue,
          workflowId: `test/${runName}/evaluate`,
          args: [{
            runName: `${runName}-eval`,
            benchmark: { splits: await uploadSandboxBenchmark(store, benchmark) },
            model: { endpoint: { baseURL: stack.inferenceURL }, model: `${runName}-prm`, sampling: { temperature: 0, maxTokens: 64 } },
            style: 'prm',
            seed: 3,
            chunkSize: 4,
            concurrency: 2,
          }],
        });
        expect(evaluated.rows).toBe(8);
        expect(evaluated.cost).toMatchObject({ callsMade: 8, samplesReused: 0 });
        expect(evaluated.report.unparseable).toEqual({ gsm8k: { rows: 4, samples: 4 }, math: { rows: 4, samples: 4 } });
        expect(evaluated.report.scores.average).toMatchObject({ errorAcc: 0, correctAcc: 0, f1: 0 });
        expect(evaluated.markdown).toContain('Unreadable answers (scored as wrong): gsm8k 4 sample(s), 4 row(s) without an answer');
      });
    } finally {
      await sim.close();
    }
  });
});

/**
 * The GRPO settings both workflows share. The random model's answers never pass the format gate,
 * so every reward and advantage is 0; the entropy bonus is what moves the weights, so that a
 * resumed run has something to get exactly right.
 */
function grpoInput(runName: string) {
  return {
    runName,
    policy: {
      baseModel: TINY, adapter: ADAPTER, optimizer: OPTIMIZER, endpoint: { baseURL: stack.inferenceURL }, model: TINY,
      sampling: { temperature: 1, topP: 1, maxTokens: 64 }, maxInFlight: 4,
    },
    trainer: { baseURL: stack.trainerURL },
    dataset: { uri: promptsUri, fields },
    evaluation: { sets: [{ name: 'held-out', uri: heldOutUri, fields }], every: 2, maxTokens: 64 },
    grpo: { batchSize: 2, groupSize: 2, entropyCoefficient: 0.01 },
    totalSteps: 4,
    checkpointEvery: 2,
    publishEvery: 1,
    seed: 7,
  };
}

interface GrpoCase {
  name: string;
  /** Key folder of the run's outputs under `runs/<runName>/`. */
  folder: string;
  /** Runs the workflow to its end on the file's task queue (a worker must poll it). */
  run(runName: string): Promise<RlTrainResult>;
}

const CASES: GrpoCase[] = [
  { name: 'rlTrain', folder: 'rl', run: (runName) => conn.client.workflow.execute(rlTrain, { taskQueue, workflowId: `test/${runName}`, args: [{ ...grpoInput(runName), reward: { formulation: 'verifiable' } } satisfies RlTrainInput] }) },
  { name: 'coEvolve', folder: 'co-evolve', run: (runName) => conn.client.workflow.execute(coEvolve, { taskQueue, workflowId: `test/${runName}`, args: [grpoInput(runName) satisfies CoEvolveInput] }) },
];

describe.each(CASES)('$name on the Python trainer', ({ name, folder, run }) => {
  /** One uninterrupted run per workflow: the first test checks it, the crash test compares with it. */
  let uninterrupted: Promise<{ runName: string; result: RlTrainResult }> | undefined;
  const reference = () => (uninterrupted ??= (async () => {
    const runName = `${folder}-real-${randomUUID().slice(0, 8)}`;
    return { runName, result: await withWorker({ taskQueue }, () => run(runName)) };
  })());

  it('rolls out from the model server, trains on the tiny model, and publishes every step; rollouts come from the last published step', { timeout: 180_000 }, async () => {
    const { runName, result } = await reference();
    const policy = (step: number) => `${runName}-policy-step-${String(step).padStart(6, '0')}`;
    expect(result).toMatchObject({ steps: 4, stopped: false, servedModel: policy(4) });
    const metrics = await metricsRows(store, `runs/${runName}/${folder}`);
    expect(metrics.map((m) => [m.step, m.servedModel])).toEqual([[0, TINY], [1, policy(1)], [2, policy(2)], [3, policy(3)]]);
    // Garbage passes no format gate: every rollout is rejected and rewarded 0.
    for (const m of metrics) expect(m).toMatchObject({ prompts: 2, rollouts: 4, gateRejections: 4, rewardMean: 0, accuracy: 0 });
    expect(metrics.every((m) => Number.isFinite(m.loss))).toBe(true);
    expect(metrics.some((m) => m.meanResponseChars > 0)).toBe(true);
    if (name === 'coEvolve') {
      // Without a readable answer nothing is recycled: coEvolve on garbage is plain RLVR.
      expect(result.trainerSteps).toBe(4);
      expect(metrics.every((m) => m.kind === 'rollout' && Object.values(m.recycledItems ?? {}).every((n) => n === 0))).toBe(true);
    }
    expect(stack.appliedSteps(runName).map((s) => s.step)).toEqual([0, 1, 2, 3]);
    expect(await stack.servedModels()).toEqual(expect.arrayContaining([1, 2, 3, 4].map(policy)));
    expect(result.evals.map((e) => [e.step, e.accuracy])).toEqual([[0, 0], [2, 0], [4, 0]]);

    expect(result.checkpoint).toMatch(/\/step-000003$/);
    expect(await checkpointFiles(result.checkpoint!)).toEqual(CHECKPOINT_FILES);
    // The entropy bonus moved the adapter although every advantage was 0.
    const first = result.checkpoint!.replace(/step-000003$/, 'step-000000');
    expect(await adapterSha256(first)).not.toBe(await adapterSha256(result.checkpoint!));
  });

  it('completes after the trainer is SIGKILLed mid-run and restarted, with the adapter of the uninterrupted run byte for byte', { timeout: 240_000 }, async () => {
    const straight = await reference();
    const runName = `${folder}-kill-${randomUUID().slice(0, 8)}`;
    const result = await withWorker({ taskQueue }, async () => {
      const done = run(runName);
      await until(() => stack.appliedSteps(runName).length >= 2, 'two applied steps');
      const killedPid = stack.trainerPid;
      await stack.restartTrainer();
      const out = await done;
      // Every step is published, so checkpointed: the new trainer resumed from the last one and
      // re-applied at most the step that was in flight.
      const before = stack.appliedSteps(runName).filter((s) => s.pid === killedPid).map((s) => s.step);
      const after = stack.appliedSteps(runName).filter((s) => s.pid !== killedPid).map((s) => s.step);
      expect(after.length).toBeGreaterThan(0);
      expect(Math.min(...after)).toBeGreaterThanOrEqual(Math.max(...before));
      // The new process recreated the session from the run's own last checkpoint before the kill.
      const resumed = stack.createdSessions(runName).filter((s) => s.pid !== killedPid);
      expect(resumed).toHaveLength(1);
      expect(resumed[0]!.resumedFrom).toMatch(new RegExp(`/${runName}/${folder}/.*/step-${String(Math.min(...after) - 1).padStart(6, '0')}$`));
      return out;
    });
    expect(result).toMatchObject({ steps: 4, stopped: false, checkpoint: expect.stringMatching(/\/step-000003$/) as unknown as string });
    expect(await adapterSha256(result.checkpoint!)).toBe(await adapterSha256(straight.result.checkpoint!));
    // The same trajectory: the same rollouts (by length) and losses at every step.
    const [mine, theirs] = [await metricsRows(store, `runs/${runName}/${folder}`), await metricsRows(store, `runs/${straight.runName}/${folder}`)];
    expect(mine.map((m) => [m.step, m.meanResponseChars, m.loss])).toEqual(theirs.map((m) => [m.step, m.meanResponseChars, m.loss]));
  });
});
