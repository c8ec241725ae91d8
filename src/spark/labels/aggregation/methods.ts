/**
 * Parallel scaling over the K verifications of one solution: a single verification, the
 * outcome-level majority and the step-level majority (SPARK stage 1).
 */
import { selectTargetFromValid } from './target.js';
import type {
  AggregationFailure, AggregationOutcome, AggregationResult, OutcomeTieRule, SampledVerification, StepTieRule, TargetRule, VoteMethod,
} from './types.js';
import { assertStepCount, decideOutcome, decideStep, enforceConsistency, fitLabels, splitValid, tallyValid } from './votes.js';
import type { ValidVerification } from './votes.js';

/** Options of {@link singleVerification}. */
export interface SingleOptions {
  /** Enforce SPARK consistency on the chosen labels (default false: labels as written). */
  consistency?: boolean;
  /** Target rule when the fitted labels match no verification exactly (default `closest`). */
  targetRule?: TargetRule;
}

/** Options of {@link outcomeMajority}. */
export interface OutcomeMajorityOptions extends SingleOptions {
  /** How a tied Yes/No vote is decided (default `no`). */
  tieRule?: OutcomeTieRule;
}

/** Options of {@link stepMajority}. */
export interface StepMajorityOptions {
  /** How a tied step vote is decided (default `incorrect`). */
  tieRule?: StepTieRule;
  /** Enforce SPARK consistency (default true); see {@link enforceConsistency}. */
  consistency?: boolean;
  /** Without consistency the outcome is the Yes/No majority, ties decided by this rule (default `no`). */
  outcomeTieRule?: OutcomeTieRule;
  /** Target rule when no verification agrees exactly (default `closest`). */
  targetRule?: TargetRule;
}

type Prepared =
  | { ok: true; valid: ValidVerification[]; invalid: number }
  | AggregationFailure;

function prepare(method: VoteMethod, verifs: readonly SampledVerification[], stepCount: number): Prepared {
  assertStepCount(stepCount);
  const { valid, invalid } = splitValid(verifs);
  const counts = { valid: valid.length, invalid };
  if (stepCount === 0) return { ok: false, method, reason: 'the solution has no steps', counts };
  if (valid.length === 0) return { ok: false, method, reason: `none of the ${verifs.length} verifications is valid`, counts };
  return { ok: true, valid, invalid };
}

interface Labelled {
  stepLabels: boolean[];
  outcome: boolean;
  ties: { outcome: boolean; steps: number[] };
  consistency: boolean;
  targetRule: TargetRule;
}

function finish(method: VoteMethod, p: { valid: ValidVerification[]; invalid: number }, stepCount: number, l: Labelled): AggregationResult {
  const { stepLabels, outcome } = l.consistency ? enforceConsistency(l.stepLabels, l.outcome) : l;
  const tally = tallyValid(p.valid, stepCount);
  return {
    ok: true,
    method,
    stepCount,
    stepLabels,
    outcome,
    firstErrorStep: stepLabels.indexOf(false),
    votes: tally.steps,
    outcomeVotes: tally.outcome,
    counts: { valid: p.valid.length, invalid: p.invalid },
    ties: l.ties,
    consistent: l.consistency,
    target: selectTargetFromValid(p.valid, { stepLabels, outcome }, l.targetRule),
    fallback: false,
    fallbackReason: null,
    revision: null,
  };
}

/**
 * No scaling: the labels and verdict of the valid verification with the lowest sample index,
 * fitted to `stepCount` steps (see {@link fitLabels}).
 *
 * Returns `ok: false` when no verification is valid or the solution has no steps.
 */
export function singleVerification(verifs: readonly SampledVerification[], stepCount: number, options: SingleOptions = {}): AggregationOutcome {
  const p = prepare('single', verifs, stepCount);
  if (!p.ok) return p;
  const first = p.valid[0]!;
  return finish('single', p, stepCount, {
    stepLabels: fitLabels(first.labels, stepCount, first.outcome).labels,
    outcome: first.outcome,
    ties: { outcome: false, steps: [] },
    consistency: options.consistency ?? false,
    targetRule: options.targetRule ?? 'closest',
  });
}

