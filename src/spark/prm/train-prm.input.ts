import { z } from 'zod';
import { AdapterSchema, OptimizerSchema } from '../../core/trainer/protocol.js';
import { RunNameSchema } from '../labels/sample-solutions.input.js';
import { AGGREGATION_METHODS } from '../labels/input.js';

const S3_URI = /^s3:\/\/[^/]+\/.+/;
const KEY_PREFIX = /^[^/].*[^/]$|^[^/]$/;

/** LoRA on every linear layer, rank 16: a common PRM fine-tuning setup. */
const DEFAULT_ADAPTER = { kind: 'lora' as const, rank: 16, alpha: 32, targetModules: ['all-linear'] };

/** AdamW at 1e-5 with 10 warm-up steps and clipping at 1.0: usual LoRA SFT settings. */
const DEFAULT_OPTIMIZER = { name: 'adamw' as const, learningRate: 1e-5, betas: [0.9, 0.999] as [number, number], weightDecay: 0, warmupSteps: 10, maxGradNorm: 1 };

/**
 * Input of `trainPrm` (SPARK stage 2): stage-1 labels → SFT data in one output style → train
 * steps on a trainer server, checkpointed to S3 → optionally published to an inference server.
 */
export const TrainPrmInputSchema = z
  .object({
    runName: RunNameSchema,
    /** The `manifest.json` a `synthesizeLabels` run wrote. */
    labelsManifestUri: z.string().regex(S3_URI, 'an S3 URI like s3://bucket/runs/<run>/labels/manifest.json'),
    /** Whose labels to learn (paper: step-majority is best). */
    method: z.enum(AGGREGATION_METHODS).default('step-majority'),
    /** What the reward model learns to write: ORM (Yes/No), PRM (a label per step) or PRM-CoT (a verification). */
    style: z.enum(['orm', 'prm', 'prm-cot']).default('prm-cot'),
    data: z
      .object({
        /** `outcome`: equal numbers of Yes and No solutions (the larger class is subsampled). */
        balance: z.enum(['none', 'outcome']).default('none'),
        /** Drop solutions whose votes agree less than this with their labels (0 keeps all). */
        minAgreement: z.number().min(0).max(1).default(0),
        /** PRM-CoT targets: only verifications whose labels are the method's (`agreeing`), or the nearest one (`closest`). */
        cotTargets: z.enum(['agreeing', 'closest']).default('agreeing'),
      })
      .default({ balance: 'none', minAgreement: 0, cotTargets: 'agreeing' }),
    trainer: z.object({
      /** The trainer server, e.g. http://127.0.0.1:8400 (trainer protocol v1). */
      baseURL: z.url({ protocol: /^https?$/ }),
    }),
    /** The model to fine-tune, as the trainer names it (sandbox: sim-policy, the paper's Qwen2.5-14B-Instruct). */
    baseModel: z.string().min(1),
    adapter: AdapterSchema.default(DEFAULT_ADAPTER),
    optimizer: OptimizerSchema.default(DEFAULT_OPTIMIZER),
    epochs: z.number().int().min(1).max(100).default(2),
    /** Examples per train step. */
    batchSize: z.number().int().min(1).max(4096).default(32),
    /** Save a checkpoint after this many steps; a crash loses at most this many steps of work. */
    checkpointEvery: z.number().int().min(1).max(500).default(20),
    /** Serve the trained weights from an inference server (vLLM's LoRA load) under `modelName`. */
    publish: z
      .object({
        /** The inference server's OpenAI base URL including /v1. */
        inferenceBaseURL: z.url({ protocol: /^https?$/ }),
        /** Default `<runName>-prm`. */
        modelName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,255}$/, 'a model name of letters, digits and . _ : / -').optional(),
      })
      .optional(),
    /** Seeds data order (batches) and the trainer session. */
    seed: z.number().int().nonnegative().default(0),
    /** Key prefix of every output; default `runs/<runName>/prm`. */
    outputPrefix: z.string().regex(KEY_PREFIX, 'a key prefix without leading or trailing "/"').optional(),
  })
  .strict();
export type TrainPrmInput = z.input<typeof TrainPrmInputSchema>;
export type TrainPrmConfig = z.output<typeof TrainPrmInputSchema>;
