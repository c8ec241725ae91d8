/**
 * SPARK stage 1 per solution, as pure functions: how many verifications to draw next (parse
 * retries, adaptive stop), which verification each meta-critique revises, the labels of every
 * chosen method, and the JSONL line the labels dataset stores. The activities do the I/O.
 */
import type {
  AggregateOptions, AggregationMethod, AggregationOutcome, AggregationResult, CritiqueMethod, MergedVerification, SampledVerification, VoteMethod,
} from './aggregation.js';
import {
  aggregateVerifications, critiqueOutcomeConsensus, critiqueSingle, hybrid, stepMajorityConfident, stepMajorityDecided, tallyVotes,
} from './aggregation.js';
import { renderVerification } from '../common/formats.js';

/** What the verification loop needs to know about a run. */
export interface DrawPolicy {
  /** K: valid verifications wanted per solution. */
  k: number;
  /** Extra draws allowed per solution to replace verifications that cannot be parsed. */
  parseRetries: number;
  adaptive: { enabled: boolean; initial: number; step: number; confidence?: number | undefined };
  aggregation: AggregateOptions;
}

/** The next verifications to draw for a solution, or why drawing is over. */
export type DrawDecision =
  | { done: false; indices: number[] }
  | { done: true; reason: 'complete' | 'decided' | 'confident' | 'retries-exhausted' | 'no-steps' };

/**
 * Decides the next draw from the verifications drawn so far (sample indices 0..d-1, in order).
 *
 * Without adaptive stopping: K at once, then one replacement per unparseable verification while
 * the budget K + parseRetries lasts. With it: `initial` first, then `step` at a time, stopping
 * as soon as no way of casting the votes still missing (up to K valid) can change the
 * step-majority labels, or (with `confidence`) once every relevant step holds that share.
 */
export function nextDraw(drawn: readonly SampledVerification[], stepCount: number, policy: DrawPolicy): DrawDecision {
  if (stepCount === 0) return { done: true, reason: 'no-steps' };
  const d = drawn.length;
  const valid = drawn.filter((v) => v.parsed.ok).length;
  const budget = policy.k + policy.parseRetries;
  if (valid >= policy.k) return { done: true, reason: 'complete' };
  if (d >= budget) return { done: true, reason: 'retries-exhausted' };
  const { adaptive } = policy;
  if (adaptive.enabled && valid > 0) {
    const tally = tallyVotes(drawn, stepCount);
    const options = { consistency: policy.aggregation.consistency ?? true, outcomeTieRule: policy.aggregation.outcomeTieRule };
    if (stepMajorityDecided(tally, policy.k - valid, policy.aggregation.stepTieRule ?? 'incorrect', options)) return { done: true, reason: 'decided' };
    if (adaptive.confidence !== undefined
      && stepMajorityConfident(tally, { threshold: adaptive.confidence, minVotes: Math.min(adaptive.initial, policy.k), consistency: options.consistency })) {
      return { done: true, reason: 'confident' };
    }
  }
  const wanted = adaptive.enabled ? (d === 0 ? adaptive.initial : adaptive.step) : policy.k - valid;
  const count = Math.max(1, Math.min(wanted, policy.k - valid, budget - d));
  return { done: false, indices: Array.from({ length: count }, (_, i) => d + i) };
}

/** The vote method each meta-critique revises. */
export const CRITIQUE_BASE: Readonly<Record<CritiqueMethod, VoteMethod>> = {
  'critique-single': 'single',
  'critique-outcome-consensus': 'outcome-majority',
  hybrid: 'step-majority',
};

export function isCritiqueMethod(m: AggregationMethod): m is CritiqueMethod {
  return m in CRITIQUE_BASE;
}

/** The vote methods needed to produce `methods` (critique methods need their base). */
export function voteMethodsFor(methods: readonly AggregationMethod[]): VoteMethod[] {
  const needed = new Set<VoteMethod>();
  for (const m of methods) needed.add(isCritiqueMethod(m) ? CRITIQUE_BASE[m] : m);
  return (['single', 'outcome-majority', 'step-majority'] as const).filter((m) => needed.has(m));
}

/** Runs the vote methods over a solution's verifications. */
export function voteLabels(methods: readonly VoteMethod[], verifs: readonly SampledVerification[], stepCount: number, options: AggregateOptions): Partial<Record<VoteMethod, AggregationOutcome>> {
  const out: Partial<Record<VoteMethod, AggregationOutcome>> = {};
  for (const m of methods) {
    // Single and outcome-majority keep the labels as the verifier wrote them; consistency is a step-majority rule.
    const consistency = m === 'step-majority' ? options.consistency : false;
    out[m] = aggregateVerifications(m, verifs, stepCount, { ...options, consistency });
  }
  return out;
}

