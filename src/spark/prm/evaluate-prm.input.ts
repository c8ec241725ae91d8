import { z } from 'zod';
import { InferenceEndpointSchema } from '../../core/inference/endpoints.js';
import { RunNameSchema } from '../labels/sample-solutions.input.js';

/** How the model is asked and how its answer is read (see `src/spark/prm/evaluation.ts`). */
export const EVALUATION_STYLES = ['processbench', 'prm', 'prm-cot'] as const;
export type EvaluationStyle = (typeof EVALUATION_STYLES)[number];

/** Split names become parts of S3 keys and table rows. */
const SplitNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a split name: letters, digits, ".", "_" or "-", at most 63 characters');

/** One split file: an S3 URI or a path on the worker, as published (JSONL, or one JSON array). */
const SplitSourceSchema = z
  .string()
  .min(1)
  .refine((u) => /^s3:\/\/[^/]+\/.+/.test(u) || !u.includes('://'), 'an S3 URI like s3://bucket/processbench/gsm8k.jsonl or a local path on the worker');

/**
 * Input of `evaluatePrm`: ProcessBench (any subset of its splits, one file per split, in the
 * published schema) scored for one model, as ProcessBench scores it.
 */
export const EvaluatePrmInputSchema = z
  .strictObject({
    runName: RunNameSchema,
    benchmark: z.strictObject({
      /** Split name → its file, e.g. `{ "gsm8k": "s3://spark/processbench/gsm8k.jsonl" }`; any subset of the four, or other names. */
      splits: z.record(SplitNameSchema, SplitSourceSchema).refine((s) => Object.keys(s).length > 0, 'name at least one split and its file'),
      /** Only the first `limit` rows of each split (quick runs). */
      limit: z.number().int().positive().max(10_000_000).optional(),
    }),
    /** The model under test: a generative PRM or any critic behind an OpenAI-compatible endpoint. */
    model: z.strictObject({
      endpoint: InferenceEndpointSchema,
      model: z.string().min(1),
      /** Greedy by default, as ProcessBench evaluates critics; majority voting needs temperature > 0. */
      sampling: z
        .strictObject({
          temperature: z.number().min(0).max(2).default(0),
          topP: z.number().gt(0).max(1).default(1),
          maxTokens: z.number().int().positive().default(8192),
        })
        .default({ temperature: 0, topP: 1, maxTokens: 8192 }),
      /** Concurrent requests to this endpoint per worker process. */
      maxInFlight: z.number().int().positive().max(4096).default(64),
    }),
    /**
     * `processbench`: ProcessBench's own critic prompt, the index in `\boxed{}`. `prm`, `prm-cot`:
     * SPARK's PRM prompt, answered with `Step k: Correct|Incorrect` lines or a step-by-step
     * verification; the prediction is the first step judged incorrect, -1 when none is.
     */
    style: z.enum(EVALUATION_STYLES, {
      error: (issue) => issue.input === 'orm'
        ? "'orm' judges only the final answer and cannot point at the first wrong step; use 'prm', 'prm-cot' or 'processbench'"
        : `expected one of ${EVALUATION_STYLES.map((s) => `'${s}'`).join(', ')}`,
    }),
    /** Samples per row; more than one takes the majority vote of their predictions. */
    samples: z.number().int().min(1).max(64).default(1),
    /** Seed of every request (each row gets its own, derived from this and its split and id). */
    seed: z.number().int().nonnegative().default(0),
    /** Rows per `evaluateChunk` activity. */
    chunkSize: z.number().int().min(1).max(10_000).default(100),
    /** Chunks in flight at once. */
    concurrency: z.number().int().min(1).max(256).default(4),
    /** Key prefix of every output; default `runs/<runName>/evaluate-prm`. */
    outputPrefix: z.string().regex(/^[^/].*[^/]$|^[^/]$/, 'a key prefix without leading or trailing "/"').optional(),
  })
  .superRefine((v, ctx) => {
    if (v.samples > 1 && v.model.sampling.temperature === 0) {
      ctx.addIssue({ code: 'custom', path: ['samples'], message: 'majority voting needs model.sampling.temperature > 0 (at 0 every sample is the same)' });
    }
  });
export type EvaluatePrmInput = z.input<typeof EvaluatePrmInputSchema>;
export type EvaluatePrmConfig = z.output<typeof EvaluatePrmInputSchema>;
