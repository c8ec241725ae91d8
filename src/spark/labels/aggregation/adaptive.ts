/**
 * Adaptive self-consistency: decide, from the votes so far, whether drawing more verifications
 * of a solution can still change its step-majority labels.
 */
import type { OutcomeTieRule, StepTieRule, StepVotes, VoteTally } from './types.js';

/** Which final labels a binary vote can still reach; `tie` says who wins a tie (`unknown` = either). */
function reachable(a: number, b: number, remaining: number, tie: 'a' | 'b' | 'unknown'): { a: boolean; b: boolean } {
  // Remaining votes may go either way or not be cast at all (invalid or shorter verifications).
  return {
    a: a + remaining > b || (a + remaining === b && tie !== 'b'),
    b: b + remaining > a || (b + remaining === a && tie !== 'a'),
  };
}

function stepReach(v: StepVotes, remaining: number, tieRule: StepTieRule): { correct: boolean; incorrect: boolean } {
  const tie = tieRule === 'correct' ? 'a' : tieRule === 'incorrect' ? 'b' : 'unknown';
  const r = reachable(v.correct, v.incorrect, remaining, tie);
  return { correct: r.a, incorrect: r.b };
}

function outcomeDecided(tally: VoteTally, remaining: number, tieRule: OutcomeTieRule): boolean {
  const tie = tieRule === 'yes' ? 'a' : tieRule === 'no' ? 'b' : 'unknown';
  const r = reachable(tally.outcome.yes, tally.outcome.no, remaining, tie);
  return !(r.a && r.b);
}

function assertRemaining(remaining: number): void {
  if (!Number.isInteger(remaining) || remaining < 0) throw new RangeError(`remaining must be a non-negative integer, got ${remaining}`);
}

/** Options of {@link stepMajorityDecided}; they mirror {@link stepMajority}'s. */
export interface DecidedOptions {
  /** SPARK consistency (default true): only the position of the first incorrect step matters. */
  consistency?: boolean;
  /** Without consistency the outcome is a Yes/No majority decided by this tie rule (default `no`). */
  outcomeTieRule?: OutcomeTieRule;
}

/**
 * True when no way of casting the `remaining` votes can change the final step-majority labels
 * (nor the outcome), so drawing more verifications is pointless. Every remaining verification may
 * vote either way on each step or not vote at all (it may be invalid or label fewer steps).
 *
 * With consistency (default) the final labels depend only on the first step whose majority is
 * incorrect, and the outcome follows from the labels: the result is decided when, scanning the
 * steps in order, every step is certain to stay correct up to one certain to end incorrect (or
 * the end). Without it every step and the Yes/No majority must be settled on their own.
 *
 * Tie rule `first` is treated as unknown (the tally does not record who voted first): a reachable
 * tie counts as undecided. With `remaining` = 0 the answer is always true.
 */
export function stepMajorityDecided(
  votesSoFar: VoteTally,
  remaining: number,
  tieRule: StepTieRule = 'incorrect',
  options: DecidedOptions = {},
): boolean {
  assertRemaining(remaining);
  if (remaining === 0) return true;
  const consistency = options.consistency ?? true;
  if (consistency) {
    if (votesSoFar.steps.length === 0) return outcomeDecided(votesSoFar, remaining, options.outcomeTieRule ?? 'no');
    for (const step of votesSoFar.steps) {
      const r = stepReach(step, remaining, tieRule);
      if (r.correct && r.incorrect) return false;
      if (r.incorrect) return true;
    }
    return true;
  }
  const stepsSettled = votesSoFar.steps.every((step) => {
    const r = stepReach(step, remaining, tieRule);
    return !(r.correct && r.incorrect);
  });
  return stepsSettled && outcomeDecided(votesSoFar, remaining, options.outcomeTieRule ?? 'no');
}

/** Options of {@link stepMajorityConfident}. */
export interface ConfidenceOptions {
  /** Minimum share of the majority label on each relevant step, in (0.5, 1]. */
  threshold: number;
  /** Minimum number of valid verifications (Yes + No votes) before stopping, ≥ 1. */
  minVotes: number;
  /** As in {@link stepMajority} (default true): steps after the first incorrect one do not matter. */
  consistency?: boolean;
}

function share(a: number, b: number): number {
  return a + b === 0 ? 0 : Math.max(a, b) / (a + b);
}

/**
 * A looser stopping rule: true once at least `minVotes` valid verifications are in and every
 * relevant step has a strict majority holding at least `threshold` of its votes. With consistency
 * (default) the relevant steps run up to and including the first step whose majority is incorrect;
 * without it all steps count and the Yes/No majority must also reach the threshold. A tied or
 * unvoted relevant step is never confident.
 */
export function stepMajorityConfident(votesSoFar: VoteTally, options: ConfidenceOptions): boolean {
  const { threshold, minVotes } = options;
  if (!(threshold > 0.5 && threshold <= 1)) throw new RangeError(`threshold must be in (0.5, 1], got ${threshold}`);
  if (!Number.isInteger(minVotes) || minVotes < 1) throw new RangeError(`minVotes must be a positive integer, got ${minVotes}`);
  const cast = votesSoFar.outcome.yes + votesSoFar.outcome.no;
  if (cast < minVotes) return false;
  const consistency = options.consistency ?? true;
  for (const step of votesSoFar.steps) {
    if (step.correct === step.incorrect || share(step.correct, step.incorrect) < threshold) return false;
    if (consistency && step.incorrect > step.correct) return true;
  }
  if (consistency && votesSoFar.steps.length > 0) return true;
  const { yes, no } = votesSoFar.outcome;
  return yes !== no && share(yes, no) >= threshold;
}
