/**
 * SPARK stage 3 rewards: the format gate, the step-count guards, every reward formulation and
 * the GRPO advantages they lead to (group z-scores, and per-step values for the step-level
 * formulations). Pure: the rollout activity feeds it rollouts and judgements, and writes what
 * it returns as the GRPO batch.
 */
import type { Rng } from '../../core/random.js';
import { extractAllBoxed } from '../common/formats.js';

/** The reward formulations of SPARK stage 3, and the baselines. */
export const REWARD_FORMULATIONS = [
  'process-outcome',
  'step-augmented',
  'selective-advantage',
  'global-step',
  'verifiable',
  'random',
  'majority-vote',
] as const;
export type RewardFormulation = (typeof REWARD_FORMULATIONS)[number];

/** Formulations that ask the PRM; the baselines do not. */
export function needsPrm(f: RewardFormulation): boolean {
  return f === 'process-outcome' || f === 'step-augmented' || f === 'selective-advantage' || f === 'global-step';
}

/** What the format gate saw in one response. */
export type GateResult =
  | {
      ok: true;
      /** The response cut after `</answer>`: what the PRM judges. */
      cut: string;
      steps: string[];
      /** Character offset in the response where each step's text ends (exclusive). */
      stepEnds: number[];
      /** The content of the one `\boxed{}`. */
      answer: string;
    }
  | { ok: false; reason: 'no-answer-block' | 'answer-blocks' | 'boxed-count' | 'text-after-answer' | 'no-steps' };

const ANSWER_RE = /<answer>([\s\S]*?)<\/answer>/gi;
const STEP_RE = /<step>([\s\S]*?)<\/step>/gi;

/**
 * SPARK's format gate, applied before anything else: exactly one `<answer>…</answer>`, exactly one
 * `\boxed{}` in the whole response, and nothing but whitespace after `</answer>` (this is what
 * stops the solution-appending hack). Steps are the `<step>` blocks before the answer.
 */
export function formatGate(response: string): GateResult {
  const answers = [...response.matchAll(ANSWER_RE)];
  if (answers.length === 0) return { ok: false, reason: 'no-answer-block' };
  if (answers.length > 1) return { ok: false, reason: 'answer-blocks' };
  const boxed = extractAllBoxed(response);
  if (boxed.length !== 1) return { ok: false, reason: 'boxed-count' };
  const answerMatch = answers[0]!;
  const close = answerMatch.index + answerMatch[0].length;
  if (response.slice(close).trim() !== '') return { ok: false, reason: 'text-after-answer' };
  const steps: string[] = [];
  const stepEnds: number[] = [];
  for (const m of response.slice(0, answerMatch.index).matchAll(STEP_RE)) {
    steps.push((m[1] ?? '').trim());
    stepEnds.push(m.index + m[0].length);
  }
  if (steps.length === 0) return { ok: false, reason: 'no-steps' };
  return { ok: true, cut: response.slice(0, close), steps, stepEnds, answer: boxed[0]!.trim() };
}

/** SPARK's guards against step-count hacks. */
export interface GuardSettings {
  enabled: boolean;
  /** Fewer steps than this: outcome and step rewards are 0 (step reduction). */
  minSteps: number;
  /** More steps than this: outcome and step rewards are 0 (step inflation). */
  maxSteps: number;
}

export const SPARK_GUARDS: GuardSettings = { enabled: true, minSteps: 4, maxSteps: 20 };

/** What the guards took away from one rollout. */
export type GuardVerdict = 'none' | 'step-count' | 'judged-count';

/**
 * `step-count`: outside [minSteps, maxSteps], so outcome and step rewards are 0; `judged-count`:
 * the PRM judged another number of steps than the policy wrote, so step rewards are 0.
 */
export function guard(stepCount: number, judgedSteps: number | null, g: GuardSettings): GuardVerdict {
  if (!g.enabled) return 'none';
  if (stepCount < g.minSteps || stepCount > g.maxSteps) return 'step-count';
  if (judgedSteps !== null && judgedSteps !== stepCount) return 'judged-count';
  return 'none';
}

/** One rollout with everything the formulations may need. */
export interface RolloutForReward {
  gate: GateResult;
  /** The PRM's judgement of the cut response (null: not asked, or its answer was unreadable). */
  prm: { outcome: boolean; stepLabels: boolean[] } | null;
  /** The answer checked against the reference (null: no reference). */
  correct: boolean | null;
  /** A normalised form of the final answer, for majority voting (null: none). */
  answerKey: string | null;
}

