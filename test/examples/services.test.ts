/**
 * The example services in other languages (examples/python, examples/go; built by examples/install.sh)
 * on the test stack, each as its own process the way a team would run it: an rlTrain input checked
 * against the published schema and started, its progress queried, paused and resumed by signal, and its
 * result read; a bad input refused at once naming the fields, with nothing started.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RlTrainInput, RlTrainProgress, RlTrainResult, SynthesizeLabelsInput } from 'spark-temporal';
import { SparkRun, SparkStage } from '../../src/core/temporal/search-attributes.js';
import { objectStoreAdapterReader } from '../../sandbox/model-server/models.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import type { TrainerProcess } from '../support/harness.js';
import { connectClient, makeStore, spawnTrainerProcess, stackEnv, uniqueTaskQueue, until, withWorker } from '../support/harness.js';
import { freePort, repoRoot } from '../support/paths.js';

const exec = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'spark-services-'));
const store = makeStore();
let sim: SimServer;
let trainer: TrainerProcess;
let conn: Awaited<ReturnType<typeof connectClient>>;

beforeAll(async () => {
  sim = await startSimServer({ seed: 61, readAdapter: objectStoreAdapterReader(() => store) });
  // Slow train steps (2 s) leave time to pause the run mid-way with a process started per call (a
  // Python one takes seconds to start on a busy machine).
  trainer = spawnTrainerProcess({ port: await freePort(), eventsFile: join(dir, 'events.jsonl'), stepLatencyMs: 2000 });
  await trainer.ready;
  conn = await connectClient();
});
afterAll(async () => {
  await conn?.close();
  await trainer?.kill();
  await sim?.close();
  store.destroy();
});

interface Service {
  language: string;
  cwd: string;
  /** The program and the arguments before the command. */
  command: [string, ...string[]];
  /** Its formatter/linter, which must find nothing. */
  lint: [string, ...string[]][];
}

const services: Service[] = [
  {
    language: 'Python',
    cwd: join(repoRoot, 'examples/python'),
    command: [join(repoRoot, 'examples/python/.venv/bin/python'), 'spark_service.py'],
    lint: [[join(repoRoot, 'trainer/.venv/bin/ruff'), 'check', '.'], [join(repoRoot, 'trainer/.venv/bin/ruff'), 'format', '--check', '.']],
  },
  {
    language: 'Go',
    cwd: join(repoRoot, 'examples/go'),
    command: [join(repoRoot, 'examples/go/.bin/spark-service')],
    lint: [['gofmt', '-l', '.']],
  },
];

