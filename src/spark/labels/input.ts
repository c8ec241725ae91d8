import { z } from 'zod';
import { FieldMapSchema } from '../../core/store/dataset.js';
import { InferenceEndpointSchema } from '../../core/inference/endpoints.js';
import { RunNameSchema } from './sample-solutions.input.js';

import type { AggregationMethod } from './aggregation.js';

/** Every aggregation method, in the order reports list them. */
export const AGGREGATION_METHODS = ['single', 'outcome-majority', 'step-majority', 'critique-single', 'critique-outcome-consensus', 'hybrid'] as const satisfies readonly AggregationMethod[];

/** Sampling of one model role; the defaults are SPARK's (generator and verifier at T 0.8, top_p 0.95). */
const samplingFor = (defaults: { temperature: number; maxTokens: number }) =>
  z
    .object({
      temperature: z.number().min(0).max(2).default(defaults.temperature),
      topP: z.number().gt(0).max(1).default(0.95),
      maxTokens: z.number().int().positive().default(defaults.maxTokens),
    })
    .default({ temperature: defaults.temperature, topP: 0.95, maxTokens: defaults.maxTokens });

/**
 * A model behind an OpenAI-compatible endpoint. `maxInFlight` caps this role's concurrent HTTP
 * requests in each worker process (a busy vLLM queues the rest anyway; this keeps latency sane).
 */
const modelRole = (defaults: { temperature: number; maxTokens: number }) =>
  z.object({
    endpoint: InferenceEndpointSchema,
    model: z.string().min(1),
    sampling: samplingFor(defaults),
    maxInFlight: z.number().int().positive().max(4096).default(64),
  });

/** A dataset: an S3 URI, or a path on the worker's file system, of a JSONL file. */
export const DatasetSourceSchema = z.object({
  uri: z
    .string()
    .min(1)
    .refine((u) => /^s3:\/\/[^/]+\/.+/.test(u) || !u.includes('://'), 'an S3 URI like s3://bucket/key.jsonl or a local path on the worker'),
  fields: FieldMapSchema.default({ question: 'question' }),
  offset: z.number().int().nonnegative().default(0),
  limit: z.number().int().positive().max(10_000_000).optional(),
});

/**
 * Input of `synthesizeLabels` (SPARK stage 1): M solutions per problem from the generator, K
 * verifications per solution from the verifier, consensus step labels by each chosen method.
 */
export const SynthesizeLabelsInputSchema = z
  .object({
    runName: RunNameSchema,
    dataset: DatasetSourceSchema,
    generator: modelRole({ temperature: 0.8, maxTokens: 2048 }),
    verifier: modelRole({ temperature: 0.8, maxTokens: 8192 }),
    /** Model of the meta-critique (critique and merge, one round at temperature 0); default: the verifier at temperature 0. */
    critic: modelRole({ temperature: 0, maxTokens: 8192 }).optional(),
    /** M: solutions per problem (paper: 8). */
    solutionsPerProblem: z.number().int().min(1).max(64).default(8),
    /** K: verifications per solution (paper: 16). */
    verificationsPerSolution: z.number().int().min(1).max(128).default(16),
    /** Which labels to produce; every method's labels go into each output line. */
    methods: z.array(z.enum(AGGREGATION_METHODS)).min(1).default(['single', 'outcome-majority', 'step-majority']),
    aggregation: z
      .object({
        stepTieRule: z.enum(['incorrect', 'correct', 'first']).default('incorrect'),
        outcomeTieRule: z.enum(['no', 'yes', 'first']).default('no'),
        targetRule: z.enum(['closest', 'none']).default('closest'),
        /** Steps after the first incorrect one are incorrect, the outcome follows the steps (step-majority, critiques). */
        consistency: z.boolean().default(true),
      })
      .default({ stepTieRule: 'incorrect', outcomeTieRule: 'no', targetRule: 'closest', consistency: true }),
    /** Extra verifications drawn per solution to replace ones that cannot be parsed. */
    parseRetries: z.number().int().min(0).max(64).default(4),
    /** Reference-guided verification (a baseline): the verifier also sees `dataset.fields.answer`. */
    referenceGuided: z.boolean().default(false),
    /**
     * Adaptive self-consistency: draw verifications in rounds and stop once more votes cannot
     * change the step-majority labels (and, with `confidence`, once every relevant step has that share).
     */
    adaptive: z
      .object({
        enabled: z.boolean().default(false),
        /** Verifications in the first round. */
        initial: z.number().int().min(1).max(128).default(4),
        /** Verifications per later round. */
        step: z.number().int().min(1).max(128).default(2),
        confidence: z.number().gt(0.5).max(1).optional(),
      })
      .default({ enabled: false, initial: 4, step: 2 }),
    /** Seed of every sampled call; same seed and config give the same labels. */
    seed: z.number().int().nonnegative().default(0),
    shards: z
      .object({
        /** Problems per child workflow. */
        size: z.number().int().min(1).max(1000).default(100),
        /** Child workflows running at once. */
        concurrency: z.number().int().min(1).max(256).default(4),
        /**
         * Problems in flight inside each child. With the other defaults, 4 × 32 problems keep a
         * server's slots busy (each problem verifies its M solutions at once); `maxInFlight`
         * per role still caps the requests each worker process sends.
         */
        problemsInFlight: z.number().int().min(1).max(1024).default(32),
        /**
         * Problems labelled by one activity (all at once; at most `problemsInFlight`), their lines written as one object.
         * More per activity means fewer Temporal events and round trips per problem; a retried
         * activity re-reads the stored samples of the problems it had finished.
         */
        problemsPerActivity: z.number().int().min(1).max(64).default(8),
        /** Children started per run of the parent before it continues as new (keeps its history short). */
        perRun: z.number().int().min(1).max(2000).default(200),
      })
      .default({ size: 100, concurrency: 4, problemsInFlight: 32, problemsPerActivity: 8, perRun: 200 }),
    /** Key prefix of every output; default `runs/<runName>/labels`. */
    outputPrefix: z.string().regex(/^[^/].*[^/]$|^[^/]$/, 'a key prefix without leading or trailing "/"').optional(),
  })
  .superRefine((v, ctx) => {
    if (v.referenceGuided && !v.dataset.fields.answer) {
      ctx.addIssue({ code: 'custom', path: ['dataset', 'fields', 'answer'], message: 'referenceGuided needs the field that holds the reference answer' });
    }
    if (v.adaptive.enabled && v.adaptive.initial > v.verificationsPerSolution) {
      ctx.addIssue({ code: 'custom', path: ['adaptive', 'initial'], message: `must be at most verificationsPerSolution (${v.verificationsPerSolution})` });
    }
  });
export type SynthesizeLabelsInput = z.input<typeof SynthesizeLabelsInputSchema>;
export type SynthesizeLabelsConfig = z.output<typeof SynthesizeLabelsInputSchema>;
