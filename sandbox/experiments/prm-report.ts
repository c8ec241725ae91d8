/**
 * The stage-2 report on the sandbox: does a PRM trained on better labels judge better?
 *
 *   npm run prm:report -- [--problems 200] [--solutions 4] [--verifications 16] [--style prm-cot]
 *                         [--rows 100] [--temperature 0] [--samples 1] [--epochs 2] [--seed 1]
 *
 * Runs stage 1 (`synthesizeLabels`) once with single, outcome-majority and step-majority labels;
 * trains one PRM per method with `trainPrm` on the sandbox trainer and publishes each to the
 * sandbox model server; then scores every PRM, and the untrained base model, with `evaluatePrm`
 * on a ProcessBench-format benchmark generated from the sandbox world (true labels known).
 * Prints one table of per-split F1. Stored samples and step-keyed outputs make re-runs cheap.
 */
import { parseArgs } from 'node:util';
import type { AggregationMethod } from '../../src/spark/labels/aggregation.js';
import type { EvaluatePrmInput } from '../../src/spark/prm/evaluate-prm.input.js';
import { hashParts } from '../../src/core/random.js';
import { evaluatePrm, synthesizeLabels, trainPrm } from '../../src/workflows/index.js';
import type { EvaluatePrmResult } from '../../src/spark/prm/evaluate-prm.workflow.js';
import type { TrainPrmResult } from '../../src/spark/prm/train-prm.workflow.js';
import { intOption, sandboxDataset, sandboxProcessBench, withSandboxWorker } from '../sandbox-worker.js';

