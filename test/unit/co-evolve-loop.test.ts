import { describe, expect, it } from 'vitest';
import type { RecycledItem } from '../../src/spark/co-evolve/recycling.js';
import {
  buildPairwiseJudgeMessages, buildPointwiseJudgeMessages, buildReflectionMessages, buildResolveMessages, CO_EVOLVE_SECTIONS, coEvolveRoleOf,
  PAIRWISE_INSTRUCTIONS, POINTWISE_INSTRUCTIONS, readCoEvolveSection, readVerdict, recycledItemMessages, REFLECTION_INSTRUCTIONS,
} from '../../src/spark/co-evolve/prompts.js';
import { recycledReward } from '../../src/spark/co-evolve/rewards.js';
import {
  addJudgingCounts, addSelfReflectionCounts, countJudgedItem, countSelfReflection, EMPTY_JUDGING_COUNTS, emptySelfReflectionCounts, judgingAccuracyOf,
  selfReflectionTallyOf, tallySelfReflection,
} from '../../src/spark/co-evolve/tally.js';
import { buildGeneratorMessages } from '../../src/spark/common/prompts.js';
import { detectRole } from '../../sandbox/world/roles.js';
import { cachedItemCount, takeFromCache } from '../../src/spark/co-evolve/cache.js';

const user = (m: { role: string; content: string }[]) => m.find((x) => x.role === 'user')!.content;

describe('the recycled-item cache', () => {
  it('holds items until a full batch is there, then hands out the oldest first across steps', () => {
    expect(takeFromCache([{ rlStep: 0, count: 3 }], 0, 4)).toEqual({ parts: [], cache: [{ rlStep: 0, count: 3 }], consumed: 0 });
    const first = takeFromCache([{ rlStep: 0, count: 3 }, { rlStep: 1, count: 5 }], 0, 4);
    expect(first.parts).toEqual([{ rlStep: 0, from: 0, to: 3 }, { rlStep: 1, from: 0, to: 1 }]);
    expect(first).toMatchObject({ cache: [{ rlStep: 1, count: 5 }], consumed: 1 });
    expect(cachedItemCount(first.cache, first.consumed)).toBe(4);
    const second = takeFromCache(first.cache, first.consumed, 4);
    expect(second.parts).toEqual([{ rlStep: 1, from: 1, to: 5 }]);
    expect(second).toMatchObject({ cache: [], consumed: 0 });
  });

  it('never hands out an item twice or skips one', () => {
    let cache = [] as { rlStep: number; count: number }[];
    let consumed = 0;
    const seen: string[] = [];
    for (let step = 0; step < 50; step++) {
      cache = [...cache, { rlStep: step, count: (step * 7) % 11 }].filter((e) => e.count > 0);
      for (;;) {
        const t = takeFromCache(cache, consumed, 6);
        if (t.parts.length === 0) break;
        expect(t.parts.reduce((n, p) => n + p.to - p.from, 0)).toBe(6);
        for (const p of t.parts) for (let i = p.from; i < p.to; i++) seen.push(`${p.rlStep}:${i}`);
        ({ cache, consumed } = t);
      }
    }
    const produced = Array.from({ length: 50 }, (_, s) => Array.from({ length: (s * 7) % 11 }, (_, i) => `${s}:${i}`)).flat();
    expect(seen).toEqual(produced.slice(0, seen.length));
    expect(produced.length - seen.length).toBe(cachedItemCount(cache, consumed));
    expect(cachedItemCount(cache, consumed)).toBeLessThan(6);
  });
});

describe('co-evolution prompts', () => {
  it('has the paper\'s number of paraphrases, all different, and every template reads back the same parts', () => {
    expect(new Set(POINTWISE_INSTRUCTIONS).size).toBe(24);
    expect(new Set(PAIRWISE_INSTRUCTIONS).size).toBe(20);
    expect(new Set(REFLECTION_INSTRUCTIONS).size).toBe(8);
    const q = 'Start with 5. Add 3.';
    for (let t = 0; t < 24; t++) {
      const text = user(buildPointwiseJudgeMessages(q, '8', t));
      expect(coEvolveRoleOf(text)).toBe('pointwise-judge');
      expect(readCoEvolveSection(text, CO_EVOLVE_SECTIONS.question)).toBe(q);
      expect(readCoEvolveSection(text, CO_EVOLVE_SECTIONS.candidate)).toBe('8');
    }
    for (let t = 0; t < 20; t++) {
      const text = user(buildPairwiseJudgeMessages(q, '8', '9', t));
      expect(coEvolveRoleOf(text)).toBe('pairwise-judge');
      expect([readCoEvolveSection(text, CO_EVOLVE_SECTIONS.answerA), readCoEvolveSection(text, CO_EVOLVE_SECTIONS.answerB)]).toEqual(['8', '9']);
    }
    const chain = '<step>5 + 3 = 9.</step>\n<answer>\\boxed{9}</answer>';
    expect(readCoEvolveSection(user(buildReflectionMessages(q, chain, 'chain', 3)), CO_EVOLVE_SECTIONS.solution)).toBe(chain);
    expect(detectRole(buildReflectionMessages(q, '9', 'answer', 3))).toBe('reflection');
    expect(detectRole(buildResolveMessages(q, '9'))).toBe('resolve');
    expect(detectRole(buildPointwiseJudgeMessages(q, '8', 0))).toBe('pointwise-judge');
    expect(detectRole(buildPairwiseJudgeMessages(q, '8', '9', 0))).toBe('pairwise-judge');
    expect(detectRole(buildGeneratorMessages(q))).toBe('generator');
  });

  it('reads verdicts from the last box only, and nothing else as a verdict', () => {
    expect(readVerdict('pointwise', 'maybe \\boxed{No} ... \\boxed{Yes}')).toBe('Yes');
    expect(readVerdict('pointwise', '\\boxed{\\text{no}}')).toBe('No');
    expect(readVerdict('pointwise', '\\boxed{8}')).toBeNull();
    expect(readVerdict('pointwise', 'Yes')).toBeNull();
    expect(readVerdict('pairwise', 'so \\boxed{B}')).toBe('B');
    expect(readVerdict('pairwise', '\\boxed{C}')).toBeNull();
  });
});

