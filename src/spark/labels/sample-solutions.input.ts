import { z } from 'zod';
import { FieldMapSchema } from '../../core/store/dataset.js';
import { InferenceEndpointSchema } from '../../core/inference/endpoints.js';

/** Sampling settings for generation; defaults follow SPARK's generator (temperature 0.8, top_p 0.95). */
export const SamplingSchema = z.object({
  temperature: z.number().min(0).max(2).default(0.8),
  topP: z.number().gt(0).max(1).default(0.95),
  maxTokens: z.number().int().positive().default(2048),
  seed: z.number().int().nonnegative().default(0),
});

/** Run names become parts of workflow IDs and S3 keys. */
export const RunNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" or "-", at most 63 characters, starting with a letter or digit');

/**
 * Input of `sampleSolutions`: reads problems from a JSONL dataset in S3, asks a generator for
 * solutions, stores them, returns references. The smallest run that exercises the whole stack.
 */
export const SampleSolutionsInputSchema = z.object({
  runName: RunNameSchema,
  dataset: z.object({
    /** s3://bucket/key of a JSONL file. */
    uri: z.string().regex(/^s3:\/\/[^/]+\/.+/, 'an S3 URI like s3://bucket/datasets/problems.jsonl'),
    fields: FieldMapSchema.default({ question: 'question' }),
    offset: z.number().int().nonnegative().default(0),
    limit: z.number().int().positive().max(10_000).default(20),
  }),
  generator: z.object({ endpoint: InferenceEndpointSchema, model: z.string().min(1) }),
  samplesPerProblem: z.number().int().positive().max(64).default(4),
  sampling: SamplingSchema.default({ temperature: 0.8, topP: 0.95, maxTokens: 2048, seed: 0 }),
  /** Problems in flight at once. */
  concurrency: z.number().int().positive().max(256).default(8),
  /** Key prefix for outputs; default `runs/<runName>/sample-solutions`. */
  outputPrefix: z.string().optional(),
});
export type SampleSolutionsInput = z.input<typeof SampleSolutionsInputSchema>;
export type SampleSolutionsConfig = z.output<typeof SampleSolutionsInputSchema>;
