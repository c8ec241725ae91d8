/**
 * The README's main job: brings up the embedded default stack (what is not already running),
 * runs the SPARK pipeline on the sandbox with an in-process worker, shows progress, and prints
 * where the results are and how good the labels are. Stage 1 (label synthesis) runs today.
 * Re-running it reuses every stored result (no call is paid twice); a run interrupted with
 * Ctrl-C continues where it stopped.
 */
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { readLabelsDataset } from '../client/labels-dataset.js';
import { formatQualityTable, labelQuality } from '../domain/label-quality.js';
import type { SynthesizeLabelsInput } from '../domain/inputs/synthesize-labels.js';
import { synthesizeLabels, synthesizeLabelsProgress } from '../workflows/index.js';
import { sandboxDataset, withSandboxWorker } from './sandbox.js';

const RUN_NAME = process.env.SPARK_RUN_NAME || 'sandbox-demo';
const PROBLEMS = Number(process.env.SPARK_PROBLEMS || 50);

async function main(): Promise<void> {
  await withSandboxWorker('spark-main-job', async ({ client, store, stack, taskQueue }) => {
    const dataset = await sandboxDataset(store, { seed: 7, count: PROBLEMS });
    const input: SynthesizeLabelsInput = {
      runName: RUN_NAME,
      dataset: { uri: dataset.uri },
      generator: { endpoint: { baseURL: stack.simBaseURL }, model: 'sim-policy', sampling: { temperature: 1 } },
      verifier: { endpoint: { baseURL: stack.simBaseURL }, model: 'sim-verifier' },
      solutionsPerProblem: 4,
      verificationsPerSolution: 8,
      methods: ['single', 'outcome-majority', 'step-majority', 'hybrid'],
      shards: { size: 25 },
    };
    const workflowId = `spark/${RUN_NAME}/synthesize-labels`;
    // Attach to a run in progress (e.g. after Ctrl-C) instead of starting a second one.
    const handle = await client.workflow.start(synthesizeLabels, {
      taskQueue,
      workflowId,
      args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      memo: { description: 'sandbox demo: SPARK stage 1 (synthetic step labels)' },
    });
    console.error(`[main] ${workflowId} — watch it at ${stack.webUi}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    const timer = setInterval(() => {
      handle
        .query(synthesizeLabelsProgress)
        .then((p) => console.error(
          `[main] ${p.stage}: problems ${p.counts.problems}/${p.problemsTotal}, shards ${p.shardsDone}/${p.shardsTotal}, `
          + `calls ${p.counts.callsMade}, samples reused ${p.counts.samplesReused}, parse failures ${p.counts.parseFailures}`,
        ))
        .catch(() => undefined);
    }, 2000);
    const result = await handle.result().finally(() => clearInterval(timer));

    const { manifest, lines } = await readLabelsDataset(store, result.manifest.uri);
    const quality = labelQuality(lines, manifest.methods);
    console.error(`\n[main] label quality against the sandbox's ground truth (${lines.length} solutions):\n${formatQualityTable(quality.rows)}\n`);
    console.log(JSON.stringify({
      workflowId,
      manifest: result.manifest.uri,
      lines: result.lines,
      counts: result.counts,
      webUi: `${stack.webUi}/namespaces/default/workflows?query=${encodeURIComponent(`SparkRun="${RUN_NAME}"`)}`,
      s3: { endpoint: stack.s3Endpoint, bucket: store.bucket, onDisk: `${stack.dataDir}/s3/data/${store.bucket}` },
    }, null, 2));
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
