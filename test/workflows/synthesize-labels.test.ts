import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { ObjectStore } from '../../src/backends/s3-store.js';
import { sha256Hex } from '../../src/backends/s3-store.js';
import { firstErrorIndex } from '../../src/domain/arith.js';
import type { SynthesizeLabelsInput } from '../../src/domain/inputs/synthesize-labels.js';
import type { LabelLine } from '../../src/domain/labels.js';
import type { SimServerOptions } from '../../src/sim/server.js';
import { startSimServer } from '../../src/sim/server.js';
import { synthesizeLabels, synthesizeLabelsProgress } from '../../src/workflows/index.js';
import { SparkCallsMade, SparkItemsDone, SparkRun, SparkStage, SparkStatus } from '../../src/workflows/search-attributes.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import { connectClient, makeStore, uniqueTaskQueue, withWorker } from '../support/harness.js';

const store = makeStore();
let conn: Awaited<ReturnType<typeof connectClient>>;
beforeAll(async () => {
  conn = await connectClient();
});
afterAll(async () => {
  await conn.close();
  store.destroy();
});

const ALL_METHODS = ['single', 'outcome-majority', 'step-majority', 'critique-single', 'critique-outcome-consensus', 'hybrid'] as const;

function labelsInput(runName: string, datasetUri: string, baseURL: string, extra: Partial<SynthesizeLabelsInput> = {}): SynthesizeLabelsInput {
  return {
    runName,
    dataset: { uri: datasetUri },
    generator: { endpoint: { baseURL, timeoutMs: 2000 }, model: 'sim-policy', sampling: { temperature: 1 } },
    verifier: { endpoint: { baseURL, timeoutMs: 2000 }, model: 'sim-verifier' },
    solutionsPerProblem: 2,
    verificationsPerSolution: 4,
    shards: { size: 3, concurrency: 2, problemsInFlight: 2 },
    ...extra,
  };
}

/** Reads every line of a labels manifest's parts. */
export async function readLabels(s: ObjectStore, manifestUri: string): Promise<{ manifest: LabelsManifest; lines: LabelLine[] }> {
  const manifest = await s.getJson<LabelsManifest>(manifestUri);
  const lines: LabelLine[] = [];
  for (const part of manifest.parts) {
    const bytes = await s.getBytes(part.uri);
    expect(sha256Hex(bytes)).toBe(part.sha256);
    const text = Buffer.from(bytes).toString();
    lines.push(...text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LabelLine));
  }
  return { manifest, lines };
}

interface LabelsManifest {
  kind: string;
  configHash: string;
  codeVersion: string;
  dataset: { uri: string; sha256: string };
  counts: { problems: number; solutions: number; callsMade: number; samplesReused: number; parseFailures: number; stoppedEarly: number };
  lines: number;
  parts: { uri: string; sha256: string; lines: number }[];
}

async function withSim<T>(options: SimServerOptions, fn: (sim: Awaited<ReturnType<typeof startSimServer>>) => Promise<T>): Promise<T> {
  const sim = await startSimServer(options);
  try {
    return await fn(sim);
  } finally {
    await sim.close();
  }
}

const run = () => `t-${randomUUID().slice(0, 8)}`;

describe('synthesizeLabels on the real stack', () => {
  it('labels every solution by all six methods across sharded children, with a manifest, progress and search attributes', async () => {
    await withSim({ seed: 31 }, async (sim) => {
      const taskQueue = uniqueTaskQueue('labels');
      const dataset = await uploadSandboxProblems(store, { seed: 41, count: 7 });
      const runName = run();
      await withWorker({ taskQueue }, async () => {
        const handle = await conn.client.workflow.start(synthesizeLabels, {
          taskQueue,
          workflowId: `spark/${runName}/synthesize-labels`,
          args: [labelsInput(runName, dataset.uri, sim.url, { methods: [...ALL_METHODS], seed: 11 })],
        });
        const result = await handle.result();
        expect(result.lines).toBe(14);
        const { manifest, lines } = await readLabels(store, result.manifest.uri);
        expect(manifest.kind).toBe('spark.labels');
        expect(manifest.dataset.sha256).toBe(dataset.sha256);
        expect(manifest.parts).toHaveLength(3); // 7 problems in shards of 3
        expect(manifest.counts.problems).toBe(7);
        expect(manifest.codeVersion).toMatch(/^\d+\.\d+\.\d+/);
        expect(lines.map((l) => `${l.problemIndex}/${l.solutionIndex}`)).toEqual(
          Array.from({ length: 14 }, (_, i) => `${Math.floor(i / 2)}/${i % 2}`),
        );
        for (const line of lines) {
          expect(Object.keys(line.labels).sort()).toEqual([...ALL_METHODS].sort());
          expect(line.verifications.valid).toBeGreaterThanOrEqual(1);
          const step = line.labels['step-majority'];
          if (!step?.ok) throw new Error(`no step-majority labels: ${JSON.stringify(step)}`);
          expect(step.stepLabels).toHaveLength(line.steps.length);
          // Step-majority follows the votes, as documented: a strict majority decides each step up to the first error.
          const firstMajorityIncorrect = line.votes.steps.findIndex((v) => v.incorrect >= v.correct);
          expect(step.firstErrorStep).toBe(firstMajorityIncorrect);
          for (const m of ['critique-single', 'critique-outcome-consensus', 'hybrid'] as const) {
            const l = line.labels[m];
            expect(l?.ok && l.target.rule).toBe('merged');
          }
        }
        // The strong verifier mostly agrees with the ground truth of the sandbox world.
        const truths = lines.map((l) => firstErrorIndex(l.question, l.steps));
        const agree = lines.filter((l, i) => {
          const s = l.labels['step-majority'];
          return s?.ok && s.firstErrorStep === truths[i];
        }).length;
        expect(agree / lines.length).toBeGreaterThan(0.6);

        const progress = await handle.query(synthesizeLabelsProgress);
        expect(progress.stage).toBe('completed');
        expect(progress.counts.problems).toBe(7);
        expect(progress.counts.solutions).toBe(14);
        const sa = (await handle.describe()).typedSearchAttributes;
        expect(sa.get(SparkRun)).toBe(runName);
        expect(sa.get(SparkStage)).toBe('synthesize-labels');
        expect(sa.get(SparkStatus)).toBe('completed');
        expect(sa.get(SparkItemsDone)).toBe(7);
        expect(sa.get(SparkCallsMade)).toBe(result.counts.callsMade);

        // The same config under another run name pays for nothing and gives the same labels.
        const paid = sim.log.entries.length;
        const again = await conn.client.workflow.execute(synthesizeLabels, {
          taskQueue,
          workflowId: `spark/${runName}-again/synthesize-labels`,
          args: [labelsInput(`${runName}-again`, dataset.uri, sim.url, { methods: [...ALL_METHODS], seed: 11 })],
        });
        expect(sim.log.entries.length).toBe(paid);
        expect(again.counts.callsMade).toBe(0);
        expect(again.counts.samplesReused).toBe(result.counts.samplesDrawn + result.counts.samplesReused);
        const second = await readLabels(store, again.manifest.uri);
        expect(second.lines).toEqual(lines);
        expect(second.manifest.configHash).toBe(manifest.configHash);
      });
    });
  });
});
