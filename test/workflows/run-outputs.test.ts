/**
 * Issue 16, item 5: a run whose runName already holds outputs of another configuration is refused
 * at start, naming both config hashes and the fields that differ; the same configuration re-run
 * still reuses everything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { SynthesizeLabelsInput } from '../../src/spark/labels/input.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { coEvolve, evaluateJudging, evaluatePrm, evaluateSelfReflection, rlTrain, sampleSolutions, sparkPipeline, synthesizeLabels, trainPrm } from '../../src/workflows/index.js';
import { TemporalFailure } from '@temporalio/common';
import { SparkConfigHash } from '../../src/core/temporal/search-attributes.js';
import { OUTPUTS_OF_ANOTHER_CONFIG } from '../../src/core/store/run-outputs.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import { connectClient, makeStore, uniqueTaskQueue, withWorker } from '../support/harness.js';

const store = makeStore();
let conn: Awaited<ReturnType<typeof connectClient>>;
let sim: Awaited<ReturnType<typeof startSimServer>>;
beforeAll(async () => {
  conn = await connectClient();
  sim = await startSimServer({ seed: 5 });
});
afterAll(async () => {
  await sim.close();
  await conn.close();
  store.destroy();
});

/** The ApplicationFailure a failed run ended with (through its activity). */
async function refusalOf(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const activity = (err as WorkflowFailedError).cause;
  expect(activity).toBeInstanceOf(ActivityFailure);
  const failure = (activity as ActivityFailure).cause;
  expect(failure).toBeInstanceOf(ApplicationFailure);
  return failure as ApplicationFailure;
}

describe('no silent overwrite of a run\'s outputs', () => {
  it('synthesizeLabels: another seed under the same runName is refused naming both hashes and seed; the same config reuses everything', async () => {
    const taskQueue = uniqueTaskQueue('claim-labels');
    const dataset = await uploadSandboxProblems(store, { seed: 3, count: 2 });
    const runName = `claim-${randomUUID().slice(0, 8)}`;
    const input = (seed: number): SynthesizeLabelsInput => ({
      runName,
      dataset: { uri: dataset.uri },
      generator: { endpoint: { baseURL: sim.url, timeoutMs: 2000 }, model: 'sim-policy', sampling: { temperature: 1 } },
      verifier: { endpoint: { baseURL: sim.url, timeoutMs: 2000 }, model: 'sim-verifier' },
      solutionsPerProblem: 1,
      verificationsPerSolution: 2,
      seed,
    });
    await withWorker({ taskQueue }, async () => {
      const start = (seed: number, suffix: string) => conn.client.workflow.start(synthesizeLabels, { taskQueue, workflowId: `spark/${runName}/synthesize-labels-${suffix}`, args: [input(seed)] });
      const first = await start(11, 'a');
      const result = await first.result();
      const firstHash = (await first.describe()).typedSearchAttributes.get(SparkConfigHash)!;
      const manifestBefore = await store.head(`runs/${runName}/labels/manifest.json`);

      const second = await start(12, 'b');
      const failure = await refusalOf(second.result());
      const secondHash = (await second.describe()).typedSearchAttributes.get(SparkConfigHash)!;
      expect(firstHash).not.toBe(secondHash);
      expect(failure.type).toBe(OUTPUTS_OF_ANOTHER_CONFIG);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toContain(`config hash ${firstHash}`);
      expect(failure.message).toContain(`this run's config hash ${secondHash}`);
      expect(failure.message).toContain('fields that differ: seed (11 → 12)');
      // Refused before anything was written: the first run's manifest is the same object.
      expect(await store.head(`runs/${runName}/labels/manifest.json`)).toEqual(manifestBefore);

      // The same configuration again: no model call, the same manifest.
      const paid = sim.log.entries.length;
      const again = await (await start(11, 'c')).result();
      expect(sim.log.entries.length).toBe(paid);
      expect(again.counts.callsMade).toBe(0);
      expect(again.lines).toBe(result.lines);
      expect(again.counts.samplesReused).toBe(result.counts.samplesDrawn + result.counts.samplesReused);

      // Outputs of a run from before claims (a manifest, no run.json) are protected by the manifest's hash.
      await store.delete(`runs/${runName}/labels/run.json`);
      const legacy = await refusalOf((await start(13, 'd')).result());
      expect(legacy.message).toContain(`config hash ${firstHash}`);
      expect(legacy.message).toContain('seed (11 → 13)');
    });
  });
});

