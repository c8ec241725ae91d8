/**
 * Every stage started the way the README shows for people who use the `temporal` CLI: a JSON
 * file and `temporal workflow start --type <workflow> --input-file`. Each stage's output feeds the
 * next one's file, as a person would chain them by hand.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { generateSandboxProcessBench } from '../../sandbox/processbench-sandbox.js';
import { objectStoreAdapterReader } from '../../sandbox/model-server/models.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import type { TrainerProcess } from '../support/harness.js';
import { connectClient, makeStore, spawnTrainerProcess, uniqueTaskQueue, withWorker } from '../support/harness.js';
import { freePort, repoRoot } from '../support/paths.js';
import { uploadSandboxBenchmark } from '../support/processbench.js';
import { uploadSandboxProblems } from '../support/datasets.js';

const store = makeStore();
const dir = mkdtempSync(join(tmpdir(), 'cli-start-'));
const taskQueue = uniqueTaskQueue('cli-start');
let sim: SimServer;
let trainer: TrainerProcess;

/** `temporal workflow start` with the input written to a JSON file, as in the README. */
function startWithCli(type: string, workflowId: string, input: unknown): void {
  const file = join(dir, `${type}.json`);
  writeFileSync(file, JSON.stringify(input, null, 2));
  execFileSync(join(repoRoot, '.tools/bin/temporal'), [
    'workflow', 'start', '--type', type, '--task-queue', taskQueue, '--workflow-id', workflowId, '--input-file', file, '--address', inject('temporalAddress'),
  ], { stdio: 'pipe' });
}

beforeAll(async () => {
  sim = await startSimServer({ seed: 81, readAdapter: objectStoreAdapterReader(() => store) });
  trainer = spawnTrainerProcess({ port: await freePort(), eventsFile: join(dir, 'events.jsonl') });
  await trainer.ready;
});
afterAll(async () => {
  await trainer.kill();
  await sim.close();
  store.destroy();
});

describe('starting each stage with the temporal CLI from a JSON file', () => {
  it('runs synthesizeLabels → trainPrm → evaluatePrm → rlTrain, and coEvolve, each from its own file', { timeout: 180_000 }, async () => {
    const { client, close } = await connectClient();
    const run = `cli-${randomUUID().slice(0, 8)}`;
    const endpoint = { baseURL: sim.url };
    const dataset = await uploadSandboxProblems(store, { seed: 82, count: 16, withAnswers: true });
    const splits = await uploadSandboxBenchmark(store, generateSandboxProcessBench({ seed: 83, countPerSplit: 8, splits: [{ name: 'gsm8k', minOps: 4, maxOps: 5 }] }));
    const result = async <T>(workflowId: string): Promise<T> => client.workflow.getHandle(workflowId).result() as Promise<T>;
    try {
      await withWorker({ taskQueue }, async () => {
        startWithCli('synthesizeLabels', `spark/${run}/synthesize-labels`, {
          runName: run,
          dataset: { uri: dataset.uri },
          generator: { endpoint, model: 'sim-policy', sampling: { temperature: 1 } },
          verifier: { endpoint, model: 'sim-verifier' },
          solutionsPerProblem: 2,
          verificationsPerSolution: 4,
          methods: ['step-majority'],
        });
        const labels = await result<{ manifest: { uri: string }; lines: number }>(`spark/${run}/synthesize-labels`);
        expect(labels.lines).toBe(32);

        startWithCli('trainPrm', `spark/${run}/train-prm`, {
          runName: run,
          labelsManifestUri: labels.manifest.uri,
          style: 'prm-cot',
          trainer: { baseURL: trainer.url },
          baseModel: 'sim-policy',
          epochs: 1,
          batchSize: 8,
          publish: { inferenceBaseURL: sim.url },
        });
        const prm = await result<{ model: { modelName: string } | null; steps: number }>(`spark/${run}/train-prm`);
        expect(prm.model?.modelName).toBe(`${run}-prm`);

        startWithCli('evaluatePrm', `spark/${run}/evaluate-prm`, {
          runName: run,
          benchmark: { splits },
          model: { endpoint, model: `${run}-prm` },
          style: 'prm-cot',
        });
        const evaluation = await result<{ rows: number; report: { scores: { average: { f1: number | null } } } }>(`spark/${run}/evaluate-prm`);
        expect(evaluation.rows).toBe(8);
        expect(evaluation.report.scores.average.f1).not.toBeNull();

        startWithCli('rlTrain', `spark/${run}/rl-train`, {
          runName: run,
          policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
          trainer: { baseURL: trainer.url },
          reward: { formulation: 'selective-advantage', prm: { endpoint, model: `${run}-prm`, style: 'prm-cot' } },
          dataset: { uri: dataset.uri, fields: { question: 'question', answer: 'answer' } },
          grpo: { batchSize: 2, groupSize: 4 },
          totalSteps: 2,
        });
        const rl = await result<{ steps: number; servedModel: string }>(`spark/${run}/rl-train`);
        expect(rl).toMatchObject({ steps: 2, servedModel: `${run}-policy-step-000002` });

        // The co-evolving variant, from its own file too: with items recycled, it takes extra steps.
        startWithCli('coEvolve', `spark/${run}/co-evolve`, {
          runName: run,
          policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
          trainer: { baseURL: trainer.url },
          dataset: { uri: dataset.uri, fields: { question: 'question', answer: 'answer' } },
          grpo: { batchSize: 2, groupSize: 4 },
          totalSteps: 3,
        });
        const co = await result<{ steps: number; trainerSteps: number }>(`spark/${run}/co-evolve`);
        expect(co.steps).toBe(3);
        expect(co.trainerSteps).toBeGreaterThan(3);
      });
    } finally {
      await close();
    }
  });
});
