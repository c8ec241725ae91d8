/**
 * Vote counting over the verifications of one solution, label fitting and SPARK consistency.
 */
import type { OutcomeTieRule, OutcomeVotes, SampledVerification, StepTieRule, StepVotes, VoteTally } from './types.js';

/** A verification that parsed, reduced to what aggregation needs. */
export interface ValidVerification {
  sampleIndex: number;
  text: string;
  /** Labels as written, true = correct; may be shorter or longer than the solution. */
  labels: boolean[];
  outcome: boolean;
}

/** Throws unless `stepCount` is a non-negative integer. */
export function assertStepCount(stepCount: number): void {
  if (!Number.isInteger(stepCount) || stepCount < 0) throw new RangeError(`stepCount must be a non-negative integer, got ${stepCount}`);
}

/**
 * The valid verifications, sorted by sample index, and how many were invalid.
 * Throws a RangeError on a repeated sample index (the caller mixed up samples).
 */
export function splitValid(verifs: readonly SampledVerification[]): { valid: ValidVerification[]; invalid: number } {
  const seen = new Set<number>();
  const valid: ValidVerification[] = [];
  let invalid = 0;
  for (const v of verifs) {
    if (seen.has(v.sampleIndex)) throw new RangeError(`sample index ${v.sampleIndex} appears twice`);
    seen.add(v.sampleIndex);
    if (v.parsed.ok) valid.push({ sampleIndex: v.sampleIndex, text: v.text, labels: v.parsed.steps.map((s) => s.correct), outcome: v.parsed.outcome });
    else invalid++;
  }
  valid.sort((a, b) => a.sampleIndex - b.sampleIndex);
  return { valid, invalid };
}

/**
 * Counts the votes of valid verifications on a solution with `stepCount` steps. A verification votes
 * on each step it labelled; labels beyond `stepCount` are ignored; each one votes once on the outcome.
 */
export function tallyVotes(verifs: readonly SampledVerification[], stepCount: number): VoteTally {
  assertStepCount(stepCount);
  return tallyValid(splitValid(verifs).valid, stepCount);
}

/** {@link tallyVotes} over already-validated verifications. */
export function tallyValid(valid: readonly ValidVerification[], stepCount: number): VoteTally {
  const steps: StepVotes[] = Array.from({ length: stepCount }, () => ({ correct: 0, incorrect: 0 }));
  const outcome: OutcomeVotes = { yes: 0, no: 0 };
  for (const v of valid) {
    for (const [i, step] of steps.entries()) {
      const label = v.labels[i];
      if (label === undefined) break;
      if (label) step.correct++;
      else step.incorrect++;
    }
    if (v.outcome) outcome.yes++;
    else outcome.no++;
  }
  return { steps, outcome };
}

/**
 * Fits one verification's labels to a solution with `stepCount` steps: extra labels are dropped;
 * missing steps are labelled correct only if no written label is incorrect and the outcome is Yes
 * (a No verdict with all written steps correct puts the error among the unlabelled steps; an
 * earlier incorrect step makes the later ones incorrect). Returns whether padding happened.
 */
export function fitLabels(labels: readonly boolean[], stepCount: number, outcome: boolean): { labels: boolean[]; padded: boolean } {
  const kept = labels.slice(0, stepCount);
  if (kept.length === stepCount) return { labels: kept, padded: false };
  const fill = outcome && !kept.includes(false);
  return { labels: [...kept, ...Array.from({ length: stepCount - kept.length }, () => fill)], padded: true };
}

/**
 * SPARK consistency: every step after the first incorrect one is incorrect, and the outcome is
 * No exactly when some step is incorrect. With no steps the outcome is left as given.
 */
export function enforceConsistency(labels: readonly boolean[], outcome: boolean): { stepLabels: boolean[]; outcome: boolean } {
  if (labels.length === 0) return { stepLabels: [], outcome };
  const first = labels.indexOf(false);
  if (first < 0) return { stepLabels: [...labels], outcome: true };
  return { stepLabels: labels.map((l, i) => i < first && l), outcome: false };
}

/** Yes/No majority; `first` is the verdict of the lowest-index valid verification (used by tie rule `first`). */
export function decideOutcome(votes: OutcomeVotes, tieRule: OutcomeTieRule, first: boolean | undefined): { outcome: boolean; tie: boolean } {
  if (votes.yes !== votes.no) return { outcome: votes.yes > votes.no, tie: false };
  const outcome = tieRule === 'yes' ? true : tieRule === 'first' ? first ?? false : false;
  return { outcome, tie: true };
}

/** Majority label of one step; `first` is the label of the lowest-index verification that labelled it. */
export function decideStep(votes: StepVotes, tieRule: StepTieRule, first: boolean | undefined): { correct: boolean; tie: boolean } {
  if (votes.correct !== votes.incorrect) return { correct: votes.correct > votes.incorrect, tie: false };
  const correct = tieRule === 'correct' ? true : tieRule === 'first' ? first ?? false : false;
  return { correct, tie: true };
}

/** Labels that differ between two equally long label lists, as 0-based positions. */
export function changedPositions(a: readonly boolean[], b: readonly boolean[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) out.push(i);
  return out;
}
