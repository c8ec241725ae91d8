/**
 * The README's main job: brings up the embedded default stack (what is not already running),
 * runs the pipeline on the sandbox with an in-process worker, shows progress, and prints where
 * the results are. Re-running it reuses every stored result (no call is paid twice).
 */
import { Client, Connection, WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger } from '@temporalio/worker';
import { ObjectStore, s3ConfigFromEnv } from '../backends/s3-store.js';
import { inferenceClientPool } from '../activities/deps.js';
import { createSparkWorker } from '../workers/create-worker.js';
import { generateProblems } from '../domain/arith.js';
import type { SampleSolutionsInput } from '../domain/inputs/sample-solutions.js';
import { sampleSolutions, sampleSolutionsProgress } from '../workflows/index.js';
import type { SampleSolutionsResult } from '../workflows/sample-solutions.js';
import { localStackEnv, stackUp } from './local-stack.js';

const RUN_NAME = process.env.SPARK_RUN_NAME || 'sandbox-demo';
const PROBLEMS = Number(process.env.SPARK_PROBLEMS || 50);
const TASK_QUEUE = 'spark-main-job';

async function main(): Promise<void> {
  const stack = await stackUp();
  Object.assign(process.env, localStackEnv());
  Runtime.install({ logger: new DefaultLogger('WARN') });

  const store = new ObjectStore(s3ConfigFromEnv());
  // The sandbox world's problems, written once as a JSONL dataset (content-addressed key).
  const problems = generateProblems({ seed: 7, count: PROBLEMS });
  const jsonl = problems.map((p) => JSON.stringify({ id: p.id, question: p.question })).join('\n') + '\n';
  const { ref: dataset } = await store.putIfAbsent(`datasets/sim-arith-seed7-${PROBLEMS}.jsonl`, jsonl, 'application/x-ndjson');

  const nativeConnection = await NativeConnection.connect({ address: stack.temporalAddress });
  const worker = await createSparkWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue: TASK_QUEUE,
    deps: { store, inference: inferenceClientPool() },
  });
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const client = new Client({ connection });

  const input: SampleSolutionsInput = {
    runName: RUN_NAME,
    dataset: { uri: dataset.uri, limit: PROBLEMS },
    generator: { endpoint: { baseURL: stack.simBaseURL }, model: 'sim-policy' },
    samplesPerProblem: 8,
  };
  const workflowId = `spark/${RUN_NAME}/sample-solutions`;
  const result = await worker.runUntil(async () => {
    // Attach to a run in progress (e.g. after Ctrl-C) instead of starting a second one.
    const handle = await client.workflow.start(sampleSolutions, {
      taskQueue: TASK_QUEUE,
      workflowId,
      args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      memo: { description: 'sandbox demo: problems → generator → solutions in S3' },
    });
    console.error(`[main] started ${workflowId} — watch it at ${stack.webUi}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    const timer = setInterval(() => {
      handle
        .query(sampleSolutionsProgress)
        .then((p) => console.error(`[main] problems ${p.problemsDone}/${p.problemsTotal}, calls made ${p.callsMade}, samples reused ${p.samplesReused}`))
        .catch(() => undefined);
    }, 2000);
    try {
      return (await handle.result()) as SampleSolutionsResult;
    } finally {
      clearInterval(timer);
    }
  });

  console.log(
    JSON.stringify(
      {
        workflowId,
        manifest: result.manifest.uri,
        solutions: result.solutions.length,
        callsMade: result.callsMade,
        samplesReused: result.samplesReused,
        webUi: `${stack.webUi}/namespaces/default/workflows?query=${encodeURIComponent(`SparkRun="${RUN_NAME}"`)}`,
        s3: { endpoint: stack.s3Endpoint, bucket: store.bucket, onDisk: `${stack.dataDir}/s3/data/${store.bucket}` },
      },
      null,
      2,
    ),
  );
  await connection.close();
  await nativeConnection.close();
  store.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
