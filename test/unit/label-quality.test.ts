import { describe, expect, it } from 'vitest';
import { firstErrorIndex, formatValue, generateProblems, opSymbol } from '../../sandbox/arith.js';
import type { ArithProblem } from '../../sandbox/arith.js';
import { formatQualityTable, labelQuality } from '../../sandbox/label-quality.js';
import type { MethodQuality } from '../../sandbox/label-quality.js';
import type { LabelLine, StoredLabels } from '../../src/spark/labels/labels.js';

const [problem] = generateProblems({ seed: 'label-quality', count: 1, minOps: 4, maxOps: 4 });
if (!problem) throw new Error('no problem generated');

/** The solution's steps as equations, `a op b = c`; `wrongAt` states a wrong result at that step. */
function stepsOf(p: ArithProblem, wrongAt = -1): string[] {
  return p.ops.map((op, i) => {
    const input = i === 0 ? p.start : p.values[i - 1]!;
    const result = p.values[i]! + (i === wrongAt ? 1 : 0);
    return `${formatValue(input)} ${opSymbol(op.kind)} ${formatValue(op.operand)} = ${formatValue(result)}`;
  });
}

/** Stored labels with the first wrong step at `firstError` (-1: all correct). */
function labelled(firstError: number, outcome = firstError === -1): StoredLabels {
  const stepLabels = problem!.ops.map((_, i) => firstError === -1 || i < firstError);
  return {
    ok: true, stepLabels, outcome, firstErrorStep: stepLabels.indexOf(false),
    target: { rule: 'exact', sampleIndex: 0, text: null }, ties: { outcome: false, steps: [] }, fallback: null,
  };
}

const failed: StoredLabels = { ok: false, reason: 'no valid verification' };

function line(question: string, steps: string[], labels: LabelLine['labels'], solutionIndex = 0): LabelLine {
  return {
    problemIndex: 0, problemId: 'p0', question, solutionIndex, steps, answer: null,
    verifications: { requested: 4, drawn: 4, valid: 4, invalid: 0, stop: 'complete' },
    votes: { steps: [], outcome: { yes: 0, no: 0 } },
    labels,
  };
}

function row(rows: readonly MethodQuality[], method: MethodQuality['method']): MethodQuality {
  const r = rows.find((x) => x.method === method);
  if (!r) throw new Error(`no row for ${method}`);
  return r;
}

describe('label quality', () => {
  const q = problem.question;
  // Truths: A -1, B 1, C 2, D -1. E is not an arithmetic chain.
  const lines = [
    line(q, stepsOf(problem), { single: failed, 'step-majority': labelled(-1) }, 0),
    line(q, stepsOf(problem, 1), { single: labelled(1), 'step-majority': labelled(1) }, 1),
    // single finds the right step but says Yes anyway; step-majority points one step too early.
    line(q, stepsOf(problem, 2), { single: labelled(2, true), 'step-majority': labelled(1) }, 2),
    line(q, stepsOf(problem), { single: labelled(-1), 'step-majority': labelled(2) }, 3),
    line('What is two plus two?', ['2 + 2 = 5'], { single: labelled(0), 'step-majority': labelled(0) }, 4),
  ];

  it('builds the fixture with the intended ground truth', () => {
    expect(lines.slice(0, 4).map((l) => firstErrorIndex(l.question, l.steps))).toEqual([-1, 1, 2, -1]);
  });

  it('scores first-error F1 and outcome accuracy per method', () => {
    const { rows, skipped } = labelQuality(lines, ['single', 'step-majority']);
    expect(skipped).toBe(1);
    expect(rows.map((r) => r.method)).toEqual(['single', 'step-majority']);

    const sm = row(rows, 'step-majority');
    expect(sm).toMatchObject({ solutions: 4, nErroneous: 2, nCorrect: 2, unlabelled: 0 });
    expect(sm.accErroneous).toBe(0.5); // B right, C one step early
    expect(sm.accCorrect).toBe(0.5); // A right, D a false alarm
    expect(sm.f1).toBe(0.5);
    expect(sm.outcomeAccuracy).toBe(0.75); // only D's verdict is wrong
  });

  it('counts ok:false labels as unlabelled and wrong', () => {
    const single = row(labelQuality(lines, ['single']).rows, 'single');
    expect(single.unlabelled).toBe(1);
    expect(single.accErroneous).toBe(1); // B and C exact
    expect(single.accCorrect).toBe(0.5); // A unlabelled, D right
    expect(single.f1).toBeCloseTo(2 / 3, 10);
    expect(single.outcomeAccuracy).toBe(0.5); // A unlabelled, C says Yes
  });

  it('treats a method missing from the lines as unlabelled everywhere', () => {
    const hybrid = row(labelQuality(lines, ['hybrid']).rows, 'hybrid');
    expect(hybrid).toMatchObject({ solutions: 4, unlabelled: 4, accErroneous: 0, accCorrect: 0, f1: 0, outcomeAccuracy: 0 });
  });

  it('skips lines without ground truth and leaves empty groups without a score', () => {
    const onlyCorrect = labelQuality([lines[0]!, lines[3]!, lines[4]!], ['step-majority']);
    expect(onlyCorrect.skipped).toBe(1);
    expect(row(onlyCorrect.rows, 'step-majority')).toMatchObject({ solutions: 2, nErroneous: 0, accErroneous: null, accCorrect: 0.5, f1: null });

    const none = labelQuality([lines[4]!], ['single']);
    expect(none.skipped).toBe(1);
    expect(row(none.rows, 'single')).toMatchObject({ solutions: 0, f1: null, outcomeAccuracy: null, unlabelled: 0 });
  });
});

describe('formatQualityTable', () => {
  const sm: MethodQuality = {
    method: 'step-majority', solutions: 4, nErroneous: 2, nCorrect: 2, f1: 0.5, accErroneous: 0.5, accCorrect: 0.5, outcomeAccuracy: 0.75, unlabelled: 0,
  };

  it('aligns a header, a rule and one row, with extra columns', () => {
    const table = formatQualityTable([sm], [{ samples: 64, requests: 8 }]);
    expect(table.split('\n')).toEqual([
      'method            F1  acc(err)  acc(ok)  outcome acc  unlabelled  samples  requests',
      '-'.repeat(83),
      'step-majority  0.500     0.500    0.500        0.750           0       64         8',
    ]);
  });

  it('writes n/a for missing values and three decimals for fractional extras', () => {
    const single: MethodQuality = { ...sm, method: 'single', f1: null, accErroneous: null, accCorrect: 1, unlabelled: 2 };
    const [, , first, second] = formatQualityTable([sm, single], [{ 'calls/solution': 2.5 }]).split('\n');
    expect(first).toBe('step-majority  0.500     0.500    0.500        0.750           0           2.500');
    expect(second).toBe('single           n/a       n/a    1.000        0.750           2             n/a');
  });
});
