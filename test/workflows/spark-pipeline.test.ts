/**
 * sparkPipeline on the real stack: stage 1 → trainPrm → evaluatePrm (PRM and base) → rlTrain as
 * child workflows, with the sandbox model server, the sandbox trainer in its own process, real S3
 * and Temporal. Covers the lineage manifest, the progress query, a re-run that pays for nothing,
 * and a start from the `temporal` CLI with a JSON file.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { SparkPipelineInput } from '../../src/spark/pipeline/input.js';
import { SparkPipelineInputSchema } from '../../src/spark/pipeline/input.js';
import { SANDBOX_PROCESSBENCH_SPLITS, generateSandboxProcessBench } from '../../sandbox/processbench-sandbox.js';
import type { ObjectRef } from '../../src/core/store/refs.js';
import { objectStoreAdapterReader } from '../../sandbox/model-server/models.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { sparkPipeline, sparkPipelineProgress } from '../../src/workflows/index.js';
import { SparkRun, SparkStage, SparkStatus } from '../../src/core/temporal/search-attributes.js';
import type { SparkPipelineResult } from '../../src/spark/pipeline/spark-pipeline.workflow.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import type { TrainerProcess } from '../support/harness.js';
import { connectClient, makeStore, readTrainerEvents, spawnTrainerProcess, uniqueTaskQueue, withWorker } from '../support/harness.js';
import { freePort, repoRoot } from '../support/paths.js';
import { uploadSandboxBenchmark } from '../support/processbench.js';

const store = makeStore();
const dir = mkdtempSync(join(tmpdir(), 'spark-pipeline-'));
const eventsFile = join(dir, 'events.jsonl');
const taskQueue = uniqueTaskQueue('pipeline');
const runName = `pipe-${randomUUID().slice(0, 8)}`;
let sim: SimServer;
let trainer: TrainerProcess;
let dataset: ObjectRef;
let prompts: ObjectRef;
let heldOut: ObjectRef;
let splits: Record<string, string>;
let first: SparkPipelineResult | undefined;

const appliedSteps = (): number => readTrainerEvents(eventsFile).filter((e) => e.applied === true).length;

function withAnswers(seed: number, count: number): Promise<ObjectRef> {
  return uploadSandboxProblems(store, { seed, count, withAnswers: true });
}

function input(extra: Partial<SparkPipelineInput> = {}): SparkPipelineInput {
  const fields = { question: 'question', answer: 'answer' };
  return {
    runName,
    endpoints: { inference: { baseURL: sim.url }, trainer: { baseURL: trainer.url } },
    labels: {
      dataset: { uri: dataset.uri },
      generator: { model: 'sim-policy', sampling: { temperature: 1 } },
      verifier: { model: 'sim-verifier' },
      solutionsPerProblem: 2,
      verificationsPerSolution: 4,
      methods: ['single', 'step-majority'],
    },
    prm: { baseModel: 'sim-policy', epochs: 1, batchSize: 8, checkpointEvery: 2 },
    processBench: { splits, baseModel: 'sim-policy' },
    rl: {
      policy: { baseModel: 'sim-policy', model: 'sim-policy' },
      dataset: { uri: prompts.uri, fields },
      evaluation: { sets: [{ name: 'held-out', uri: heldOut.uri, fields }], every: 2 },
      grpo: { batchSize: 4, groupSize: 4 },
      totalSteps: 4,
      checkpointEvery: 2,
    },
    seed: 17,
    ...extra,
  };
}

/** Everything a re-run must point at again. */
const artefactUris = (r: SparkPipelineResult) => ({
  labels: r.labels?.manifest.uri,
  prmData: r.prm?.data,
  prmCheckpoint: r.prm?.checkpoint,
  prmModel: r.prmModel.name,
  reports: [r.processBench.prm?.reportJson.uri, r.processBench.base?.reportJson.uri],
  f1: [r.processBench.prm?.averageF1, r.processBench.base?.averageF1],
  policy: r.rl?.checkpoint,
  served: r.rl?.servedModel,
  finalEvals: r.rl?.finalEvals,
});

beforeAll(async () => {
  sim = await startSimServer({ seed: 81, readAdapter: objectStoreAdapterReader(() => store) });
  trainer = spawnTrainerProcess({ port: await freePort(), eventsFile });
  await trainer.ready;
  dataset = await uploadSandboxProblems(store, { seed: 82, count: 12 });
  prompts = await withAnswers(83, 16);
  heldOut = await withAnswers(84, 8);
  splits = await uploadSandboxBenchmark(store, generateSandboxProcessBench({ seed: 85, countPerSplit: 10, splits: SANDBOX_PROCESSBENCH_SPLITS.slice(0, 2) }));
}, 60_000);

afterAll(async () => {
  await trainer.kill();
  await sim.close();
  store.destroy();
});

