/**
 * The README's main job: brings up the embedded default stack (what is not already running) and
 * runs the whole SPARK pipeline (`sparkPipeline`) on the sandbox with an in-process worker: stage 1
 * (label synthesis, scored against the sandbox's ground truth), stage 2 (a PRM fine-tuned on the
 * step-majority labels on the sandbox trainer, published, and scored on a sandbox ProcessBench next
 * to the untrained base), stage 3 (a short GRPO run of the policy with that PRM as its reward).
 * It shows progress every 2 s and ends with the results, where they are, and the Web UI address.
 * Re-running it reuses every stored result (no call or train step is paid twice); a run
 * interrupted with Ctrl-C continues where it stopped.
 */
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { readLabelsDataset } from '../src/spark/labels/labels-dataset.js';
import { buildRunReport } from '../src/client/run-report.js';
import type { SparkPipelineInput } from '../src/spark/pipeline/input.js';
import { formatQualityTable, labelQuality } from './label-quality.js';
import type { RlMetricsRow } from '../src/spark/rl/grpo.js';
import { mean } from '../src/spark/rl/grpo.js';
import { sparkPipeline } from '../src/workflows/index.js';
import { followPipeline } from './pipeline-follow.js';
import type { SandboxContext } from './sandbox-worker.js';
import { sandboxDataset, sandboxProcessBench, withSandboxWorker } from './sandbox-worker.js';

const RUN_NAME = process.env.SPARK_RUN_NAME || 'sandbox-demo';
const PROBLEMS = Number(process.env.SPARK_PROBLEMS || 50);
const RL_STEPS = 30;
const started = performance.now();

