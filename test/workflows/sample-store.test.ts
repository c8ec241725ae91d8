import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredRequest } from '../../src/core/inference/sample-store.js';
import { LEGACY_SAMPLE_PREFIX, REQUEST_PREFIX } from '../../src/core/inference/sample-store.js';
import type { ObjectStore } from '../../src/core/store/s3-store.js';
import type { SynthesizeLabelsInput } from '../../src/spark/labels/input.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { synthesizeLabels } from '../../src/workflows/index.js';
import { connectClient, makeStore, uniqueTaskQueue, withWorker } from '../support/harness.js';
import { repoRoot } from '../support/paths.js';

/** A small stage-1 run written by the code before request objects: one object per sample under cache/chat/. */
interface LegacyRunFixture {
  input: Omit<SynthesizeLabelsInput, 'generator' | 'verifier'> & {
    generator: Omit<SynthesizeLabelsInput['generator'], 'endpoint'>;
    verifier: Omit<SynthesizeLabelsInput['verifier'], 'endpoint'>;
  };
  dataset: string;
  calls: number;
  objects: Record<string, string>;
  lines: string;
}
const fixture = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/sample-store/labels-run-v1.json'), 'utf8')) as LegacyRunFixture;

let conn: Awaited<ReturnType<typeof connectClient>>;
beforeAll(async () => {
  conn = await connectClient();
});
afterAll(() => conn.close());

/** A bucket of its own, so the listing holds only what the test stored. */
async function freshStore(): Promise<ObjectStore> {
  const store = makeStore(`samples-${randomUUID().slice(0, 8)}`);
  await store.ensureBucket();
  return store;
}

function runInput(datasetUri: string, baseURL: string): SynthesizeLabelsInput {
  return {
    ...fixture.input,
    runName: `samples-${randomUUID().slice(0, 8)}`,
    dataset: { uri: datasetUri },
    generator: { ...fixture.input.generator, endpoint: { baseURL } },
    verifier: { ...fixture.input.verifier, endpoint: { baseURL } },
  };
}

async function labelsOf(store: ObjectStore, manifestUri: string): Promise<string> {
  const manifest = await store.getJson<{ parts: { uri: string }[] }>(manifestUri);
  return (await Promise.all(manifest.parts.map((p) => store.getText(p.uri)))).join('');
}

describe('the sample store', () => {
  it('re-runs a run stored in the layout before request objects (one object per sample) with no model call and the same labels', async () => {
    const store = await freshStore();
    const sim = await startSimServer({ seed: 7 });
    try {
      await Promise.all(Object.entries(fixture.objects).map(([key, body]) => store.put(key, body, 'application/json')));
      const dataset = await store.put(`datasets/${randomUUID()}.jsonl`, fixture.dataset, 'application/x-ndjson');
      const taskQueue = uniqueTaskQueue('legacy-samples');
      const result = await withWorker({ taskQueue, deps: { store } }, () => conn.client.workflow.execute(synthesizeLabels, {
        taskQueue,
        workflowId: `test/${taskQueue}`,
        args: [runInput(dataset.uri, sim.url)],
      }));
      expect(fixture.calls).toBeGreaterThan(0);
      expect(sim.log.entries).toHaveLength(0);
      expect(result.counts.callsMade).toBe(0);
      expect(result.counts.samplesDrawn).toBe(0);
      expect(result.counts.samplesReused).toBe(Object.keys(fixture.objects).length);
      expect(await labelsOf(store, result.manifest.uri)).toBe(fixture.lines);
      // Reading the old layout writes nothing in the new one.
      expect(await store.list(`${REQUEST_PREFIX}/`)).toEqual([]);
    } finally {
      await sim.close();
      store.destroy();
    }
  });

  it('stores each request as one object holding its n samples, and a re-run reads them back with no call', async () => {
    const store = await freshStore();
    const sim = await startSimServer({ seed: 7 });
    try {
      const dataset = await store.put(`datasets/${randomUUID()}.jsonl`, fixture.dataset, 'application/x-ndjson');
      const taskQueue = uniqueTaskQueue('request-samples');
      const input = runInput(dataset.uri, sim.url);
      const first = await withWorker({ taskQueue, deps: { store } }, () => conn.client.workflow.execute(synthesizeLabels, {
        taskQueue, workflowId: `test/${taskQueue}`, args: [input],
      }));
      const requests = sim.log.entries.filter((e) => e.status === 200);
      const keys = await store.list(`${REQUEST_PREFIX}/`);
      expect(keys).toHaveLength(requests.length);
      expect(await store.list(`${LEGACY_SAMPLE_PREFIX}/`)).toEqual([]);
      const docs = await Promise.all(keys.map((k) => store.getJson<StoredRequest>(k)));
      expect(docs.map((d) => d.responseId).sort()).toEqual(requests.map((e) => e.responseId).sort());
      for (const d of docs) expect(d.samples.filter(Boolean)).toHaveLength(requests.find((e) => e.responseId === d.responseId)!.n);
      expect(first.counts.callsMade).toBe(requests.length);
      // The run draws what the layout before requests drew: the same requests, the same labels.
      expect(requests.length).toBe(fixture.calls);
      expect(await labelsOf(store, first.manifest.uri)).toBe(fixture.lines);

      const again = await withWorker({ taskQueue, deps: { store } }, () => conn.client.workflow.execute(synthesizeLabels, {
        taskQueue, workflowId: `test/${taskQueue}-again`, args: [{ ...input, runName: `${input.runName}-again` }],
      }));
      expect(sim.log.entries.filter((e) => e.status === 200)).toHaveLength(requests.length);
      expect(again.counts.callsMade).toBe(0);
      expect(again.counts.samplesReused).toBe(first.counts.samplesDrawn);
    } finally {
      await sim.close();
      store.destroy();
    }
  });
});
