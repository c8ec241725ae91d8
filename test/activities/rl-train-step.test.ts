/**
 * Stage 3's train step on its own, in `MockActivityEnvironment`, against the sandbox trainer in
 * its own process and the suite's S3: when the trainer has lost the session (killed and started
 * empty), `rlTrainStep` recreates it from the checkpoint it is given and applies the steps after
 * that checkpoint again from their stored batches before its own, so the run ends where an
 * uninterrupted one does.
 */
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inferenceClientPool } from '../../src/core/deps.js';
import { joinKey } from '../../src/core/store/refs.js';
import type { RlTrainConfig } from '../../src/spark/rl/input.js';
import { RlTrainInputSchema } from '../../src/spark/rl/input.js';
import { GrpoExampleSchema } from '../../src/core/trainer/protocol.js';
import type { PreparedRlData, RlTrainStepResult } from '../../src/spark/rl/activities.js';
import { createRlActivities } from '../../src/spark/rl/activities.js';
import { stepName } from '../../src/spark/rl/grpo.js';
import { makeStore } from '../support/harness.js';
import { TrainingSandbox } from '../support/training-sandbox.js';

const store = makeStore();
const activities = createRlActivities({ store, inference: inferenceClientPool() });
let box: TrainingSandbox;

beforeAll(async () => {
  box = await TrainingSandbox.start(store, { sim: 91, prompts: 92, heldOut: 93 });
}, 60_000);

afterAll(async () => {
  await box.close();
  store.destroy();
});

/** Runs one activity call in a fresh mock environment, as a worker would. */
const inActivity = <T>(fn: () => Promise<T>): Promise<T> => new MockActivityEnvironment().run(fn) as Promise<T>;

/** Rolls out and applies steps [from, to) of one session; checkpoints after `checkpointAt` and (unless told not to) after the last. */
async function steps(config: RlTrainConfig, prepared: PreparedRlData, prefix: string, sessionId: string, from: number, to: number, opts: { checkpointAt?: number; checkpointLast?: boolean; resumeFrom?: string | null } = {}): Promise<RlTrainStepResult[]> {
  const session = { baseModel: config.policy.baseModel, adapter: config.policy.adapter, optimizer: config.policy.optimizer, seed: config.seed };
  const out: RlTrainStepResult[] = [];
  for (let step = from; step < to; step++) {
    const common = { learningRate: 1e-6, klCoefficient: 0.001, servedModel: config.policy.model };
    const rollouts = await inActivity(() => activities.rlRollouts({ config, outputPrefix: prefix, prepared, step, ...common }));
    const save = step === opts.checkpointAt || (opts.checkpointLast !== false && step === to - 1);
    out.push(await inActivity(() => activities.rlTrainStep({
      trainerURL: box.trainerURL,
      sessionId,
      session,
      outputPrefix: prefix,
      step,
      resumeCandidates: [opts.resumeFrom ?? null],
      checkpoint: save
        ? {
          uri: store.uri(joinKey(prefix, 'checkpoints', stepName(step))),
          info: { configHash: 'test', datasetSha256: prepared.datasetSha256, baseModel: config.policy.baseModel, servedModel: config.policy.model, learningRate: null, klCoefficient: 0.001 },
        }
        : null,
      publish: null,
      metrics: { ...rollouts.summary, step, ...common },
    })));
  }
  return out;
}

describe('rlTrainStep in MockActivityEnvironment', () => {
  it('writes each rollout\'s finishReason on its GRPO line, so a rollout cut at maxTokens trains no end-of-turn token', { timeout: 120_000 }, async () => {
    const runName = `rl-cut-${randomUUID().slice(0, 8)}`;
    const endpoint = { baseURL: box.sim.url };
    const line = async (maxTokens: number) => {
      const config = RlTrainInputSchema.parse({
        runName: `${runName}-${maxTokens}`,
        policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy', sampling: { maxTokens } },
        trainer: { baseURL: box.trainerURL },
        reward: { formulation: 'verifiable', guards: { enabled: false } },
        dataset: { uri: box.promptsUri, fields: { question: 'question', answer: 'answer' } },
        grpo: { batchSize: 2, groupSize: 2 },
        totalSteps: 1,
      });
      const prefix = `runs/${config.runName}/rl`;
      const prepared = await inActivity(() => activities.prepareRlData({ config, outputPrefix: prefix }));
      const { request } = await inActivity(() => activities.rlRollouts({ config, outputPrefix: prefix, prepared, step: 0, learningRate: 1e-6, klCoefficient: 0.001, servedModel: 'sim-policy' }));
      const { batch } = await store.getJson<{ batch: { uri: string } }>(request.uri);
      return (await store.getText(batch.uri)).trim().split('\n').map((l) => GrpoExampleSchema.parse(JSON.parse(l)));
    };
    // Every rollout cut at 3 tokens: the sample store keeps them (the model's own), marked as cut.
    const cut = await line(3);
    expect(cut.map((l) => l.finishReason)).toEqual(['length', 'length', 'length', 'length']);
    const ended = await line(2048);
    expect(ended.map((l) => l.finishReason)).toEqual(['stop', 'stop', 'stop', 'stop']);
  });

  it('re-applies the steps after the checkpoint from their stored batches when the trainer lost the session, and ends where an uninterrupted run does', { timeout: 180_000 }, async () => {
    const runName = `rl-step-${randomUUID().slice(0, 8)}`;
    const endpoint = { baseURL: box.sim.url };
    const config = RlTrainInputSchema.parse({
      runName,
      policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
      trainer: { baseURL: box.trainerURL },
      reward: { formulation: 'verifiable', guards: { enabled: false } },
      dataset: { uri: box.promptsUri, fields: { question: 'question', answer: 'answer' } },
      evaluation: { sets: [] },
      grpo: { batchSize: 4, groupSize: 4 },
      totalSteps: 5,
      seed: 17,
    });
    const prefix = `runs/${runName}/rl`;
    const prepared = await inActivity(() => activities.prepareRlData({ config, outputPrefix: prefix }));

    // Uninterrupted: steps 0..4 in one session.
    const reference = await steps(config, prepared, `${prefix}-ref`, `${runName}-ref-session`, 0, 5);

    // Interrupted: steps 0..3 with a checkpoint after step 1, then the trainer loses everything.
    const first = await steps(config, prepared, prefix, `${runName}-session`, 0, 4, { checkpointAt: 1, checkpointLast: false });
    const checkpoint = first[1]!.checkpoint!;
    expect(first.every((s) => s.replayed === 0)).toBe(true);
    const killedAt = box.appliedSteps(`${runName}-session`).length;
    await box.restartTrainer();

    const [last] = await steps(config, prepared, prefix, `${runName}-session`, 4, 5, { resumeFrom: checkpoint });
    // Steps 2 and 3 came after the checkpoint: applied again from their stored batches, then step 4.
    expect(last!.replayed).toBe(2);
    const afterRestart = box.appliedSteps(`${runName}-session`).slice(killedAt).map((e) => e.step);
    expect(afterRestart).toEqual([2, 3, 4]);
    expect(await store.getText(`${last!.checkpoint!}/state.json`)).toBe(await store.getText(`${reference.at(-1)!.checkpoint!}/state.json`));
  });
});
