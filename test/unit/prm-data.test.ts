import { describe, expect, it } from 'vitest';
import { renderVerification } from '../../src/spark/common/formats.js';
import type { LabelLine, StoredLabels } from '../../src/spark/labels/labels.js';
import type { PrmDataOptions } from '../../src/spark/prm/prm-data.js';
import { buildPrmExamples, voteAgreement } from '../../src/spark/prm/prm-data.js';

const QUESTION = 'Start with 12. Add 5, then multiply by 3. What is the result?';
const STEPS = ['12 + 5 = 17', '17 * 3 = 52'];

function verificationText(labels: boolean[]): string {
  return renderVerification({ steps: labels.map((correct, i) => ({ title: `Step ${i + 1}`, analysis: 'Recomputed.', correct })), outcome: labels.every(Boolean) });
}

function labelsOf(stepLabels: boolean[], rule: 'exact' | 'closest' | 'merged' | 'none' = 'exact'): StoredLabels {
  return {
    ok: true,
    stepLabels,
    outcome: stepLabels.every(Boolean),
    firstErrorStep: stepLabels.indexOf(false),
    target: { rule, sampleIndex: rule === 'exact' || rule === 'closest' ? 0 : null, text: rule === 'none' ? null : verificationText(stepLabels) },
    ties: { outcome: false, steps: [] },
    fallback: null,
  };
}

function line(solutionIndex: number, stepLabels: boolean[], votes: { steps: [number, number][]; outcome: [number, number] }, rule?: 'exact' | 'closest' | 'merged' | 'none'): LabelLine {
  return {
    problemIndex: 0,
    problemId: 'p0',
    question: QUESTION,
    solutionIndex,
    steps: STEPS,
    answer: '\\boxed{52}',
    verifications: { requested: 4, drawn: 4, valid: 4, invalid: 0, stop: 'complete' },
    votes: { steps: votes.steps.map(([correct, incorrect]) => ({ correct, incorrect })), outcome: { yes: votes.outcome[0], no: votes.outcome[1] } },
    labels: { 'step-majority': labelsOf(stepLabels, rule), single: { ok: false, reason: 'none of the 4 verifications is valid' } },
  };
}

const options = (over: Partial<PrmDataOptions> = {}): PrmDataOptions => ({
  method: 'step-majority', style: 'prm', balance: 'none', minAgreement: 0, cotTargets: 'agreeing', seed: 1, ...over,
});

// Solution 0: step 2 wrong (3–1 votes); solution 1: all correct (unanimous); solution 2: all correct, split votes.
const LINES = [
  line(0, [true, false], { steps: [[4, 0], [1, 3]], outcome: [1, 3] }),
  line(1, [true, true], { steps: [[4, 0], [4, 0]], outcome: [4, 0] }),
  line(2, [true, true], { steps: [[3, 1], [2, 2]], outcome: [3, 1] }, 'closest'),
];

describe('PRM training data', () => {
  it('ORM style: the SPARK ORM prompt and a bare Yes/No', () => {
    const { examples } = buildPrmExamples(LINES, options({ style: 'orm' }));
    expect(examples[0]!.messages).toEqual([
      { role: 'user', content: `Problem: ${QUESTION}\nSolution: Step 1: 12 + 5 = 17\nStep 2: 17 * 3 = 52\nFinal answer: \\boxed{52}\nIs the answer correct (Yes/No)?` },
      { role: 'assistant', content: 'No' },
    ]);
    expect(examples.map((e) => e.messages[1]!.content)).toEqual(['No', 'Yes', 'Yes']);
  });

  it('PRM style: the step-by-step prompt and one Correct/Incorrect line per step, then the verdict', () => {
    const { examples } = buildPrmExamples(LINES, options({ style: 'prm' }));
    expect(examples[0]!.messages[0]!.content).toBe(
      `Problem: ${QUESTION}\nStudent Solution: Step 1: 12 + 5 = 17\nStep 2: 17 * 3 = 52\nFinal answer: \\boxed{52}\nLet's verify step by step.`,
    );
    expect(examples[0]!.messages[1]!.content).toBe('Step 1: Correct\nStep 2: Incorrect\n**Verification: Is the answer correct (Yes/No)? No**');
    expect(examples[0]!.meta).toEqual({ problemId: 'p0', solutionIndex: 0, outcome: false, firstErrorStep: 1, method: 'step-majority', style: 'prm' });
  });

  it('PRM-CoT style: the agreeing verification text; a merely closest one is dropped unless asked for', () => {
    const agreeing = buildPrmExamples(LINES, options({ style: 'prm-cot' }));
    expect(agreeing.examples.map((e) => e.meta.solutionIndex)).toEqual([0, 1]);
    expect(agreeing.examples[0]!.messages[1]!.content).toBe(verificationText([true, false]));
    expect(agreeing.counts.dropped.noTarget).toBe(1);
    expect(buildPrmExamples(LINES, options({ style: 'prm-cot', cotTargets: 'closest' })).examples).toHaveLength(3);
  });

  it('counts lines without labels for the method', () => {
    const { counts } = buildPrmExamples(LINES, options({ method: 'single' }));
    expect(counts).toMatchObject({ input: 3, kept: 0, dropped: { unlabelled: 3 } });
  });

  it('drops low-agreement solutions by the weakest vote share over the outcome and the deciding steps', () => {
    expect(LINES.map((l) => voteAgreement(l, l.labels['step-majority'] as Extract<StoredLabels, { ok: true }>))).toEqual([0.75, 1, 0.5]);
    const { examples, counts } = buildPrmExamples(LINES, options({ minAgreement: 0.7 }));
    expect(examples.map((e) => e.meta.solutionIndex)).toEqual([0, 1]);
    expect(counts).toMatchObject({ kept: 2, dropped: { lowAgreement: 1 }, classes: { yes: 1, no: 1 } });
  });

  it('balances outcome classes by dropping from the larger one, the same way for the same seed', () => {
    const many = [...LINES, line(3, [true, true], { steps: [[4, 0], [4, 0]], outcome: [4, 0] })];
    const a = buildPrmExamples(many, options({ balance: 'outcome', seed: 7 }));
    expect(a.counts).toMatchObject({ kept: 2, dropped: { balance: 2 }, classes: { yes: 1, no: 1 } });
    expect(a.examples[0]!.meta.solutionIndex).toBe(0);
    expect(buildPrmExamples(many, options({ balance: 'outcome', seed: 7 })).examples).toEqual(a.examples);
    const kept = new Set([1, 2, 3].map((seed) => buildPrmExamples(many, options({ balance: 'outcome', seed })).examples[1]!.meta.solutionIndex));
    expect(kept.size).toBeGreaterThan(1);
  });
});
