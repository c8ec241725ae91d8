/**
 * Tallies of the co-evolution evaluations as counts that add up chunk by chunk: test-time
 * self-reflection (accuracy per round, answers fixed and broken) and judging accuracy. Pure and
 * free of the math checker, so workflows add chunks' counts themselves.
 */
import type { RecycledItem, ReflectionRound } from './recycling.js';

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

/** Self-reflection as counts, so the episodes of many chunks add up to one tally. */
export interface SelfReflectionCounts {
  episodes: number;
  /** Episodes right when stopping after r re-solves. */
  rightByRound: number[];
  fixed: number;
  broke: number;
  resolves: number;
  verdicts: number;
  verdictsRight: number;
}

export function countSelfReflection(episodes: readonly ScoredRounds[], maxRounds: number): SelfReflectionCounts {
  const counts: SelfReflectionCounts = { episodes: episodes.length, rightByRound: new Array<number>(maxRounds + 1).fill(0), fixed: 0, broke: 0, resolves: 0, verdicts: 0, verdictsRight: 0 };
  for (const e of episodes) {
    for (let r = 0; r <= maxRounds; r++) if (e[Math.min(r, e.length - 1)]?.correct) counts.rightByRound[r]!++;
    if (!e[0]?.correct && e.at(-1)?.correct) counts.fixed++;
    if (e[0]?.correct && !e.at(-1)?.correct) counts.broke++;
    counts.resolves += Math.max(0, e.length - 1);
    for (const round of e) {
      counts.verdicts++;
      if (round.verdict === (round.correct ? 'Yes' : 'No')) counts.verdictsRight++;
    }
  }
  return counts;
}

export function addSelfReflectionCounts(a: SelfReflectionCounts, b: SelfReflectionCounts): SelfReflectionCounts {
  return {
    episodes: a.episodes + b.episodes,
    rightByRound: a.rightByRound.map((x, r) => x + (b.rightByRound[r] ?? 0)),
    fixed: a.fixed + b.fixed,
    broke: a.broke + b.broke,
    resolves: a.resolves + b.resolves,
    verdicts: a.verdicts + b.verdicts,
    verdictsRight: a.verdictsRight + b.verdictsRight,
  };
}

export function emptySelfReflectionCounts(maxRounds: number): SelfReflectionCounts {
  return countSelfReflection([], maxRounds);
}

export function selfReflectionTallyOf(c: SelfReflectionCounts): SelfReflectionTally {
  const n = Math.max(1, c.episodes);
  return {
    episodes: c.episodes,
    accuracyByRound: c.rightByRound.map((x) => x / n),
    fixed: c.fixed,
    broke: c.broke,
    meanResolves: c.resolves / n,
    selfJudgeAccuracy: c.verdicts === 0 ? 0 : c.verdictsRight / c.verdicts,
  };
}

export function tallySelfReflection(episodes: readonly ScoredRounds[], maxRounds: number): SelfReflectionTally {
  return selfReflectionTallyOf(countSelfReflection(episodes, maxRounds));
}

/** Judging accuracy as sums over items (each item's accuracy is the share of its verdicts that are right). */
export interface JudgingCounts {
  pointwise: { items: number; accuracy: number; yesItems: number; accuracyOnYes: number; accuracyOnNo: number };
  /** `labelA`: items whose right answer is A (where a judge without position bias answers A as often). */
  pairwise: { items: number; accuracy: number; choseA: number; labelA: number };
}

export const EMPTY_JUDGING_COUNTS: JudgingCounts = {
  pointwise: { items: 0, accuracy: 0, yesItems: 0, accuracyOnYes: 0, accuracyOnNo: 0 },
  pairwise: { items: 0, accuracy: 0, choseA: 0, labelA: 0 },
};

/** Adds one judged item: `accuracy` its share of right verdicts, `choseA` its share of A answers (pairwise). */
export function countJudgedItem(c: JudgingCounts, item: RecycledItem, accuracy: number, choseA: number): JudgingCounts {
  if (item.kind === 'pointwise') {
    const yes = item.label === 'Yes';
    const p = c.pointwise;
    return { ...c, pointwise: { items: p.items + 1, accuracy: p.accuracy + accuracy, yesItems: p.yesItems + (yes ? 1 : 0), accuracyOnYes: p.accuracyOnYes + (yes ? accuracy : 0), accuracyOnNo: p.accuracyOnNo + (yes ? 0 : accuracy) } };
  }
  if (item.kind === 'pairwise') {
    const p = c.pairwise;
    return { ...c, pairwise: { items: p.items + 1, accuracy: p.accuracy + accuracy, choseA: p.choseA + choseA, labelA: p.labelA + (item.label === 'A' ? 1 : 0) } };
  }
  return c;
}

export function addJudgingCounts(a: JudgingCounts, b: JudgingCounts): JudgingCounts {
  const sum = <T extends Record<string, number>>(x: T, y: T): T => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, v + (y[k] ?? 0)])) as T;
  return { pointwise: sum(a.pointwise, b.pointwise), pairwise: sum(a.pairwise, b.pairwise) };
}

/** Means from sums: accuracy per type, pointwise also per label, how often pairwise verdicts said A and how often A was right. */
export function judgingAccuracyOf(c: JudgingCounts): JudgingCounts {
  const per = (x: number, n: number): number => (n === 0 ? 0 : x / n);
  const p = c.pointwise;
  const q = c.pairwise;
  return {
    pointwise: { items: p.items, yesItems: p.yesItems, accuracy: per(p.accuracy, p.items), accuracyOnYes: per(p.accuracyOnYes, p.yesItems), accuracyOnNo: per(p.accuracyOnNo, p.items - p.yesItems) },
    pairwise: { items: q.items, accuracy: per(q.accuracy, q.items), choseA: per(q.choseA, q.items), labelA: per(q.labelA, q.items) },
  };
}
