import { afterAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { PredictionLine } from '../../src/spark/prm/evaluation.js';
import type { EvaluatePrmInput } from '../../src/spark/prm/evaluate-prm.input.js';
import { generateSandboxProcessBench } from '../../sandbox/processbench-sandbox.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { evaluatePrm } from '../../src/workflows/index.js';
import { connectClient, finishedRequests, makeStore, spawnWorkerProcess, uniqueTaskQueue, until, withWorker } from '../support/harness.js';
import { uploadSandboxBenchmark } from '../support/processbench.js';

// The killed run has a bucket of its own, so its cache holds only what this test stored.
const bucket = `crash-eval-${randomUUID().slice(0, 8)}`;
const store = makeStore(bucket);
afterAll(() => store.destroy());

const BENCHMARK = generateSandboxProcessBench({ seed: 9, countPerSplit: 60 });
const ROWS = 240;
const CHUNKS = 12;
const MAX_IN_FLIGHT = 4;

function input(runName: string, splits: Record<string, string>, baseURL: string): EvaluatePrmInput {
  return {
    runName,
    benchmark: { splits },
    // Sampled votes, so "identical results" rests on the seeds, not on greedy decoding.
    model: { endpoint: { baseURL }, model: 'sim-verifier', sampling: { temperature: 0.8 }, maxInFlight: MAX_IN_FLIGHT },
    style: 'processbench',
    samples: 3,
    seed: 505,
    chunkSize: ROWS / CHUNKS,
    concurrency: 2,
  };
}

describe('evaluatePrm with its worker killed mid-run', () => {
  it('completes after a restart with the report of an uninterrupted run, and makes no finished request again', { timeout: 180_000 }, async () => {
    // ~60 ms per request and 4 in flight: about 4 s of requests, long enough for a kill to land mid-way.
    const sim = await startSimServer({ seed: 71, latency: { medianMs: 60, sigma: 0.2, perSampleMs: 1 } });
    const cleanSim = await startSimServer({ seed: 71 });
    const cleanStore = makeStore(`crash-eval-ref-${randomUUID().slice(0, 8)}`);
    await cleanStore.ensureBucket();
    await store.ensureBucket();
    const taskQueue = uniqueTaskQueue('evaluate-crash');
    const { client, close } = await connectClient();
    const startWorker = () => spawnWorkerProcess({ taskQueue, env: { SPARK_S3_BUCKET: bucket } });
    let worker = startWorker();
    const runName = `crash-${randomUUID().slice(0, 8)}`;
    try {
      const splits = await uploadSandboxBenchmark(store, BENCHMARK);
      await worker.ready;
      const handle = await client.workflow.start(evaluatePrm, { taskQueue, workflowId: `test/${taskQueue}`, args: [input(runName, splits, sim.url)] });
      const ok = () => sim.log.entries.filter((e) => e.status === 200 && !e.fault);
      await until(() => ok().length >= 90, 'the first 90 completed requests');
      await worker.kill();
      expect(ok().length).toBeLessThan(ROWS);
      const partsAtKill = (await store.list(`runs/${runName}/evaluate-prm/predictions/`)).length;
      expect(partsAtKill).toBeGreaterThan(0);
      expect(partsAtKill).toBeLessThan(CHUNKS);

      // Requests whose every sample the dead worker stored: finished, never to be made again.

      const finished = await finishedRequests(store, ok());
      expect(finished.length).toBeGreaterThanOrEqual(80);

      worker = startWorker();
      await worker.ready;
      const result = await handle.result();
      expect(result.rows).toBe(ROWS);

      const successesByKey = new Map<string, number>();
      for (const e of ok()) successesByKey.set(e.key, (successesByKey.get(e.key) ?? 0) + 1);
      expect(successesByKey.size).toBe(ROWS);
      for (const e of finished) expect(successesByKey.get(e.key), `request ${e.key} finished before the kill`).toBe(1);
      // Only requests in progress at the kill can be made again: at most maxInFlight waiting for the
      // server, plus answers received but not yet stored (those no longer hold an in-flight slot), and
      // each row has one request at a time: so at most the rows of the chunks running at once.
      expect([...successesByKey.values()].filter((c) => c > 1).length).toBeLessThanOrEqual(2 * (ROWS / CHUNKS));

      // The same input, uninterrupted, against a fresh store and a fresh server with the same seed.
      const reference = await withWorker({ taskQueue: `${taskQueue}-ref`, deps: { store: cleanStore } }, async () => {
        const refSplits = await uploadSandboxBenchmark(cleanStore, BENCHMARK);
        return client.workflow.execute(evaluatePrm, { taskQueue: `${taskQueue}-ref`, workflowId: `test/${taskQueue}-ref`, args: [input(runName, refSplits, cleanSim.url)] });
      });
      expect(result.report).toEqual(reference.report);
      expect(result.markdown).toBe(reference.markdown);
      const read = (s: typeof store, uri: string) => s.getText(uri).then((t) => t.split('\n').filter(Boolean).map((l) => JSON.parse(l) as PredictionLine));
      const [crashed, uninterrupted] = await Promise.all([read(store, result.predictions.uri), read(cleanStore, reference.predictions.uri)]);
      expect(crashed).toHaveLength(ROWS);
      expect(crashed).toEqual(uninterrupted);
      expect(reference.cost).toEqual({ callsMade: ROWS, samplesDrawn: ROWS * 3, samplesReused: 0 });
    } finally {
      await worker.kill();
      await close();
      await sim.close();
      await cleanSim.close();
      cleanStore.destroy();
    }
  });
});
