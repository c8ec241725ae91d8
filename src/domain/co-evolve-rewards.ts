/**
 * The verifiable reward of recycled items and the test-time self-reflection tally (co-evolving
 * SPARK). Judging items are right when the last `\boxed{}` is their label; reflection items when
 * it is equivalent to the reference answer. Pure.
 */
import type { RecycledItem, ReflectionRound } from './co-evolve.js';
import { readVerdict } from './co-evolve-prompts.js';
import { answersEquivalent, extractBoxedAnswer } from './math-answer.js';

/** 1 when the completion gives the item's label, else 0 (no readable answer is wrong). */
export function recycledReward(item: RecycledItem, completion: string): number {
  switch (item.kind) {
    case 'pointwise': return readVerdict('pointwise', completion) === item.label ? 1 : 0;
    case 'pairwise': return readVerdict('pairwise', completion) === item.label ? 1 : 0;
    case 'reflection': {
      const answer = extractBoxedAnswer(completion);
      return answer !== null && answersEquivalent(answer, item.label) ? 1 : 0;
    }
  }
}

/** One self-reflection episode: its rounds with whether each round's answer is right. */
export type ScoredRounds = readonly (ReflectionRound & { correct: boolean })[];

/** What test-time self-reflection did over many episodes. */
export interface SelfReflectionTally {
  episodes: number;
  /** Accuracy when stopping after r re-solves (r = 0: the first answer), for r = 0..maxRounds. */
  accuracyByRound: number[];
  /** Episodes whose first answer was wrong and final answer right, and the other way round. */
  fixed: number;
  broke: number;
  /** Mean re-solves per episode. */
  meanResolves: number;
  /** How often the model's verdict on its own answer was right (Yes for a right answer, No otherwise; an unreadable verdict is not right). */
  selfJudgeAccuracy: number;
}

export function tallySelfReflection(episodes: readonly ScoredRounds[], maxRounds: number): SelfReflectionTally {
  const n = Math.max(1, episodes.length);
  const accuracyByRound = Array.from({ length: maxRounds + 1 }, (_, r) =>
    episodes.filter((e) => (e[Math.min(r, e.length - 1)]?.correct ?? false)).length / n);
  let verdicts = 0;
  let verdictsRight = 0;
  for (const e of episodes) {
    for (const round of e) {
      verdicts++;
      if (round.verdict === (round.correct ? 'Yes' : 'No')) verdictsRight++;
    }
  }
  return {
    episodes: episodes.length,
    accuracyByRound,
    fixed: episodes.filter((e) => !e[0]?.correct && e.at(-1)?.correct).length,
    broke: episodes.filter((e) => e[0]?.correct && !e.at(-1)?.correct).length,
    meanResolves: episodes.reduce((a, e) => a + Math.max(0, e.length - 1), 0) / n,
    selfJudgeAccuracy: verdicts === 0 ? 0 : verdictsRight / verdicts,
  };
}
