/**
 * The README's main job: brings up the embedded default stack (what is not already running),
 * runs the SPARK pipeline on the sandbox with an in-process worker, shows progress, and prints
 * where the results are and how good they are: stage 1 (label synthesis, scored against the
 * sandbox's ground truth), then stage 2 (a PRM fine-tuned on the step-majority labels on the
 * sandbox trainer, published, and scored on a sandbox ProcessBench next to the untrained base),
 * then stage 3 (a short GRPO run of the policy with that PRM as its reward).
 * Re-running it reuses every stored result (no call or train step is paid twice); a run
 * interrupted with Ctrl-C continues where it stopped.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { readLabelsDataset } from '../client/labels-dataset.js';
import type { EvaluatePrmInput } from '../domain/inputs/evaluate-prm.js';
import type { SynthesizeLabelsInput } from '../domain/inputs/synthesize-labels.js';
import type { TrainPrmInput } from '../domain/inputs/train-prm.js';
import { formatQualityTable, labelQuality } from '../domain/label-quality.js';
import type { RlTrainInput } from '../domain/inputs/rl-train.js';
import type { RlMetricsRow } from '../domain/rl.js';
import { mean } from '../domain/rl.js';
import {
  evaluatePrm, evaluatePrmProgress, rlTrain, rlTrainProgress, synthesizeLabels, synthesizeLabelsProgress, trainPrm, trainPrmProgress,
} from '../workflows/index.js';
import type { RlTrainResult } from '../workflows/rl-train.js';
import type { EvaluatePrmResult } from '../workflows/evaluate-prm.js';
import type { SandboxContext } from './sandbox.js';
import { sandboxDataset, sandboxProcessBench, withSandboxWorker } from './sandbox.js';

const RUN_NAME = process.env.SPARK_RUN_NAME || 'sandbox-demo';
const PROBLEMS = Number(process.env.SPARK_PROBLEMS || 50);

/** Starts a workflow, or attaches to the run in progress (e.g. after Ctrl-C), and prints its progress every 2 s. */
async function follow<R>(handle: WorkflowHandle, progress: () => Promise<string>): Promise<R> {
  const timer = setInterval(() => {
    progress().then((line) => console.error(`[main] ${line}`)).catch(() => undefined);
  }, 2000);
  return (await handle.result().finally(() => clearInterval(timer))) as R;
}

const attach = { workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING, workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE };

