/**
 * Sequential scaling (meta-critique): the critique and merge calls rewrite one verification; these
 * functions turn the parsed merged verification into the final labels of a solution.
 */
import type { AggregationMethod, AggregationResult, CritiqueMethod, MergedVerification, TrainingTarget } from './types.js';
import { changedPositions, enforceConsistency, fitLabels } from './votes.js';

/** Options of the meta-critique methods. */
export interface CritiqueOptions {
  /** Enforce SPARK consistency on the merged labels (default true); see {@link enforceConsistency}. */
  consistency?: boolean;
  /**
   * When the merged verification labels a different number of steps than the solution:
   * `fit` (default) drops extra labels and pads missing ones (see {@link fitLabels});
   * `fallback` keeps the input labels instead.
   */
  onStepMismatch?: 'fit' | 'fallback';
}

function revise(
  method: CritiqueMethod,
  expected: AggregationMethod,
  input: AggregationResult,
  merged: MergedVerification | null,
  options: CritiqueOptions,
): AggregationResult {
  if (input.method !== expected) throw new RangeError(`${method} revises a ${expected} result, got ${input.method}`);
  const keep = (reason: string): AggregationResult => ({
    ...input,
    method,
    stepLabels: [...input.stepLabels],
    fallback: true,
    fallbackReason: reason,
    revision: { from: input.method, changedSteps: [], outcomeChanged: false },
  });
  if (merged === null) return keep('no merged verification');
  if (!merged.parsed.ok) return keep(`merged verification is invalid: ${merged.parsed.reason}`);
  const written = merged.parsed.steps.map((s) => s.correct);
  if (written.length !== input.stepCount && (options.onStepMismatch ?? 'fit') === 'fallback') {
    return keep(`merged verification labels ${written.length} steps, the solution has ${input.stepCount}`);
  }
  const consistency = options.consistency ?? true;
  const fitted = fitLabels(written, input.stepCount, merged.parsed.outcome).labels;
  const { stepLabels, outcome } = consistency
    ? enforceConsistency(fitted, merged.parsed.outcome)
    : { stepLabels: fitted, outcome: merged.parsed.outcome };
  const matchingSteps = stepLabels.filter((l, i) => written[i] === l).length;
  const target: TrainingTarget = {
    sampleIndex: null,
    text: merged.text,
    rule: 'merged',
    agreement: { matchingSteps, stepCount: input.stepCount, outcomeMatches: merged.parsed.outcome === outcome },
  };
  return {
    ...input,
    method,
    stepLabels,
    outcome,
    firstErrorStep: stepLabels.indexOf(false),
    ties: { outcome: false, steps: [] },
    consistent: consistency,
    target,
    fallback: false,
    fallbackReason: null,
    revision: {
      from: input.method,
      changedSteps: changedPositions(input.stepLabels, stepLabels),
      outcomeChanged: input.outcome !== outcome,
    },
  };
}

/**
 * Meta-critique of a single verification: the final labels are those of the merged verification
 * (fitted to the solution, consistent by default), and its text is the training target.
 * Falls back to the `single` labels and target (`fallback: true`, with the reason) when the merged
 * verification is missing or does not parse. Throws a RangeError if `single` is not a `single` result.
 */
export function critiqueSingle(single: AggregationResult, merged: MergedVerification | null, options: CritiqueOptions = {}): AggregationResult {
  return revise('critique-single', 'single', single, merged, options);
}

/**
 * Meta-critique of the outcome-consensus verification (the one {@link outcomeMajority} took its
 * labels from). Same rules and fallback as {@link critiqueSingle}; the input must be an
 * `outcome-majority` result.
 */
export function critiqueOutcomeConsensus(consensus: AggregationResult, merged: MergedVerification | null, options: CritiqueOptions = {}): AggregationResult {
  return revise('critique-outcome-consensus', 'outcome-majority', consensus, merged, options);
}

/**
 * Hybrid: meta-critique on top of the step-level consensus (the critic saw the consensus target).
 * Same rules and fallback as {@link critiqueSingle}; the input must be a `step-majority` result.
 */
export function hybrid(stepConsensus: AggregationResult, merged: MergedVerification | null, options: CritiqueOptions = {}): AggregationResult {
  return revise('hybrid', 'step-majority', stepConsensus, merged, options);
}
