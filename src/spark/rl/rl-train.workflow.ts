import type { RlTrainConfig, RlTrainInput } from './input.js';
import { RlTrainInputSchema } from './input.js';
import { joinKey } from '../../core/store/refs.js';
import type { RlTrainResult, RlTrainState } from './grpo-loop.workflow.js';
import { decisiveConfigHash, runGrpoLoop } from './grpo-loop.workflow.js';
import { parseWorkflowInput } from '../../core/temporal/validate.js';

export type { AuditEntry, RlTrainProgress, RlTrainResult, RlTrainState } from './grpo-loop.workflow.js';
export { pauseSignal, resumeSignal, rlLatestCheckpoint, rlRecentMetrics, rlTrainProgress, setHyperparametersUpdate, stopSignal } from './grpo-loop.workflow.js';

/**
 * SPARK stage 3: GRPO with a generative PRM (or a baseline) as the reward, on the shared GRPO loop
 * (./grpo-loop.workflow.ts): durable steps, checkpoints, controls, metrics and evaluations.
 */
export async function rlTrain(rawInput: RlTrainInput, carried?: RlTrainState): Promise<RlTrainResult> {
  const config: RlTrainConfig = parseWorkflowInput(RlTrainInputSchema, rawInput, 'rlTrain');
  return runGrpoLoop(config, {
    stage: 'rl-train', rawInput, defaultPrefix: joinKey('runs', config.runName, 'rl'), configHash: decisiveConfigHash(config), extraSteps: null,
  }, carried);
}
