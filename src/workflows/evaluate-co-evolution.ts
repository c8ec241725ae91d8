import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { CoEvolveActivities, JudgingReport, SelfReflectionReport } from '../activities/co-evolve.js';
import type { EvaluateJudgingInput, EvaluateSelfReflectionInput } from '../domain/inputs/co-evolve-eval.js';
import { EvaluateJudgingInputSchema, EvaluateSelfReflectionInputSchema } from '../domain/inputs/co-evolve-eval.js';
import { hashParts } from '../domain/random.js';
import { joinKey } from '../domain/refs.js';
import { modelBatch } from './activity-presets.js';
import { SparkRun, SparkStage, SparkStatus } from './search-attributes.js';
import { parseWorkflowInput } from './validate.js';

const models = proxyActivities<CoEvolveActivities>(modelBatch);

/** A model name as one key segment (served names may hold "/"). */
const keySegment = (name: string): string => name.replace(/[^A-Za-z0-9._-]/g, '_');

/**
 * Test-time self-reflection of one served policy: answer, judge its own answer, re-solve after
 * anything but Yes, at most `maxRounds` times; accuracy per round, answers fixed and broken.
 */
export async function evaluateSelfReflection(rawInput: EvaluateSelfReflectionInput): Promise<SelfReflectionReport> {
  const config = parseWorkflowInput(EvaluateSelfReflectionInputSchema, rawInput, 'evaluateSelfReflection');
  upsertSearchAttributes([{ key: SparkRun, value: config.runName }, { key: SparkStage, value: 'self-reflection' }, { key: SparkStatus, value: 'running' }]);
  const prefix = config.outputPrefix ?? joinKey('runs', config.runName, 'co-evolve-eval');
  const report = await models.selfReflection({
    set: config.dataset, policy: config.policy, maxRounds: config.maxRounds, temperature: config.temperature, samples: config.samples, seed: config.seed,
    outputKey: joinKey(prefix, 'self-reflection', `${keySegment(config.policy.model)}.json`),
  });
  upsertSearchAttributes([{ key: SparkStatus, value: 'completed' }]);
  return report;
}

/**
 * Judging accuracy of one served model on held-out pointwise and pairwise items. The items are
 * built once per benchmark setting (the generator's answers, recycled by the training rules) and
 * stored, so every judge compared on them sees the same items.
 */
export async function evaluateJudging(rawInput: EvaluateJudgingInput): Promise<JudgingReport & { benchmark: string }> {
  const config = parseWorkflowInput(EvaluateJudgingInputSchema, rawInput, 'evaluateJudging');
  upsertSearchAttributes([{ key: SparkRun, value: config.runName }, { key: SparkStage, value: 'judging' }, { key: SparkStatus, value: 'running' }]);
  const prefix = config.outputPrefix ?? joinKey('runs', config.runName, 'co-evolve-eval');
  const benchmarkKey = joinKey(prefix, 'judging', `benchmark-${hashParts(JSON.stringify(config.benchmark), config.seed).slice(0, 12)}.jsonl`);
  const benchmark = await models.buildJudgingBenchmark({
    set: config.benchmark.dataset, generator: config.benchmark.generator, samplesPerQuestion: config.benchmark.samplesPerQuestion,
    temperature: config.benchmark.temperature, seed: config.seed, outputKey: benchmarkKey,
  });
  const report = await models.judgingAccuracy({
    items: benchmark.items, judge: config.judge, temperature: config.temperature, samples: config.samples, seed: config.seed,
    outputKey: joinKey(prefix, 'judging', `${keySegment(config.judge.model)}.json`),
  });
  upsertSearchAttributes([{ key: SparkStatus, value: 'completed' }]);
  return { ...report, benchmark: benchmark.items.uri };
}
