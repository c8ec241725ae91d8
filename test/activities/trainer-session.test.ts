/**
 * The training activities against the Python trainer (its own process, the tiny model, the
 * suite's S3), run in `MockActivityEnvironment`: a session the trainer has failed is recreated
 * from the newest committed checkpoint, as a lost one is, and the chunk's steps go on from there.
 */
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTrainingActivities, type TrainStepsInput } from '../../src/core/trainer/activities.js';
import { TrainerClient, TrainerError } from '../../src/core/trainer/client.js';
import type { Adapter, Optimizer } from '../../src/core/trainer/protocol.js';
import { makeStore } from '../support/harness.js';
import { PythonTrainerStack, TINY } from '../support/python-trainer.js';

const store = makeStore();
const activities = createTrainingActivities({ store });
let stack: PythonTrainerStack;

/** Small enough for two busy cores: rank 4 on two projections of a 2-layer model. */
const ADAPTER: Adapter = { kind: 'lora', rank: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'], dropout: 0 };
const OPTIMIZER: Optimizer = { name: 'adamw', learningRate: 1e-3, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0, maxGradNorm: 1 };

beforeAll(async () => {
  stack = await PythonTrainerStack.start();
}, 240_000);

afterAll(async () => {
  await stack?.close();
  store.destroy();
});

/** An activity environment that keeps what the activity heartbeats and logs. */
function recordingEnvironment() {
  const heartbeats: unknown[] = [];
  const logs: LogEntry[] = [];
  const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('INFO', (entry) => logs.push(entry)) });
  // A copy: the activity heartbeats one progress object that it keeps changing.
  env.on('heartbeat', (details: unknown) => heartbeats.push(structuredClone(details)));
  // `run` does not carry the activity's result type through: say it here, once.
  const inActivity = <T>(fn: () => Promise<T>) => env.run(fn) as Promise<T>;
  return { inActivity, heartbeats, logs };
}

describe('trainSteps on the Python trainer', () => {
  it('recreates a session the trainer failed from the newest committed checkpoint and replays the chunk', { timeout: 180_000 }, async () => {
    const run = `failed-session-${randomUUID().slice(0, 8)}`;
    const sessionId = `${run}-session`;
    const chat = Array.from({ length: 8 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `${i} + ${i} = ?` }, { role: 'assistant', content: `${2 * i}` }] })).join('\n') + '\n';
    const data = await store.put(`tests/${run}/prm-data.jsonl`, chat, 'application/x-ndjson');
    const { inActivity, heartbeats, logs } = recordingEnvironment();
    const batches = await inActivity(() => activities.prepareTrainBatches({ data, epochs: 1, batchSize: 2, seed: 3, outputPrefix: `tests/${run}/batches` }));
    expect(batches.steps).toBe(4);
    const chunk = (from: number, to: number, resumeFrom: string | null): TrainStepsInput => ({
      trainerURL: stack.trainerURL,
      sessionId,
      config: { baseModel: TINY, adapter: ADAPTER, optimizer: OPTIMIZER, seed: 5 },
      batchesManifestUri: batches.manifest.uri,
      loss: { kind: 'sft' },
      from,
      to,
      checkpointUri: store.uri(`tests/${run}/ck/step-${String(to).padStart(6, '0')}`),
      resumeFrom,
    });

    const first = await inActivity(() => activities.trainSteps(chunk(0, 2, null)));
    expect([first.applied, first.recreated, first.checkpoint.step]).toEqual([2, 0, 1]);

    // The trainer fails the session for real: a GRPO line whose advantage overflows float32 makes
    // the loss -inf (as a diverged run's would), and the trainer marks the session failed.
    const diverging = await store.put(`tests/${run}/diverging.jsonl`, JSON.stringify({ prompt: [{ role: 'user', content: '1 + 1 = ?' }], completion: '2', advantage: 1e300 }) + '\n', 'application/x-ndjson');
    const client = new TrainerClient(stack.trainerURL);
    const refused = await client.trainStep(sessionId, { step: 2, batch: diverging, loss: { kind: 'grpo', klCoefficient: 0, entropyCoefficient: 0 } }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(TrainerError);
    expect((refused as TrainerError).code).toBe('internal');
    const failed = await client.getSession(sessionId);
    expect([failed.status, failed.statusMessage, failed.nextStep]).toEqual(['failed', 'step 2 gave a non-finite loss: training diverged', 2]);

    const second = await inActivity(() => activities.trainSteps(chunk(2, 4, first.checkpoint.uri)));
    expect([second.applied, second.recreated, second.checkpoint.step]).toEqual([2, 1, 3]);
    expect(second.metrics.map((m) => m.step)).toEqual([2, 3]);
    expect(second.metrics.every((m) => Number.isFinite(m.loss))).toBe(true);
    // Created twice on the trainer: fresh, then from the first chunk's checkpoint.
    expect(stack.createdSessions(sessionId).map((s) => s.resumedFrom)).toEqual([null, first.checkpoint.uri]);
    const now = await client.getSession(sessionId);
    expect([now.status, now.nextStep, now.lastCheckpoint?.uri]).toEqual(['ready', 4, second.checkpoint.uri]);

    const said = `session ${sessionId} failed on the trainer (step 2 gave a non-finite loss: training diverged); recreated from ${first.checkpoint.uri}`;
    expect(logs.filter((e) => e.level === 'WARN').map((e) => e.message)).toEqual([said]);
    expect(heartbeats).toContainEqual({ nextStep: -1, recovered: said });
  });
});