/** What a rollout gets: its reward, its advantage, and per-step advantages by character span. */
export interface RolloutReward {
  reward: number;
  /** The advantage of tokens outside the step spans (all tokens when `stepAdvantages` is null). */
  advantage: number;
  /** `end` = a step's last character (exclusive); the span runs from the previous end. */
  stepAdvantages: { end: number; advantage: number }[] | null;
  gated: boolean;
  guard: GuardVerdict;
  /** y and k/n as the formulation used them (after gate and guards). */
  outcome: number;
  stepFraction: number | null;
}

/**
 * GRPO's group-normalised advantage: (r − mean) / (std + 1e-6), with the unbiased std as verl
 * computes it; a group of one gets its reward minus nothing over 1.
 */
export function groupAdvantages(rewards: readonly number[]): number[] {
  if (rewards.length === 1) return [rewards[0]!];
  const mean = rewards.reduce((a, b) => a + b, 0) / rewards.length;
  const variance = rewards.reduce((a, r) => a + (r - mean) ** 2, 0) / (rewards.length - 1);
  return rewards.map((r) => (r - mean) / (Math.sqrt(variance) + 1e-6));
}

/** The most common answer key of the group (ties: the one seen first); null if none. */
export function majorityAnswer(keys: readonly (string | null)[]): string | null {
  const counts = new Map<string, number>();
  for (const k of keys) if (k !== null) counts.set(k, (counts.get(k) ?? 0) + 1);
  let best: string | null = null;
  for (const [k, c] of counts) if (best === null || c > counts.get(best)!) best = k;
  return best;
}

/**
 * Rewards and advantages of one group (the rollouts of one prompt) under `formulation`.
 * `rng` is used by the `random` baseline only (seed it from the run seed, step and prompt).
 */
export function scoreGroup(formulation: RewardFormulation, rollouts: readonly RolloutForReward[], guards: GuardSettings, rng: Rng): RolloutReward[] {
  const majority = formulation === 'majority-vote' ? majorityAnswer(rollouts.map((r) => (r.gate.ok ? r.answerKey : null))) : null;
  const parts = rollouts.map((r) => {
    // Always draw, so the random stream does not depend on which rollouts pass the gate.
    const coin = rng.next() < 0.5 ? 1 : 0;
    if (!r.gate.ok) return { outcome: 0, stepFraction: null, verdict: 'none' as GuardVerdict, reward: 0, labels: null };
    const labels = r.prm?.stepLabels ?? null;
    const verdict = guard(r.gate.steps.length, needsPrm(formulation) ? labels?.length ?? null : null, guards);
    let outcome: number;
    switch (formulation) {
      case 'verifiable': outcome = r.correct ? 1 : 0; break;
      case 'random': outcome = coin; break;
      case 'majority-vote': outcome = majority !== null && r.answerKey === majority ? 1 : 0; break;
      default: outcome = r.prm?.outcome ? 1 : 0;
    }
    if (verdict === 'step-count') outcome = 0;
    const usableLabels = verdict === 'none' && labels !== null && labels.length > 0 ? labels : null;
    const stepFraction = needsPrm(formulation) ? (usableLabels ? usableLabels.filter(Boolean).length / usableLabels.length : 0) : null;
    const reward = formulation === 'step-augmented' ? 0.4 * (stepFraction ?? 0) + 0.6 * outcome : outcome;
    return { outcome, stepFraction, verdict, reward, labels: usableLabels };
  });
  const advantages = groupAdvantages(parts.map((p) => p.reward));
  return rollouts.map((r, i) => {
    const p = parts[i]!;
    const a = advantages[i]!;
    const base = { reward: p.reward, gated: !r.gate.ok, guard: p.verdict, outcome: p.outcome, stepFraction: p.stepFraction };
    if (!r.gate.ok || (formulation !== 'selective-advantage' && formulation !== 'global-step')) {
      return { ...base, advantage: a, stepAdvantages: null };
    }
    const labels = p.labels;
    const ends = r.gate.stepEnds;
    if (formulation === 'selective-advantage') {
      // A step keeps the outcome advantage only when its sign agrees with the step's label.
      const perStep = ends.map((end, j) => {
        const correct = labels?.[j];
        const agrees = correct !== undefined && ((a >= 0 && correct) || (a < 0 && !correct));
        return { end, advantage: agrees ? a : 0 };
      });
      return { ...base, advantage: a, stepAdvantages: perStep };
    }
    // global-step: 0.8 · process advantage + 0.2 · (±1/n per step by its label; 0 without usable labels).
    const n = ends.length;
    const perStep = ends.map((end, j) => {
      const correct = labels?.[j];
      const stepValue = correct === undefined ? 0 : (correct ? 1 : -1) / n;
      return { end, advantage: 0.8 * a + 0.2 * stepValue };
    });
    return { ...base, advantage: 0.8 * a, stepAdvantages: perStep };
  });
}
