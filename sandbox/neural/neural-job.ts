/**
 * `npm run neural`: the whole SPARK pipeline (`sparkPipeline`) on the neural world, through the
 * reference trainer (PyTorch) and the development model server, on the local stack:
 *
 *   npm run neural -- [--size default|ci] [--seed S] [--problems N] [--rl-steps K]
 *
 * - builds the world's models once (`make-world-models`, cached by content hash);
 * - stage 1 labels new problems with the world's policy and verifier (no ground truth anywhere);
 * - stage 2 fine-tunes a PRM-CoT (LoRA on the policy, the generator's base) on the step-majority
 *   labels and scores it and its base on a world ProcessBench;
 * - stage 3 runs GRPO of the policy with that PRM as its reward (selective advantage).
 *
 * It ends with the label quality per method scored against the world's truth, the PRM's F1 next
 * to its base, the policy's held-out accuracy curve, and the run report (HTML). A re-run reuses
 * every stored result.
 */
import { parseArgs } from 'node:util';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { readLabelsDataset } from '../../src/spark/labels/labels-dataset.js';
import { buildRunReport } from '../../src/client/run-report.js';
import type { SparkPipelineInput } from '../../src/spark/pipeline/input.js';
import { sparkPipeline } from '../../src/workflows/index.js';
import { formatQualityTable, labelQuality } from '../label-quality.js';
import { followPipeline } from '../pipeline-follow.js';
import { intOption, withSandboxWorker } from '../sandbox-worker.js';
import { PRM_BASE, WORLD_VERIFIER_SAMPLING, WORLD_ADAPTER, WORLD_MAX_TOKENS, WORLD_PRM_OPTIMIZER, WORLD_RL_OPTIMIZER } from './settings.js';
import { worldDataset, worldProcessBenchSplits } from './world-data.js';
import { defaultWorldDir, ensureWorld, startWorldServers } from './world-models.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: 'default' },
    seed: { type: 'string', default: '0' },
    problems: { type: 'string', default: '100' },
    'rl-steps': { type: 'string', default: '20' },
    'run-name': { type: 'string' },
  },
});
if (values.size !== 'default' && values.size !== 'ci') throw new Error(`--size must be default or ci, got ${values.size}`);
const size = values.size;
const seed = intOption('seed', values.seed, 0);
const problems = intOption('problems', values.problems);
const rlSteps = intOption('rl-steps', values['rl-steps']);
const runName = values['run-name'] ?? `neural-${size}-s${seed}-p${problems}`;
const started = performance.now();


