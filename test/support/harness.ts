/**
 * One place for what tests need from the real stack: clients, a store, a worker per test with
 * its own task queue (in-process or as a child process that can be killed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { inject } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, type Worker } from '@temporalio/worker';
import { ObjectStore } from '../../src/core/store/s3-store.js';
import { inferenceClientPool, type ActivityDeps } from '../../src/core/deps.js';
import { createSparkWorker } from '../../src/workers/create-worker.js';
import { repoRoot, TEST_S3_KEYS } from './paths.js';
import type { CachedSample, StoredRequest } from '../../src/core/inference/sample-store.js';
import { LEGACY_SAMPLE_PREFIX, REQUEST_PREFIX } from '../../src/core/inference/sample-store.js';
import type { RequestLogEntry } from '../../sandbox/model-server/requestLog.js';
import type { RlMetricsRow } from '../../src/spark/rl/grpo.js';

let runtimeInstalled = false;
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  // Activity failures are expected in fault tests; only errors are worth printing.
  Runtime.install({ logger: new DefaultLogger('ERROR') });
}

/** Environment variables that point a process at this suite's S3 and Temporal. */
export function stackEnv(): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: 'default',
    SPARK_S3_ENDPOINT: inject('s3Endpoint'),
    SPARK_S3_BUCKET: inject('s3Bucket'),
    SPARK_S3_REGION: 'us-east-1',
    SPARK_S3_FORCE_PATH_STYLE: 'true',
    ...TEST_S3_KEYS,
  };
}

/** A client of the suite's S3 server; another `bucket` gives a store with its own cache (call `ensureBucket`). */
export function makeStore(bucket: string = inject('s3Bucket')): ObjectStore {
  return new ObjectStore({
    endpoint: inject('s3Endpoint'),
    bucket,
    region: 'us-east-1',
    forcePathStyle: true,
    accessKeyId: TEST_S3_KEYS.AWS_ACCESS_KEY_ID,
    secretAccessKey: TEST_S3_KEYS.AWS_SECRET_ACCESS_KEY,
  });
}

export function uniqueTaskQueue(name: string): string {
  return `test-${name}-${randomUUID().slice(0, 8)}`;
}

export async function connectClient(): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: inject('temporalAddress') });
  return { client: new Client({ connection, namespace: 'default' }), close: () => connection.close() };
}

/** Runs `fn` while an in-process worker polls `taskQueue`; the worker stops afterwards. */
export async function withWorker<T>(
  opts: { taskQueue: string; deps?: Partial<ActivityDeps>; maxConcurrentActivities?: number },
  fn: (worker: Worker) => Promise<T>,
): Promise<T> {
  quietRuntime();
  const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  const store = opts.deps?.store ?? makeStore();
  const worker = await createSparkWorker({
    connection,
    namespace: 'default',
    taskQueue: opts.taskQueue,
    deps: { store, inference: opts.deps?.inference ?? inferenceClientPool() },
    workflowBundlePath: inject('workflowBundlePath'),
    maxConcurrentActivities: opts.maxConcurrentActivities,
  });
  try {
    return await worker.runUntil(fn(worker));
  } finally {
    await connection.close();
  }
}

export interface KillableProcess {
  child: ChildProcess;
  /** Resolves when the process prints its ready line. */
  ready: Promise<void>;
  /** SIGKILL: no graceful shutdown, work in flight is lost mid-way. */
  kill(): Promise<void>;
}

/** How {@link spawnKillableCommand} knows its process is ready, and what it hears from it. */
export interface SpawnOptions {
  env?: Record<string, string>;
  /** Ready once a stdout line contains this... */
  readyMarker?: string;
  /** ...or once this resolves true (polled every 200 ms), for servers that print no ready line. */
  readyWhen?: () => Promise<boolean>;
  /** Every stderr line, e.g. to follow a server's log. */
  onStderrLine?: (line: string) => void;
}

