/**
 * The co-evolving SPARK (method B): recycling a GRPO batch's rollouts into judging and reflection
 * items for the same model, by the paper's rules. Pure: the workflow's activities feed it the
 * batch's groups and a seeded random stream, and store what it returns in the recycled-item cache.
 */
import type { Rng } from '../../core/random.js';

/** One rollout as recycling needs it: its full text, its extracted final answer, and whether that is right. */
export interface RecycledRollout {
  text: string;
  /** The final answer as extracted (null: none could be read; such rollouts are never judged). */
  answer: string | null;
  correct: boolean;
}

/** The rollouts of one prompt. */
export interface RolloutGroup {
  promptId: string;
  question: string;
  reference: string;
  rollouts: RecycledRollout[];
}

export type RecycledItem =
  | { kind: 'pointwise'; promptId: string; template: number; question: string; answer: string; label: 'Yes' | 'No' }
  | { kind: 'pairwise'; promptId: string; template: number; question: string; a: string; b: string; label: 'A' | 'B' }
  | { kind: 'reflection'; promptId: string; template: number; question: string; shown: string; shownIs: 'chain' | 'answer'; label: string };

export interface RecycleOptions {
  /** Ablation switches: each item type can be turned off. */
  pointwise: boolean;
  pairwise: boolean;
  reflection: boolean;
  /** Per batch (paper: 32 judging items, pointwise and pairwise together, and 32 reflection items). */
  maxJudging: number;
  maxReflection: number;
  /** Mixed groups: chance of a pointwise item (paper 0.3) and of a pairwise item (paper 0.7). */
  mixedPointwise: number;
  mixedPairwise: number;
}

export const SPARK_RECYCLING: RecycleOptions = {
  pointwise: true,
  pairwise: true,
  reflection: true,
  maxJudging: 32,
  maxReflection: 32,
  mixedPointwise: 0.3,
  mixedPairwise: 0.7,
};

/** Paraphrased templates per item type, so the judge does not learn one wording (paper: 24 and 20). */
export const POINTWISE_TEMPLATES = 24;
export const PAIRWISE_TEMPLATES = 20;
export const REFLECTION_TEMPLATES = 8;

/**
 * Builds one batch's recycled items. Every random decision is drawn for every group in order,
 * whether or not it is used, so switching one item type off does not change the others' draws.
 */
export function recycleBatch(groups: readonly RolloutGroup[], options: RecycleOptions, rng: Rng): RecycledItem[] {
  const judging: RecycledItem[] = [];
  const reflection: RecycledItem[] = [];
  for (const g of groups) {
    const draws = {
      pointwiseRoll: rng.next(),
      pointwisePicksCorrect: rng.next() < 0.5,
      pairwiseRoll: rng.next(),
      correctIsA: rng.next() < 0.5,
      reflectionShowsChain: rng.next() < 0.5,
      pick: rng.next(),
      pick2: rng.next(),
      templatePointwise: rng.int(0, POINTWISE_TEMPLATES - 1),
      templatePairwise: rng.int(0, PAIRWISE_TEMPLATES - 1),
      templateReflection: rng.int(0, REFLECTION_TEMPLATES - 1),
    };
    const readable = g.rollouts.filter((r) => r.answer !== null);
    const right = readable.filter((r) => r.correct);
    const wrong = readable.filter((r) => !r.correct);
    const choose = <T>(items: readonly T[], u: number): T => items[Math.min(items.length - 1, Math.floor(u * items.length))]!;
    const mixed = right.length > 0 && wrong.length > 0;

    if (options.pointwise && readable.length > 0) {
      // All right → a right answer; all wrong → a wrong one; mixed → sometimes, either kind.
      const take = mixed ? draws.pointwiseRoll < options.mixedPointwise : true;
      if (take) {
        const fromRight = mixed ? draws.pointwisePicksCorrect : wrong.length === 0;
        const r = choose(fromRight ? right : wrong, draws.pick);
        judging.push({ kind: 'pointwise', promptId: g.promptId, template: draws.templatePointwise, question: g.question, answer: r.answer!, label: r.correct ? 'Yes' : 'No' });
      }
    }
    if (options.pairwise && mixed && draws.pairwiseRoll < options.mixedPairwise) {
      const good = choose(right, draws.pick).answer!;
      const bad = choose(wrong, draws.pick2).answer!;
      judging.push({
        kind: 'pairwise', promptId: g.promptId, template: draws.templatePairwise, question: g.question,
        a: draws.correctIsA ? good : bad, b: draws.correctIsA ? bad : good, label: draws.correctIsA ? 'A' : 'B',
      });
    }
    if (options.reflection && wrong.length > 0) {
      const r = choose(wrong, draws.pick2);
      reflection.push({
        kind: 'reflection', promptId: g.promptId, template: draws.templateReflection, question: g.question,
        shown: draws.reflectionShowsChain ? r.text : r.answer!, shownIs: draws.reflectionShowsChain ? 'chain' : 'answer', label: g.reference,
      });
    }
  }
  return [...judging.slice(0, options.maxJudging), ...reflection.slice(0, options.maxReflection)];
}

/** Test-time self-reflection: what happened in one round, and whether to go on. */
export interface ReflectionRound {
  answer: string | null;
  /** The model's verdict on its own answer: Yes, No, or unreadable (treated as not Yes). */
  verdict: 'Yes' | 'No' | null;
}

/** Answer → self-judge → re-solve after anything but Yes, at most `maxRounds` re-solves (paper: 2). */
export function shouldReflectAgain(rounds: readonly ReflectionRound[], maxRounds: number): boolean {
  const last = rounds.at(-1);
  if (!last) return true;
  return last.verdict !== 'Yes' && rounds.length - 1 < maxRounds;
}
