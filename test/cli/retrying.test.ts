/**
 * Issue 16, item 4: a run that waits on a model server that is down says why: `spark status`,
 * `spark watch` and the client's `retrying()` show what failed, attempt n of m and the next try.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SparkClient } from '../../src/client/spark-client.js';
import type { RetryingActivity } from '../../src/client/spark-client.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import { connectClient, makeStore, stackEnv, uniqueTaskQueue, until, withWorker } from '../support/harness.js';
import { repoRoot } from '../support/paths.js';
import { retryLine } from '../../src/cli/spark-format.js';

const store = makeStore();
let conn: Awaited<ReturnType<typeof connectClient>>;
beforeAll(async () => {
  conn = await connectClient();
});
afterAll(async () => {
  await conn.close();
  store.destroy();
});

/** `spark <args>`; resolves with stdout once `done(stdout)` holds or the process exits, then stops it. */
function spark(args: string[], done: (stdout: string) => boolean = () => false): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/spark.ts'), ...args], { cwd: repoRoot, env: { ...process.env, ...stackEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      stdout += `${line}\n`;
      if (done(stdout)) child.kill('SIGINT');
    });
    child.on('close', (code) => (code === 0 || done(stdout) ? resolve(stdout) : reject(new Error(`spark ${args.join(' ')} exited ${code}: ${stderr}`))));
  });
}

describe('runs say why they wait', () => {
  it('a labels run against a model server that is down shows the failure, attempt n of 30 and the next try', { timeout: 90_000 }, async () => {
    const taskQueue = uniqueTaskQueue('retrying');
    const runName = `wait-${randomUUID().slice(0, 8)}`;
    const workflowId = `spark/${runName}/synthesize-labels`;
    const dataset = await uploadSandboxProblems(store, { seed: 9, count: 1 });
    const down = { baseURL: 'http://127.0.0.1:1/v1', timeoutMs: 1000 };
    const client = new SparkClient(conn.client, { taskQueue });
    await withWorker({ taskQueue }, async () => {
      const handle = await client.start('synthesizeLabels', {
        runName, dataset: { uri: dataset.uri }, generator: { endpoint: down, model: 'm' }, verifier: { endpoint: down, model: 'v' },
        solutionsPerProblem: 1, verificationsPerSolution: 1,
      });
      try {
        let seen: RetryingActivity[] = [];
        await until(async () => (seen = await client.retrying(workflowId)).some((r) => r.attempt >= 2), 'an activity on its second attempt', 60_000);
        const r = seen.find((a) => a.attempt >= 2)!;
        expect(r).toMatchObject({ workflowId: `${workflowId}/shard-00000`, workflowType: 'labelShard', activityType: 'labelProblems', maximumAttempts: 30 });
        expect(r.lastFailure).toContain('127.0.0.1:1');
        expect(r.failureType).toMatch(/^Inference\./);

        const status = await spark(['status', workflowId]);
        expect(status).toMatch(/labelProblems in spark\/\S+\/shard-00000 retrying: .*127\.0\.0\.1:1.*; attempt \d+ of 30, (next try in \d+s|running now|next try as soon)/);

        const watched = await spark(['watch', workflowId, '--interval', '1'], (out) => /attempt \d+ of 30/.test(out));
        expect(watched).toMatch(/labelProblems in spark\/\S+\/shard-00000 retrying: .*127\.0\.0\.1:1.*; attempt \d+ of 30/);
      } finally {
        await handle.temporal.terminate('test over');
      }
    });
  });
});

describe('retryLine', () => {
  const base: RetryingActivity = {
    workflowId: 'spark/r/train-prm', workflowType: 'trainPrm', activityType: 'trainSteps', activityId: '4', attempt: 7, maximumAttempts: 60,
    lastFailure: 'trainer at http://t:8400 unreachable', failureType: 'Trainer.unavailable', state: 'scheduled', nextAttemptAt: new Date(62_000),
  };
  it('says what failed, attempt n of m and when the next try is', () => {
    expect(retryLine(base, 50_000)).toBe('trainSteps in spark/r/train-prm retrying: trainer at http://t:8400 unreachable; attempt 7 of 60, next try in 12s');
    expect(retryLine({ ...base, maximumAttempts: null, state: 'started' }, 50_000)).toBe('trainSteps in spark/r/train-prm retrying: trainer at http://t:8400 unreachable; attempt 7 (no limit), running now');
    expect(retryLine(base, null)).toBe('trainSteps in spark/r/train-prm retrying: trainer at http://t:8400 unreachable; attempt 7 of 60');
  });
});
