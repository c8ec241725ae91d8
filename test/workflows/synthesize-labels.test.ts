import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { ObjectStore } from '../../src/core/store/s3-store.js';
import { sha256Hex } from '../../src/core/store/s3-store.js';
import { firstErrorIndex } from '../../sandbox/arith.js';
import type { SynthesizeLabelsInput } from '../../src/spark/labels/input.js';
import type { LabelLine } from '../../src/spark/labels/labels.js';
import type { SimServerOptions } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { peakConcurrency } from '../../sandbox/model-server/requestLog.js';
import { readLabelsDataset } from '../../src/spark/labels/labels-dataset.js';
import { createPrmDataActivities } from '../../src/spark/prm/train-prm.activities.js';
import type { PrmExample } from '../../src/spark/prm/prm-data.js';
import { synthesizeLabels, synthesizeLabelsProgress } from '../../src/workflows/index.js';
import { ActivityFailure, WorkflowFailedError } from '@temporalio/client';
import { RetryState } from '@temporalio/common';
import { SparkCallsMade, SparkItemsDone, SparkRun, SparkStage, SparkStatus } from '../../src/core/temporal/search-attributes.js';
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
        const { manifest, lines } = await readLabelsDataset(store, result.manifest.uri);
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
        const second = await readLabelsDataset(store, again.manifest.uri);
        expect(second.lines).toEqual(lines);
        expect(second.manifest.configHash).toBe(manifest.configHash);

        // Stage 2 data from these labels, in each style, with lineage back to this manifest.
        const { buildPrmData } = createPrmDataActivities({ store });
        for (const style of ['orm', 'prm', 'prm-cot'] as const) {
          const out = await buildPrmData({
            labelsManifestUri: result.manifest.uri,
            options: { method: 'step-majority', style, balance: 'none', minAgreement: 0, cotTargets: 'agreeing', seed: 1 },
            outputPrefix: `runs/${runName}/prm-data/step-majority-${style}`,
          });
          const examples = (await store.getText(out.data.uri)).split('\n').filter(Boolean).map((l) => JSON.parse(l) as PrmExample);
          expect(examples).toHaveLength(out.lines);
          expect(out.counts.kept + out.counts.dropped.noTarget + out.counts.dropped.unlabelled).toBe(14);
          if (style !== 'prm-cot') expect(out.lines).toBe(14);
          expect(examples.every((e) => e.messages.at(-1)?.role === 'assistant' && e.meta.style === style)).toBe(true);
          const dataManifest = await store.getJson<{ kind: string; labels: { uri: string; sha256: string } }>(out.manifest.uri);
          expect(dataManifest).toMatchObject({ kind: 'spark.prm-data', labels: { uri: result.manifest.uri, sha256: result.manifest.sha256 } });
        }
      });
    });
  });
});


