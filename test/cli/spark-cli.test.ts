/**
 * The `spark` CLI as people run it: a separate process pointed at the suite's stack through the
 * environment, an in-process worker on the test's own task queue, the sandbox model server.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectStoreAdapterReader } from '../../sandbox/model-server/models.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import type { TrainerProcess } from '../support/harness.js';
import { makeStore, spawnTrainerProcess, stackEnv, uniqueTaskQueue, until, withWorker } from '../support/harness.js';
import { freePort, repoRoot } from '../support/paths.js';

const store = makeStore();
const taskQueue = uniqueTaskQueue('spark-cli');
const dir = mkdtempSync(join(tmpdir(), 'spark-cli-'));
let sim: SimServer;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `spark <args>` to completion, as `node --import tsx src/cli/spark.ts` (not a TTY: one line per update). */
function spark(args: string[]): Promise<Ran> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/spark.ts'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...stackEnv() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

beforeAll(async () => {
  sim = await startSimServer({ seed: 51, readAdapter: objectStoreAdapterReader(() => store) });
});
afterAll(async () => {
  await sim.close();
  store.destroy();
});

describe('spark CLI', () => {
  it('starts a run from a YAML config and waits for it; lists it; shows its status', { timeout: 90_000 }, async () => {
    const dataset = await uploadSandboxProblems(store, { seed: 52, count: 3 });
    const runName = `cli-${randomUUID().slice(0, 8)}`;
    const workflowId = `spark/${runName}/sample-solutions`;
    const config = join(dir, `${runName}.yaml`);
    writeFileSync(config, [
      '# sampleSolutions on the sandbox',
      `runName: ${runName}`,
      'dataset:',
      `  uri: ${dataset.uri}`,
      'generator:',
      `  endpoint: { baseURL: "${sim.url}" }`,
      '  model: sim-policy',
      'samplesPerProblem: 2',
      '',
    ].join('\n'));

    await withWorker({ taskQueue }, async () => {
      const started = await spark(['start', 'sampleSolutions', '--config', config, '--task-queue', taskQueue, '--wait', '--interval', '0.3']);
      expect(started.code, started.stderr).toBe(0);
      expect(started.stderr).toContain(`started sampleSolutions ${workflowId} on task queue ${taskQueue}`);
      expect(started.stderr).toContain(`/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
      // Not a terminal: progress comes as lines, then the result.
      expect(started.stdout).toMatch(/\] problems \d\/3 \(\d+%\)/);
      expect(started.stdout).toContain(`${workflowId} completed`);
      expect(started.stdout).toMatch(/manifest\s+s3:\/\/spark\/runs\/.+\/manifest\.json/);

      let listed: Ran | undefined;
      await until(async () => (listed = await spark(['list', '--run', runName, '--stage', 'sample-solutions'])).stdout.includes(workflowId), 'the run in the list', 30_000);
      expect(listed!.code).toBe(0);
      const row = listed!.stdout.split('\n').find((l) => l.startsWith(workflowId));
      expect(row).toMatch(/sampleSolutions\s+completed\s+completed\s+3 items/);
      expect(listed!.stderr).toContain(`SparkRun = "${runName}"`);

      const status = await spark(['status', workflowId]);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/type\s+sampleSolutions/);
      expect(status.stdout).toMatch(/problems\s+\[#{30}\]\s+3\/3\s+100%/);
      expect(status.stdout).toMatch(/calls made\s+3/);

      // The stage-3 controls refuse other workflows, saying why.
      const paused = await spark(['pause', workflowId]);
      expect(paused.code).toBe(1);
      expect(paused.stderr).toContain(`refused: pause works on rlTrain and coEvolve runs; ${workflowId} is a sampleSolutions run`);
    });
  });

  it('refuses a config with bad fields before starting anything, naming each field and the expected value', { timeout: 30_000 }, async () => {
    const runName = `cli-bad-${randomUUID().slice(0, 8)}`;
    const config = join(dir, `${runName}.yaml`);
    writeFileSync(config, `runName: ${runName}\ndataset:\n  uri: problems.jsonl\n  limit: ten\ngenerator:\n  endpoint: { baseURL: "${sim.url}" }\n  model: sim-policy\n`);
    const bad = await spark(['start', 'sampleSolutions', '--config', config, '--task-queue', taskQueue]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid sampleSolutions input');
    expect(bad.stderr).toMatch(/dataset\.uri: an S3 URI like s3:\/\/bucket\/datasets\/problems\.jsonl \(got "problems\.jsonl"\)/);
    expect(bad.stderr).toMatch(/dataset\.limit: expected number, received string/);

    const missing = await spark(['status', `spark/${runName}/sample-solutions`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no workflow 'spark/${runName}/sample-solutions'`);
  });

  describe('rlTrain controls', () => {
    let trainer: TrainerProcess;
    beforeAll(async () => {
      trainer = spawnTrainerProcess({ port: await freePort(), eventsFile: join(dir, 'trainer-events.jsonl') });
      await trainer.ready;
    });
    afterAll(async () => {
      await trainer.kill();
    });

    it('pauses, sets, refuses a bad value, resumes and stops a run started from JSON, then reports its metrics from S3', { timeout: 90_000 }, async () => {
      const prompts = await uploadSandboxProblems(store, { seed: 53, count: 24, withAnswers: true });
      const runName = `cli-rl-${randomUUID().slice(0, 8)}`;
      const workflowId = `spark/${runName}/rl-train`;
      const endpoint = { baseURL: sim.url };
      const config = join(dir, `${runName}.json`);
      writeFileSync(config, JSON.stringify({
        runName,
        policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
        trainer: { baseURL: trainer.url },
        reward: { prm: { endpoint, model: 'sim-verifier' } },
        dataset: { uri: prompts.uri, fields: { question: 'question', answer: 'answer' } },
        evaluation: { sets: [] },
        grpo: { batchSize: 2, groupSize: 4 },
        totalSteps: 60,
        checkpointEvery: 4,
        publishEvery: 2,
        seed: 6,
      }, null, 2));

      await withWorker({ taskQueue }, async () => {
        const started = await spark(['start', 'rlTrain', '--config', config, '--task-queue', taskQueue, '--json']);
        expect(started.code, started.stderr).toBe(0);
        expect(JSON.parse(started.stdout)).toMatchObject({ workflowId, type: 'rlTrain', taskQueue });

        const paused = await spark(['pause', workflowId, '--wait']);
        expect(paused.code, paused.stderr).toBe(0);
        expect(paused.stdout).toContain(`pause sent to ${workflowId}`);
        const pausedAt = Number(/is paused at step (\d+)\//.exec(paused.stdout)?.[1]);
        expect(pausedAt).toBeGreaterThanOrEqual(0);

        const badValue = await spark(['set', workflowId, '--lr=-1']);
        expect(badValue.code).toBe(2);
        expect(badValue.stderr).toMatch(/learningRate: Too small: expected number to be >0 \(got -1\)/);
        const set = await spark(['set', workflowId, '--lr', '3e-6', '--kl', '0.01', '--reason', 'cli test']);
        expect(set.code, set.stderr).toBe(0);
        expect(set.stdout).toContain(`${workflowId}: learning rate 0.000003, KL coefficient 0.01 from step ${pausedAt}`);

        const status = await spark(['status', workflowId]);
        expect(status.stdout).toMatch(/stage\s+paused/);
        expect(status.stdout).toMatch(/KL coefficient\s+0\.01/);

        expect((await spark(['resume', workflowId])).code).toBe(0);
        const stopped = await spark(['stop', workflowId, '--wait']);
        expect(stopped.code, stopped.stderr).toBe(0);
        expect(stopped.stdout).toMatch(/stopped early\s+true/);

        const report = await spark(['report', workflowId]);
        expect(report.code, report.stderr).toBe(0);
        const steps = Number(/^steps\s+(\d+)$/m.exec(report.stdout)?.[1]);
        expect(steps).toBeGreaterThan(pausedAt);
        expect(report.stdout).toContain(`metrics per step (${steps} rows)`);
        // The row of the step the update names shows the new settings.
        expect(report.stdout).toMatch(new RegExp(`^${pausedAt}\\s+.*3\\.0e-6\\s+0\\.01\\s`, 'm'));
      });
    });
  });
});
