/**
 * Worker process: `tsx src/workers/main.ts`. Configured by environment:
 * TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_TLS* (see temporal-connection.ts),
 * SPARK_TASK_QUEUE (default `spark`), SPARK_WORKFLOW_BUNDLE (prebuilt bundle path),
 * SPARK_MAX_CONCURRENT_ACTIVITIES (default 64), SPARK_S3_* and AWS_* (see backends/s3-store.ts).
 * Before polling it checks Temporal and S3 (preflight.ts) and, when a setting cannot work, exits
 * with code 78 and one line per problem naming the setting.
 * Prints one JSON line `{"event":"worker-ready",...}` once polling, for scripts and tests.
 */
import { ObjectStore, s3ConfigFromEnv } from '../core/store/s3-store.js';
import { inferenceClientPool } from '../core/deps.js';
import { temporalSettingsFromEnv } from '../core/temporal/connection.js';
import { createSparkWorker, DEFAULT_TASK_QUEUE } from './create-worker.js';
import { EXIT_CONFIG, preflight, WorkerConfigError } from './preflight.js';

async function main(): Promise<void> {
  const settings = temporalSettingsFromEnv();
  const taskQueue = process.env.SPARK_TASK_QUEUE || DEFAULT_TASK_QUEUE;
  const store = new ObjectStore(s3ConfigFromEnv());
  // Refuse settings that cannot work before taking any task.
  const connection = await preflight(settings, store);
  const worker = await createSparkWorker({
    connection,
    namespace: settings.namespace,
    taskQueue,
    deps: { store, inference: inferenceClientPool() },
    workflowBundlePath: process.env.SPARK_WORKFLOW_BUNDLE || undefined,
    maxConcurrentActivities: process.env.SPARK_MAX_CONCURRENT_ACTIVITIES ? Number(process.env.SPARK_MAX_CONCURRENT_ACTIVITIES) : undefined,
  });
  const running = worker.run();
  console.log(JSON.stringify({ event: 'worker-ready', taskQueue, namespace: settings.namespace, address: settings.address, pid: process.pid }));
  // The SDK shuts the worker down gracefully on SIGINT/SIGTERM; run() then resolves.
  await running;
  await connection.close();
  store.destroy();
}

main().catch((err: unknown) => {
  if (err instanceof WorkerConfigError) {
    console.error(err.message);
    process.exit(EXIT_CONFIG);
  }
  console.error(err);
  process.exit(1);
});