describe('synthesizeLabels: retries, adaptive stop, ties, faults, limits', () => {
  it('replaces unparseable verifications up to the budget and counts every failure', async () => {
    // A verifier that breaks the format a third of the time (before tempering at T=0.8).
    const models = { 'sloppy-verifier': { base: 'sim-verifier', verifier: { formatViolation: 0.35 } } };
    await withSim({ seed: 32, models }, async (sim) => {
      const taskQueue = uniqueTaskQueue('parse');
      const dataset = await uploadSandboxProblems(store, { seed: 42, count: 6 });
      const input = (parseRetries: number) => labelsInput(run(), dataset.uri, sim.url, {
        verifier: { endpoint: { baseURL: sim.url, timeoutMs: 2000 }, model: 'sloppy-verifier' },
        verificationsPerSolution: 4,
        parseRetries,
        seed: 12,
      });
      await withWorker({ taskQueue }, async () => {
        const withRetries = await conn.client.workflow.execute(synthesizeLabels, { taskQueue, workflowId: `test/${taskQueue}/a`, args: [input(8)] });
        const { lines } = await readLabelsDataset(store, withRetries.manifest.uri);
        const failures = lines.reduce((n, l) => n + l.verifications.invalid, 0);
        expect(failures).toBeGreaterThan(0);
        expect(withRetries.counts.parseFailures).toBe(failures);
        for (const l of lines) {
          expect(l.verifications.drawn).toBe(l.verifications.valid + l.verifications.invalid);
          if (l.verifications.stop === 'complete') expect(l.verifications.valid).toBe(4);
          else expect(l.verifications).toMatchObject({ stop: 'retries-exhausted', drawn: 12 });
        }
        expect(lines.some((l) => l.verifications.invalid > 0 && l.verifications.valid === 4)).toBe(true);

        // Without a budget nothing is replaced; the failures are still counted, and labels come from the valid ones.
        const noRetries = await conn.client.workflow.execute(synthesizeLabels, { taskQueue, workflowId: `test/${taskQueue}/b`, args: [input(0)] });
        const bare = await readLabelsDataset(store, noRetries.manifest.uri);
        for (const l of bare.lines) expect(l.verifications.drawn).toBe(4);
        const short = bare.lines.filter((l) => l.verifications.invalid > 0);
        expect(short.length).toBeGreaterThan(0);
        expect(noRetries.counts.parseFailures).toBe(short.reduce((n, l) => n + l.verifications.invalid, 0));
        for (const l of short) {
          const step = l.labels['step-majority'];
          if (l.verifications.valid === 0) expect(step).toMatchObject({ ok: false });
          else expect(step?.ok).toBe(true);
        }
      });
    });
  });

  it('adaptive stop draws fewer verifications and, by construction, keeps the step-majority labels of the full K', async () => {
    await withSim({ seed: 33 }, async (sim) => {
      const taskQueue = uniqueTaskQueue('adaptive');
      const dataset = await uploadSandboxProblems(store, { seed: 43, count: 8 });
      const base = { verificationsPerSolution: 8, parseRetries: 0, seed: 13, methods: ['step-majority' as const] };
      await withWorker({ taskQueue }, async () => {
        const full = await conn.client.workflow.execute(synthesizeLabels, {
          taskQueue, workflowId: `test/${taskQueue}/full`, args: [labelsInput(run(), dataset.uri, sim.url, base)],
        });
        const adaptive = await conn.client.workflow.execute(synthesizeLabels, {
          taskQueue,
          workflowId: `test/${taskQueue}/adaptive`,
          args: [labelsInput(run(), dataset.uri, sim.url, { ...base, adaptive: { enabled: true, initial: 3, step: 1 } })],
        });
        const a = await readLabelsDataset(store, adaptive.manifest.uri);
        const f = await readLabelsDataset(store, full.manifest.uri);
        const drawnAdaptive = a.lines.reduce((n, l) => n + l.verifications.drawn, 0);
        const drawnFull = f.lines.reduce((n, l) => n + l.verifications.drawn, 0);
        expect(drawnAdaptive).toBeLessThan(drawnFull);
        expect(adaptive.counts.stoppedEarly).toBe(a.lines.filter((l) => l.verifications.stop === 'decided').length);
        expect(adaptive.counts.stoppedEarly).toBeGreaterThan(0);
        // The adaptive run reads the same stored samples (a prefix of the full K), so a decided stop cannot change a label.
        expect(adaptive.counts.callsMade).toBe(0);
        const labelsOf = (lines: LabelLine[]) => lines.map((l) => {
          const m = l.labels['step-majority'];
          return m?.ok ? { steps: m.stepLabels, outcome: m.outcome } : null;
        });
        expect(labelsOf(a.lines)).toEqual(labelsOf(f.lines));
      });
    });
  });

  it('applies the configured tie rule to tied step votes', async () => {
    await withSim({ seed: 34 }, async (sim) => {
      const taskQueue = uniqueTaskQueue('ties');
      const dataset = await uploadSandboxProblems(store, { seed: 44, count: 10 });
      // Two verifications by the weak judge disagree often: ties on steps are common.
      const base = {
        verifier: { endpoint: { baseURL: sim.url, timeoutMs: 2000 }, model: 'sim-policy', sampling: { temperature: 1 } },
        verificationsPerSolution: 2,
        parseRetries: 2,
        seed: 14,
        methods: ['step-majority' as const, 'outcome-majority' as const],
      };
      await withWorker({ taskQueue }, async () => {
        const results = await Promise.all((['incorrect', 'correct'] as const).map((stepTieRule) =>
          conn.client.workflow.execute(synthesizeLabels, {
            taskQueue,
            workflowId: `test/${taskQueue}/${stepTieRule}`,
            args: [labelsInput(run(), dataset.uri, sim.url, { ...base, aggregation: { stepTieRule, consistency: false } })],
          })));
        const [asIncorrect, asCorrect] = await Promise.all(results.map((r) => readLabelsDataset(store, r.manifest.uri)));
        let tiedSteps = 0;
        for (const [i, line] of asIncorrect!.lines.entries()) {
          const inc = line.labels['step-majority'];
          const cor = asCorrect!.lines[i]!.labels['step-majority'];
          if (!inc?.ok || !cor?.ok) continue;
          expect(cor.ties.steps).toEqual(inc.ties.steps);
          for (const step of inc.ties.steps) {
            tiedSteps++;
            expect(line.votes.steps[step]!.correct).toBe(line.votes.steps[step]!.incorrect);
            expect(inc.stepLabels[step]).toBe(false);
            expect(cor.stepLabels[step]).toBe(true);
          }
        }
        expect(tiedSteps).toBeGreaterThan(0);
      });
    });
  });

  it('completes through every fault kind with the labels of a clean run, and keeps requests within maxInFlight', async () => {
    const faults = { rate429: 0.08, retryAfterSeconds: 0, rate500: 0.08, rateHang: 0.04, rateTruncated: 0.08, rateMalformed: 0.08, rateReset: 0.06 };
    const cleanStore = makeStore(`clean-${randomUUID().slice(0, 8)}`);
    await cleanStore.ensureBucket();
    await withSim({ seed: 35, faults, latency: { medianMs: 5 } }, async (faulty) => {
      await withSim({ seed: 35 }, async (clean) => {
        const dataset = await uploadSandboxProblems(store, { seed: 45, count: 5 });
        const cleanDataset = await uploadSandboxProblems(cleanStore, { seed: 45, count: 5 });
        const cfg = (url: string, uri: string) => labelsInput(run(), uri, url, {
          generator: { endpoint: { baseURL: url, timeoutMs: 1000 }, model: 'sim-policy', sampling: { temperature: 1 }, maxInFlight: 3 },
          verifier: { endpoint: { baseURL: url, timeoutMs: 1000 }, model: 'sim-verifier', maxInFlight: 3 },
          methods: [...ALL_METHODS],
          seed: 15,
        });
        const q1 = uniqueTaskQueue('faulty');
        const withFaults = await withWorker({ taskQueue: q1 }, () =>
          conn.client.workflow.execute(synthesizeLabels, { taskQueue: q1, workflowId: `test/${q1}`, args: [cfg(faulty.url, dataset.uri)] }));
        const q2 = uniqueTaskQueue('clean');
        const reference = await withWorker({ taskQueue: q2, deps: { store: cleanStore } }, () =>
          conn.client.workflow.execute(synthesizeLabels, { taskQueue: q2, workflowId: `test/${q2}`, args: [cfg(clean.url, cleanDataset.uri)] }));
        const kinds = new Set(faulty.log.entries.map((e) => e.fault).filter(Boolean));
        expect([...kinds].sort()).toEqual(['hang', 'malformed', 'rate_limit', 'reset', 'server_error', 'truncated']);
        const a = await readLabelsDataset(store, withFaults.manifest.uri);
        const b = await readLabelsDataset(cleanStore, reference.manifest.uri);
        expect(a.lines).toEqual(b.lines);
        // Generator and verifier share one server and one limit of 3 in this worker.
        expect(peakConcurrency(clean.log.entries)).toBeLessThanOrEqual(3);
      });
    });
    cleanStore.destroy();
  });

  it('continues as new between shards without losing or repeating one, and reports progress across runs', async () => {
    await withSim({ seed: 36 }, async (sim) => {
      const taskQueue = uniqueTaskQueue('can');
      const dataset = await uploadSandboxProblems(store, { seed: 46, count: 7 });
      await withWorker({ taskQueue }, async () => {
        const handle = await conn.client.workflow.start(synthesizeLabels, {
          taskQueue,
          workflowId: `test/${taskQueue}`,
          args: [labelsInput(run(), dataset.uri, sim.url, { shards: { size: 2, concurrency: 2, problemsInFlight: 2, perRun: 2 }, seed: 16 })],
        });
        const result = await handle.result();
        const { lines, manifest } = await readLabelsDataset(store, result.manifest.uri);
        expect(manifest.parts).toHaveLength(4);
        expect(lines.map((l) => l.problemIndex)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]);
        const progress = await handle.query(synthesizeLabelsProgress);
        expect(progress.runs).toBe(2);
        expect(progress.counts.problems).toBe(7);
        // The first run continued as new after its two shards.
        const first = await conn.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).fetchHistory();
        expect(first.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
      });
    });
  });

  it('rejects bad input at once, naming the fields', async () => {
    const taskQueue = uniqueTaskQueue('bad');
    const failure = async (extra: Partial<SynthesizeLabelsInput>): Promise<string> => {
      const err = await conn.client.workflow.execute(synthesizeLabels, {
        taskQueue,
        workflowId: `test/${taskQueue}/${randomUUID().slice(0, 6)}`,
        args: [{ ...labelsInput(run(), 's3://spark/none.jsonl', 'http://127.0.0.1:1/v1'), ...extra }],
      }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      return String((err as WorkflowFailedError).cause?.message);
    };
    await withWorker({ taskQueue }, async () => {
      expect(await failure({ verificationsPerSolution: 0, methods: ['best' as 'single'] })).toMatch(/verificationsPerSolution: .*; methods\.0: /);
      expect(await failure({ referenceGuided: true })).toContain('dataset.fields.answer: referenceGuided needs the field');
      // A dataset with a bad row fails at once (not retried), naming the line and the field.
      const bad = await store.put(`test/datasets/${randomUUID()}.jsonl`, '{"question": "Start with 1. Add 2."}\n{"text": "no question"}\n', 'application/x-ndjson');
      const err = await conn.client.workflow.execute(synthesizeLabels, {
        taskQueue,
        workflowId: `test/${taskQueue}/bad-row`,
        args: [labelsInput(run(), bad.uri, 'http://127.0.0.1:1/v1')],
      }).then(() => null, (e: unknown) => e);
      const activity = (err as WorkflowFailedError).cause as ActivityFailure;
      expect(activity).toBeInstanceOf(ActivityFailure);
      expect(activity.retryState).toBe(RetryState.NON_RETRYABLE_FAILURE);
      expect(activity.cause).toMatchObject({ type: 'InvalidDataset', nonRetryable: true });
      expect(activity.cause?.message).toMatch(/line 2: field "question" \(the question\) must be a non-empty string/);
    });
  });
});
