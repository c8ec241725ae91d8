import { z } from 'zod';
import { InferenceEndpointSchema } from '../../core/inference/endpoints.js';
import { RunNameSchema } from '../labels/sample-solutions.input.js';
import { DatasetSourceSchema } from '../labels/input.js';

const KEY_PREFIX = /^[^/].*[^/]$|^[^/]$/;

/** A held-out set with reference answers (`fields.answer` is required). */
export const CoEvolveEvalSetSchema = DatasetSourceSchema.refine((s) => Boolean(s.fields.answer), { message: 'needs fields.answer: the field that holds the reference answer', path: ['fields', 'answer'] });
export type CoEvolveEvalSet = z.output<typeof CoEvolveEvalSetSchema>;

function samplesNeedTemperature(v: { samples: number; temperature: number }, ctx: z.RefinementCtx): void {
  if (v.samples > 1 && v.temperature === 0) ctx.addIssue({ code: 'custom', path: ['samples'], message: 'more than one sample needs temperature > 0 (greedy samples are all the same)' });
}

/** How an evaluation samples (T=1 by default: the sandbox policy never slips when greedy) and where it writes. */
const sampledEvaluation = {
  temperature: z.number().min(0).max(2).default(1),
  /** Samples per question or item (more than one needs temperature > 0). */
  samples: z.number().int().min(1).max(64).default(4),
  seed: z.number().int().nonnegative().default(0),
  /** Questions per activity (each chunk is retried and resumed on its own), and chunks in flight at once. */
  chunkSize: z.number().int().min(1).max(100_000).default(50),
  concurrency: z.number().int().min(1).max(256).default(4),
  outputPrefix: z.string().regex(KEY_PREFIX, 'a key prefix without leading or trailing "/"').optional(),
};

const servedModel = z.object({
  endpoint: InferenceEndpointSchema,
  model: z.string().min(1),
  maxInFlight: z.number().int().positive().max(4096).default(64),
});

/**
 * Input of `evaluateSelfReflection`: test-time self-reflection of one served policy (answer →
 * judge itself → re-solve after anything but Yes, at most `maxRounds` times). Accuracy per round
 * and how often reflection fixed or broke an answer. Greedy is `temperature: 0`; the sandbox
 * policy never slips when greedy, so sandbox runs sample at 1.
 */
export const EvaluateSelfReflectionInputSchema = z
  .object({
    runName: RunNameSchema,
    policy: servedModel,
    dataset: CoEvolveEvalSetSchema,
    /** Re-solves at most (paper: 2). */
    maxRounds: z.number().int().min(0).max(8).default(2),
    /** `samples`: episodes per question. */
    ...sampledEvaluation,
  })
  .strict()
  .superRefine(samplesNeedTemperature);
export type EvaluateSelfReflectionInput = z.input<typeof EvaluateSelfReflectionInputSchema>;
export type EvaluateSelfReflectionConfig = z.output<typeof EvaluateSelfReflectionInputSchema>;

/**
 * Input of `evaluateJudging`: a reward benchmark of held-out pointwise and pairwise items, built
 * once from a generator's answers (by the recycling rules) and shared by every judge scored on it.
 */
export const EvaluateJudgingInputSchema = z
  .object({
    runName: RunNameSchema,
    judge: servedModel,
    benchmark: z.object({
      dataset: CoEvolveEvalSetSchema,
      /** Whose answers are judged (the untrained policy, so every judge sees the same items). */
      generator: servedModel,
      samplesPerQuestion: z.number().int().min(2).max(64).default(8),
      temperature: z.number().gt(0).max(2).default(1),
    }).strict(),
    /** `samples`: verdicts per item. */
    ...sampledEvaluation,
  })
  .strict()
  .superRefine(samplesNeedTemperature);
export type EvaluateJudgingInput = z.input<typeof EvaluateJudgingInputSchema>;
export type EvaluateJudgingConfig = z.output<typeof EvaluateJudgingInputSchema>;
