import type { RlTrainConfig, RlTrainInput } from '../domain/inputs/rl-train.js';
import { RlTrainInputSchema } from '../domain/inputs/rl-train.js';
import { joinKey } from '../domain/refs.js';
import type { RlTrainResult, RlTrainState } from './grpo-loop.js';
import { decisiveConfigHash, runGrpoLoop } from './grpo-loop.js';
import { parseWorkflowInput } from './validate.js';

export type { AuditEntry, RlTrainProgress, RlTrainResult, RlTrainState } from './grpo-loop.js';
export { pauseSignal, resumeSignal, rlLatestCheckpoint, rlRecentMetrics, rlTrainProgress, setHyperparametersUpdate, stopSignal } from './grpo-loop.js';

/**
 * SPARK stage 3: GRPO with a generative PRM (or a baseline) as the reward, on the shared GRPO loop
 * (./grpo-loop.ts): durable steps, checkpoints, controls, metrics and evaluations.
 */
export async function rlTrain(rawInput: RlTrainInput, carried?: RlTrainState): Promise<RlTrainResult> {
  const config: RlTrainConfig = parseWorkflowInput(RlTrainInputSchema, rawInput, 'rlTrain');
  return runGrpoLoop(config, {
    stage: 'rl-train', rawInput, defaultPrefix: joinKey('runs', config.runName, 'rl'), configHash: decisiveConfigHash(config), recycling: null,
  }, carried);
}