const { values: args } = parseArgs({
  options: {
    problems: { type: 'string', default: '200' },
    solutions: { type: 'string', default: '4' },
    verifications: { type: 'string', default: '16' },
    style: { type: 'string', default: 'prm-cot' },
    rows: { type: 'string', default: '100' },
    temperature: { type: 'string', default: '0' },
    samples: { type: 'string', default: '1' },
    epochs: { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
  },
});
const int = intOption;
const PROBLEMS = int('problems', args.problems, 1);
const M = int('solutions', args.solutions, 1);
const K = int('verifications', args.verifications, 1);
const ROWS = int('rows', args.rows, 1);
const SAMPLES = int('samples', args.samples, 1);
const EPOCHS = int('epochs', args.epochs, 1);
const SEED = int('seed', args.seed, 0);
const TEMPERATURE = Number(args.temperature);
if (!(TEMPERATURE >= 0 && TEMPERATURE <= 2)) throw new Error(`--temperature must be in [0, 2], got ${args.temperature}`);
const STYLE = args.style;
if (STYLE !== 'prm' && STYLE !== 'prm-cot') throw new Error(`--style must be prm or prm-cot, got ${STYLE}`);

const METHODS: AggregationMethod[] = ['single', 'outcome-majority', 'step-majority'];
const tag = `p${PROBLEMS}-m${M}-k${K}-s${SEED}`;

await withSandboxWorker('spark-prm-report', async (ctx) => {
  const { client, store, stack, taskQueue } = ctx;
  const endpoint = { baseURL: stack.simBaseURL };

  // Stage 1: one labels run gives every method's labels for the same solutions.
  const dataset = await sandboxDataset(store, { seed: SEED, count: PROBLEMS });
  const labelsRun = `prm-report-labels-${tag}`;
  console.error(`[report] stage 1: ${PROBLEMS} problems × ${M} solutions × K=${K}`);
  const labels = await client.workflow.execute(synthesizeLabels, {
    taskQueue,
    workflowId: `spark/${labelsRun}/synthesize-labels`,
    args: [{
      runName: labelsRun,
      dataset: { uri: dataset.uri },
      generator: { endpoint, model: 'sim-policy', sampling: { temperature: 1 } },
      verifier: { endpoint, model: 'sim-verifier' },
      solutionsPerProblem: M,
      verificationsPerSolution: K,
      methods: METHODS,
      seed: SEED,
    }],
  });

  // The benchmark: ProcessBench's four splits, generated from the sandbox world with true labels.
  const splits = await sandboxProcessBench(store, { seed: SEED, rowsPerSplit: ROWS });

  const trained = new Map<AggregationMethod, TrainPrmResult>();
  for (const method of METHODS) {
    const runName = `prm-report-${method}-${STYLE}-e${EPOCHS}-${tag}`;
    console.error(`[report] stage 2: training a ${STYLE} PRM on ${method} labels`);
    const result = await client.workflow.execute(trainPrm, {
      taskQueue,
      workflowId: `spark/${runName}/train-prm`,
      args: [{
        runName,
        labelsManifestUri: labels.manifest.uri,
        method,
        style: STYLE,
        trainer: { baseURL: stack.trainerURL },
        baseModel: 'sim-policy',
        epochs: EPOCHS,
        seed: SEED,
        publish: { inferenceBaseURL: stack.simBaseURL, modelName: runName },
      }],
    });
    console.error(`[report]   ${result.examples} examples, ${result.steps} steps, loss ${result.lossCurve[0]?.loss.toFixed(3)} → ${result.lossCurve.at(-1)?.loss.toFixed(3)}`);
    trained.set(method, result);
  }

  const evaluate = async (name: string, model: string): Promise<EvaluatePrmResult> => {
    // Run names are at most 63 characters: the settings go into a short hash.
    const runName = `prm-eval-${name}-${STYLE}-${hashParts(tag, model, TEMPERATURE, SAMPLES, ROWS).slice(0, 10)}`;
    const input: EvaluatePrmInput = {
      runName,
      benchmark: { splits },
      model: { endpoint, model, sampling: { temperature: TEMPERATURE } },
      style: STYLE,
      samples: SAMPLES,
      seed: SEED,
    };
    console.error(`[report] evaluating ${name} (${model})`);
    return client.workflow.execute(evaluatePrm, { taskQueue, workflowId: `spark/${runName}/evaluate-prm`, args: [input] });
  };

  const rows: { name: string; examples: number | null; loss: number | null; result: EvaluatePrmResult }[] = [];
  rows.push({ name: 'untrained base (sim-policy)', examples: null, loss: null, result: await evaluate('untrained', 'sim-policy') });
  rows.push({ name: 'stage-1 verifier (sim-verifier), for reference', examples: null, loss: null, result: await evaluate('verifier', 'sim-verifier') });
  for (const method of METHODS) {
    const t = trained.get(method)!;
    rows.push({ name: `PRM on ${method} labels`, examples: t.examples, loss: t.lossCurve.at(-1)?.loss ?? null, result: await evaluate(method, t.model!.modelName) });
  }

  const splitNames = Object.keys(splits);
  const f1 = (x: number | null | undefined): string => (x === null || x === undefined ? '—' : (100 * x).toFixed(1));
  console.log(`Stage 2 on the sandbox: ${STYLE} PRMs fine-tuned from sim-policy on ${PROBLEMS}×${M} labelled solutions (K=${K}), `
    + `ProcessBench-format benchmark ${ROWS} rows/split, T=${TEMPERATURE}, ${SAMPLES} sample(s)/row (seed ${SEED})\n`);
  console.log(`| model | train examples | final loss | ${splitNames.join(' | ')} | avg F1 |`);
  console.log(`|---|---|---|${splitNames.map(() => '---|').join('')}---|`);
  for (const r of rows) {
    const bySplit = new Map(r.result.report.scores.splits.map((s) => [s.split, s]));
    console.log(`| ${r.name} | ${r.examples ?? '—'} | ${r.loss === null ? '—' : r.loss.toFixed(3)} | ${splitNames.map((s) => f1(bySplit.get(s)?.f1)).join(' | ')} | **${f1(r.result.report.scores.average.f1)}** |`);
  }
});