async function main(): Promise<void> {
  const world = await ensureWorld({ dir: defaultWorldDir(size, seed), seed, size });
  const { info } = world;
  console.error(`[neural] world ${world.dir}: policy accuracy ${info.policyAccuracy.toFixed(3)}, verifier balanced accuracy ${info.verifierBalancedAccuracy.toFixed(3)} (held-out, greedy)`);
  await withSandboxWorker('spark-neural-job', async ({ client, store, stack, taskQueue }) => {
    // After the stack is up: the trainer writes its checkpoints to the stack's S3 (its settings are in process.env now).
    const servers = await startWorldServers(world);
    console.error(`[neural] reference trainer on ${servers.trainerURL}, model server on ${servers.inferenceURL}`);
    try {
      const fields = { question: 'question', answer: 'answer' };
      const settings = info.problems;
      const [dataset, splits, prompts, heldOut] = await Promise.all([
        worldDataset(store, settings, { seed: `neural-${seed}-stage1`, count: problems }),
        worldProcessBenchSplits(store, settings, { seed: `neural-${seed}`, rows: 100 }),
        worldDataset(store, settings, { seed: `neural-${seed}-rl`, count: 400, withAnswers: true }),
        worldDataset(store, settings, { seed: `neural-${seed}-heldout`, count: 100, withAnswers: true }),
      ]);
      const input: SparkPipelineInput = {
        runName,
        endpoints: { inference: { baseURL: servers.inferenceURL }, trainer: { baseURL: servers.trainerURL } },
        labels: {
          dataset: { uri: dataset.uri },
          generator: { model: 'policy', sampling: { temperature: 1, topP: 1, maxTokens: WORLD_MAX_TOKENS.solution } },
          verifier: { model: 'verifier', sampling: WORLD_VERIFIER_SAMPLING },
          solutionsPerProblem: 4,
          verificationsPerSolution: 8,
          methods: ['single', 'outcome-majority', 'step-majority'],
          shards: { size: 50 },
        },
        prm: { method: 'step-majority', style: 'prm-cot', baseModel: PRM_BASE, adapter: WORLD_ADAPTER, optimizer: WORLD_PRM_OPTIMIZER, epochs: 4, batchSize: 8, checkpointEvery: 10, modelName: `${runName}-prm`,
          // The policy solves a minority of its problems: without balance the PRM learns that every solution is wrong.
          data: { balance: 'outcome' } },
        processBench: { splits, baseModel: PRM_BASE, sampling: { temperature: 0, topP: 1, maxTokens: WORLD_MAX_TOKENS.verification } },
        rl: {
          policy: { baseModel: 'policy', model: 'policy', adapter: WORLD_ADAPTER, optimizer: WORLD_RL_OPTIMIZER, sampling: { temperature: 1, topP: 1, maxTokens: WORLD_MAX_TOKENS.solution }, maxInFlight: 16 },
          formulation: 'selective-advantage',
          rewardModel: { maxTokens: WORLD_MAX_TOKENS.verification },
          dataset: { uri: prompts.uri, fields },
          evaluation: { sets: [{ name: 'held-out', uri: heldOut.uri, fields }], every: 5, maxTokens: WORLD_MAX_TOKENS.solution },
          grpo: { batchSize: 8, groupSize: 8 },
          totalSteps: rlSteps,
          checkpointEvery: 5,
        },
        seed,
      };
      const workflowId = `spark/${runName}/pipeline`;
      const handle = await client.workflow.start(sparkPipeline, {
        taskQueue, workflowId, args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        memo: { description: `neural world (${size}, seed ${seed}): the SPARK pipeline on trained transformers and the reference trainer` },
      });
      console.error(`[neural] ${workflowId} — watch it at ${stack.webUi}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
      const result = await followPipeline(client, handle);

      if (result.labels) {
        const { manifest, lines } = await readLabelsDataset(store, result.labels.manifest.uri);
        const quality = labelQuality(lines, manifest.methods);
        console.error(`\n[neural] label quality against the world's truth (${lines.length} solutions):\n${formatQualityTable(quality.rows)}\n`);
      }
      const { base, prm } = result.processBench;
      if (base) console.error(`[neural] world ProcessBench (${100} rows), the PRM's base (the verifier at the PRM prompt) before fine-tuning:\n${await store.getText(base.reportMarkdown.uri)}\n`);
      if (prm) console.error(`[neural] world ProcessBench, the PRM fine-tuned on step-majority labels:\n${await store.getText(prm.reportMarkdown.uri)}\n`);
      const rlPrefix = `runs/${runName}/rl`;
      const evals = await Promise.all((await store.list(`${rlPrefix}/evals/held-out/`)).map((k) => store.getJson<{ step: number; accuracy: number }>(k)));
      evals.sort((a, b) => a.step - b.step);
      console.error(`[neural] GRPO of the policy with the PRM as reward: held-out accuracy (greedy, 100 problems)\n| step | accuracy |\n|---|---|\n${evals.map((e) => `| ${e.step} | ${(100 * e.accuracy).toFixed(1)} |`).join('\n')}\n`);
      const report = await buildRunReport(store, { runName, scoreLabels: (lines, methods) => labelQuality(lines, methods).rows, localDir: `${stack.dataDir}/reports/${runName}` });
      console.log(JSON.stringify({
        world: { dir: world.dir, ...info },
        pipeline: { workflowId, manifest: result.manifest.uri },
        processBenchF1: { base: base?.averageF1 ?? null, fineTuned: prm?.averageF1 ?? null },
        heldOutAccuracy: evals.map((e) => ({ step: e.step, accuracy: e.accuracy })),
        report: report.html.path,
        wallTimeSeconds: Math.round((performance.now() - started) / 1000),
      }, null, 2));
      console.error(`[neural] run report: ${report.html.path}; done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    } finally {
      await servers.close();
    }
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