/**
 * Outcome-level self-consistency: the majority of the Yes/No verdicts (ties by `tieRule`, default
 * `no`). The step labels are those of one verification with the majority verdict: the lowest sample
 * index among those that label every step, else the lowest sample index among them all (its labels
 * fitted with {@link fitLabels}).
 *
 * Returns `ok: false` when no verification is valid or the solution has no steps.
 */
export function outcomeMajority(verifs: readonly SampledVerification[], stepCount: number, options: OutcomeMajorityOptions = {}): AggregationOutcome {
  const p = prepare('outcome-majority', verifs, stepCount);
  if (!p.ok) return p;
  const tally = tallyValid(p.valid, stepCount);
  const decided = decideOutcome(tally.outcome, options.tieRule ?? 'no', p.valid[0]?.outcome);
  const agreeing = p.valid.filter((v) => v.outcome === decided.outcome);
  // Non-empty: a strict majority has voters, and a tie has voters on both sides.
  const chosen = agreeing.find((v) => v.labels.length >= stepCount) ?? agreeing[0]!;
  return finish('outcome-majority', p, stepCount, {
    stepLabels: fitLabels(chosen.labels, stepCount, chosen.outcome).labels,
    outcome: decided.outcome,
    ties: { outcome: decided.tie, steps: [] },
    consistency: options.consistency ?? false,
    targetRule: options.targetRule ?? 'closest',
  });
}

/**
 * Step-level self-consistency (the paper's best): for each step an independent majority over the
 * verifications that labelled it. A verification with fewer steps than the solution does not vote on
 * the missing ones; labels beyond the solution's steps are ignored. Ties (including a step nobody
 * labelled, 0–0) follow `tieRule` (default `incorrect`); `ties.steps` lists them before consistency.
 *
 * With `consistency` (default true) every step after the first incorrect one becomes incorrect
 * and the outcome is No exactly when a step is incorrect; the Yes/No votes are then not used.
 * Without it the step labels stay as voted and the outcome is the Yes/No majority (`outcomeTieRule`).
 *
 * Returns `ok: false` when no verification is valid or the solution has no steps.
 */
export function stepMajority(verifs: readonly SampledVerification[], stepCount: number, options: StepMajorityOptions = {}): AggregationOutcome {
  const p = prepare('step-majority', verifs, stepCount);
  if (!p.ok) return p;
  const tieRule = options.tieRule ?? 'incorrect';
  const consistency = options.consistency ?? true;
  const tally = tallyValid(p.valid, stepCount);
  const tiedSteps: number[] = [];
  const stepLabels = tally.steps.map((votes, i) => {
    const first = p.valid.find((v) => v.labels[i] !== undefined)?.labels[i];
    const d = decideStep(votes, tieRule, first);
    if (d.tie) tiedSteps.push(i);
    return d.correct;
  });
  const voted = decideOutcome(tally.outcome, options.outcomeTieRule ?? 'no', p.valid[0]?.outcome);
  return finish('step-majority', p, stepCount, {
    stepLabels,
    outcome: voted.outcome,
    ties: { outcome: !consistency && voted.tie, steps: tiedSteps },
    consistency,
    targetRule: options.targetRule ?? 'closest',
  });
}

/** Options of {@link aggregateVerifications}: the options of every vote method. */
export interface AggregateOptions {
  outcomeTieRule?: OutcomeTieRule;
  stepTieRule?: StepTieRule;
  /** Default per method: false for `single` and `outcome-majority`, true for `step-majority`. */
  consistency?: boolean;
  targetRule?: TargetRule;
}

/** Runs one of the vote methods by name. */
export function aggregateVerifications(
  method: VoteMethod,
  verifs: readonly SampledVerification[],
  stepCount: number,
  options: AggregateOptions = {},
): AggregationOutcome {
  const { consistency, targetRule } = options;
  switch (method) {
    case 'single': return singleVerification(verifs, stepCount, { consistency, targetRule });
    case 'outcome-majority': return outcomeMajority(verifs, stepCount, { consistency, targetRule, tieRule: options.outcomeTieRule });
    case 'step-majority':
      return stepMajority(verifs, stepCount, { consistency, targetRule, tieRule: options.stepTieRule, outcomeTieRule: options.outcomeTieRule });
  }
}