describe('sparkPipeline input', () => {
  it('names each bad field where the pipeline input has it, including the stages\' own cross-field rules', () => {
    const endpoints = { inference: { baseURL: 'http://127.0.0.1:1/v1' }, trainer: { baseURL: 'http://127.0.0.1:2' } };
    const bad = SparkPipelineInputSchema.safeParse({
      runName: 'x',
      endpoints,
      prm: { baseModel: 'm', style: 'orm' },
      processBench: { splits: { a: 's3://b/a.jsonl' } },
      rl: { policy: { baseModel: 'm', model: 'm' }, dataset: { uri: 's3://b/p.jsonl' }, evaluation: { sets: [{ name: 'h', uri: 's3://b/h.jsonl' }] }, totalSteps: 2 },
      stages: ['train-prm', 'evaluate-prm', 'rl-train'],
    });
    expect(bad.success).toBe(false);
    const messages = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(messages).toEqual(expect.arrayContaining([
      expect.stringMatching(/^prm\.labelsManifestUri: with the labels stage skipped/),
      expect.stringMatching(/^prm\.style: 'orm' judges only the final answer.*\(evaluate-prm\)$/),
      expect.stringMatching(/^rl\.evaluation\.sets\.0\.fields\.answer: .*\(rl-train\)$/),
    ]));
    const missing = SparkPipelineInputSchema.safeParse({ runName: 'x', endpoints, prm: { baseModel: 'm' } });
    expect(missing.error!.issues.map((i) => i.path.join('.'))).toEqual(['labels', 'processBench', 'rl']);
  });
});

