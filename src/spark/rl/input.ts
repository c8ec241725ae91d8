import { z } from 'zod';
import { InferenceEndpointSchema } from '../../core/inference/endpoints.js';
import { REWARD_FORMULATIONS } from './rewards.js';
import { AdapterSchema, OptimizerSchema } from '../../core/trainer/protocol.js';
import { RunNameSchema } from '../labels/sample-solutions.input.js';
import { DatasetSourceSchema } from '../labels/input.js';

const S3_URI = /^s3:\/\/[^/]+\/.+/;
const KEY_PREFIX = /^[^/].*[^/]$|^[^/]$/;

/** SPARK's GRPO optimiser: AdamW at 1e-6 (warm-up is set by `grpo.warmupFraction`). */
const DEFAULT_OPTIMIZER = { name: 'adamw' as const, learningRate: 1e-6, betas: [0.9, 0.999] as [number, number], weightDecay: 0, warmupSteps: 0, maxGradNorm: 1 };
const DEFAULT_ADAPTER = { kind: 'lora' as const, rank: 32, alpha: 64, targetModules: ['all-linear'] };

/** Why GRPO rollouts are sampled at temperature 1 without top-p (D2 of issue 21). */
const RAW_LOGITS = 'trainer protocol v1 scores rollouts with raw logits, so another value would train on another distribution than the one sampled';
/** A number that must be 1 (a number, not the literal type, so typed inputs built in code still compile). */
const onlyOne = z.number().min(1, { error: `must be 1 for GRPO rollouts (${RAW_LOGITS})` }).max(1, { error: `must be 1 for GRPO rollouts (${RAW_LOGITS})` });