async function main(): Promise<void> {
  await withSandboxWorker('spark-main-job', async ({ client, store, stack, taskQueue }: SandboxContext) => {
    const models = { baseURL: stack.simBaseURL };
    const watch = (workflowId: string) => console.error(`[main] ${workflowId} — watch it at ${stack.webUi}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);

    // Stage 1: synthetic step labels.
    const dataset = await sandboxDataset(store, { seed: 7, count: PROBLEMS });
    const labelsInput: SynthesizeLabelsInput = {
      runName: RUN_NAME,
      dataset: { uri: dataset.uri },
      generator: { endpoint: models, model: 'sim-policy', sampling: { temperature: 1 } },
      verifier: { endpoint: models, model: 'sim-verifier' },
      solutionsPerProblem: 4,
      verificationsPerSolution: 8,
      methods: ['single', 'outcome-majority', 'step-majority', 'hybrid'],
      shards: { size: 25 },
    };
    const labelsId = `spark/${RUN_NAME}/synthesize-labels`;
    const labelsHandle = await client.workflow.start(synthesizeLabels, {
      taskQueue, workflowId: labelsId, args: [labelsInput], ...attach, memo: { description: 'sandbox demo: SPARK stage 1 (synthetic step labels)' },
    });
    watch(labelsId);
    const labels = await follow<Awaited<ReturnType<typeof synthesizeLabels>>>(labelsHandle, async () => {
      const p = await labelsHandle.query(synthesizeLabelsProgress);
      return `stage 1 ${p.stage}: problems ${p.counts.problems}/${p.problemsTotal}, shards ${p.shardsDone}/${p.shardsTotal}, `
        + `calls ${p.counts.callsMade}, samples reused ${p.counts.samplesReused}, parse failures ${p.counts.parseFailures}`;
    });
    const { manifest, lines } = await readLabelsDataset(store, labels.manifest.uri);
    const quality = labelQuality(lines, manifest.methods);
    console.error(`\n[main] label quality against the sandbox's ground truth (${lines.length} solutions):\n${formatQualityTable(quality.rows)}\n`);

    // Stage 2: a PRM-CoT reward model fine-tuned on the step-majority labels, published to the model server.
    const modelName = `${RUN_NAME}-prm`;
    const trainInput: TrainPrmInput = {
      runName: RUN_NAME,
      labelsManifestUri: labels.manifest.uri,
      method: 'step-majority',
      style: 'prm-cot',
      trainer: { baseURL: stack.trainerURL },
      baseModel: 'sim-policy',
      batchSize: 16,
      checkpointEvery: 5,
      publish: { inferenceBaseURL: stack.simBaseURL, modelName },
    };
    const trainId = `spark/${RUN_NAME}/train-prm`;
    const trainHandle = await client.workflow.start(trainPrm, {
      taskQueue, workflowId: trainId, args: [trainInput], ...attach, memo: { description: 'sandbox demo: SPARK stage 2 (PRM fine-tuning)' },
    });
    watch(trainId);
    const trained = await follow<Awaited<ReturnType<typeof trainPrm>>>(trainHandle, async () => {
      const p = await trainHandle.query(trainPrmProgress);
      return `stage 2 ${p.stage}: step ${p.stepsDone}/${p.steps}, loss ${p.lastLoss?.toFixed(3) ?? '—'}, checkpoint ${p.checkpoint ?? 'none yet'}`;
    });
    console.error(`[main] trained on ${trained.examples} examples in ${trained.steps} steps; served as '${modelName}' from ${trained.checkpoint}`);

    // ProcessBench (sandbox splits): the fine-tuned PRM against its untrained base.
    const splits = await sandboxProcessBench(store, { seed: 7, rowsPerSplit: 50 });
    const evaluate = async (name: string, model: string): Promise<EvaluatePrmResult> => {
      const input: EvaluatePrmInput = {
        runName: RUN_NAME, outputPrefix: `runs/${RUN_NAME}/evaluate-prm/${name}`, benchmark: { splits }, model: { endpoint: models, model }, style: 'prm-cot',
      };
      const workflowId = `spark/${RUN_NAME}/evaluate-prm-${name}`;
      const handle = await client.workflow.start(evaluatePrm, { taskQueue, workflowId, args: [input], ...attach });
      watch(workflowId);
      return follow<EvaluatePrmResult>(handle, async () => {
        const p = await handle.query(evaluatePrmProgress);
        return `evaluating ${name}: rows ${p.rowsDone}/${p.rowsTotal}`;
      });
    };
    const base = await evaluate('base', 'sim-policy');
    const tuned = await evaluate('prm', modelName);
    console.error(`\n[main] ProcessBench (sandbox, 4 splits × 50 rows), untrained base:\n${base.markdown}\n`);
    console.error(`[main] ProcessBench (sandbox, 4 splits × 50 rows), fine-tuned on step-majority labels:\n${tuned.markdown}\n`);

    // Stage 3: GRPO on the policy with the fine-tuned PRM as reward (selective advantage, guards on).
    const rlSteps = 30;
    const prompts = await sandboxDataset(store, { seed: 8, count: 400, withAnswers: true });
    const heldOut = await sandboxDataset(store, { seed: 9, count: 50, withAnswers: true });
    const fields = { question: 'question', answer: 'answer' };
    const rlInput: RlTrainInput = {
      runName: RUN_NAME,
      policy: { baseModel: 'sim-policy', endpoint: models, model: 'sim-policy', optimizer: { name: 'adamw', learningRate: 3e-6, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0, maxGradNorm: 1 } },
      trainer: { baseURL: stack.trainerURL },
      reward: { formulation: 'selective-advantage', prm: { endpoint: models, model: modelName, style: 'prm-cot' } },
      dataset: { uri: prompts.uri, fields },
      evaluation: { sets: [{ name: 'held-out', uri: heldOut.uri, fields }], every: 10, temperature: 1, samples: 4 },
      grpo: { batchSize: 8, groupSize: 8 },
      totalSteps: rlSteps,
      checkpointEvery: 10,
    };
    const rlId = `spark/${RUN_NAME}/rl-train`;
    const rlHandle = await client.workflow.start(rlTrain, {
      taskQueue, workflowId: rlId, args: [rlInput], ...attach, memo: { description: 'sandbox demo: SPARK stage 3 (GRPO with the PRM as reward)' },
    });
    watch(rlId);
    const rl = await follow<RlTrainResult>(rlHandle, async () => {
      const p = await rlHandle.query(rlTrainProgress);
      return `stage 3 ${p.stage}: step ${p.step}/${p.totalSteps}, reward ${p.latest?.rewardMean.toFixed(3) ?? '—'}, held-out accuracy ${p.latestEvals[0] ? (100 * p.latestEvals[0].accuracy).toFixed(1) : '—'}`;
    });
    const rows = await Promise.all((await store.list(`runs/${RUN_NAME}/rl/metrics/`)).sort().map((k) => store.getJson<RlMetricsRow>(k)));
    // Read from S3, not the result: a re-run picks up at its last checkpoint and evaluates only there.
    const evals = await Promise.all((await store.list(`runs/${RUN_NAME}/rl/evals/held-out/`)).map((k) => store.getJson<{ step: number; accuracy: number }>(k)));
    const curve = [0, 10, 20, 30].map((at) => {
      const window = rows.filter((r) => r.step < at && r.step >= at - 10);
      const acc = evals.find((e) => e.step === at)?.accuracy;
      return `| ${at} | ${acc === undefined ? '—' : (100 * acc).toFixed(1)} | ${window.length ? mean(window.map((r) => r.rewardMean)).toFixed(3) : '—'} |`;
    });
    console.error(`\n[main] GRPO with the fine-tuned PRM as reward (${rlSteps} steps × 8 prompts × 8 rollouts):\n| step | held-out accuracy (T=1) | mean reward (previous 10 steps) |\n|---|---|---|\n${curve.join('\n')}\n`);

    console.log(JSON.stringify({
      labels: { workflowId: labelsId, manifest: labels.manifest.uri, lines: labels.lines, counts: labels.counts },
      prm: { workflowId: trainId, model: modelName, checkpoint: trained.checkpoint, examples: trained.examples, steps: trained.steps },
      processBenchF1: { base: base.report.scores.average.f1, fineTuned: tuned.report.scores.average.f1, report: tuned.reportMarkdown.uri },
      rl: { workflowId: rlId, steps: rl.steps, checkpoint: rl.checkpoint, servedModel: rl.servedModel, heldOutAccuracy: evals.sort((a, b) => a.step - b.step).map((e) => ({ step: e.step, accuracy: e.accuracy })), metrics: `s3://${store.bucket}/${rl.metricsPrefix}/` },
      webUi: `${stack.webUi}/namespaces/default/workflows?query=${encodeURIComponent(`SparkRun="${RUN_NAME}"`)}`,
      s3: { endpoint: stack.s3Endpoint, bucket: store.bucket, onDisk: `${stack.dataDir}/s3/data/${store.bucket}` },
    }, null, 2));
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
