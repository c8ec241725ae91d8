/**
 * Choosing the training target of a solution: one verification text whose labels agree with the consensus.
 */
import type { SampledVerification, TargetRule, TrainingTarget } from './types.js';
import { splitValid } from './votes.js';
import type { ValidVerification } from './votes.js';

/** The consensus a target must agree with. */
export interface Consensus {
  /** One label per solution step, true = correct. */
  stepLabels: readonly boolean[];
  outcome: boolean;
}

/** No training target. */
export const NO_TARGET: TrainingTarget = { sampleIndex: null, text: null, rule: 'none', agreement: null };

function agreementOf(v: ValidVerification, consensus: Consensus): { matchingSteps: number; stepCount: number; outcomeMatches: boolean } {
  let matchingSteps = 0;
  for (const [i, label] of consensus.stepLabels.entries()) if (v.labels[i] === label) matchingSteps++;
  return { matchingSteps, stepCount: consensus.stepLabels.length, outcomeMatches: v.outcome === consensus.outcome };
}

/**
 * Picks the verification text to train on.
 *
 * 1. Exact agreement: the lowest-index valid verification that labels exactly the solution's steps
 *    (no more, no fewer), each as the consensus does, with the same outcome.
 * 2. Otherwise, by `rule`: `closest` (default) takes the one with the most matching step labels
 *    (an unlabelled step never matches), then a matching outcome, then the lowest sample index;
 *    `none` gives no target.
 *
 * Invalid verifications are never chosen; without a valid one there is no target.
 */
export function selectTarget(verifs: readonly SampledVerification[], consensus: Consensus, rule: TargetRule = 'closest'): TrainingTarget {
  return selectTargetFromValid(splitValid(verifs).valid, consensus, rule);
}

/** {@link selectTarget} over valid verifications sorted by sample index. */
export function selectTargetFromValid(valid: readonly ValidVerification[], consensus: Consensus, rule: TargetRule): TrainingTarget {
  let best: { v: ValidVerification; agreement: ReturnType<typeof agreementOf> } | null = null;
  for (const v of valid) {
    const agreement = agreementOf(v, consensus);
    if (agreement.outcomeMatches && agreement.matchingSteps === agreement.stepCount && v.labels.length === agreement.stepCount) {
      return { sampleIndex: v.sampleIndex, text: v.text, rule: 'exact', agreement };
    }
    const better = best === null
      || agreement.matchingSteps > best.agreement.matchingSteps
      || (agreement.matchingSteps === best.agreement.matchingSteps && agreement.outcomeMatches && !best.agreement.outcomeMatches);
    if (better) best = { v, agreement };
  }
  if (rule === 'none' || best === null) return NO_TARGET;
  return { sampleIndex: best.v.sampleIndex, text: best.v.text, rule: 'closest', agreement: best.agreement };
}
