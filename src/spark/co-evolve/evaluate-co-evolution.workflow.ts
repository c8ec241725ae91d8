import { defineQuery, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { CoEvolveActivities, JudgingReport, SelfReflectionReport } from './activities.js';
import type { JudgingCounts } from './tally.js';
import { addJudgingCounts, addSelfReflectionCounts, EMPTY_JUDGING_COUNTS, emptySelfReflectionCounts, judgingAccuracyOf, selfReflectionTallyOf } from './tally.js';
import { mapWithConcurrency } from '../../core/concurrency.js';
import type { CoEvolveEvalSet, EvaluateJudgingInput, EvaluateSelfReflectionInput } from './evaluate-co-evolution.input.js';
import { EvaluateJudgingInputSchema, EvaluateSelfReflectionInputSchema } from './evaluate-co-evolution.input.js';
import { hashParts } from '../../core/random.js';
import { joinKey } from '../../core/store/refs.js';
import { bulkIo, modelBatch } from '../../core/temporal/activity-presets.js';
import { SparkCallsMade, SparkItemsDone, SparkRun, SparkStage, SparkStatus } from '../../core/temporal/search-attributes.js';
import { claimRunOutputs } from '../../core/temporal/run-outputs.workflow.js';
import { parseWorkflowInput } from '../../core/temporal/validate.js';

const models = proxyActivities<CoEvolveActivities>(modelBatch);
const io = proxyActivities<CoEvolveActivities>(bulkIo);

/** A model name as one key segment (served names may hold "/"). */
const keySegment = (name: string): string => name.replace(/[^A-Za-z0-9._-]/g, '_');

/** What an evaluation has done so far. */
export interface CoEvolveEvalProgress {
  stage: 'preparing' | 'evaluating' | 'completed';
  chunksTotal: number;
  chunksDone: number;
  /** Questions scored (self-reflection) or items judged (judging). */
  done: number;
  callsMade: number;
}

export const evaluateSelfReflectionProgress = defineQuery<CoEvolveEvalProgress>('progress');
export const evaluateJudgingProgress = evaluateSelfReflectionProgress;

/** The held-out rows once, in S3, keyed by the set: chunks read slices of it. */
async function prepareRows(prefix: string, set: CoEvolveEvalSet) {
  return io.prepareEvalRows({ set, outputKey: joinKey(prefix, 'data', `rows-${hashParts(JSON.stringify(set)).slice(0, 12)}.jsonl`) });
}

function chunkRanges(count: number, size: number): { from: number; to: number }[] {
  return Array.from({ length: Math.ceil(count / size) }, (_, i) => ({ from: i * size, to: Math.min(count, (i + 1) * size) }));
}

function startProgress(runName: string, stage: string): CoEvolveEvalProgress {
  const progress: CoEvolveEvalProgress = { stage: 'preparing', chunksTotal: 0, chunksDone: 0, done: 0, callsMade: 0 };
  setHandler(evaluateSelfReflectionProgress, () => progress);
  upsertSearchAttributes([{ key: SparkRun, value: runName }, { key: SparkStage, value: stage }, { key: SparkStatus, value: 'running' }]);
  return progress;
}

/**
 * Claims one model's report under a shared evaluation prefix (several models are compared there):
 * a second evaluation of the same model with other settings is refused instead of replacing it.
 * What decides the report: not the run's name, where outputs go, or how the work is cut.
 */
async function claimReport(workflow: string, folder: string, config: { runName: string; outputPrefix?: string | undefined; chunkSize: number; concurrency: number }): Promise<void> {
  const decisive = { ...config, runName: null, outputPrefix: null, chunkSize: null, concurrency: null };
  await claimRunOutputs({ prefix: folder, workflow, runName: config.runName, workflowId: workflowInfo().workflowId, configHash: hashParts(JSON.stringify(decisive)), decisive });
}

function finish(progress: CoEvolveEvalProgress): void {
  progress.stage = 'completed';
  upsertSearchAttributes([{ key: SparkStatus, value: 'completed' }, { key: SparkItemsDone, value: progress.done }, { key: SparkCallsMade, value: progress.callsMade }]);
}

/**
 * Test-time self-reflection of one served policy: answer, judge its own answer, re-solve after
 * anything but Yes, at most `maxRounds` times; accuracy per round, answers fixed and broken. The
 * questions run in chunks (one activity each, `concurrency` at once) whose counts add up here.
 */
export async function evaluateSelfReflection(rawInput: EvaluateSelfReflectionInput): Promise<SelfReflectionReport> {
  const config = parseWorkflowInput(EvaluateSelfReflectionInputSchema, rawInput, 'evaluateSelfReflection');
  const progress = startProgress(config.runName, 'self-reflection');
  const prefix = config.outputPrefix ?? joinKey('runs', config.runName, 'co-evolve-eval');
  await claimReport('evaluateSelfReflection', joinKey(prefix, 'self-reflection', keySegment(config.policy.model)), config);
  const { rows, count } = await prepareRows(prefix, config.dataset);
  const chunks = chunkRanges(count, config.chunkSize);
  progress.stage = 'evaluating';
  progress.chunksTotal = chunks.length;
  const perChunk = await mapWithConcurrency(chunks, config.concurrency, async ({ from, to }, i) => {
    const out = await models.selfReflectionChunk.executeWithOptions({ ...modelBatch, summary: `questions ${from}-${to - 1} (chunk ${i + 1} of ${chunks.length})` }, [{
      rows, from, to, policy: config.policy, maxRounds: config.maxRounds, temperature: config.temperature, samples: config.samples, seed: config.seed,
    }]);
    progress.chunksDone++;
    progress.done += to - from;
    progress.callsMade += out.callsMade;
    return out.counts;
  });
  // Added in chunk order, whatever order they finished in.
  const counts = perChunk.reduce(addSelfReflectionCounts, emptySelfReflectionCounts(config.maxRounds));
  const report: SelfReflectionReport = {
    model: config.policy.model, rows: count, samples: config.samples, maxRounds: config.maxRounds, callsMade: progress.callsMade, ...selfReflectionTallyOf(counts),
  };
  await io.writeCoEvolveReport({ key: joinKey(prefix, 'self-reflection', `${keySegment(config.policy.model)}.json`), report });
  finish(progress);
  return report;
}

/**
 * Judging accuracy of one served model on held-out pointwise and pairwise items. The items are
 * built once per benchmark setting (the generator's answers, recycled by the training rules) in
 * chunks of questions and stored, so every judge compared on them sees the same items; each chunk
 * is then judged by its own activity and the counts add up here.
 */
export async function evaluateJudging(rawInput: EvaluateJudgingInput): Promise<JudgingReport> {
  const config = parseWorkflowInput(EvaluateJudgingInputSchema, rawInput, 'evaluateJudging');
  const progress = startProgress(config.runName, 'judging');
  const prefix = config.outputPrefix ?? joinKey('runs', config.runName, 'co-evolve-eval');
  const benchmarkPrefix = joinKey(prefix, 'judging', `benchmark-${hashParts(JSON.stringify(config.benchmark), config.seed, config.chunkSize).slice(0, 12)}`);
  await claimReport('evaluateJudging', joinKey(prefix, 'judging', keySegment(config.judge.model)), config);
  const { rows, count } = await prepareRows(prefix, config.benchmark.dataset);
  const chunks = chunkRanges(count, config.chunkSize);
  progress.stage = 'evaluating';
  progress.chunksTotal = chunks.length;
  const perChunk = await mapWithConcurrency(chunks, config.concurrency, async ({ from, to }, i) => {
    const summary = `questions ${from}-${to - 1} (chunk ${i + 1} of ${chunks.length})`;
    const items = await models.judgingBenchmarkChunk.executeWithOptions({ ...modelBatch, summary: `benchmark items for ${summary}` }, [{
      rows, from, to, generator: config.benchmark.generator, samplesPerQuestion: config.benchmark.samplesPerQuestion, temperature: config.benchmark.temperature,
      seed: config.seed, outputKey: joinKey(benchmarkPrefix, `chunk-${String(i).padStart(5, '0')}.jsonl`),
    }]);
    const judged = await models.judgingChunk.executeWithOptions({ ...modelBatch, summary: `judging ${summary}` }, [{
      items: items.items, judge: config.judge, temperature: config.temperature, samples: config.samples, seed: config.seed,
    }]);
    progress.chunksDone++;
    progress.done += items.count;
    progress.callsMade += items.callsMade + judged.callsMade;
    return judged.counts;
  });
  // Added in chunk order (sums of fractions), whatever order they finished in.
  const counts: JudgingCounts = perChunk.reduce(addJudgingCounts, EMPTY_JUDGING_COUNTS);
  const report: JudgingReport = {
    judgeModel: config.judge.model, items: counts.pointwise.items + counts.pairwise.items, ...judgingAccuracyOf(counts), callsMade: progress.callsMade, benchmark: benchmarkPrefix,
  };
  await io.writeCoEvolveReport({ key: joinKey(prefix, 'judging', `${keySegment(config.judge.model)}.json`), report });
  finish(progress);
  return report;
}
