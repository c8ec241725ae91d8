import { fileURLToPath } from 'node:url';
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import type { ActivityDeps } from '../core/deps.js';

/** Default task queue of the all-in-one worker. */
export const DEFAULT_TASK_QUEUE = 'spark';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface SparkWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** A prebuilt workflow bundle (production, tests); otherwise workflows are bundled at start. */
  workflowBundlePath?: string;
  maxConcurrentActivities?: number;
}

export function createSparkWorker(opts: SparkWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...(opts.workflowBundlePath ? { workflowBundle: { codePath: opts.workflowBundlePath } } : { workflowsPath }),
    activities: createActivities(opts.deps),
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 64,
  });
}
