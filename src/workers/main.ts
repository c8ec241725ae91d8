/**
 * Worker process: `tsx src/workers/main.ts`. Configured by environment:
 * TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_TLS* (see temporal-connection.ts),
 * SPARK_TASK_QUEUE (default `spark`), SPARK_WORKFLOW_BUNDLE (prebuilt bundle path),
 * SPARK_MAX_CONCURRENT_ACTIVITIES (default 64), SPARK_S3_* and AWS_* (see backends/s3-store.ts).
 * Prints one JSON line `{"event":"worker-ready",...}` once polling, for scripts and tests.
 */
import { NativeConnection } from '@temporalio/worker';
import { ObjectStore, s3ConfigFromEnv } from '../core/store/s3-store.js';
import { inferenceClientPool } from '../core/deps.js';
import { connectionOptions, temporalSettingsFromEnv } from '../core/temporal/connection.js';
import { createSparkWorker, DEFAULT_TASK_QUEUE } from './create-worker.js';

async function main(): Promise<void> {
  const settings = temporalSettingsFromEnv();
  const taskQueue = process.env.SPARK_TASK_QUEUE || DEFAULT_TASK_QUEUE;
  const store = new ObjectStore(s3ConfigFromEnv());
  const connection = await NativeConnection.connect(connectionOptions(settings));
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
  console.error(err);
  process.exit(1);
});
