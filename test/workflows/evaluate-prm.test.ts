import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActivityFailure, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, RetryState } from '@temporalio/common';
import type { PredictionLine } from '../../src/spark/prm/evaluation.js';
import type { EvaluatePrmInput } from '../../src/spark/prm/evaluate-prm.input.js';
import { SANDBOX_PROCESSBENCH_SPLITS, generateSandboxProcessBench } from '../../sandbox/processbench-sandbox.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import type { EvaluatePrmResult } from '../../src/spark/prm/evaluate-prm.workflow.js';
import { evaluatePrm, evaluatePrmProgress } from '../../src/workflows/index.js';
import { SparkCallsMade, SparkItemsDone, SparkRun, SparkStage, SparkStatus } from '../../src/core/temporal/search-attributes.js';
import { connectClient, makeStore, uniqueTaskQueue, withWorker } from '../support/harness.js';
import { uploadSandboxBenchmark } from '../support/processbench.js';

const store = makeStore();
let conn: Awaited<ReturnType<typeof connectClient>>;
let sim: Awaited<ReturnType<typeof startSimServer>>;
const localDir = mkdtempSync(join(tmpdir(), 'spark-eval-'));
beforeAll(async () => {
  conn = await connectClient();
  // A PRM that answers in the plain `Step k: Correct|Incorrect` style (the sandbox's default is PRM-CoT).
  sim = await startSimServer({ seed: 61, models: { 'sim-verifier-prm': { base: 'sim-verifier', prm: { style: 'prm' } } } });
});
afterAll(async () => {
  await conn.close();
  await sim.close();
  store.destroy();
  rmSync(localDir, { recursive: true, force: true });
});

const BENCHMARK = generateSandboxProcessBench({ seed: 7, countPerSplit: 30, splits: SANDBOX_PROCESSBENCH_SPLITS.slice(0, 2) });
const run = () => `e-${randomUUID().slice(0, 8)}`;

function evalInput(splits: Record<string, string>, extra: Partial<EvaluatePrmInput> & { modelName?: string } = {}): EvaluatePrmInput {
  const { modelName, ...rest } = extra;
  return {
    runName: run(),
    benchmark: { splits },
    model: { endpoint: { baseURL: sim.url, timeoutMs: 5000 }, model: modelName ?? 'sim-verifier', maxInFlight: 8 },
    style: 'processbench',
    seed: 3,
    chunkSize: 16,
    concurrency: 2,
    ...rest,
  };
}

async function readPredictions(result: EvaluatePrmResult): Promise<PredictionLine[]> {
  return (await store.getText(result.predictions.uri)).split('\n').filter(Boolean).map((l) => JSON.parse(l) as PredictionLine);
}

/** ProcessBench's metric written out again from the predictions, independently of the code under test. */
function recompute(lines: PredictionLine[], split: string): { errorAcc: number; correctAcc: number; f1: number } {
  const rows = lines.filter((l) => l.split === split);
  const erroneous = rows.filter((l) => l.label !== -1);
  const correct = rows.filter((l) => l.label === -1);
  const errorAcc = erroneous.filter((l) => l.prediction === l.label).length / erroneous.length;
  const correctAcc = correct.filter((l) => l.prediction === -1).length / correct.length;
  const f1 = errorAcc + correctAcc === 0 ? 0 : (2 * errorAcc * correctAcc) / (errorAcc + correctAcc);
  return { errorAcc, correctAcc, f1 };
}

/** Runs evaluatePrm under `spark/<runName>/evaluate-prm` and returns its handle's result. */
async function evaluate(taskQueue: string, input: EvaluatePrmInput) {
  const handle = await conn.client.workflow.start(evaluatePrm, { taskQueue, workflowId: `spark/${input.runName}/evaluate-prm`, args: [input] });
  return { handle, result: await handle.result() };
}