describe.each(services)('the $language example service', (service) => {
  const taskQueue = uniqueTaskQueue(`svc-${service.language.toLowerCase()}`);
  const env = { ...process.env, ...stackEnv(), SPARK_TASK_QUEUE: taskQueue };

  /** Runs one command of the service; its stdout's JSON lines, or its exit code and stderr when it fails. */
  async function call(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; out: unknown[]; stderr: string }> {
    const [program, ...pre] = service.command;
    if (!existsSync(program)) throw new Error(`${program} is missing: run \`npm run setup\` (examples/install.sh builds the examples)`);
    try {
      const { stdout, stderr } = await exec(program, [...pre, ...args], { cwd: service.cwd, env: { ...env, ...extraEnv } });
      return { code: 0, out: stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown), stderr };
    } catch (err) {
      const e = err as { code: number; stderr: string };
      return { code: e.code, out: [], stderr: e.stderr };
    }
  }

  const progress = async (workflowId: string): Promise<RlTrainProgress> => {
    const answer = await call(['progress', workflowId]);
    if (answer.code !== 0) throw new Error(`progress failed: ${answer.stderr}`);
    return answer.out[0] as RlTrainProgress;
  };

  it('starts rlTrain checked against the schema, queries progress, pauses and resumes it, and reads the result', { timeout: 180_000 }, async () => {
    const prompts = await uploadSandboxProblems(store, { seed: 62, count: 16, withAnswers: true });
    const runName = `svc-${service.language.toLowerCase()}-${randomUUID().slice(0, 8)}`;
    const endpoint = { baseURL: sim.url };
    const input: RlTrainInput = {
      runName,
      policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
      trainer: { baseURL: trainer.url },
      reward: { formulation: 'selective-advantage', prm: { endpoint, model: 'sim-verifier', style: 'prm-cot' } },
      dataset: { uri: prompts.uri, fields: { question: 'question', answer: 'answer' } },
      evaluation: { sets: [] },
      grpo: { batchSize: 2, groupSize: 4 },
      totalSteps: 8,
      checkpointEvery: 4,
      publishEvery: 2,
      seed: 7,
    };
    const file = join(dir, `${runName}.json`);
    writeFileSync(file, JSON.stringify(input));
    expect(await call(['check', 'rlTrain', file])).toMatchObject({ code: 0, out: [{ workflow: 'rlTrain', valid: true }] });

    await withWorker({ taskQueue }, async () => {
      const started = await call(['start', 'rlTrain', file]);
      expect(started.code, started.stderr).toBe(0);
      const workflowId = (started.out[0] as { workflowId: string }).workflowId;
      expect(workflowId).toBe(`spark/${runName}/rl-train`);
      // Once it trains (a pause while it prepares is not kept: the loop has no state yet).
      await until(async () => (await progress(workflowId)).stage === 'training', 'the run to train', 90_000);
      expect(await call(['pause', workflowId])).toMatchObject({ code: 0, out: [{ workflowId, signal: 'pause' }] });
      await until(async () => (await progress(workflowId)).stage === 'paused', 'the run to pause', 60_000);
      const pausedAt = (await progress(workflowId)).step;
      await new Promise((r) => setTimeout(r, 1500));
      expect((await progress(workflowId)).step).toBe(pausedAt);
      expect(pausedAt).toBeLessThan(8);

      expect(await call(['resume', workflowId])).toMatchObject({ code: 0, out: [{ workflowId, signal: 'resume' }] });
      const result = await call(['result', workflowId]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.out[0] as RlTrainResult).toMatchObject({ steps: 8, stopped: false });
      expect(await progress(workflowId)).toMatchObject({ step: 8, stage: 'completed' });

      // The search attributes set at start find it as SparkClient's runs are found.
      const described = await conn.client.workflow.getHandle(workflowId).describe();
      expect([described.typedSearchAttributes.get(SparkRun), described.typedSearchAttributes.get(SparkStage)]).toEqual([runName, 'rl-train']);

      // Signals go to GRPO runs only; a finished one is refused as well.
      expect(await call(['pause', workflowId])).toMatchObject({ code: 1, stderr: expect.stringMatching(/is not running/) as string });
    });
  });

  it('refuses a bad input before contacting Temporal, naming each field, and starts nothing', { timeout: 60_000 }, async () => {
    const runName = `svc-bad-${randomUUID().slice(0, 8)}`;
    const bad = {
      runName,
      dataset: { uri: 's3://spark/problems.jsonl', limt: 3 },
      generator: { endpoint: { baseURL: sim.url } },
      verifier: { endpoint: { baseURL: sim.url }, model: 'sim-verifier' },
      solutionsPerProblem: 'two',
    } as unknown as SynthesizeLabelsInput;
    const file = join(dir, `${runName}.json`);
    writeFileSync(file, JSON.stringify(bad));
    // Refused the same with no Temporal to reach: checked before connecting.
    for (const address of [inject('temporalAddress'), '127.0.0.1:1']) {
      const refused = await call(['start', 'synthesizeLabels', file], { TEMPORAL_ADDRESS: address });
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(/invalid synthesizeLabels input:/);
      expect(refused.stderr).toMatch(/^ {2}solutionsPerProblem: .*(integer|number)/m);
      expect(refused.stderr).toMatch(/^ {2}generator\.model: required$/m);
      expect(refused.stderr).toMatch(/^ {2}dataset\.limt: unknown field/m);
    }
    const notStarted = await conn.client.workflow.getHandle(`spark/${runName}/synthesize-labels`).describe().catch((e: unknown) => e);
    expect(notStarted).toBeInstanceOf(WorkflowNotFoundError);
  });

  it('reads where Temporal is from the environment and names a half-given TLS setting', { timeout: 60_000 }, async () => {
    const unreachable = await call(['progress', 'spark/none/rl-train'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(unreachable).toMatchObject({ code: 1, stderr: expect.stringMatching(/cannot reach Temporal at 127\.0\.0\.1:1 .*TEMPORAL_ADDRESS/) as string });
    const halfTls = await call(['progress', 'spark/none/rl-train'], { TEMPORAL_TLS_CERT: join(dir, 'client.pem') });
    expect(halfTls).toMatchObject({ code: 1, stderr: expect.stringMatching(/needs both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY/) as string });
  });

  it('is clean by its language\'s formatter and linter', { timeout: 60_000 }, async () => {
    for (const [program, ...args] of service.lint) {
      const { stdout } = await exec(program, args, { cwd: service.cwd });
      expect(stdout.replace(/All checks passed!|\d+ files? already formatted/g, '').trim()).toBe('');
    }
  });
});
