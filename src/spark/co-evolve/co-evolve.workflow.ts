import { proxyActivities } from '@temporalio/workflow';
import type { CoEvolveActivities } from './activities.js';
import type { CoEvolveConfig, CoEvolveInput } from './input.js';
import { CoEvolveInputSchema, grpoConfigOf } from './input.js';
import type { RecycledCacheEntry } from './cache.js';
import { cachedItemCount, takeFromCache } from './cache.js';
import type { RecycleOptions } from './recycling.js';
import { joinKey } from '../../core/store/refs.js';
import { modelBatch } from '../../core/temporal/activity-presets.js';
import type { ExtraStepSource, RlTrainResult, RlTrainState } from '../rl/grpo-loop.workflow.js';
import { decisiveConfigHash, rlTrainProgress, runGrpoLoop } from '../rl/grpo-loop.workflow.js';
import { parseWorkflowInput } from '../../core/temporal/validate.js';

const models = proxyActivities<CoEvolveActivities>(modelBatch);

/** The `progress` query of the GRPO loop (also `rlTrainProgress`). */
export const coEvolveProgress = rlTrainProgress;

/** What co-evolution keeps in the loop's state: its recycled-item cache (counts; the items are in S3). */
function cacheOf(state: Readonly<Record<string, unknown>> | undefined): { cache: RecycledCacheEntry[]; consumed: number } {
  return { cache: (state?.cache as RecycledCacheEntry[] | undefined) ?? [], consumed: (state?.consumed as number | undefined) ?? 0 };
}

/**
 * Co-evolution's extra steps: each rollout step's rollouts are recycled into judging and
 * reflection items (the `recycleRollouts` hook, asked for by `recycle` in the step's input), and
 * whenever the cache holds a full batch the next trainer step is a `recycledRollouts` step on them.
 */
export function recycledItemSteps(recycling: RecycleOptions): ExtraStepSource {
  return {
    kind: 'recycled',
    rolloutOptions: { recycle: recycling },
    initial: (resumed) => cacheOf(resumed),
    next: (state, { config, outputPrefix, step, servedModel, learningRate, klCoefficient }) => {
      const { cache, consumed } = cacheOf(state);
      const taken = takeFromCache(cache, consumed, config.grpo.batchSize);
      if (taken.parts.length === 0) return null;
      return {
        rollouts: () => models.recycledRollouts({ config, outputPrefix, step, parts: taken.parts, servedModel, learningRate, klCoefficient }),
        after: { cache: taken.cache, consumed: taken.consumed },
      };
    },
    afterRollouts: (state, rollouts, rlStep) => {
      const { cache, consumed } = cacheOf(state);
      const recycled = rollouts.recycled as { count: number } | undefined;
      return { cache: [...cache, ...(recycled && recycled.count > 0 ? [{ rlStep, count: recycled.count }] : [])], consumed };
    },
    progress: (state) => {
      const { cache, consumed } = cacheOf(state);
      return { cachedItems: cachedItemCount(cache, consumed) };
    },
  };
}

/**
 * The co-evolving SPARK: GRPO with a verifiable reward whose rollouts are recycled, batch by batch,
 * into pointwise and pairwise judging and reflection items for the same model; each full batch of
 * them is an extra GRPO step, scored against the items' labels. The same loop as `rlTrain`
 * (../rl/grpo-loop.workflow.ts), with {@link recycledItemSteps} plugged in: checkpoints (with the
 * item cache), controls, queries, metrics, crash behaviour. With every item type switched off it is plain RLVR.
 */
export async function coEvolve(rawInput: CoEvolveInput, carried?: RlTrainState): Promise<RlTrainResult> {
  const config: CoEvolveConfig = parseWorkflowInput(CoEvolveInputSchema, rawInput, 'coEvolve');
  return runGrpoLoop(grpoConfigOf(config), {
    stage: 'co-evolve', rawInput, defaultPrefix: joinKey('runs', config.runName, 'co-evolve'), configHash: decisiveConfigHash(config), extraSteps: recycledItemSteps(config.recycling),
  }, carried);
}
