/**
 * What the sandbox commands share: the local stack, an in-process worker, a client, and the
 * sandbox world's problems written once as a JSONL dataset.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { inferenceClientPool } from '../src/core/deps.js';
import { ObjectStore, s3ConfigFromEnv } from '../src/core/store/s3-store.js';
import { generateProblems } from './arith.js';
import { generateSandboxProcessBench } from './processbench-sandbox.js';
import { joinKey } from '../src/core/store/refs.js';
import type { ObjectRef } from '../src/core/store/refs.js';
import { createSparkWorker } from '../src/workers/create-worker.js';
import type { LocalStack } from '../src/cli/local-stack.js';
import { localStackEnv, stackUp } from '../src/cli/local-stack.js';

export interface SandboxContext {
  client: Client;
  store: ObjectStore;
  stack: LocalStack;
  taskQueue: string;
}

/** Brings up what is not running, then runs `fn` while a worker polls `taskQueue` in this process. */
export async function withSandboxWorker<T>(taskQueue: string, fn: (ctx: SandboxContext) => Promise<T>): Promise<T> {
  const stack = await stackUp();
  Object.assign(process.env, localStackEnv());
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const store = new ObjectStore(s3ConfigFromEnv());
  const nativeConnection = await NativeConnection.connect({ address: stack.temporalAddress });
  const connection = await Connection.connect({ address: stack.temporalAddress });
  try {
    const worker = await createSparkWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      deps: { store, inference: inferenceClientPool() },
    });
    return await worker.runUntil(fn({ client: new Client({ connection }), store, stack, taskQueue }));
  } finally {
    await connection.close();
    await nativeConnection.close();
    store.destroy();
  }
}

/**
 * `count` problems of the sandbox world (seeded, so the same every time) as a JSONL dataset:
 * `{id, question}` rows, plus the true `answer` when a reference-guided baseline needs it.
 */
export async function sandboxDataset(store: ObjectStore, opts: { seed: number; count: number; withAnswers?: boolean }): Promise<ObjectRef> {
  const rows = generateProblems({ seed: opts.seed, count: opts.count }).map((p) =>
    JSON.stringify(opts.withAnswers ? { id: p.id, question: p.question, answer: String(p.answer) } : { id: p.id, question: p.question }));
  const name = `datasets/sim-arith-seed${opts.seed}-${opts.count}${opts.withAnswers ? '-answers' : ''}.jsonl`;
  const { ref } = await store.putIfAbsent(name, rows.join('\n') + '\n', 'application/x-ndjson');
  return ref;
}

/**
 * A ProcessBench-format benchmark from the sandbox world (true labels known), one JSONL per split
 * under `benchmarks/`, written once; returns split → S3 URI, as `evaluatePrm` takes it.
 */
export async function sandboxProcessBench(store: ObjectStore, opts: { seed: number; rowsPerSplit: number }): Promise<Record<string, string>> {
  const splits: Record<string, string> = {};
  for (const split of generateSandboxProcessBench({ seed: `processbench-${opts.seed}`, countPerSplit: opts.rowsPerSplit })) {
    const body = split.rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const { ref } = await store.putIfAbsent(joinKey('benchmarks', `sandbox-processbench-s${opts.seed}-n${opts.rowsPerSplit}`, `${split.split}.jsonl`), body, 'application/x-ndjson');
    splits[split.split] = ref.uri;
  }
  return splits;
}

/** An integer command-line option of at least `min`, or an error naming the flag. */
export function intOption(name: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${value}`);
  return n;
}