describe('evaluatePrm on the real stack', () => {
  it('scores a critic and PRMs on a sandbox ProcessBench exactly as ProcessBench does; a re-run pays for nothing', async () => {
    const taskQueue = uniqueTaskQueue('evaluate');
    const splits = await uploadSandboxBenchmark(store, BENCHMARK);
    const truth = new Map(BENCHMARK.flatMap((b) => b.rows.map((r) => [`${b.split}/${r.id}`, r.label] as const)));
    await withWorker({ taskQueue }, async () => {
      const before = sim.log.entries.length;
      const critic = evalInput(splits);
      const { handle, result } = await evaluate(taskQueue, critic);
      const requests = sim.log.entries.slice(before);
      expect(requests).toHaveLength(60);
      expect(requests.every((e) => e.role === 'processbench' && e.n === 1 && e.model === 'sim-verifier')).toBe(true);

      const lines = await readPredictions(result);
      expect(result.rows).toBe(60);
      expect(lines.map((l) => `${l.split}/${l.id}`)).toEqual([...truth.keys()]);
      for (const l of lines) {
        expect(l.label).toBe(truth.get(`${l.split}/${l.id}`));
        expect(l.votes).toHaveLength(1);
        expect(l.correct).toBe(l.prediction === l.label);
      }
      expect(result.report.scores.splits.map((s) => s.split)).toEqual(['gsm8k', 'math']);
      for (const s of result.report.scores.splits) {
        const again = recompute(lines, s.split);
        expect(s.errorAcc).toBeCloseTo(again.errorAcc, 12);
        expect(s.correctAcc).toBeCloseTo(again.correctAcc, 12);
        expect(s.f1).toBeCloseTo(again.f1, 12);
        expect(s).toMatchObject({ n: 30, nErroneous: 15, nCorrect: 15 });
      }
      const f1s = result.report.scores.splits.map((s) => s.f1!);
      expect(result.report.scores.average.f1).toBeCloseTo((f1s[0]! + f1s[1]!) / 2, 12);

      // The same report as JSON and markdown in S3, and in the result.
      const json = await store.getJson<Record<string, unknown>>(result.reportJson.uri);
      expect(json).toMatchObject({ kind: 'spark.processbench-eval', style: 'processbench', samples: 1, runName: critic.runName });
      expect(json.scores).toEqual(result.report.scores);
      expect(json.unparseable).toEqual(result.report.unparseable);
      expect((json.benchmark as { split: string; rows: number }[]).map((b) => [b.split, b.rows])).toEqual([['gsm8k', 30], ['math', 30]]);
      expect(await store.getText(result.reportMarkdown.uri)).toBe(result.markdown);
      expect(result.markdown).toContain('| split | error acc | correct acc | F1 |');
      expect(result.markdown).toMatch(/\| average \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);

      const progress = await handle.query(evaluatePrmProgress);
      expect(progress).toMatchObject({ stage: 'completed', rowsTotal: 60, rowsDone: 60, chunksTotal: 4, chunksDone: 4 });
      expect(progress.rowsCorrect).toBe(lines.filter((l) => l.correct).length);
      const sa = (await handle.describe()).typedSearchAttributes;
      expect(sa.get(SparkRun)).toBe(critic.runName);
      expect(sa.get(SparkStage)).toBe('evaluate-prm');
      expect(sa.get(SparkStatus)).toBe('completed');
      expect(sa.get(SparkItemsDone)).toBe(60);
      expect(sa.get(SparkCallsMade)).toBe(60);

      // The same input under another run name reads every answer back: no request, the same report.
      const paid = sim.log.entries.length;
      const rerun = await evaluate(taskQueue, { ...critic, runName: run(), chunkSize: 25 });
      expect(sim.log.entries.length).toBe(paid);
      expect(rerun.result.cost).toEqual({ callsMade: 0, samplesDrawn: 0, samplesReused: 60 });
      expect(rerun.result.report).toEqual(result.report);
      expect(await readPredictions(rerun.result)).toEqual(lines);

      // The PRM styles, and a weak judge for comparison.
      const [prm, prmCot, weak, mismatched] = await Promise.all([
        evaluate(taskQueue, evalInput(splits, { style: 'prm', modelName: 'sim-verifier-prm' })),
        evaluate(taskQueue, evalInput(splits, { style: 'prm-cot' })),
        evaluate(taskQueue, evalInput(splits, { modelName: 'sim-policy' })),
        // A PRM-CoT model read as a plain PRM: no answer can be read, and every row counts as wrong.
        evaluate(taskQueue, evalInput(splits, { style: 'prm' })),
      ]);
      for (const r of [prm, prmCot]) {
        const predicted = await readPredictions(r.result);
        for (const s of r.result.report.scores.splits) expect(s.f1).toBeCloseTo(recompute(predicted, s.split).f1, 12);
        expect(Object.values(r.result.report.unparseable).reduce((n, u) => n + u.rows, 0)).toBeLessThanOrEqual(3);
      }
      expect(mismatched.result.report.unparseable).toEqual({ gsm8k: { rows: 30, samples: 30 }, math: { rows: 30, samples: 30 } });
      expect(mismatched.result.report.scores.average).toMatchObject({ errorAcc: 0, correctAcc: 0, f1: 0 });
      expect(mismatched.result.markdown).toContain('Unreadable answers (scored as wrong): gsm8k 30 sample(s), 30 row(s) without an answer');
      // The strong judge (average F1 about 0.94 here) well above the weak one (about 0.58).
      const f1 = (r: { result: EvaluatePrmResult }) => r.result.report.scores.average.f1!;
      expect(f1({ result })).toBeGreaterThan(f1(weak) + 0.1);
      expect(f1(prm)).toBeGreaterThan(0.5);
      expect(f1(prmCot)).toBeGreaterThan(0.5);
    });
  });

  it('votes over samples: one request with n = samples per row, the prediction is the majority of the samples', async () => {
    const taskQueue = uniqueTaskQueue('evaluate-vote');
    const splits = await uploadSandboxBenchmark(store, BENCHMARK);
    await withWorker({ taskQueue }, async () => {
      const before = sim.log.entries.length;
      const input = evalInput({ gsm8k: splits.gsm8k! }, { samples: 5, model: { endpoint: { baseURL: sim.url }, model: 'sim-policy', sampling: { temperature: 0.8 } } });
      const { result } = await evaluate(taskQueue, input);
      const requests = sim.log.entries.slice(before);
      expect(requests).toHaveLength(30);
      expect(requests.every((e) => e.n === 5 && e.role === 'processbench')).toBe(true);
      const lines = await readPredictions(result);
      expect(lines).toHaveLength(30);
      let disagreements = 0;
      for (const l of lines) {
        expect(l.votes).toHaveLength(5);
        expect(l.samples).toHaveLength(5);
        const counts = new Map<number, number>();
        for (const v of l.votes) if (v !== null) counts.set(v, (counts.get(v) ?? 0) + 1);
        if (counts.size > 1) disagreements += 1;
        if (l.prediction !== null) expect(counts.get(l.prediction)).toBe(Math.max(...counts.values()));
      }
      // At T = 0.8 a weak judge's samples differ on some rows: the vote had something to decide.
      expect(disagreements).toBeGreaterThan(0);
      expect(result.report.scores.splits.map((s) => s.split)).toEqual(['gsm8k']);
      expect(result.markdown).toContain('majority of 5 samples');
    });
  });

  it('fails fast on a missing split file or a bad row, naming the split, line and field; rejects the ORM style', async () => {
    const taskQueue = uniqueTaskQueue('evaluate-bad');
    const splits = await uploadSandboxBenchmark(store, BENCHMARK);
    const rows = BENCHMARK[1]!.rows.slice(0, 3).map((r) => JSON.stringify(r));
    rows[1] = JSON.stringify({ ...BENCHMARK[1]!.rows[1], label: 'two' });
    const badRows = await store.put(`test/processbench/${randomUUID()}/math.jsonl`, rows.join('\n') + '\n', 'application/x-ndjson');
    const localBad = join(localDir, 'math.jsonl');
    writeFileSync(localBad, rows.join('\n') + '\n');
    const failure = async (input: EvaluatePrmInput) => {
      const err = await conn.client.workflow.execute(evaluatePrm, { taskQueue, workflowId: `test/${taskQueue}/${randomUUID().slice(0, 6)}`, args: [input] })
        .then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      return (err as WorkflowFailedError).cause;
    };
    const datasetFailure = async (input: EvaluatePrmInput) => {
      const activity = (await failure(input)) as ActivityFailure;
      expect(activity).toBeInstanceOf(ActivityFailure);
      expect(activity.retryState).toBe(RetryState.NON_RETRYABLE_FAILURE);
      expect(activity.cause).toMatchObject({ type: 'InvalidDataset', nonRetryable: true });
      return String(activity.cause?.message);
    };
    await withWorker({ taskQueue }, async () => {
      const before = sim.log.entries.length;
      expect(await datasetFailure(evalInput({ ...splits, math: `s3://spark/test/processbench/${randomUUID()}/math.jsonl` })))
        .toMatch(/^benchmark\.splits\.math: no object at s3:\/\/spark\/test\/processbench\/.*\/math\.jsonl$/);
      expect(await datasetFailure(evalInput({ gsm8k: splits.gsm8k!, math: join(localDir, 'missing.jsonl') })))
        .toMatch(/^benchmark\.splits\.math: .*missing\.jsonl cannot be read on this worker/);
      expect(await datasetFailure(evalInput({ gsm8k: splits.gsm8k!, math: badRows.uri })))
        .toBe(`benchmark.splits.math (${badRows.uri}): math line 2: field "label": Invalid input: expected number, received string`);
      expect(await datasetFailure(evalInput({ math: localBad }))).toContain(`benchmark.splits.math (${localBad}): math line 2: field "label"`);
      expect(sim.log.entries.length).toBe(before);

      const invalid = (await failure({ ...evalInput(splits), style: 'orm' as 'prm', samples: 0 })) as ApplicationFailure;
      expect(invalid).toBeInstanceOf(ApplicationFailure);
      expect(invalid).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
      expect(invalid.message).toContain("style: 'orm' judges only the final answer and cannot point at the first wrong step");
      expect(invalid.message).toContain('samples: Too small');
    });
  });
});
