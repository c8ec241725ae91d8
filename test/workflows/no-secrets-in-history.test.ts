/**
 * No secret in any history. Every workflow type the worker registers runs with credentials that
 * are really used: the inference endpoints are behind a proxy that answers 401 unless the request
 * carries the API key, which only the worker process has (in the variable the inputs name by
 * `apiKeyEnv`), and S3 is a versitygw of this test's own whose root keys are distinctive values,
 * given to the worker and the trainer by environment. Then every event of every history (children
 * and continued-as-new runs included) is scanned, as protobuf bytes and as JSON, for the key, the
 * S3 keys, and their hex and base64; so is every object the runs wrote to S3. One run gets a key the
 * server refuses, so the failure path is scanned too. A planted history shows that the scan finds a
 * secret there.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ObjectStore } from '../../src/client/index.js';
import { uploadSandboxProblems } from '../support/datasets.js';
import type { WorkerProcess } from '../support/harness.js';
import { connectClient, spawnWorkerProcess, uniqueTaskQueue } from '../support/harness.js';
import type { FetchedHistory, RunRef } from '../support/history-scan.js';
import { collectHistories, findSecrets, formatFindings, scanHistories, secretForms } from '../support/history-scan.js';
import { freePort, repoRoot } from '../support/paths.js';
import { uploadGeneratedSandboxBenchmark } from '../support/processbench.js';
import { TrainingSandbox } from '../support/training-sandbox.js';

/** The variable the inputs name in `apiKeyEnv`; set only on the worker process. */
const KEY_ENV = 'SPARK_LEAKCHECK_API_KEY';
/** A variable holding a key the server refuses: the failure path (401 → failed activity → failed run) must not show it either. */
const WRONG_KEY_ENV = 'SPARK_LEAKCHECK_WRONG_KEY';
const tag = randomBytes(8).toString('hex');
const SECRETS = {
  apiKey: `sk-leakcheck-${tag}-inference-key`,
  wrongApiKey: `sk-leakcheck-${tag}-refused-key`,
  s3AccessKeyId: `LEAKCHECK${tag.toUpperCase()}`,
  s3SecretAccessKey: `leakcheck-s3-secret-${tag}-xyz`,
};

const dir = mkdtempSync(join(tmpdir(), 'no-secrets-'));
const taskQueue = uniqueTaskQueue('no-secrets');
const fields = { question: 'question', answer: 'answer' };
let s3Env: Record<string, string>;
let store: ObjectStore;
let box: TrainingSandbox;
let proxy: AuthProxy;
let worker: WorkerProcess;
let client: Client;
let closeClient: () => Promise<void>;

/**
 * An OpenAI-compatible front for the sandbox model server that refuses model calls (401) without
 * `Authorization: Bearer <key>`, as a hosted API or `vllm serve --api-key` does. The LoRA load and
 * unload endpoints pass without it: the trainer publishes with no key (the trainer protocol has none).
 */
interface AuthProxy {
  url: string;
  authorized: number;
  refused: string[];
  server: Server;
}

