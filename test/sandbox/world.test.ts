import { describe, expect, it } from 'vitest';
import { firstErrorIndex, generateProblems } from '../../sandbox/arith.js';
import {
  parseCritique, parsePolicyResponse, parseProcessBenchAnswer, parseRewardModelOutput, parseVerification,
} from '../../src/spark/common/formats.js';
import {
  buildCriticMessages, buildGeneratorMessages, buildMergeMessages, buildPrmMessages, buildProcessBenchMessages, buildVerifierMessages,
} from '../../src/spark/common/prompts.js';
import { MAX_FILLERS_PER_STEP } from '../../sandbox/world/policy.js';
import { ask } from './worldHelpers.js';

const problems = generateProblems({ seed: 21, count: 120 });

/** Policy solutions with their ground truth. */
function solutions(count: number, temperature = 1) {
  return problems.slice(0, count).flatMap((p) => [0, 1].map((choiceIndex) => {
    const parsed = parsePolicyResponse(ask('sim-policy', buildGeneratorMessages(p.question), { temperature, choiceIndex }));
    return { problem: p, parsed, truth: firstErrorIndex(p.question, parsed.steps) };
  }));
}

describe('the policy', () => {
  it('answers in the SPARK policy format, almost always one step per operation, wrong 30–50% of the time at temperature 1', () => {
    const all = solutions(120);
    // Merging, splitting and format slips are rare by default, not absent.
    const regular = all.filter((s) => s.parsed.steps.length === s.problem.ops.length && s.parsed.boxed.length === 1 && s.parsed.trailing === '');
    expect(regular.length).toBeGreaterThan(all.length * 0.9);
    expect(regular.length).toBeLessThan(all.length);
    const wrongRate = all.filter((s) => s.truth >= 0).length / all.length;
    expect(wrongRate).toBeGreaterThan(0.3);
    expect(wrongRate).toBeLessThan(0.5);
  });

  it('is greedy and never slips at temperature 0; different samples differ at temperature > 0', () => {
    const messages = buildGeneratorMessages(problems[0]!.question);
    const greedy = [0, 1, 2].map((choiceIndex) => ask('sim-policy', messages, { temperature: 0, choiceIndex }));
    expect(new Set(greedy).size).toBe(1);
    expect(firstErrorIndex(problems[0]!.question, parsePolicyResponse(greedy[0]!).steps)).toBe(-1);
    const sampled = new Set([0, 1, 2, 3, 4, 5].map((choiceIndex) => ask('sim-policy', messages, { temperature: 1, choiceIndex })));
    expect(sampled.size).toBeGreaterThan(1);
  });

  it('has behaviours RL can discover: merging, splitting, appending and breaking the format', () => {
    const q = problems[1]!.question;
    const merged = parsePolicyResponse(ask('sim-policy', buildGeneratorMessages(q), { overrides: { policy: { mergeStepsLogit: 20 } } }));
    expect(merged.steps).toHaveLength(1);
    const split = parsePolicyResponse(ask('sim-policy', buildGeneratorMessages(q), { overrides: { policy: { splitStepsLogit: 20 } } }));
    // Fillers are geometric: a sure split adds the most fillers after every step.
    expect(split.steps).toHaveLength((1 + MAX_FILLERS_PER_STEP) * problems[1]!.ops.length);
    const appended = parsePolicyResponse(ask('sim-policy', buildGeneratorMessages(q), { overrides: { policy: { appendAfterAnswerLogit: 20 } } }));
    expect(appended.trailing).toMatch(/Start with \d+\./);
    expect(appended.trailing).toContain('\\boxed{');
    const broken = parsePolicyResponse(ask('sim-policy', buildGeneratorMessages(q), { overrides: { policy: { formatViolationLogit: 20 } } }));
    expect(broken.answerBlock === null || broken.boxed.length !== 1).toBe(true);
  });

  it('answers a problem it cannot parse with a guessed chain in the same format', () => {
    const text = ask('sim-policy', buildGeneratorMessages('Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did she sell?'));
    const parsed = parsePolicyResponse(text);
    expect(parsed.steps.length).toBeGreaterThanOrEqual(3);
    expect(parsed.boxed).toHaveLength(1);
  });
});

