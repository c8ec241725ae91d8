import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { sha256Hex } from '../../src/core/store/s3-store.js';
import { InferenceClient } from '../../src/core/inference/client.js';
import { buildGeneratorMessages } from '../../src/spark/common/prompts.js';
import type { SolutionsDoc } from '../../src/spark/labels/sample-solutions.activities.js';
import type { SampleSolutionsInput } from '../../src/spark/labels/sample-solutions.input.js';
import { sampleSolutions } from '../../src/workflows/index.js';
import { SparkItemsDone, SparkRun, SparkStage, SparkStatus } from '../../src/core/temporal/search-attributes.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { connectClient, makeStore, uniqueTaskQueue, withWorker } from '../support/harness.js';
import { uploadSandboxProblems } from '../support/datasets.js';

const store = makeStore();
let clientConn: Awaited<ReturnType<typeof connectClient>>;
beforeAll(async () => {
  clientConn = await connectClient();
});
afterAll(async () => {
  await clientConn.close();
  store.destroy();
});

function inputFor(runName: string, datasetUri: string, baseURL: string, seed: number, extra: Partial<SampleSolutionsInput> = {}): SampleSolutionsInput {
  return {
    runName,
    dataset: { uri: datasetUri, limit: 10 },
    generator: { endpoint: { baseURL, timeoutMs: 1000 }, model: 'sim-policy' },
    samplesPerProblem: 3,
    sampling: { temperature: 0.8, topP: 0.95, maxTokens: 1024, seed },
    concurrency: 3,
    ...extra,
  };
}

const successes = (sim: { log: { entries: readonly { status: number; fault?: string }[] } }) =>
  sim.log.entries.filter((e) => e.status === 200 && !e.fault).length;

describe('sampleSolutions on the real stack', () => {
  it('stores parsed solutions for problems read from S3, returns their references, and is findable by search attributes', async () => {
    const sim = await startSimServer({ seed: 9 });
    const taskQueue = uniqueTaskQueue('sample');
    const dataset = await uploadSandboxProblems(store, { seed: 21, count: 6 });
    const runName = `t-${randomUUID().slice(0, 8)}`;
    // Each suite run has a fresh S3 folder, so fixed seeds keep runs repeatable without cache hits.
    const seed = 101;
    try {
      await withWorker({ taskQueue }, async () => {
        const handle = await clientConn.client.workflow.start(sampleSolutions, {
          taskQueue,
          workflowId: `spark/${runName}/sample-solutions`,
          args: [inputFor(runName, dataset.uri, sim.url, seed)],
        });
        const result = await handle.result();
        expect(result.solutions).toHaveLength(6);
        expect(result.callsMade).toBe(6); // one request with n=3 per problem
        for (const ref of result.solutions) {
          const bytes = await store.getBytes(ref.uri);
          expect(sha256Hex(bytes)).toBe(ref.sha256);
          const doc = JSON.parse(Buffer.from(bytes).toString()) as SolutionsDoc;
          expect(doc.solutions).toHaveLength(3);
          for (const s of doc.solutions) expect(s.steps.length).toBeGreaterThan(0);
        }
        const manifest = await store.getJson<{ dataset: { sha256: string }; counts: { problems: number } }>(result.manifest.uri);
        expect(manifest.dataset.sha256).toBe(dataset.sha256);
        expect(manifest.counts.problems).toBe(6);

        const sa = (await handle.describe()).typedSearchAttributes;
        expect(sa.get(SparkRun)).toBe(runName);
        expect(sa.get(SparkStage)).toBe('sample-solutions');
        expect(sa.get(SparkStatus)).toBe('completed');
        expect(sa.get(SparkItemsDone)).toBe(6);

        // The same config again pays for nothing: every sample comes from the store.
        const paid = successes(sim);
        const again = await clientConn.client.workflow.execute(sampleSolutions, {
          taskQueue,
          workflowId: `spark/${runName}-again/sample-solutions`,
          args: [inputFor(runName, dataset.uri, sim.url, seed)],
        });
        expect(again.callsMade).toBe(0);
        expect(again.samplesReused).toBe(18);
        expect(successes(sim)).toBe(paid);
      });
    } finally {
      await sim.close();
    }
  });

  it('completes through injected faults of every kind with exactly the outputs a clean server gives', async () => {
    const faults = { rate429: 0.15, retryAfterSeconds: 0, rate500: 0.15, rateHang: 0.1, rateTruncated: 0.1, rateMalformed: 0.15, rateReset: 0.1 };
    const faulty = await startSimServer({ seed: 31, faults });
    const clean = await startSimServer({ seed: 31 });
    const taskQueue = uniqueTaskQueue('faults');
    const dataset = await uploadSandboxProblems(store, { seed: 22, count: 10 });
    const seed = 203;
    try {
      const result = await withWorker({ taskQueue }, () =>
        clientConn.client.workflow.execute(sampleSolutions, {
          taskQueue,
          workflowId: `test/${taskQueue}`,
          args: [inputFor(`f-${taskQueue}`, dataset.uri, faulty.url, seed)],
        }),
      );
      const faultsSeen = new Set(faulty.log.entries.map((e) => e.fault).filter(Boolean));
      // Fault draws are a pure function of (server seed, request, attempt): with these seeds every kind occurs.
      expect([...faultsSeen].sort()).toEqual(['hang', 'malformed', 'rate_limit', 'reset', 'server_error', 'truncated'].sort());

      const client = new InferenceClient({ baseURL: clean.url, supportsN: true, timeoutMs: 10_000 });
      for (const ref of result.solutions) {
        const doc = await store.getJson<SolutionsDoc>(ref.uri);
        const expected = await client.chat({
          model: 'sim-policy',
          messages: buildGeneratorMessages(doc.question),
          sampling: { temperature: 0.8, topP: 0.95, maxTokens: 1024, seed },
          n: 3,
        });
        // A run that lost samples to a truncation is asked again whole with its seed, so every sample matches.
        for (const s of doc.solutions) expect(s.text).toBe(expected.choices[s.index]!.text);
      }
    } finally {
      await faulty.close();
      await clean.close();
    }
  });
});