/**
 * The verification a meta-critique revises: the base method's training target. For the hybrid
 * without an agreeing verification, the consensus itself written in the verifier format.
 * Null when the base method produced no labels (nothing to critique).
 */
export function critiqueSubject(base: AggregationOutcome | undefined): string | null {
  if (!base?.ok) return null;
  if (base.target.text !== null) return base.target.text;
  return renderVerification({
    steps: base.stepLabels.map((correct, i) => ({ title: `Step ${i + 1}`, analysis: `Consensus of ${base.counts.valid} verifications.`, correct })),
    outcome: base.outcome,
  });
}

/** Every chosen method's labels, given the vote results and the merged verifications of the critiques. */
export function methodLabels(
  methods: readonly AggregationMethod[],
  votes: Partial<Record<VoteMethod, AggregationOutcome>>,
  merged: Partial<Record<CritiqueMethod, MergedVerification | null>>,
  consistency: boolean,
): Partial<Record<AggregationMethod, AggregationOutcome>> {
  const out: Partial<Record<AggregationMethod, AggregationOutcome>> = {};
  for (const m of methods) {
    if (!isCritiqueMethod(m)) {
      out[m] = votes[m]!;
      continue;
    }
    const base = votes[CRITIQUE_BASE[m]]!;
    if (!base.ok) {
      out[m] = { ok: false, method: m, reason: `no ${base.method} labels to critique: ${base.reason}`, counts: base.counts };
      continue;
    }
    const revise = m === 'critique-single' ? critiqueSingle : m === 'critique-outcome-consensus' ? critiqueOutcomeConsensus : hybrid;
    out[m] = revise(base, merged[m] ?? null, { consistency });
  }
  return out;
}

/** The labels of one method as stored in a labels line. */
export type StoredLabels =
  | {
    ok: true;
    stepLabels: boolean[];
    outcome: boolean;
    firstErrorStep: number;
    target: { rule: AggregationResult['target']['rule']; sampleIndex: number | null; text: string | null };
    ties: { outcome: boolean; steps: number[] };
    fallback: string | null;
  }
  | { ok: false; reason: string };

export function storedLabels(r: AggregationOutcome): StoredLabels {
  if (!r.ok) return { ok: false, reason: r.reason };
  return {
    ok: true,
    stepLabels: r.stepLabels,
    outcome: r.outcome,
    firstErrorStep: r.firstErrorStep,
    target: { rule: r.target.rule, sampleIndex: r.target.sampleIndex, text: r.target.text },
    ties: r.ties,
    fallback: r.fallbackReason,
  };
}

/** One line of the labels dataset: a solution with its verification counts and every method's labels. */
export interface LabelLine {
  problemIndex: number;
  problemId: string;
  question: string;
  reference?: string;
  solutionIndex: number;
  /** The solution as the verifier saw it. */
  steps: string[];
  answer: string | null;
  verifications: {
    requested: number;
    drawn: number;
    valid: number;
    invalid: number;
    /** Why drawing stopped: K valid, adaptive stop, or the parse-retry budget ran out. */
    stop: Exclude<DrawDecision, { done: false }>['reason'];
  };
  votes: { steps: { correct: number; incorrect: number }[]; outcome: { yes: number; no: number } };
  labels: Partial<Record<AggregationMethod, StoredLabels>>;
}

/** Counters of a piece of work (a problem, a shard, a run); they add up. */
export interface LabelCounts {
  problems: number;
  solutions: number;
  /** HTTP requests sent to model servers. */
  callsMade: number;
  /** Samples the servers returned and we stored (a request with n = K returns K). */
  samplesDrawn: number;
  /** Samples read back from the content-addressed store instead of paid for again. */
  samplesReused: number;
  verificationsValid: number;
  /** Verifications that could not be parsed (each may have been replaced, see parseRetries). */
  parseFailures: number;
  /** Solutions whose verification stopped before K valid by the adaptive rule. */
  stoppedEarly: number;
  /** Solutions that got no labels from some method (no steps, or no valid verification). */
  unlabelled: number;
}

export const ZERO_COUNTS: LabelCounts = {
  problems: 0, solutions: 0, callsMade: 0, samplesDrawn: 0, samplesReused: 0, verificationsValid: 0, parseFailures: 0, stoppedEarly: 0, unlabelled: 0,
};

export function addCounts(a: LabelCounts, b: LabelCounts): LabelCounts {
  const out = { ...a };
  for (const k of Object.keys(ZERO_COUNTS) as (keyof LabelCounts)[]) out[k] = a[k] + b[k];
  return out;
}

/** Shards of `total` problems, `size` each (the last may be smaller). */
export function shardCount(total: number, size: number): number {
  return Math.ceil(total / size);
}

/** Zero-padded shard number used in keys, so keys sort in shard order. */
export function shardName(index: number): string {
  return String(index).padStart(5, '0');
}
