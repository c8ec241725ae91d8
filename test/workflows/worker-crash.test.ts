import { afterAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { SolutionsDoc } from '../../src/spark/labels/sample-solutions.activities.js';
import { sampleSolutions } from '../../src/workflows/index.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { connectClient, makeStore, spawnWorkerProcess, storedSamplesByResponse, uniqueTaskQueue, until } from '../support/harness.js';
import { uploadSandboxProblems } from '../support/datasets.js';

const store = makeStore();
afterAll(() => store.destroy());


describe('a worker killed mid-run', () => {
  it('is restarted, the run completes, and no call whose result was stored before the kill is made again', async () => {
    // Slow enough that the kill lands mid-run: ~100 ms per request, 4 at a time on the server.
    const sim = await startSimServer({ seed: 41, latency: { medianMs: 100, sigma: 0.2, perSampleMs: 5 }, maxConcurrent: 4 });
    const taskQueue = uniqueTaskQueue('crash');
    const dataset = await uploadSandboxProblems(store, { seed: 23, count: 30 });
    const { client, close } = await connectClient();
    const seed = 303;
    let worker = spawnWorkerProcess({ taskQueue });
    try {
      await worker.ready;
      const handle = await client.workflow.start(sampleSolutions, {
        taskQueue,
        workflowId: `test/${taskQueue}`,
        args: [
          {
            runName: `crash-${randomUUID().slice(0, 8)}`,
            dataset: { uri: dataset.uri, limit: 30 },
            generator: { endpoint: { baseURL: sim.url }, model: 'sim-policy' },
            samplesPerProblem: 4,
            sampling: { temperature: 0.8, topP: 0.95, maxTokens: 1024, seed },
            concurrency: 6,
          },
        ],
      });
      const ok = () => sim.log.entries.filter((e) => e.status === 200 && !e.fault);
      await until(() => ok().length >= 8, 'the first completed calls');
      await worker.kill();
      const completedAtKill = ok().length;
      expect(completedAtKill).toBeLessThan(30);

      // What the dead worker managed to store: these calls must never be made again.
      const storedBeforeRestart = new Set<string>();
      for (const responseId of (await storedSamplesByResponse(store)).keys()) {
        if (sim.log.entries.some((e) => e.responseId === responseId)) storedBeforeRestart.add(responseId);
      }
      expect(storedBeforeRestart.size).toBeGreaterThan(0);

      worker = spawnWorkerProcess({ taskQueue });
      await worker.ready;
      const result = await handle.result();
      expect(result.solutions).toHaveLength(30);
      for (const ref of result.solutions) expect((await store.getJson<SolutionsDoc>(ref.uri)).solutions).toHaveLength(4);

      const successesByKey = new Map<string, number>();
      for (const e of ok()) successesByKey.set(e.key, (successesByKey.get(e.key) ?? 0) + 1);
      for (const responseId of storedBeforeRestart) {
        const entry = sim.log.entries.find((e) => e.responseId === responseId)!;
        expect(successesByKey.get(entry.key), `request ${entry.key} was stored before the kill`).toBe(1);
      }
      // Only calls in progress at the kill can be paid twice: waiting on the server, or answered but
      // not yet stored. Each of the 6 problems in progress has one call at a time.
      const repeated = [...successesByKey.values()].filter((c) => c > 1).length;
      expect(repeated).toBeLessThanOrEqual(6);
      expect(successesByKey.size).toBeGreaterThanOrEqual(30);
      expect(successesByKey.size).toBeLessThanOrEqual(30 + 6);
    } finally {
      await worker.kill();
      await close();
      await sim.close();
    }
  });
});
