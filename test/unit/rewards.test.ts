import { describe, expect, it } from 'vitest';
import { rngFrom } from '../../src/core/random.js';
import type { GateResult, RolloutForReward } from '../../src/spark/rl/rewards.js';
import { formatGate, groupAdvantages, guard, majorityAnswer, scoreGroup, SPARK_GUARDS } from '../../src/spark/rl/rewards.js';

const response = (steps: number, answer = '42', after = '') =>
  `${Array.from({ length: steps }, (_, i) => `<step>Step ${i + 1} text.</step>`).join('\n')}\n<answer>\\boxed{${answer}}</answer>${after}`;

function gated(steps: number): GateResult {
  const g = formatGate(response(steps));
  if (!g.ok) throw new Error('fixture must pass the gate');
  return g;
}

const rollout = (over: Partial<RolloutForReward> & { steps?: number } = {}): RolloutForReward => ({
  gate: gated(over.steps ?? 4),
  prm: null,
  correct: null,
  answerKey: null,
  ...over,
});
const labels = (...xs: number[]) => xs.map((x) => x === 1);
const rng = () => rngFrom('rewards-test');

describe('the format gate', () => {
  it('passes one answer block with one boxed answer and steps, and says where each step ends', () => {
    const text = response(2);
    const g = formatGate(`${text}  \n`);
    expect(g).toMatchObject({ ok: true, steps: ['Step 1 text.', 'Step 2 text.'], answer: '42', cut: text });
    if (!g.ok) return;
    expect(g.stepEnds.map((e) => text.slice(e - 7, e))).toEqual(['</step>', '</step>']);
    expect(g.stepEnds[1]).toBeLessThan(text.indexOf('<answer>'));
  });

  it.each([
    ['text after the answer (an appended solution)', response(4, '42', '\n\nAnother problem: 1 + 1 = 2. <answer>\\boxed{2}</answer>'), 'answer-blocks'],
    ['prose after the answer', response(4, '42', ' I hope this helps.'), 'text-after-answer'],
    ['no answer block', '<step>a</step> The answer is \\boxed{3}.', 'no-answer-block'],
    ['two boxed answers', '<step>a</step><answer>\\boxed{3} or \\boxed{4}</answer>', 'boxed-count'],
    ['no boxed answer', '<step>a</step><answer>3</answer>', 'boxed-count'],
    ['a boxed answer outside the block too', '<step>\\boxed{3}</step><answer>\\boxed{3}</answer>', 'boxed-count'],
    ['no steps', '<answer>\\boxed{3}</answer>', 'no-steps'],
  ])('rejects %s', (_name, text, reason) => {
    expect(formatGate(text)).toEqual({ ok: false, reason });
  });

  it('reads nested braces in the boxed answer', () => {
    expect(formatGate('<step>a</step><answer>\\boxed{\\frac{1}{2}}</answer>')).toMatchObject({ ok: true, answer: '\\frac{1}{2}' });
  });
});

describe('the guards', () => {
  it('zero everything outside 4..20 steps, step rewards when the PRM judged another count, nothing when off', () => {
    expect(guard(3, 3, SPARK_GUARDS)).toBe('step-count');
    expect(guard(21, 21, SPARK_GUARDS)).toBe('step-count');
    expect(guard(4, 4, SPARK_GUARDS)).toBe('none');
    expect(guard(20, 20, SPARK_GUARDS)).toBe('none');
    expect(guard(6, 5, SPARK_GUARDS)).toBe('judged-count');
    expect(guard(6, null, SPARK_GUARDS)).toBe('none');
    expect(guard(30, 2, { ...SPARK_GUARDS, enabled: false })).toBe('none');
  });
});

describe('group advantages', () => {
  it('are z-scores with the unbiased std, and a lone rollout keeps its reward', () => {
    // rewards 1,0,0,1: mean 0.5, unbiased std sqrt(1/3)
    const a = groupAdvantages([1, 0, 0, 1]);
    expect(a[0]).toBeCloseTo(0.5 / Math.sqrt(1 / 3), 5);
    expect(a[1]).toBeCloseTo(-0.5 / Math.sqrt(1 / 3), 5);
    expect(groupAdvantages([1, 1, 1])).toEqual([0, 0, 0]);
    expect(groupAdvantages([0.7])).toEqual([0.7]);
  });

  it('majority answers break ties by first appearance', () => {
    expect(majorityAnswer(['3', '4', '4', null, '3'])).toBe('3');
    expect(majorityAnswer([null, null])).toBeNull();
  });
});