describe('the verifiable reward of recycled items', () => {
  const q = 'Start with 5. Add 3.';
  it('pays judging items for their label and reflection items for an answer equivalent to the reference', () => {
    const yes: RecycledItem = { kind: 'pointwise', promptId: 'p', template: 0, question: q, answer: '8', label: 'Yes' };
    expect(recycledReward(yes, 'It is right. \\boxed{Yes}')).toBe(1);
    expect(recycledReward(yes, 'It is wrong. \\boxed{No}')).toBe(0);
    expect(recycledReward(yes, 'no box')).toBe(0);
    const pair: RecycledItem = { kind: 'pairwise', promptId: 'p', template: 0, question: q, a: '9', b: '8', label: 'B' };
    expect(recycledReward(pair, '\\boxed{B}')).toBe(1);
    expect(recycledReward(pair, '\\boxed{A}')).toBe(0);
    const reflect: RecycledItem = { kind: 'reflection', promptId: 'p', template: 0, question: q, shown: '9', shownIs: 'answer', label: '1/2' };
    expect(recycledReward(reflect, 'Wrong. <answer>\\boxed{0.5}</answer>')).toBe(1);
    expect(recycledReward(reflect, 'Right. <answer>\\boxed{9}</answer>')).toBe(0);
    expect(recycledItemMessages(reflect)).toEqual(buildReflectionMessages(q, '9', 'answer', 0));
  });
});

describe('tallying test-time self-reflection', () => {
  it('counts accuracy per round (a stopped episode keeps its answer), fixes, breaks and self-verdicts', () => {
    const ok = (verdict: 'Yes' | 'No' | null) => ({ answer: '8', verdict, correct: true });
    const bad = (verdict: 'Yes' | 'No' | null) => ({ answer: '9', verdict, correct: false });
    const t = tallySelfReflection([
      [ok('Yes')], // right, kept
      [bad('No'), ok('Yes')], // fixed after one re-solve
      [ok('No'), bad('Yes')], // broken by a false alarm
      [bad('No'), bad(null), bad('No')], // never fixed
    ], 2);
    expect(t.accuracyByRound).toEqual([0.5, 0.5, 0.5]);
    expect(t).toMatchObject({ episodes: 4, fixed: 1, broke: 1, meanResolves: 1 });
    // Right verdicts: Yes on right (2), No on wrong (3), Yes on wrong (0), No on right (0), null on wrong (0): 5 of 8.
    expect(t.selfJudgeAccuracy).toBe(5 / 8);
  });

  it('adds chunks up to the tally of all their episodes', () => {
    const ok = (verdict: 'Yes' | 'No') => ({ answer: '8', verdict, correct: true });
    const bad = (verdict: 'Yes' | 'No') => ({ answer: '9', verdict, correct: false });
    const episodes = [[ok('Yes')], [bad('No'), ok('Yes')], [ok('No'), bad('Yes')], [bad('No'), bad('No'), ok('Yes')], [bad('Yes')]];
    const whole = tallySelfReflection(episodes, 2);
    const parts = [episodes.slice(0, 2), episodes.slice(2, 3), episodes.slice(3)].map((e) => countSelfReflection(e, 2));
    expect(selfReflectionTallyOf(parts.reduce(addSelfReflectionCounts, emptySelfReflectionCounts(2)))).toEqual(whole);
    expect(whole).toMatchObject({ fixed: 2, broke: 1, accuracyByRound: [0.4, 0.4, 0.6] });
  });
});

describe('tallying judging accuracy', () => {
  const q = 'Start with 5. Add 3.';
  it('averages per item type, per pointwise label, and the share of A answers, across chunks', () => {
    const yes: RecycledItem = { kind: 'pointwise', promptId: 'a', template: 0, question: q, answer: '8', label: 'Yes' };
    const no: RecycledItem = { kind: 'pointwise', promptId: 'b', template: 0, question: q, answer: '9', label: 'No' };
    const pair: RecycledItem = { kind: 'pairwise', promptId: 'c', template: 0, question: q, a: '8', b: '9', label: 'A' };
    const first = countJudgedItem(countJudgedItem(EMPTY_JUDGING_COUNTS, yes, 1, 0), pair, 0.75, 0.75);
    const second = countJudgedItem(countJudgedItem(EMPTY_JUDGING_COUNTS, no, 0.25, 0), { ...pair, promptId: 'd', label: 'B', a: '9', b: '8' }, 0.5, 0.5);
    expect(judgingAccuracyOf(addJudgingCounts(first, second))).toEqual({
      pointwise: { items: 2, yesItems: 1, accuracy: 0.625, accuracyOnYes: 1, accuracyOnNo: 0.25 },
      pairwise: { items: 2, accuracy: 0.625, choseA: 0.625, labelA: 0.5 },
    });
    expect(judgingAccuracyOf(EMPTY_JUDGING_COUNTS).pointwise.accuracy).toBe(0);
  });
});