/** Runs `command` as its own process with this suite's stack in its environment; killable with SIGKILL. */
export function spawnKillableCommand(command: string, args: string[], opts: SpawnOptions): KillableProcess {
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { ...process.env, ...stackEnv(), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr = `${stderr}${line}\n`.slice(-4000);
    opts.onStderrLine?.(line);
  });
  let exited = false;
  const ready = new Promise<void>((resolve, reject) => {
    const { readyMarker, readyWhen } = opts;
    if (readyMarker !== undefined) {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.includes(readyMarker)) resolve();
      });
    } else {
      child.stdout!.resume();
    }
    if (readyWhen) {
      const poll = async (): Promise<void> => {
        if (exited) return;
        if (await readyWhen().catch(() => false)) return resolve();
        setTimeout(() => void poll(), 200);
      };
      void poll();
    }
    child.once('exit', (code) => {
      exited = true;
      reject(new Error(`${[command, ...args].join(' ')} exited with ${code} before it was ready: ${stderr}`));
    });
  });
  return {
    child,
    ready,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** Runs a TypeScript entry point of the repo as its own process; ready once a stdout line contains `readyMarker`. */
function spawnKillable(entry: string, args: string[], env: Record<string, string>, readyMarker: string): KillableProcess {
  return spawnKillableCommand(process.execPath, ['--import', 'tsx', join(repoRoot, entry), ...args], { env, readyMarker });
}

export type WorkerProcess = KillableProcess;

/** Starts `src/workers/main.ts` as a separate process, the way production runs it. */
export function spawnWorkerProcess(opts: { taskQueue: string; env?: Record<string, string> }): WorkerProcess {
  return spawnKillable('src/workers/main.ts', [], { SPARK_TASK_QUEUE: opts.taskQueue, SPARK_WORKFLOW_BUNDLE: inject('workflowBundlePath'), ...opts.env }, '"worker-ready"');
}

export interface TrainerProcess extends KillableProcess {
  url: string;
}

/** Starts the sandbox trainer (`sandbox/trainer/main.ts`) as its own process on `port`, so a test can kill it; `env` overrides the suite's (e.g. another S3). */
export function spawnTrainerProcess(opts: { port: number; eventsFile: string; stepLatencyMs?: number; env?: Record<string, string> }): TrainerProcess {
  const args = ['--port', String(opts.port), '--events-file', opts.eventsFile, '--step-ms', String(opts.stepLatencyMs ?? 0)];
  return { ...spawnKillable('sandbox/trainer/main.ts', args, opts.env ?? {}, '"url"'), url: `http://127.0.0.1:${opts.port}` };
}

/** One line of the sandbox trainer's `--events-file` (sandbox/trainer/server.ts). */
export interface TrainerEvent {
  event: string;
  session?: string;
  step?: number;
  applied?: boolean;
  pid: number;
}

/** Every event the trainer processes wrote to `file` so far, across restarts. */
export function readTrainerEvents(file: string): TrainerEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as TrainerEvent);
}

/**
 * How many samples of each response the store's sample cache holds: request objects (one per
 * request) and samples of the layout before requests (one object per sample).
 */
export async function storedSamplesByResponse(store: ObjectStore): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const add = (responseId: string) => counts.set(responseId, (counts.get(responseId) ?? 0) + 1);
  for (const key of await store.list(`${REQUEST_PREFIX}/`)) {
    const doc = await store.getJson<StoredRequest>(key);
    for (const c of doc.samples) if (c) add(c.responseId ?? doc.responseId);
  }
  for (const key of await store.list(`${LEGACY_SAMPLE_PREFIX}/`)) {
    if (!key.endsWith('.json') || key.includes('.truncations.')) continue;
    add((await store.getJson<CachedSample>(key)).responseId);
  }
  return counts;
}

/**
 * Requests a killed worker had finished: successful ones whose every sample is in the store's
 * sample cache. A correct restart never makes these again.
 */
export async function finishedRequests(store: ObjectStore, successes: readonly RequestLogEntry[]): Promise<RequestLogEntry[]> {
  const stored = await storedSamplesByResponse(store);
  return successes.filter((e) => e.responseId && stored.get(e.responseId) === e.n);
}

/** Polls `check` every 50 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


/** Every metrics row a GRPO run (rlTrain, coEvolve) wrote under `prefix`, in step order. */
export async function metricsRows(store: ObjectStore, prefix: string): Promise<RlMetricsRow[]> {
  const keys = (await store.list(`${prefix}/metrics/`)).sort();
  return Promise.all(keys.map((k) => store.getJson<RlMetricsRow>(k)));
}