/** The fields of a GRPO run, shared by `rlTrain` and `coEvolve`. */
export const grpoRunShape = {
    runName: RunNameSchema,
    policy: z.object({
      /** The model to train, as the trainer names it (sandbox: sim-policy). */
      baseModel: z.string().min(1),
      adapter: AdapterSchema.default(DEFAULT_ADAPTER),
      optimizer: OptimizerSchema.default(DEFAULT_OPTIMIZER),
      /** Where rollouts come from: the server that serves the base model and every published step. */
      endpoint: InferenceEndpointSchema,
      /** The base model's name on that server (rollouts before the first publish). */
      model: z.string().min(1),
      /**
       * Rollout sampling. Trainer protocol v1 scores rollouts with raw logits (temperature 1, no
       * nucleus): any other temperature or topP would make the policy gradient, the KL and the
       * entropy those of another distribution than the one sampled, so both must be 1 until the
       * protocol carries them.
       */
      sampling: z
        .object({
          temperature: onlyOne.default(1),
          topP: onlyOne.default(1),
          maxTokens: z.number().int().positive().default(2048),
        })
        .default({ temperature: 1, topP: 1, maxTokens: 2048 }),
      maxInFlight: z.number().int().positive().max(4096).default(64),
    }),
    trainer: z.object({ baseURL: z.url({ protocol: /^https?$/ }) }),
    reward: z.object({
      formulation: z.enum(REWARD_FORMULATIONS).default('selective-advantage'),
      /** The generative PRM; needed by the process formulations. Queried greedily, as SPARK does. */
      prm: z
        .object({
          endpoint: InferenceEndpointSchema,
          model: z.string().min(1),
          style: z.enum(['orm', 'prm', 'prm-cot']).default('prm-cot'),
          maxTokens: z.number().int().positive().default(4096),
          maxInFlight: z.number().int().positive().max(4096).default(64),
        })
        .optional(),
      guards: z
        .object({
          enabled: z.boolean().default(true),
          minSteps: z.number().int().min(1).default(4),
          maxSteps: z.number().int().min(1).default(20),
        })
        .default({ enabled: true, minSteps: 4, maxSteps: 20 }),
    }),
    /** Training prompts; `fields.answer` is needed by the verifiable baseline and shown in metrics when present. */
    dataset: DatasetSourceSchema,
    /** Held-out sets scored greedily every `evaluation.every` steps (accuracy against `fields.answer`). */
    evaluation: z
      .object({
        sets: z.array(DatasetSourceSchema.extend({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a name of letters, digits, ".", "_" or "-"') })).default([]),
        every: z.number().int().min(1).default(20),
        /** Greedy by default; with temperature > 0, accuracy is the mean over `samples` samples per problem. */
        temperature: z.number().min(0).max(2).default(0),
        samples: z.number().int().min(1).max(64).default(1),
        maxTokens: z.number().int().positive().default(2048),
      })
      .default({ sets: [], every: 20, temperature: 0, samples: 1, maxTokens: 2048 }),
    grpo: z
      .object({
        /** Prompts per step (paper: 256). */
        batchSize: z.number().int().min(1).max(4096).default(16),
        /** Rollouts per prompt (paper: 16). */
        groupSize: z.number().int().min(2).max(256).default(8),
        /** KL loss coefficient (paper: 0.001, low-variance KL, not in the reward). */
        klCoefficient: z.number().min(0).default(0.001),
        entropyCoefficient: z.number().min(0).default(0),
        clipRatio: z.number().positive().default(0.2),
        klEstimator: z.enum(['low-var-kl', 'k1', 'k2']).default('low-var-kl'),
        /** Linear warm-up over this share of totalSteps (paper: 1%), then constant. */
        warmupFraction: z.number().min(0).max(1).default(0.01),
      })
      .default({ batchSize: 16, groupSize: 8, klCoefficient: 0.001, entropyCoefficient: 0, clipRatio: 0.2, klEstimator: 'low-var-kl', warmupFraction: 0.01 }),
    totalSteps: z.number().int().min(1).max(1_000_000),
    /** Save a resumable checkpoint every this many steps. */
    checkpointEvery: z.number().int().min(1).default(10),
    /**
     * Publish new weights for rollouts every this many steps (1: fully on-policy). A publish saves a
     * checkpoint first (the inference server loads committed weights), so it is a resume point too.
     */
    publishEvery: z.number().int().min(1).default(1),
    /** Continue from a checkpoint of an earlier run with the same settings and data (refused, naming what differs, otherwise). */
    resumeFrom: z.string().regex(S3_URI, 'an rlTrain checkpoint URI like s3://bucket/runs/<run>/rl/checkpoints/<hash>/step-000120').optional(),
    seed: z.number().int().nonnegative().default(0),
    /** Steps per workflow run before it continues as new (a handful of history events each). */
    stepsPerRun: z.number().int().min(1).max(2000).default(400),
    /** Key prefix of every output; default `runs/<runName>/rl`. */
    outputPrefix: z.string().regex(KEY_PREFIX, 'a key prefix without leading or trailing "/"').optional(),
};

/** The checks of a GRPO run's settings that span several fields, naming the field at fault. */
export function checkGrpoRun(v: Omit<z.output<z.ZodObject<typeof grpoRunShape>>, 'reward'>, ctx: z.RefinementCtx): void {
  for (const [i, set] of v.evaluation.sets.entries()) {
    if (!set.fields.answer) ctx.addIssue({ code: 'custom', path: ['evaluation', 'sets', i, 'fields', 'answer'], message: 'an evaluation set needs the field that holds the reference answer' });
  }
  if (v.evaluation.sets.length > 0 && v.evaluation.every % v.publishEvery !== 0) {
    ctx.addIssue({ code: 'custom', path: ['evaluation', 'every'], message: `must be a multiple of publishEvery (${v.publishEvery}): evaluations score the policy as served` });
  }
  if (v.evaluation.samples > 1 && v.evaluation.temperature === 0) {
    ctx.addIssue({ code: 'custom', path: ['evaluation', 'samples'], message: 'more than one sample needs evaluation.temperature > 0 (greedy samples are all the same)' });
  }
}

/**
 * Input of `rlTrain` (SPARK stage 3): GRPO on a policy with a generative PRM (or a baseline) as
 * the reward, on a trainer server, rollouts from an inference server that serves each published
 * policy under its own name.
 */
export const RlTrainInputSchema = z
  .object(grpoRunShape)
  .strict()
  .superRefine((v, ctx) => {
    const process = v.reward.formulation === 'process-outcome' || v.reward.formulation === 'step-augmented'
      || v.reward.formulation === 'selective-advantage' || v.reward.formulation === 'global-step';
    if (process && !v.reward.prm) ctx.addIssue({ code: 'custom', path: ['reward', 'prm'], message: `formulation "${v.reward.formulation}" needs a PRM (endpoint, model, style)` });
    if (v.reward.formulation === 'verifiable' && !v.dataset.fields.answer) {
      ctx.addIssue({ code: 'custom', path: ['dataset', 'fields', 'answer'], message: 'the verifiable reward needs the field that holds the reference answer' });
    }
    checkGrpoRun(v, ctx);
    if (v.reward.guards.minSteps > v.reward.guards.maxSteps) ctx.addIssue({ code: 'custom', path: ['reward', 'guards', 'minSteps'], message: 'must be at most maxSteps' });
  });
export type RlTrainInput = z.input<typeof RlTrainInputSchema>;
export type RlTrainConfig = z.output<typeof RlTrainInputSchema>;

/** What may change while a run is going (the `setHyperparameters` update), each recorded in the audit log. */
export const HyperparameterUpdateSchema = z
  .object({
    learningRate: z.number().positive().max(1).optional(),
    klCoefficient: z.number().min(0).max(100).optional(),
    /** Why, for the audit log. */
    reason: z.string().max(500).optional(),
  })
  .strict()
  .refine((u) => u.learningRate !== undefined || u.klCoefficient !== undefined, 'give learningRate and/or klCoefficient');
export type HyperparameterUpdate = z.infer<typeof HyperparameterUpdateSchema>;
