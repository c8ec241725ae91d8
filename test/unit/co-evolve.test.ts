import { describe, expect, it } from 'vitest';
import type { RecycledRollout, RolloutGroup } from '../../src/spark/co-evolve/recycling.js';
import { recycleBatch, shouldReflectAgain, SPARK_RECYCLING } from '../../src/spark/co-evolve/recycling.js';
import { rngFrom } from '../../src/core/random.js';

const rollout = (answer: string | null, correct: boolean): RecycledRollout => ({ text: `<step>work</step><answer>\\boxed{${answer ?? ''}}</answer>`, answer, correct });
const group = (id: string, ...rs: RecycledRollout[]): RolloutGroup => ({ promptId: id, question: `Q${id}`, reference: '7', rollouts: rs });
const allRight = (id: string) => group(id, rollout('7', true), rollout('7', true));
const allWrong = (id: string) => group(id, rollout('5', false), rollout('6', false));
const mixed = (id: string) => group(id, rollout('7', true), rollout('5', false));

describe('recycling rollouts into judging and reflection items', () => {
  it('all-correct groups give one pointwise Yes item and nothing else', () => {
    const items = recycleBatch([allRight('a')], SPARK_RECYCLING, rngFrom(1));
    expect(items).toEqual([expect.objectContaining({ kind: 'pointwise', promptId: 'a', answer: '7', label: 'Yes' })]);
  });

  it('all-wrong groups give one pointwise No item and one reflection item labelled with the reference', () => {
    const items = recycleBatch([allWrong('b')], SPARK_RECYCLING, rngFrom(1));
    expect(items.map((i) => i.kind)).toEqual(['pointwise', 'reflection']);
    expect(items[0]).toMatchObject({ label: 'No' });
    expect(items[1]).toMatchObject({ kind: 'reflection', label: '7' });
    const r = items[1] as Extract<(typeof items)[number], { kind: 'reflection' }>;
    expect(r.shownIs === 'chain' ? r.shown.includes('<step>') : ['5', '6'].includes(r.shown)).toBe(true);
  });

  it('mixed groups give pointwise items about 30% of the time, pairwise about 70%, with the right answer at A half the time', () => {
    const groups = Array.from({ length: 2000 }, (_, i) => mixed(`m${i}`));
    const items = recycleBatch(groups, { ...SPARK_RECYCLING, maxJudging: 1e9, maxReflection: 1e9 }, rngFrom(2));
    const pointwise = items.filter((i) => i.kind === 'pointwise');
    const pairwise = items.filter((i) => i.kind === 'pairwise');
    expect(pointwise.length / 2000).toBeCloseTo(0.3, 1);
    expect(pairwise.length / 2000).toBeCloseTo(0.7, 1);
    expect(pointwise.filter((i) => i.label === 'Yes').length / pointwise.length).toBeCloseTo(0.5, 1);
    expect(pairwise.filter((i) => i.label === 'A').length / pairwise.length).toBeCloseTo(0.5, 1);
    for (const p of pairwise) expect(p.kind === 'pairwise' && (p.label === 'A' ? p.a : p.b)).toBe('7');
    expect(items.filter((i) => i.kind === 'reflection')).toHaveLength(2000);
  });

  it('caps judging and reflection items per batch, and each type can be switched off without moving the others', () => {
    const groups = Array.from({ length: 100 }, (_, i) => allWrong(`w${i}`));
    const items = recycleBatch(groups, SPARK_RECYCLING, rngFrom(3));
    expect(items.filter((i) => i.kind !== 'reflection')).toHaveLength(32);
    expect(items.filter((i) => i.kind === 'reflection')).toHaveLength(32);
    const noPointwise = recycleBatch(groups, { ...SPARK_RECYCLING, pointwise: false }, rngFrom(3));
    expect(noPointwise.every((i) => i.kind === 'reflection')).toBe(true);
    expect(noPointwise).toEqual(items.filter((i) => i.kind === 'reflection'));
  });

  it('never judges a rollout whose answer could not be read', () => {
    const items = recycleBatch([group('u', rollout(null, false), rollout(null, false))], SPARK_RECYCLING, rngFrom(4));
    expect(items).toEqual([]);
  });
});

describe('test-time self-reflection stopping', () => {
  it('stops at a Yes, re-solves after a No or an unreadable verdict, and never past the round limit', () => {
    expect(shouldReflectAgain([], 2)).toBe(true);
    expect(shouldReflectAgain([{ answer: '7', verdict: 'Yes' }], 2)).toBe(false);
    expect(shouldReflectAgain([{ answer: '5', verdict: 'No' }], 2)).toBe(true);
    expect(shouldReflectAgain([{ answer: '5', verdict: null }], 2)).toBe(true);
    expect(shouldReflectAgain([{ answer: '5', verdict: 'No' }, { answer: '6', verdict: 'No' }, { answer: '4', verdict: 'No' }], 2)).toBe(false);
    expect(shouldReflectAgain([{ answer: '5', verdict: 'No' }, { answer: '6', verdict: 'No' }], 2)).toBe(true);
  });
});