describe('reward formulations on hand-computed groups', () => {
  it('process-aware outcome: r = gate · y, with the gate and the step-count guard taking it away', () => {
    const group = [
      rollout({ prm: { outcome: true, stepLabels: labels(1, 1, 1, 1) } }),
      rollout({ prm: { outcome: false, stepLabels: labels(1, 0, 0, 0) } }),
      { ...rollout({ prm: { outcome: true, stepLabels: labels(1, 1, 1, 1) } }), gate: { ok: false, reason: 'text-after-answer' } as const },
      rollout({ steps: 3, prm: { outcome: true, stepLabels: labels(1, 1, 1) } }),
    ];
    const out = scoreGroup('process-outcome', group, SPARK_GUARDS, rng());
    expect(out.map((o) => o.reward)).toEqual([1, 0, 0, 0]);
    expect(out.map((o) => o.gated)).toEqual([false, false, true, false]);
    expect(out.map((o) => o.guard)).toEqual(['none', 'none', 'none', 'step-count']);
    // mean 0.25, unbiased std 0.5
    expect(out[0]!.advantage).toBeCloseTo(0.75 / 0.5, 5);
    expect(out[1]!.advantage).toBeCloseTo(-0.25 / 0.5, 5);
    expect(out.every((o) => o.stepAdvantages === null)).toBe(true);
    // Guards off: the 3-step rollout keeps its reward.
    expect(scoreGroup('process-outcome', group, { ...SPARK_GUARDS, enabled: false }, rng())[3]!.reward).toBe(1);
  });

  it('step-augmented: 0.4 · k/n + 0.6 · y, k/n zeroed when the PRM judged another step count', () => {
    const group = [
      rollout({ prm: { outcome: true, stepLabels: labels(1, 1, 1, 1) } }),
      rollout({ prm: { outcome: false, stepLabels: labels(1, 1, 0, 0) } }),
      rollout({ steps: 5, prm: { outcome: false, stepLabels: labels(1, 1, 1, 1) } }),
    ];
    const out = scoreGroup('step-augmented', group, SPARK_GUARDS, rng());
    expect(out[0]!.reward).toBeCloseTo(1, 10);
    expect(out[1]!.reward).toBeCloseTo(0.4 * 0.5, 10);
    expect(out[2]).toMatchObject({ reward: 0, guard: 'judged-count', stepFraction: 0 });
    // Unguarded, the 5-step rollout is paid for the 4 correct labels it got: 0.4 · 4/4.
    expect(scoreGroup('step-augmented', group, { ...SPARK_GUARDS, enabled: false }, rng())[2]!.reward).toBeCloseTo(0.4, 10);
  });

  it('selective advantage: a step keeps the outcome advantage only when its label agrees with its sign', () => {
    const good = rollout({ prm: { outcome: true, stepLabels: labels(1, 1, 1, 0) } });
    const bad = rollout({ prm: { outcome: false, stepLabels: labels(1, 1, 0, 0) } });
    const out = scoreGroup('selective-advantage', [good, bad], SPARK_GUARDS, rng());
    const [a, b] = [out[0]!.advantage, out[1]!.advantage];
    expect(a).toBeGreaterThan(0);
    expect(b).toBeCloseTo(-a, 10);
    const ends = (good.gate as Extract<GateResult, { ok: true }>).stepEnds;
    expect(out[0]!.stepAdvantages).toEqual([{ end: ends[0], advantage: a }, { end: ends[1], advantage: a }, { end: ends[2], advantage: a }, { end: ends[3], advantage: 0 }]);
    expect(out[1]!.stepAdvantages!.map((s) => s.advantage)).toEqual([0, 0, b, b]);
  });

  it('global step reward: 0.8 · process advantage + 0.2 · ±1/n per step', () => {
    const out = scoreGroup('global-step', [
      rollout({ prm: { outcome: true, stepLabels: labels(1, 1, 1, 1) } }),
      rollout({ prm: { outcome: false, stepLabels: labels(1, 0, 0, 0) } }),
    ], SPARK_GUARDS, rng());
    const a = out[0]!.advantage / 0.8;
    expect(out[0]!.stepAdvantages!.map((s) => s.advantage)).toEqual([1, 1, 1, 1].map((x) => 0.8 * a + 0.2 * x / 4));
    expect(out[1]!.stepAdvantages!.map((s) => s.advantage)).toEqual([1, -1, -1, -1].map((x) => 0.8 * -a + 0.2 * x / 4));
  });

  it('baselines: verifiable reward, random reward behind the gate, majority-vote pseudo-labels', () => {
    const v = scoreGroup('verifiable', [rollout({ correct: true }), rollout({ correct: false })], SPARK_GUARDS, rng());
    expect(v.map((o) => o.reward)).toEqual([1, 0]);
    const closed = { ...rollout(), gate: { ok: false, reason: 'boxed-count' } as const };
    const r = scoreGroup('random', [closed, closed, closed, rollout(), rollout(), rollout(), rollout(), rollout()], SPARK_GUARDS, rng());
    expect(r.slice(0, 3).map((o) => o.reward)).toEqual([0, 0, 0]);
    expect(r.slice(3).every((o) => o.reward === 0 || o.reward === 1)).toBe(true);
    expect(scoreGroup('random', [closed, rollout(), rollout()], SPARK_GUARDS, rng()).map((o) => o.reward)).toEqual(scoreGroup('random', [closed, rollout(), rollout()], SPARK_GUARDS, rng()).map((o) => o.reward));
    const m = scoreGroup('majority-vote', [rollout({ answerKey: '7' }), rollout({ answerKey: '8' }), rollout({ answerKey: '7' }), { ...rollout({ answerKey: '8' }), gate: closed.gate }], SPARK_GUARDS, rng());
    expect(m.map((o) => o.reward)).toEqual([1, 0, 1, 0]);
  });
});
