/**
 * Stage 1's labelling activity on its own, in `MockActivityEnvironment`, against the sandbox
 * model server over HTTP and the suite's S3: it heartbeats its progress, writes one lines object
 * for its problems, a second run of the same input pays for nothing and writes the same bytes,
 * and a cancelled run keeps the requests it had finished, so the retry pays only for the rest.
 */
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inferenceClientPool } from '../../src/core/deps.js';
import { createLabelActivities, labelKeys } from '../../src/spark/labels/activities.js';
import type { SynthesizeLabelsConfig } from '../../src/spark/labels/input.js';
import { SynthesizeLabelsInputSchema } from '../../src/spark/labels/input.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import { finishedRequests, makeStore } from '../support/harness.js';

// A bucket of its own, so what the store holds is this file's alone.
const store = makeStore(`label-activity-${randomUUID().slice(0, 8)}`);
const activities = createLabelActivities({ store, inference: inferenceClientPool() });
let sim: Awaited<ReturnType<typeof startSimServer>>;

beforeAll(async () => {
  await store.ensureBucket();
  sim = await startSimServer({ seed: 31 });
});

afterAll(async () => {
  await sim.close();
  store.destroy();
});

async function prepared(seed: number): Promise<{ config: SynthesizeLabelsConfig; outputPrefix: string }> {
  const dataset = await uploadSandboxProblems(store, { seed, count: 4 });
  const runName = `label-activity-${randomUUID().slice(0, 8)}`;
  const config = SynthesizeLabelsInputSchema.parse({
    runName,
    dataset: { uri: dataset.uri },
    generator: { endpoint: { baseURL: sim.url }, model: 'sim-policy' },
    verifier: { endpoint: { baseURL: sim.url }, model: 'sim-verifier' },
    solutionsPerProblem: 2,
    verificationsPerSolution: 4,
    seed,
  });
  const outputPrefix = `runs/${runName}/labels`;
  const env = new MockActivityEnvironment();
  await env.run(() => activities.prepareLabelInput({ config, outputPrefix }));
  return { config, outputPrefix };
}

describe('labelProblems in MockActivityEnvironment', () => {
  it('heartbeats progress, writes its problems\' lines in one object, and pays nothing on a second run', { timeout: 60_000 }, async () => {
    const { config, outputPrefix } = await prepared(41);
    const input = { config, outputPrefix, shard: 0, firstRow: 0, firstProblem: 0, count: 3 };
    const heartbeats: { phase: string; solutionsDone: number; calls: number }[] = [];
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: (typeof heartbeats)[number]) => heartbeats.push({ ...d }));
    const first = (await env.run(() => activities.labelProblems(input))) as Awaited<ReturnType<typeof activities.labelProblems>>;

    expect(first.counts).toMatchObject({ problems: 3, solutions: 6, samplesReused: 0 });
    // One generator request (n = 2) and one verifier request (n = 4) per solution.
    expect(first.counts.callsMade).toBe(3 + 6);
    expect(heartbeats.length).toBeGreaterThan(0);
    expect(heartbeats.at(-1)!.phase).toBe('labelling');
    const key = labelKeys.problems(outputPrefix, 0, 3);
    const body = await store.getText(key);
    const lines = body.trim().split('\n').map((l) => JSON.parse(l) as { problemIndex: number; solutionIndex: number; labels: Record<string, unknown> });
    expect(lines.map((l) => [l.problemIndex, l.solutionIndex])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]);
    expect(Object.keys(lines[0]!.labels)).toEqual(config.methods);

    const served = sim.log.entries.length;
    const again = (await new MockActivityEnvironment().run(() => activities.labelProblems(input))) as typeof first;
    expect(again.counts.callsMade).toBe(0);
    expect(again.counts.samplesReused).toBe(first.counts.samplesDrawn);
    expect(sim.log.entries.length).toBe(served);
    expect(await store.getText(key)).toBe(body);
  });

  it('cancelled mid-run, keeps every finished request, and the retry asks only for the others', { timeout: 60_000 }, async () => {
    const { config, outputPrefix } = await prepared(43);
    const input = { config, outputPrefix, shard: 0, firstRow: 0, firstProblem: 0, count: 4 };
    const latency = sim.config().latency;
    sim.setConfig({ latency: { medianMs: 150, sigma: 0.01 } });
    try {
      const env = new MockActivityEnvironment();
      const before = sim.log.entries.length;
      const running = env.run(() => activities.labelProblems(input));
      // Cancel once some requests have finished and others are still out.
      const deadline = Date.now() + 30_000;
      while (sim.log.entries.length - before < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      env.cancel();
      await expect(running).rejects.toThrow();
      // Requests answered before the cancel whose samples are all stored: the retry must not ask them again.
      const answered = sim.log.entries.slice(before).filter((e) => e.status === 200 && !e.fault);
      const finished = await finishedRequests(store, answered);
      expect(finished.length).toBeGreaterThan(0);

      const atRetry = sim.log.entries.length;
      const retry = (await new MockActivityEnvironment().run(() => activities.labelProblems(input))) as Awaited<ReturnType<typeof activities.labelProblems>>;
      const askedAgain = sim.log.entries.slice(atRetry).filter((e) => finished.some((f) => f.key === e.key));
      expect(askedAgain).toEqual([]);
      expect(retry.counts.callsMade).toBe(sim.log.entries.length - atRetry);
      expect(retry.counts.samplesReused).toBeGreaterThanOrEqual(finished.reduce((n, f) => n + f.n, 0));
      expect(retry.counts.problems).toBe(4);
    } finally {
      sim.setConfig({ latency });
    }
  });
});