describe('the judges', () => {
  const sample = solutions(40, 1);
  const wrong = sample.filter((s) => s.truth >= 0);
  const view = (s: (typeof sample)[number]) => ({ question: s.problem.question, steps: s.parsed.steps, answer: s.parsed.answerBlock });

  it('verify in the exact SPARK format, one label per step, marking steps after a detected error incorrect', () => {
    for (const s of sample.slice(0, 30)) {
      const v = parseVerification(ask('sim-verifier', buildVerifierMessages(view(s))));
      expect(v.ok).toBe(true);
      if (!v.ok) continue;
      expect(v.steps).toHaveLength(s.parsed.steps.length);
      const first = v.steps.findIndex((l) => !l.correct);
      if (first >= 0) expect(v.steps.slice(first).every((l) => !l.correct)).toBe(true);
    }
  });

  it('answer every reward-model style and the ProcessBench template in a parseable form', () => {
    for (const s of sample.slice(0, 10)) {
      expect(parseRewardModelOutput('orm', ask('sim-verifier', buildPrmMessages({ ...view(s), style: 'orm' }), { temperature: 0 })).ok).toBe(true);
      const prm = ask('sim-verifier', buildPrmMessages({ ...view(s), style: 'prm' }), { temperature: 0, overrides: { prm: { style: 'prm' } } });
      expect(parseRewardModelOutput('prm', prm)).toMatchObject({ ok: true, steps: expect.any(Array) });
      const cot = ask('sim-verifier', buildPrmMessages({ ...view(s), style: 'prm-cot' }), { temperature: 0 });
      expect(parseRewardModelOutput('prm-cot', cot).ok).toBe(true);
      const pb = parseProcessBenchAnswer(ask('sim-verifier', buildProcessBenchMessages({ problem: s.problem.question, steps: s.parsed.steps }), { temperature: 0 }));
      expect(pb).not.toBeNull();
      expect(pb).toBeGreaterThanOrEqual(-1);
    }
  });

  it('the strong verifier judges outcomes better than the weak one, and a reference answer helps the weak one', () => {
    const accuracy = (model: string, reference: boolean) => sample.filter((s) => {
      const v = parseVerification(ask(model, buildVerifierMessages({ ...view(s), ...(reference ? { referenceAnswer: String(s.problem.answer) } : {}) })));
      return v.ok && v.outcome === (s.truth < 0);
    }).length / sample.length;
    const weak = accuracy('sim-policy', false);
    expect(accuracy('sim-verifier', false)).toBeGreaterThan(weak + 0.1);
    expect(accuracy('sim-policy', true)).toBeGreaterThan(weak + 0.05);
  });

  it('critique then merge repairs verifications: the merged first error matches the truth more often', () => {
    let single = 0;
    let merged = 0;
    for (const s of sample) {
      const verification = ask('sim-policy', buildVerifierMessages(view(s)));
      const v = parseVerification(verification);
      const critique = ask('sim-verifier', buildCriticMessages({ ...view(s), verification }), { temperature: 0 });
      expect(parseCritique(critique).ok).toBe(true);
      const m = parseVerification(ask('sim-verifier', buildMergeMessages({ ...view(s), verification, critique }), { temperature: 0 }));
      expect(m.ok).toBe(true);
      if (v.ok && v.steps.findIndex((l) => !l.correct) === s.truth) single++;
      if (m.ok && m.steps.findIndex((l) => !l.correct) === s.truth) merged++;
      if (m.ok) expect(m.outcome).toBe(m.steps.every((l) => l.correct));
    }
    expect(merged).toBeGreaterThan(single + sample.length * 0.1);
  });

  it('are fooled by a solved problem appended after the answer: the weak PRM says Yes to wrong solutions', () => {
    const appendix = '\n\nStart with 5. Add 3. Multiply by 2. Subtract 4. Divide by 2. What is the result?\n<step>5 + 3 = 8.</step>\n<step>8 × 2 = 16.</step>\n<step>16 - 4 = 12.</step>\n<step>12 ÷ 2 = 6.</step>\n<answer>\\boxed{6}</answer>';
    const verdicts = (trailing: string) => wrong.map((s) => {
      const out = parseRewardModelOutput('orm', ask('sim-policy', buildPrmMessages({ ...view(s), style: 'orm', trailing }), { temperature: 0 }));
      return out.ok && out.outcome;
    }).filter(Boolean).length / wrong.length;
    expect(verdicts(appendix)).toBeGreaterThan(verdicts('') + 0.5);
  });

  it('never crash on foreign input and fall back to base rates', () => {
    const foreign = { question: 'Janet has 16 eggs and eats 3. How many are left?', steps: ['She has 16 eggs.', 'She eats 3, so 16 - 3 = 13.'], answer: '\\boxed{13}' };
    expect(parseVerification(ask('sim-verifier', buildVerifierMessages(foreign))).ok).toBe(true);
    expect(parseProcessBenchAnswer(ask('sim-verifier', buildProcessBenchMessages({ problem: foreign.question, steps: foreign.steps })))).not.toBeNull();
    expect(ask('sim-verifier', [{ role: 'user', content: '' }])).toContain('\\boxed{');
  });
});