describe('sparkPipeline', () => {
  it('runs every stage as a child workflow, records the lineage end to end, and reports each stage completed', { timeout: 150_000 }, async () => {
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const workflowId = `spark/${runName}/pipeline`;
        const handle = await client.workflow.start(sparkPipeline, { taskQueue, workflowId, args: [input()] });
        const result = await handle.result();
        first = result;

        // Child workflows under deterministic IDs, each with its run ID.
        const ids = Object.fromEntries(Object.entries(result.stages).map(([stage, s]) => [stage, s.workflows.map((w) => w.workflowId)]));
        expect(ids).toEqual({
          labels: [`${workflowId}/labels`],
          'train-prm': [`${workflowId}/train-prm`],
          // Started together, recorded by ID: the same manifest whichever start landed first.
          'evaluate-prm': [`${workflowId}/evaluate-prm`, `${workflowId}/evaluate-prm-base`],
          'rl-train': [`${workflowId}/rl-train`],
        });
        for (const s of Object.values(result.stages)) {
          expect(s.status).toBe('completed');
          for (const w of s.workflows) expect((await client.workflow.getHandle(w.workflowId, w.runId).describe()).status.name).toBe('COMPLETED');
        }

        // Lineage: dataset → labels → PRM data → PRM checkpoint → served PRM → reports; prompts → policy checkpoint → final evaluation.
        const manifest = await store.getJson<{
          kind: string; workflowId: string; runId: string; configHash: string; stages: SparkPipelineResult['stages'];
          lineage: {
            dataset: { uri: string; sha256: string };
            labels: { manifest: ObjectRef; lines: number };
            prmData: { manifest: ObjectRef; data: ObjectRef; examples: number };
            prmCheckpoint: { uri: string; steps: number; batchesManifest: ObjectRef };
            prm: { servedModel: string; baseModel: string };
            processBench: SparkPipelineResult['processBench'];
            policy: { prompts: { uri: string; sha256: string }; rewardModel: string; checkpoint: string; servedModel: string; metricsPrefix: string; finalEvals: { set: string; step: number; accuracy: number }[] };
          };
        }>(`runs/${runName}/pipeline/manifest.json`);
        expect(result.manifest.uri).toBe(store.uri(`runs/${runName}/pipeline/manifest.json`));
        expect(manifest).toMatchObject({ kind: 'spark.pipeline', workflowId, runId: handle.firstExecutionRunId, stages: result.stages });
        const { lineage } = manifest;
        expect(lineage.dataset).toEqual({ uri: dataset.uri, sha256: dataset.sha256 });
        const labelsManifest = await store.getJson<{ dataset: { sha256: string } }>(lineage.labels.manifest.uri);
        expect(labelsManifest.dataset.sha256).toBe(dataset.sha256);
        expect(lineage.labels.manifest).toEqual(result.labels!.manifest);
        const prmData = await store.getJson<{ labels: { uri: string; sha256: string } }>(lineage.prmData.manifest.uri);
        expect(prmData.labels).toEqual({ uri: lineage.labels.manifest.uri, sha256: lineage.labels.manifest.sha256 });
        const batches = await store.getJson<{ data: ObjectRef }>(lineage.prmCheckpoint.batchesManifest.uri);
        expect(batches.data).toEqual(lineage.prmData.data);
        expect(await store.head(store.keyOf(`${lineage.prmCheckpoint.uri}/COMMITTED`))).not.toBeNull();
        expect(lineage.prm).toMatchObject({ servedModel: `${runName}-prm`, baseModel: 'sim-policy' });
        const report = await store.getJson<{ model: { model: string } }>(lineage.processBench.prm!.reportJson.uri);
        expect(report.model.model).toBe(`${runName}-prm`);
        expect(lineage.processBench.base?.model).toBe('sim-policy');
        expect(lineage.policy).toMatchObject({ prompts: { uri: prompts.uri, sha256: prompts.sha256 }, rewardModel: `${runName}-prm`, servedModel: `${runName}-policy-step-000004` });
        expect(await store.head(store.keyOf(`${lineage.policy.checkpoint}/COMMITTED`))).not.toBeNull();
        expect(lineage.policy.finalEvals).toEqual([{ set: 'held-out', step: 4, accuracy: expect.any(Number) as unknown }]);
        expect(await store.list(store.keyOf(lineage.policy.metricsPrefix))).toHaveLength(4);
        // The policy was trained against the published PRM, not some other judge.
        expect(sim.log.entries.some((e) => e.model === `${runName}-prm` && e.role === 'prm')).toBe(true);

        const progress = await handle.query(sparkPipelineProgress);
        expect(progress.stage).toBe('completed');
        expect(progress.manifest).toBe(result.manifest.uri);
        expect(progress.stages.map((s) => [s.name, s.status])).toEqual([['labels', 'completed'], ['train-prm', 'completed'], ['evaluate-prm', 'completed'], ['rl-train', 'completed']]);
        const sa = (await handle.describe()).typedSearchAttributes;
        expect([sa.get(SparkRun), sa.get(SparkStage), sa.get(SparkStatus)]).toEqual([runName, 'spark-pipeline', 'completed']);
      });
    } finally {
      await close();
    }
  });

  it('re-run with the same input makes no model call and trains no step, and points at the same artefacts', { timeout: 90_000 }, async () => {
    expect(first).toBeDefined();
    const calls = sim.log.entries.length;
    const steps = appliedSteps();
    expect(steps).toBeGreaterThan(0);
    const { client, close } = await connectClient();
    try {
      const again = await withWorker({ taskQueue }, () => client.workflow.execute(sparkPipeline, { taskQueue, workflowId: `spark/${runName}/pipeline-again`, args: [input()] }));
      expect(sim.log.entries.length).toBe(calls);
      expect(appliedSteps()).toBe(steps);
      expect(artefactUris(again)).toEqual(artefactUris(first!));
      expect(again.stages['rl-train'].workflows[0]!.workflowId).toBe(`spark/${runName}/pipeline-again/rl-train`);
    } finally {
      await close();
    }
  });

  it('starts from the `temporal` CLI with a JSON file, runs only the stages it names, and completes', { timeout: 90_000 }, async () => {
    expect(first).toBeDefined();
    const calls = sim.log.entries.length;
    // A hand-written file: the labels and the PRM are taken from the first run (by reference and by served name).
    const { labels: _labels, ...rest } = input();
    const file = join(dir, 'pipeline.json');
    writeFileSync(file, JSON.stringify({ ...rest, prm: { ...rest.prm, labelsManifestUri: first!.labels!.manifest.uri }, stages: ['evaluate-prm', 'rl-train'] }, null, 2));
    const workflowId = `spark/${runName}/pipeline-cli`;
    execFileSync(join(repoRoot, '.tools/bin/temporal'), [
      'workflow', 'start', '--type', 'sparkPipeline', '--task-queue', taskQueue, '--workflow-id', workflowId, '--input-file', file, '--address', inject('temporalAddress'),
    ], { stdio: 'pipe' });
    const { client, close } = await connectClient();
    try {
      const handle = client.workflow.getHandle<typeof sparkPipeline>(workflowId);
      // Queries are answered by a worker, so ask while it runs.
      const [result, progress] = await withWorker({ taskQueue }, async () => [await handle.result(), await handle.query(sparkPipelineProgress)] as const);
      expect(Object.fromEntries(Object.entries(result.stages).map(([k, s]) => [k, s.status]))).toEqual({
        labels: 'skipped', 'train-prm': 'skipped', 'evaluate-prm': 'completed', 'rl-train': 'completed',
      });
      expect(result.labels?.manifest.uri).toBe(first!.labels!.manifest.uri);
      expect(result.processBench.prm?.averageF1).toBe(first!.processBench.prm?.averageF1);
      expect(result.rl).toEqual(first!.rl);
      expect(sim.log.entries.length).toBe(calls);
      expect(progress.stages.map((s) => s.status)).toEqual(['skipped', 'skipped', 'completed', 'completed']);
    } finally {
      await close();
    }
  });
});
