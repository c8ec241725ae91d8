/**
 * SPARK stage 1 aggregation: from the K verifications of a solution (and, for the meta-critique
 * methods, the merged verification) to consensus step labels, an outcome and a training target;
 * adaptive stopping; label-quality metrics. Pure: no I/O, no Node built-ins.
 */
export * from './aggregation/types.js';
export {
  assertStepCount, changedPositions, decideOutcome, decideStep, enforceConsistency, fitLabels, splitValid, tallyValid, tallyVotes,
} from './aggregation/votes.js';
export type { ValidVerification } from './aggregation/votes.js';
export { NO_TARGET, selectTarget, selectTargetFromValid } from './aggregation/target.js';
export type { Consensus } from './aggregation/target.js';
export { aggregateVerifications, outcomeMajority, singleVerification, stepMajority } from './aggregation/methods.js';
export type { AggregateOptions, OutcomeMajorityOptions, SingleOptions, StepMajorityOptions } from './aggregation/methods.js';
export { critiqueOutcomeConsensus, critiqueSingle, hybrid } from './aggregation/critique.js';
export type { CritiqueOptions } from './aggregation/critique.js';
export { stepMajorityConfident, stepMajorityDecided } from './aggregation/adaptive.js';
export type { ConfidenceOptions, DecidedOptions } from './aggregation/adaptive.js';
export { firstErrorF1, outcomeAccuracy } from './aggregation/metrics.js';
export type { FirstErrorScores, OutcomeScores } from './aggregation/metrics.js';
