import { defineQuery, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { EvaluateActivities, PreparedBenchmark } from './evaluate-prm.activities.js';
import { mapWithConcurrency } from '../../core/concurrency.js';
import type { EvaluationCost, EvaluationReport } from './evaluation.js';
import { addCost, ZERO_COST } from './evaluation.js';
import type { EvaluatePrmConfig, EvaluatePrmInput } from './evaluate-prm.input.js';
import { EvaluatePrmInputSchema } from './evaluate-prm.input.js';
import { hashParts } from '../../core/random.js';
import type { ObjectRef } from '../../core/store/refs.js';
import { joinKey } from '../../core/store/refs.js';
import { bulkIoHeartbeat, modelBatch } from '../../core/temporal/activity-presets.js';
import { SparkCallsMade, SparkConfigHash, SparkItemsDone, SparkRun, SparkStage, SparkStatus } from '../../core/temporal/search-attributes.js';
import { claimRunOutputs } from '../../core/temporal/run-outputs.workflow.js';
import { parseWorkflowInput } from '../../core/temporal/validate.js';

const io = proxyActivities<EvaluateActivities>(bulkIoHeartbeat);
const models = proxyActivities<EvaluateActivities>(modelBatch);

export interface EvaluatePrmProgress {
  stage: 'preparing' | 'evaluating' | 'reporting' | 'completed';
  rowsTotal: number;
  rowsDone: number;
  chunksTotal: number;
  chunksDone: number;
  /** Rows scored correct so far, and rows with no readable answer. */
  rowsCorrect: number;
  rowsUnparseable: number;
  cost: EvaluationCost;
}

export interface EvaluatePrmResult {
  /** Per split error accuracy, correct accuracy and F1 (ProcessBench's definitions), the average, unreadable answers. */
  report: EvaluationReport;
  /** The same as a markdown table (also in `reportMarkdown`). */
  markdown: string;
  reportJson: ObjectRef;
  reportMarkdown: ObjectRef;
  /** One line per row: label, voted prediction, each sample's prediction, the stored samples' keys. */
  predictions: ObjectRef;
  rows: number;
  cost: EvaluationCost;
}

export const evaluatePrmProgress = defineQuery<EvaluatePrmProgress>('progress');

/**
 * SPARK stage 2 evaluation: a generative PRM or a critic on ProcessBench (any of its splits).
 * The rows are cut into chunk files; one `evaluateChunk` activity per chunk, at most
 * `concurrency` at once, writes its predictions to S3 and returns counts; the report is
 * computed from the written predictions. Only references and counts pass through history.
 */
export async function evaluatePrm(rawInput: EvaluatePrmInput): Promise<EvaluatePrmResult> {
  const config: EvaluatePrmConfig = parseWorkflowInput(EvaluatePrmInputSchema, rawInput, 'evaluatePrm');
  const prefix = config.outputPrefix ?? joinKey('runs', config.runName, 'evaluate-prm');
  // What determines the results: not the run's name, where outputs go, or how work is cut.
  const decisive = { ...config, runName: null, outputPrefix: null, chunkSize: null, concurrency: null };
  const configHash = hashParts(JSON.stringify(decisive));
  const info = workflowInfo();
  const progress: EvaluatePrmProgress = {
    stage: 'preparing', rowsTotal: 0, rowsDone: 0, chunksTotal: 0, chunksDone: 0, rowsCorrect: 0, rowsUnparseable: 0, cost: ZERO_COST,
  };
  setHandler(evaluatePrmProgress, () => progress);
  upsertSearchAttributes([
    { key: SparkRun, value: config.runName },
    { key: SparkStage, value: 'evaluate-prm' },
    { key: SparkStatus, value: 'running' },
    { key: SparkConfigHash, value: configHash },
  ]);

  // Another configuration's results under this prefix are refused, not replaced.
  await claimRunOutputs({ prefix, workflow: 'evaluatePrm', runName: config.runName, workflowId: info.workflowId, configHash, decisive });
  const prepared: PreparedBenchmark = await io.prepareBenchmark({ config, outputPrefix: prefix });
  progress.stage = 'evaluating';
  progress.rowsTotal = prepared.rows;
  progress.chunksTotal = prepared.chunks;

  // Search attributes about 20 times per run, so history stays small for any benchmark size.
  const upsertEvery = Math.max(1, Math.ceil(prepared.chunks / 20));
  const chunks = Array.from({ length: prepared.chunks }, (_, i) => i);
  await mapWithConcurrency(chunks, config.concurrency, async (chunk) => {
    const first = chunk * prepared.chunkSize;
    const done = await models.evaluateChunk.executeWithOptions(
      { ...modelBatch, summary: `rows ${first}-${Math.min(first + prepared.chunkSize, prepared.rows) - 1} (chunk ${chunk + 1} of ${prepared.chunks})` },
      [{ config, outputPrefix: prefix, chunk }],
    );
    progress.chunksDone += 1;
    progress.rowsDone += done.rows;
    for (const s of Object.values(done.bySplit)) {
      progress.rowsCorrect += s.correct;
      progress.rowsUnparseable += s.unparseableRows;
    }
    progress.cost = addCost(progress.cost, done.cost);
    if (progress.chunksDone % upsertEvery === 0 && progress.chunksDone < prepared.chunks) {
      upsertSearchAttributes([
        { key: SparkItemsDone, value: progress.rowsDone },
        { key: SparkCallsMade, value: progress.cost.callsMade },
      ]);
    }
  });

  progress.stage = 'reporting';
  const out = await io.writeEvaluationReport({ config, outputPrefix: prefix, prepared, workflowId: info.workflowId, configHash, cost: progress.cost });
  progress.stage = 'completed';
  upsertSearchAttributes([
    { key: SparkStatus, value: 'completed' },
    { key: SparkItemsDone, value: progress.rowsDone },
    { key: SparkCallsMade, value: progress.cost.callsMade },
  ]);
  return { ...out, rows: prepared.rows, cost: progress.cost };
}
