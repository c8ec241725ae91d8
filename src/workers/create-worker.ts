import { fileURLToPath } from 'node:url';
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { createCoEvolveActivities } from '../activities/co-evolve.js';
import { createEvaluateActivities } from '../activities/evaluate.js';
import { createLabelActivities } from '../activities/labels.js';
import { createPipelineActivities } from '../activities/pipeline.js';
import { createPrmDataActivities } from '../activities/prm-data.js';
import { createRlActivities } from '../activities/rl.js';
import { createSolutionActivities } from '../activities/solutions.js';
import { createTrainingActivities } from '../activities/training.js';
import type { ActivityDeps } from '../activities/deps.js';

/** Default task queue of the all-in-one worker. */
export const DEFAULT_TASK_QUEUE = 'spark';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** Every activity, built from the clients the worker owns. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSolutionActivities(deps),
    ...createLabelActivities(deps),
    ...createPrmDataActivities(deps),
    ...createEvaluateActivities(deps),
    ...createTrainingActivities(deps),
    ...createRlActivities(deps),
    ...createCoEvolveActivities(deps),
    ...createPipelineActivities(deps),
  };
}

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