async function main(): Promise<void> {
  await withSandboxWorker('spark-main-job', async ({ client, store, stack, taskQueue }: SandboxContext) => {
    const fields = { question: 'question', answer: 'answer' };
    const [dataset, splits, prompts, heldOut] = await Promise.all([
      sandboxDataset(store, { seed: 7, count: PROBLEMS }),
      sandboxProcessBench(store, { seed: 7, rowsPerSplit: 50 }),
      sandboxDataset(store, { seed: 8, count: 400, withAnswers: true }),
      sandboxDataset(store, { seed: 9, count: 50, withAnswers: true }),
    ]);
    const input: SparkPipelineInput = {
      runName: RUN_NAME,
      endpoints: { inference: { baseURL: stack.simBaseURL }, trainer: { baseURL: stack.trainerURL } },
      // Stage 1: M = 4 solutions per problem, K = 8 verifications each, four labelling methods.
      labels: {
        dataset: { uri: dataset.uri },
        generator: { model: 'sim-policy', sampling: { temperature: 1 } },
        verifier: { model: 'sim-verifier' },
        solutionsPerProblem: 4,
        verificationsPerSolution: 8,
        methods: ['single', 'outcome-majority', 'step-majority', 'hybrid'],
        shards: { size: 25 },
      },
      // Stage 2: a PRM-CoT reward model fine-tuned from the policy's base on the step-majority labels.
      prm: { method: 'step-majority', style: 'prm-cot', baseModel: 'sim-policy', batchSize: 16, checkpointEvery: 5, modelName: `${RUN_NAME}-prm` },
      processBench: { splits, baseModel: 'sim-policy' },
      // Stage 3: GRPO with that PRM as reward (selective advantage, guards on).
      rl: {
        policy: { baseModel: 'sim-policy', model: 'sim-policy', optimizer: { name: 'adamw', learningRate: 3e-6, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0, maxGradNorm: 1 } },
        formulation: 'selective-advantage',
        dataset: { uri: prompts.uri, fields },
        evaluation: { sets: [{ name: 'held-out', uri: heldOut.uri, fields }], every: 10, temperature: 1, samples: 4 },
        grpo: { batchSize: 8, groupSize: 8 },
        totalSteps: RL_STEPS,
        checkpointEvery: 10,
      },
    };
    const workflowId = `spark/${RUN_NAME}/pipeline`;
    // Attaches to a run in progress (e.g. after Ctrl-C); a finished one is run again, for free.
    const handle = await client.workflow.start(sparkPipeline, {
      taskQueue, workflowId, args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      memo: { description: 'sandbox demo: the SPARK pipeline (stage 1 labels, stage 2 PRM, stage 3 GRPO)' },
    });
    console.error(`[main] ${workflowId} — watch it at ${stack.webUi}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    const result = await followPipeline(client, handle);

    if (result.labels) {
      const { manifest, lines } = await readLabelsDataset(store, result.labels.manifest.uri);
      const quality = labelQuality(lines, manifest.methods);
      console.error(`\n[main] label quality against the sandbox's ground truth (${lines.length} solutions):\n${formatQualityTable(quality.rows)}\n`);
    }
    const { base, prm } = result.processBench;
    if (base) console.error(`[main] ProcessBench (sandbox, 4 splits × 50 rows), untrained base:\n${await store.getText(base.reportMarkdown.uri)}\n`);
    if (prm) console.error(`[main] ProcessBench (sandbox, 4 splits × 50 rows), fine-tuned on step-majority labels:\n${await store.getText(prm.reportMarkdown.uri)}\n`);

    // Read from S3, not the result: a re-run picks up at its last checkpoint and evaluates only there.
    const rlPrefix = `runs/${RUN_NAME}/rl`;
    const rows = await Promise.all((await store.list(`${rlPrefix}/metrics/`)).sort().map((k) => store.getJson<RlMetricsRow>(k)));
    const evals = await Promise.all((await store.list(`${rlPrefix}/evals/held-out/`)).map((k) => store.getJson<{ step: number; accuracy: number }>(k)));
    evals.sort((a, b) => a.step - b.step);
    const curve = [0, 10, 20, 30].map((at) => {
      const window = rows.filter((r) => r.step < at && r.step >= at - 10);
      const acc = evals.find((e) => e.step === at)?.accuracy;
      return `| ${at} | ${acc === undefined ? '—' : (100 * acc).toFixed(1)} | ${window.length ? mean(window.map((r) => r.rewardMean)).toFixed(3) : '—'} |`;
    });
    console.error(`[main] GRPO with the fine-tuned PRM as reward (${RL_STEPS} steps × 8 prompts × 8 rollouts):\n| step | held-out accuracy (T=1) | mean reward (previous 10 steps) |\n|---|---|---|\n${curve.join('\n')}\n`);

    const children = (stage: keyof typeof result.stages) => result.stages[stage].workflows.map((w) => w.workflowId);
    const onDisk = `${stack.dataDir}/s3/data/${store.bucket}`;
    console.log(JSON.stringify({
      pipeline: { workflowId, manifest: result.manifest.uri, children: Object.fromEntries(Object.keys(result.stages).map((s) => [s, children(s as keyof typeof result.stages)])) },
      labels: result.labels && { manifest: result.labels.manifest.uri, lines: result.labels.lines },
      prm: result.prm && { model: result.prmModel.name, checkpoint: result.prm.checkpoint, examples: result.prm.examples, steps: result.prm.steps, data: result.prm.dataManifest.uri },
      processBenchF1: { base: base?.averageF1 ?? null, fineTuned: prm?.averageF1 ?? null, report: prm?.reportMarkdown.uri ?? null },
      rl: result.rl && {
        steps: result.rl.steps, checkpoint: result.rl.checkpoint, servedModel: result.rl.servedModel,
        heldOutAccuracy: evals.map((e) => ({ step: e.step, accuracy: e.accuracy })), finalEvaluation: result.rl.finalEvals, metrics: `s3://${store.bucket}/${result.rl.metricsPrefix}/`,
      },
      webUi: `${stack.webUi}/namespaces/default/workflows?query=${encodeURIComponent(`SparkRun="${RUN_NAME}"`)}`,
      s3: { endpoint: stack.s3Endpoint, bucket: store.bucket, onDisk, run: `${onDisk}/runs/${RUN_NAME}` },
      wallTimeSeconds: Math.round((performance.now() - started) / 1000),
    }, null, 2));
    const report = await buildRunReport(store, { runName: RUN_NAME, scoreLabels: (lines, methods) => labelQuality(lines, methods).rows, localDir: `${stack.dataDir}/reports/${RUN_NAME}` });
    console.error(`[main] run report: ${report.html.path} (${report.html.uri}); curves: ${report.curvesSvg.path}`);
    console.error(`[main] done in ${((performance.now() - started) / 1000).toFixed(0)} s; everything is under s3://${store.bucket}/runs/${RUN_NAME}/ (on disk: ${onDisk}/runs/${RUN_NAME}); Web UI: ${stack.webUi}`);
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
