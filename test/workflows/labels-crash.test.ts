import { afterAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { SynthesizeLabelsInput } from '../../src/spark/labels/input.js';
import type { LabelLine } from '../../src/spark/labels/labels.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { readLabelsDataset } from '../../src/spark/labels/labels-dataset.js';
import { synthesizeLabels, synthesizeLabelsProgress } from '../../src/workflows/index.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import { connectClient, finishedRequests, makeStore, spawnWorkerProcess, uniqueTaskQueue, until, withWorker } from '../support/harness.js';
import type { ObjectStore } from '../../src/core/store/s3-store.js';

// The killed run has a bucket of its own, so its cache holds only what this test stored.
const bucket = `crash-${randomUUID().slice(0, 8)}`;
const store = makeStore(bucket);
afterAll(() => store.destroy());



const PROBLEMS = 200;

function input(datasetUri: string, baseURL: string): SynthesizeLabelsInput {
  return {
    runName: `crash-${randomUUID().slice(0, 8)}`,
    dataset: { uri: datasetUri },
    generator: { endpoint: { baseURL }, model: 'sim-policy', sampling: { temperature: 1 } },
    verifier: { endpoint: { baseURL }, model: 'sim-verifier' },
    solutionsPerProblem: 2,
    verificationsPerSolution: 4,
    methods: ['single', 'outcome-majority', 'step-majority', 'hybrid'],
    seed: 404,
    shards: { size: 50, concurrency: 2, problemsInFlight: 4 },
  };
}

describe('synthesizeLabels with its worker killed mid-run', () => {
  it('completes after a restart with the labels of an uninterrupted run, and makes no finished call again', { timeout: 300_000 }, async () => {
    // ~15 ms per request, 8 at a time on the server: the run takes long enough for a kill to land mid-way.
    const latency = { medianMs: 15, sigma: 0.3, perSampleMs: 1 };
    const sim = await startSimServer({ seed: 51, latency, maxConcurrent: 8 });
    const cleanSim = await startSimServer({ seed: 51 });
    const cleanStore = makeStore(`crash-ref-${randomUUID().slice(0, 8)}`);
    await cleanStore.ensureBucket();
    const taskQueue = uniqueTaskQueue('labels-crash');
    const { client, close } = await connectClient();
    await store.ensureBucket();
    const startWorker = () => spawnWorkerProcess({ taskQueue, env: { SPARK_S3_BUCKET: bucket } });
    let worker = startWorker();
    try {
      const dataset = await uploadSandboxProblems(store, { seed: 52, count: PROBLEMS });
      await worker.ready;
      const handle = await client.workflow.start(synthesizeLabels, { taskQueue, workflowId: `test/${taskQueue}`, args: [input(dataset.uri, sim.url)] });
      const ok = () => sim.log.entries.filter((e) => e.status === 200 && !e.fault);
      await until(() => ok().length >= 300, 'the first 300 completed calls');
      await worker.kill();
      const done = await handle.query(synthesizeLabelsProgress).catch(() => null);
      expect(ok().length).toBeLessThan(PROBLEMS * 7);

      // Requests whose every sample the dead worker stored: finished, never to be made again.

      const finished = await finishedRequests(store, ok());
      expect(finished.length).toBeGreaterThan(100);

      worker = startWorker();
      await worker.ready;
      const result = await handle.result();
      expect(result.counts.problems).toBe(PROBLEMS);
      expect(done === null || done.counts.problems < PROBLEMS).toBe(true);

      const successesByKey = new Map<string, number>();
      for (const e of ok()) successesByKey.set(e.key, (successesByKey.get(e.key) ?? 0) + 1);
      for (const e of finished) expect(successesByKey.get(e.key), `request ${e.key} finished before the kill`).toBe(1);
      // Only requests sent but not yet stored at the kill can be made again: each of the
      // 2 shards × 4 problems × 2 solutions in flight has at most one request in progress at a time.
      expect([...successesByKey.values()].filter((c) => c > 1).length).toBeLessThanOrEqual(2 * 4 * 2);

      // The same config, uninterrupted, against a fresh store and a fresh server with the same seed.
      const reference = await withWorker({ taskQueue: `${taskQueue}-ref`, deps: { store: cleanStore } }, async () => {
        const refDataset = await uploadSandboxProblems(cleanStore, { seed: 52, count: PROBLEMS });
        return client.workflow.execute(synthesizeLabels, {
          taskQueue: `${taskQueue}-ref`,
          workflowId: `test/${taskQueue}-ref`,
          args: [input(refDataset.uri, cleanSim.url)],
        });
      });
      const [crashed, uninterrupted] = await Promise.all([store, cleanStore].map((s, i) => readLabelsDataset(s, [result, reference][i]!.manifest.uri).then((d) => d.lines)));
      expect(crashed).toHaveLength(PROBLEMS * 2);
      expect(crashed).toEqual(uninterrupted);
    } finally {
      await worker.kill();
      await close();
      await sim.close();
      await cleanSim.close();
      cleanStore.destroy();
    }
  });
});
