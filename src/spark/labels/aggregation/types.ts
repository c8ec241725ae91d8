/**
 * Types shared by the SPARK stage-1 aggregation functions: the verifications going in, the
 * per-solution consensus coming out, and the rules that resolve ties.
 */
import type { VerificationParse } from '../../common/formats.js';

/**
 * How the K verifications of one solution become one set of labels.
 *
 * - `single`: the first valid verification (lowest sample index), no scaling.
 * - `outcome-majority`: majority of the Yes/No verdicts; step labels from one verification that agrees.
 * - `step-majority`: an independent majority per step (the paper's best).
 * - `critique-single`: meta-critique (critique + merge) of the `single` verification.
 * - `critique-outcome-consensus`: meta-critique of the `outcome-majority` verification.
 * - `hybrid`: meta-critique on top of the `step-majority` consensus.
 */
export type AggregationMethod =
  | 'single'
  | 'outcome-majority'
  | 'step-majority'
  | 'critique-single'
  | 'critique-outcome-consensus'
  | 'hybrid';

/** The methods that work on the K verifications alone (no critique calls). */
export type VoteMethod = Extract<AggregationMethod, 'single' | 'outcome-majority' | 'step-majority'>;

/** The meta-critique methods (they need a merged verification). */
export type CritiqueMethod = Exclude<AggregationMethod, VoteMethod>;

/** One of the K verifier samples of a solution, parsed or not. */
export interface SampledVerification {
  /** Position of the sample among the K (0-based); lower means drawn first. Unique per solution. */
  sampleIndex: number;
  /** The verification text as the verifier wrote it. */
  text: string;
  /** `parseVerification(text)`; invalid samples are counted and otherwise ignored. */
  parsed: VerificationParse;
}

/** A verification rewritten by the merge call of the meta-critique. */
export interface MergedVerification {
  /** The merged verification text (the training target of the critique methods). */
  text: string;
  /** `parseVerification(text)`. */
  parsed: VerificationParse;
}

/** Votes on one step: how many verifications labelled it correct and incorrect. */
export interface StepVotes {
  correct: number;
  incorrect: number;
}

/** Votes on the final answer: how many verifications said Yes and No. */
export interface OutcomeVotes {
  yes: number;
  no: number;
}

/** All votes of a set of verifications on one solution. */
export interface VoteTally {
  /** One entry per solution step (length = stepCount); steps a verification did not label get no vote from it. */
  steps: StepVotes[];
  /** One Yes/No vote per valid verification. */
  outcome: OutcomeVotes;
}

/**
 * How a tied Yes/No vote is decided.
 * - `no` (default): ties count as incorrect, the conservative choice for reward labels;
 * - `yes`: ties count as correct;
 * - `first`: the verdict of the valid verification with the lowest sample index.
 */
export type OutcomeTieRule = 'no' | 'yes' | 'first';

/**
 * How a tied vote on one step is decided (a step nobody labelled is a 0–0 tie).
 * - `incorrect` (default): conservative;
 * - `correct`;
 * - `first`: the label of the lowest-index verification that labelled the step; `incorrect` when none did.
 */
export type StepTieRule = 'incorrect' | 'correct' | 'first';

/**
 * What to do when no valid verification agrees exactly with the consensus.
 * - `closest` (default): the one with the most matching step labels, then a matching outcome, then the lowest index;
 * - `none`: no training target for this solution.
 */
export type TargetRule = 'closest' | 'none';

/**
 * How a training target was picked.
 * - `exact`: the lowest-index verification whose labels and outcome all equal the consensus;
 * - `closest`: the best partial match (see {@link TargetRule});
 * - `merged`: the merged verification of a meta-critique;
 * - `none`: no target (nothing agrees under rule `none`, or no valid verification).
 */
export type TargetPick = 'exact' | 'closest' | 'merged' | 'none';

/** The verification text chosen as the training target of one solution. */
export interface TrainingTarget {
  /** Sample index of the chosen verification; null for a merged verification or no target. */
  sampleIndex: number | null;
  /** The chosen text; null when there is no target. */
  text: string | null;
  /** Which rule picked it. */
  rule: TargetPick;
  /** How well the chosen text agrees with the consensus; null when there is no target. */
  agreement: { matchingSteps: number; stepCount: number; outcomeMatches: boolean } | null;
}

/** What a meta-critique changed relative to the labels it revised. */
export interface Revision {
  /** The method whose result was critiqued. */
  from: AggregationMethod;
  /** 0-based steps whose final label differs from the input labels. */
  changedSteps: number[];
  /** Whether the final outcome differs from the input outcome. */
  outcomeChanged: boolean;
}

/** The consensus labels of one solution. */
export interface AggregationResult {
  ok: true;
  method: AggregationMethod;
  /** Number of steps of the solution. */
  stepCount: number;
  /** One label per solution step, true = correct. */
  stepLabels: boolean[];
  /** Final verdict, true = Yes. */
  outcome: boolean;
  /** 0-based first incorrect step, -1 when every step is correct (the ProcessBench label). */
  firstErrorStep: number;
  /** Votes of all valid verifications on each step (diagnostic whatever the method). */
  votes: StepVotes[];
  /** Yes/No votes of all valid verifications. */
  outcomeVotes: OutcomeVotes;
  /** How many of the given verifications parsed and how many did not. */
  counts: { valid: number; invalid: number };
  /** Where a tie rule decided: the outcome vote and/or 0-based steps. */
  ties: { outcome: boolean; steps: number[] };
  /** Whether SPARK consistency was enforced (see {@link enforceConsistency}). */
  consistent: boolean;
  /** The training target for this solution. */
  target: TrainingTarget;
  /** True when a meta-critique could not use its merged verification and kept the input labels. */
  fallback: boolean;
  /** Why the merged verification was not used; null without fallback. */
  fallbackReason: string | null;
  /** For meta-critique methods: what the critique changed; null otherwise. */
  revision: Revision | null;
}

/** No consensus could be formed for a solution. */
export interface AggregationFailure {
  ok: false;
  method: AggregationMethod;
  /** Why, e.g. no valid verification among the K. */
  reason: string;
  counts: { valid: number; invalid: number };
}

/** The result of aggregating the verifications of one solution. */
export type AggregationOutcome = AggregationResult | AggregationFailure;