/** The innermost ApplicationFailure of a failed run (through activities and child workflows). */
async function rootFailure(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let e: unknown = (err as WorkflowFailedError).cause;
  while (e instanceof TemporalFailure && !(e instanceof ApplicationFailure)) e = e.cause;
  expect(e).toBeInstanceOf(ApplicationFailure);
  return e as ApplicationFailure;
}

describe('every stage claims its outputs at start', () => {
  // Inputs that claim their prefix and then fail on their missing data, so no trainer or model server is needed.
  const missing = 's3://spark/test/run-outputs/missing.jsonl';
  const endpoint = { baseURL: 'http://127.0.0.1:1/v1' };
  const trainer = { baseURL: 'http://127.0.0.1:1' };
  const fields = { question: 'question', answer: 'answer' };
  const cases = {
    sampleSolutions: (runName: string, seed: number) => ({ runName, dataset: { uri: missing }, generator: { endpoint, model: 'm' }, sampling: { seed } }),
    trainPrm: (runName: string, seed: number) => ({ runName, labelsManifestUri: 's3://spark/test/run-outputs/labels/manifest.json', trainer, baseModel: 'm', seed }),
    evaluatePrm: (runName: string, seed: number) => ({ runName, benchmark: { splits: { gsm8k: missing } }, model: { endpoint, model: 'v' }, style: 'processbench', seed }),
    rlTrain: (runName: string, seed: number) => ({
      runName, policy: { baseModel: 'm', endpoint, model: 'm' }, trainer, dataset: { uri: missing, fields },
      reward: { formulation: 'selective-advantage', prm: { endpoint, model: 'v', style: 'prm-cot' } }, grpo: { batchSize: 4, groupSize: 4 }, totalSteps: 2, seed,
    }),
    coEvolve: (runName: string, seed: number) => ({
      runName, policy: { baseModel: 'm', endpoint, model: 'm' }, trainer, dataset: { uri: missing, fields }, grpo: { batchSize: 4, groupSize: 4 }, totalSteps: 2, seed,
    }),
    // The evaluations claim one model's report under the shared evaluation prefix (several models are compared there).
    evaluateSelfReflection: (runName: string, seed: number) => ({ runName, policy: { endpoint, model: 'm' }, dataset: { uri: missing, fields }, seed }),
    evaluateJudging: (runName: string, seed: number) => ({
      runName, judge: { endpoint, model: 'j' }, benchmark: { dataset: { uri: missing, fields }, generator: { endpoint, model: 'm' } }, seed,
    }),
    sparkPipeline: (runName: string, seed: number) => ({
      runName, endpoints: { inference: endpoint, trainer },
      labels: { dataset: { uri: missing }, generator: { model: 'm' }, verifier: { model: 'v' } },
      prm: { baseModel: 'm' }, processBench: { splits: { gsm8k: missing }, baseModel: 'm' },
      rl: { policy: { baseModel: 'm', model: 'm' }, dataset: { uri: missing, fields }, totalSteps: 2 },
      seed,
    }),
  } as const;
  const workflows = { sampleSolutions, trainPrm, evaluatePrm, rlTrain, coEvolve, evaluateSelfReflection, evaluateJudging, sparkPipeline } as const;

  // sparkPipeline has no claim of its own (its stages' claims refuse it before they write anything), so
  // a pipeline may run some stages of an earlier run; its refusal comes from the first stage that differs.
  it.each(Object.keys(cases) as (keyof typeof cases)[])('%s: another seed is refused naming seed; the same seed gets past the claim', async (name) => {
    const taskQueue = uniqueTaskQueue(`claim-${name}`);
    const runName = `claim-${randomUUID().slice(0, 8)}`;
    await withWorker({ taskQueue }, async () => {
      const run = (seed: number, suffix: string) => conn.client.workflow.execute(workflows[name] as never, {
        taskQueue, workflowId: `spark/${runName}/${name}-${suffix}`, args: [cases[name](runName, seed)] as never, workflowExecutionTimeout: '60 seconds',
      });
      const first = await rootFailure(run(1, 'a'));
      expect(first.type).not.toBe(OUTPUTS_OF_ANOTHER_CONFIG);
      expect(first.type).not.toBe('InvalidInput');
      const refused = await rootFailure(run(2, 'b'));
      expect(refused.type).toBe(OUTPUTS_OF_ANOTHER_CONFIG);
      expect(refused.message).toMatch(/config hash [0-9a-f]{16,}.*this run's config hash [0-9a-f]{16,}/);
      expect(refused.message).toContain(`fields that differ: ${name === 'sampleSolutions' ? 'sampling.seed' : 'seed'} (1 → 2)`);
      const same = await rootFailure(run(1, 'c'));
      expect(same.type).toBe(first.type);
    });
  });
});