async function startAuthProxy(target: string, key: string): Promise<AuthProxy> {
  const upstream = new URL(target);
  const state: AuthProxy = { url: '', authorized: 0, refused: [], server: undefined as unknown as Server };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const needsKey = !/\/(un)?load_lora_adapter$/.test(path);
    if (needsKey) {
      if (req.headers.authorization !== `Bearer ${key}`) {
        state.refused.push(`${req.method} ${path} (authorization: ${req.headers.authorization ? 'wrong' : 'none'})`);
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'invalid API key', type: 'invalid_request_error', code: 'invalid_api_key' } }));
        req.resume();
        return;
      }
      state.authorized++;
    }
    const headers = { ...req.headers, host: upstream.host };
    delete headers.authorization;
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    forward.on('error', (err) => {
      res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.server = server;
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${upstream.pathname}`;
  return state;
}

/** The workflow types the worker registers: the exported functions of the module its workflow bundle was built from. */
async function registeredWorkflowTypes(): Promise<string[]> {
  const bundle = readFileSync(inject('workflowBundlePath'), 'utf8');
  // The bundle's entry: `importWorkflows() { return __webpack_require__(/* … */ "./src/workflows/index.ts"); }`, relative to the repo.
  const entry = /importWorkflows\(\)\s*\{\s*return __webpack_require__\((?:\/\*.*?\*\/\s*)*"([^"]+)"\)/.exec(bundle);
  if (!entry?.[1]) throw new Error('could not find the workflows module in the worker\'s bundle (importWorkflows)');
  const mod = (await import(join(repoRoot, entry[1]))) as Record<string, unknown>;
  return Object.entries(mod).filter(([, v]) => typeof v === 'function').map(([name]) => name).sort();
}

beforeAll(async () => {
  // S3 of our own: versitygw's root keys are the distinctive values (infra/local-s3/start.sh takes them from AWS_*).
  const s3Port = await freePort();
  s3Env = {
    SPARK_S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
    SPARK_S3_BUCKET: 'spark',
    SPARK_S3_REGION: 'us-east-1',
    SPARK_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: SECRETS.s3AccessKeyId,
    AWS_SECRET_ACCESS_KEY: SECRETS.s3SecretAccessKey,
  };
  execFileSync('bash', [join(repoRoot, 'infra/local-s3/start.sh')], {
    env: { ...process.env, ...s3Env, SPARK_S3_PORT: String(s3Port), SPARK_DATA_DIR: dir },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const s3 = (secretAccessKey: string) => new ObjectStore({
    endpoint: s3Env.SPARK_S3_ENDPOINT!, bucket: 'spark', region: 'us-east-1', forcePathStyle: true, accessKeyId: SECRETS.s3AccessKeyId, secretAccessKey,
  });
  store = s3(SECRETS.s3SecretAccessKey);
  box = await TrainingSandbox.start(store, { sim: 61, prompts: 62, heldOut: 63 }, { trainerEnv: s3Env });
  proxy = await startAuthProxy(box.sim.url, SECRETS.apiKey);
  worker = spawnWorkerProcess({ taskQueue, env: { ...s3Env, [KEY_ENV]: SECRETS.apiKey, [WRONG_KEY_ENV]: SECRETS.wrongApiKey } });
  await worker.ready;
  ({ client, close: closeClient } = await connectClient());
  // These S3 keys are the ones in use: the same server refuses any other secret.
  const wrong = s3('not-the-secret-key');
  await expect(wrong.put(`test/wrong-key-${tag}.txt`, 'x', 'text/plain')).rejects.toThrow();
  wrong.destroy();
}, 120_000);

afterAll(async () => {
  await worker?.kill();
  await closeClient?.();
  await box?.close();
  await new Promise((r) => proxy?.server.close(r));
  store?.destroy();
  try {
    process.kill(Number(readFileSync(join(dir, 'run/s3.pid'), 'utf8')));
  } catch {
    // not started, or gone
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('the history scanner', () => {
  it('finds a secret in plain text, hex and base64 at every alignment, and nothing in clean bytes', () => {
    const secrets = { s: SECRETS.s3SecretAccessKey };
    for (const pad of ['', 'a', 'ab', 'abc']) {
      const blob = Buffer.from(`${pad}${SECRETS.s3SecretAccessKey}tail`);
      expect(findSecrets(`{"x":"${blob.toString('base64')}"}`, secrets).map((f) => f.form)).toContainEqual(expect.stringMatching(/^base64@/));
      expect(findSecrets(`x${blob.toString('base64url')}`, secrets).map((f) => f.form)).toContainEqual(expect.stringMatching(/^base64(url)?@/));
      expect(findSecrets(blob, secrets).map((f) => f.form)).toContain('plain');
      expect(findSecrets(blob.toString('hex'), secrets).map((f) => f.form)).toContain('hex');
    }
    expect(findSecrets(Buffer.from(`{"apiKeyEnv":"${KEY_ENV}","uri":"s3://spark/x"}`), SECRETS)).toEqual([]);
    expect(secretForms(SECRETS.apiKey).map((f) => f.form)).toEqual(expect.arrayContaining(['plain', 'hex', 'base64@0', 'base64@1', 'base64@2']));
  });

  it('finds secrets planted in a real history (a key pasted where its variable\'s name belongs, a base64 memo)', { timeout: 60_000 }, async () => {
    // No worker polls this queue: the started event alone holds the input.
    const handle = await client.workflow.start('sampleSolutions', {
      taskQueue: `${taskQueue}-planted`,
      workflowId: `test/planted-${tag}`,
      args: [{ runName: `planted-${tag}`, dataset: { uri: 's3://spark/x.jsonl' }, generator: { endpoint: { baseURL: proxy.url, apiKeyEnv: SECRETS.apiKey }, model: 'sim-policy' } }],
      memo: { note: Buffer.from(`aws:${SECRETS.s3SecretAccessKey}`).toString('base64') },
    });
    try {
      const histories = await collectHistories(client, [{ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }]);
      const findings = await scanHistories(client, histories, SECRETS);
      const at = (secret: string) => findings.filter((f) => f.secret === secret).map((f) => `${f.in}:${f.form}:${f.eventType ?? ''}`);
      expect(at('apiKey')).toEqual(expect.arrayContaining(['proto:plain:EVENT_TYPE_WORKFLOW_EXECUTION_STARTED', 'json:plain:EVENT_TYPE_WORKFLOW_EXECUTION_STARTED']));
      // The memo holds it base64-encoded, 4 bytes in: found in the event and in the run's description.
      expect(at('s3SecretAccessKey')).toEqual(expect.arrayContaining([
        'proto:base64@1:EVENT_TYPE_WORKFLOW_EXECUTION_STARTED', 'json:base64@1:EVENT_TYPE_WORKFLOW_EXECUTION_STARTED', 'describe:base64@1:',
      ]));
      expect(at('s3AccessKeyId')).toEqual([]);
    } finally {
      await handle.terminate('planted secret; scanner check');
    }
  });
});

describe('no secret in any history', () => {
  it('runs every registered workflow type with the API key and S3 keys in use, and no history holds them', { timeout: 360_000 }, async () => {
    const run = `nosecret-${tag}`;
    const endpoint = { baseURL: proxy.url, apiKeyEnv: KEY_ENV };
    const problems = await uploadSandboxProblems(store, { seed: 64, count: 8 });
    const splits = await uploadGeneratedSandboxBenchmark(store, { seed: 65, countPerSplit: 4, splits: [{ name: 'gsm8k', minOps: 4, maxOps: 5 }] });
    const prompts = { uri: box.promptsUri, fields, limit: 16 };
    const heldOut = { uri: box.heldOutUri, fields, limit: 6 };
    const start = (type: string, id: string, input: unknown): Promise<WorkflowHandleWithFirstExecutionRunId> =>
      client.workflow.start(type, { taskQueue, workflowId: `spark/${run}/${id}`, args: [input] });

    const handles = await Promise.all([
      // Stage 1 → trainPrm → evaluatePrm → rlTrain as children; stage 1 and rlTrain continue as new.
      start('sparkPipeline', 'pipeline', {
        runName: `${run}-pipe`,
        endpoints: { inference: endpoint, trainer: { baseURL: box.trainerURL } },
        labels: {
          dataset: { uri: problems.uri },
          generator: { model: 'sim-policy', sampling: { temperature: 1 } },
          verifier: { model: 'sim-verifier' },
          critic: { model: 'sim-verifier' },
          solutionsPerProblem: 2,
          verificationsPerSolution: 3,
          methods: ['step-majority', 'hybrid'],
          shards: { size: 4, perRun: 1 },
        },
        prm: { baseModel: 'sim-policy', epochs: 1, batchSize: 8, checkpointEvery: 2 },
        processBench: { splits, baseModel: 'sim-policy' },
        rl: {
          policy: { baseModel: 'sim-policy', model: 'sim-policy' },
          dataset: prompts,
          evaluation: { sets: [{ name: 'held-out', ...heldOut }], every: 2 },
          grpo: { batchSize: 2, groupSize: 4 },
          totalSteps: 2,
          checkpointEvery: 1,
          stepsPerRun: 1,
        },
        seed: 3,
      }),
      start('sampleSolutions', 'sample-solutions', {
        runName: `${run}-ss`,
        dataset: { uri: problems.uri, limit: 4 },
        generator: { endpoint, model: 'sim-policy' },
        samplesPerProblem: 2,
      }),
      start('coEvolve', 'co-evolve', {
        runName: `${run}-co`,
        policy: { baseModel: 'sim-policy', endpoint, model: 'sim-policy' },
        trainer: { baseURL: box.trainerURL },
        dataset: prompts,
        evaluation: { sets: [{ name: 'held-out', ...heldOut }], every: 2, temperature: 1, samples: 2 },
        grpo: { batchSize: 2, groupSize: 4 },
        totalSteps: 2,
        checkpointEvery: 1,
        stepsPerRun: 1,
      }),
      start('evaluateSelfReflection', 'evaluate-self-reflection', {
        runName: `${run}-sr`, policy: { endpoint, model: 'sim-policy' }, dataset: heldOut, maxRounds: 1, samples: 1, chunkSize: 3,
      }),
      // The same with a key the server refuses: it fails at the first call, and says why without the key.
      start('sampleSolutions', 'sample-solutions-refused', {
        runName: `${run}-refused`,
        dataset: { uri: problems.uri, limit: 2 },
        generator: { endpoint: { ...endpoint, apiKeyEnv: WRONG_KEY_ENV }, model: 'sim-policy' },
        samplesPerProblem: 2,
        // Its own seed: the run above's samples are in the sample store and would answer without a call.
        sampling: { seed: 99 },
      }),
      start('evaluateJudging', 'evaluate-judging', {
        runName: `${run}-jb`,
        judge: { endpoint, model: 'sim-verifier' },
        benchmark: { dataset: heldOut, generator: { endpoint, model: 'sim-policy' }, samplesPerQuestion: 4 },
        samples: 2,
        chunkSize: 5,
      }),
    ]);
    const results = await Promise.allSettled(handles.map((h) => h.result()));
    const why = (err: unknown): string => (err instanceof Error ? `${err.message}${err.cause ? ` ← ${why(err.cause)}` : ''}` : String(err));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${handles[i]!.workflowId}: ${why(r.reason)}`] : []));
    expect(failed, 'every run completes but the one with the refused key').toEqual([expect.stringMatching(/sample-solutions-refused: .*401/)]);

    // The key was needed and sent: model calls carried it; the only ones refused carried the wrong key.
    expect(proxy.authorized).toBeGreaterThan(20);
    expect(proxy.refused.length).toBeGreaterThan(0);
    expect(proxy.refused.filter((r) => !r.endsWith('(authorization: wrong)'))).toEqual([]);

    // Every run: the ones started here, what they started or continued into, and whatever the server lists on this queue.
    const roots: RunRef[] = handles.map((h) => ({ workflowId: h.workflowId, runId: h.firstExecutionRunId }));
    for await (const w of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) roots.push({ workflowId: w.workflowId, runId: w.runId });
    const histories = await collectHistories(client, roots);
    const types = new Set(histories.map((h) => h.workflowType));
    const registered = await registeredWorkflowTypes();
    expect(registered.length).toBeGreaterThanOrEqual(10);
    expect(registered.filter((t) => !types.has(t)), 'every workflow type the worker registers ran').toEqual([]);
    const hasEvent = (h: FetchedHistory, attr: 'childWorkflowExecutionStartedEventAttributes' | 'workflowExecutionContinuedAsNewEventAttributes') => h.events.some((e) => e[attr]);
    expect(histories.filter((h) => hasEvent(h, 'workflowExecutionContinuedAsNewEventAttributes')).map((h) => h.workflowType)).toEqual(expect.arrayContaining(['synthesizeLabels', 'rlTrain', 'coEvolve']));
    expect(histories.some((h) => hasEvent(h, 'childWorkflowExecutionStartedEventAttributes'))).toBe(true);
    const events = histories.reduce((n, h) => n + h.events.length, 0);
    console.log(`[no-secrets] ${histories.length} runs of ${types.size} workflow types, ${events} events scanned; ${proxy.authorized} model calls with the key`);

    const findings = await scanHistories(client, histories, SECRETS);
    expect(findings, `secrets found in histories:\n${formatFindings(findings)}`).toEqual([]);

    // Nor in anything the runs wrote to S3 (manifests record inputs and configs): this bucket is the test's own.
    const keys = await store.list('');
    const inObjects: string[] = [];
    for (let i = 0; i < keys.length; i += 16) {
      await Promise.all(keys.slice(i, i + 16).map(async (key) => {
        for (const f of findSecrets(await store.getBytes(key), SECRETS)) inObjects.push(`${f.secret} (${f.form}) in s3://spark/${key}`);
      }));
    }
    expect(keys.length).toBeGreaterThan(100);
    expect(inObjects, `secrets found in S3 objects:\n${inObjects.join('\n')}`).toEqual([]);
    console.log(`[no-secrets] ${keys.length} S3 objects scanned too`);
  });
});
