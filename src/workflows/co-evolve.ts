import type { CoEvolveConfig, CoEvolveInput } from '../domain/inputs/co-evolve.js';
import { CoEvolveInputSchema, grpoConfigOf } from '../domain/inputs/co-evolve.js';
import { joinKey } from '../domain/refs.js';
import type { RlTrainResult, RlTrainState } from './grpo-loop.js';
import { decisiveConfigHash, rlTrainProgress, runGrpoLoop } from './grpo-loop.js';
import { parseWorkflowInput } from './validate.js';

/** The `progress` query of the GRPO loop (also `rlTrainProgress`). */
export const coEvolveProgress = rlTrainProgress;

/**
 * The co-evolving SPARK: GRPO with a verifiable reward whose rollouts are recycled, batch by batch,
 * into pointwise and pairwise judging and reflection items for the same model; each full batch of
 * them is an extra GRPO step, scored against the items' labels. The same loop as `rlTrain`
 * (./grpo-loop.ts): checkpoints (with the item cache), controls, queries, metrics, crash behaviour.
 * With every item type switched off it is plain RLVR.
 */
export async function coEvolve(rawInput: CoEvolveInput, carried?: RlTrainState): Promise<RlTrainResult> {
  const config: CoEvolveConfig = parseWorkflowInput(CoEvolveInputSchema, rawInput, 'coEvolve');
  const { recycling } = config;
  return runGrpoLoop(grpoConfigOf(config), {
    stage: 'co-evolve', rawInput, defaultPrefix: joinKey('runs', config.runName, 'co-evolve'), configHash: decisiveConfigHash(config), recycling,
  }, carried);
}
