import { z } from 'zod';
import { SPARK_RECYCLING } from './recycling.js';
import type { RlTrainConfig } from '../rl/input.js';
import { checkGrpoRun, grpoRunShape } from '../rl/input.js';

const { reward: _reward, ...grpoFields } = grpoRunShape;

/** Which recycled items a run builds (each type can be switched off for ablations), and how many. */
export const RecyclingSchema = z
  .object({
    pointwise: z.boolean().default(SPARK_RECYCLING.pointwise),
    pairwise: z.boolean().default(SPARK_RECYCLING.pairwise),
    reflection: z.boolean().default(SPARK_RECYCLING.reflection),
    /** Per batch: judging items (pointwise and pairwise together) and reflection items (paper: 32 each). */
    maxJudging: z.number().int().min(0).max(4096).default(SPARK_RECYCLING.maxJudging),
    maxReflection: z.number().int().min(0).max(4096).default(SPARK_RECYCLING.maxReflection),
    /** Mixed groups: the chance of a pointwise item (paper 0.3) and of a pairwise item (paper 0.7). */
    mixedPointwise: z.number().min(0).max(1).default(SPARK_RECYCLING.mixedPointwise),
    mixedPairwise: z.number().min(0).max(1).default(SPARK_RECYCLING.mixedPairwise),
  })
  .strict()
  .default(SPARK_RECYCLING);

/**
 * Input of `coEvolve` (the co-evolving SPARK): GRPO with a verifiable reward (the boxed answer
 * against the dataset's reference) whose rollouts are recycled into judging and reflection items
 * for the same model; each full batch of them is an extra GRPO step. With every item type off it
 * is plain RLVR.
 */
export const CoEvolveInputSchema = z
  .object({ ...grpoFields, recycling: RecyclingSchema })
  .strict()
  .superRefine((v, ctx) => {
    checkGrpoRun(v, ctx);
    if (!v.dataset.fields.answer) {
      ctx.addIssue({ code: 'custom', path: ['dataset', 'fields', 'answer'], message: 'the verifiable reward needs the field that holds the reference answer' });
    }
    if (v.publishEvery !== 1) {
      ctx.addIssue({ code: 'custom', path: ['publishEvery'], message: 'must be 1: recycled items are judged by the policy as served, so every step is published' });
    }
  });
export type CoEvolveInput = z.input<typeof CoEvolveInputSchema>;
export type CoEvolveConfig = z.output<typeof CoEvolveInputSchema>;
export type RecyclingConfig = CoEvolveConfig['recycling'];

/** The GRPO settings the shared activities read: the verifiable reward behind the format gate, no step-count guard (the range is only reported). */
export function grpoConfigOf(config: CoEvolveConfig): RlTrainConfig {
  const { recycling: _recycling, ...rest } = config;
  return { ...rest, reward: { formulation: 'verifiable', guards: { enabled: false, minSteps: 4, maxSteps: 20 } } };
}
