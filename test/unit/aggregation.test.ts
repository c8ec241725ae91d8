import { describe, expect, it } from 'vitest';
import {
  aggregateVerifications, critiqueOutcomeConsensus, critiqueSingle, decideStep, enforceConsistency, firstErrorF1, fitLabels, hybrid,
  outcomeAccuracy, outcomeMajority, selectTarget, singleVerification, stepMajority, stepMajorityConfident, stepMajorityDecided,
  tallyVotes,
} from '../../src/spark/labels/aggregation.js';
import type {
  AggregationOutcome, AggregationResult, MergedVerification, SampledVerification, StepTieRule, StepVotes, VoteTally,
} from '../../src/spark/labels/aggregation.js';
import { parseVerification, renderVerification } from '../../src/spark/common/formats.js';
import type { VerificationParse } from '../../src/spark/common/formats.js';

/** Labels written as a string: C = correct, I = incorrect. */
function labelsOf(s: string): boolean[] {
  return [...s].map((ch) => ch === 'C');
}

function parsedOf(labels: string, outcome = !labels.includes('I')): VerificationParse {
  return { ok: true, steps: labelsOf(labels).map((correct, i) => ({ index: i + 1, correct })), outcome };
}

/** A valid verification with the given labels; the outcome defaults to the consistent one. */
function v(sampleIndex: number, labels: string, outcome?: boolean): SampledVerification {
  return { sampleIndex, text: `verification ${sampleIndex}`, parsed: parsedOf(labels, outcome) };
}

function bad(sampleIndex: number): SampledVerification {
  return { sampleIndex, text: `garbage ${sampleIndex}`, parsed: { ok: false, reason: 'missing the final verdict line' } };
}

function merged(labels: string, outcome?: boolean): MergedVerification {
  return { text: `merged ${labels}`, parsed: parsedOf(labels, outcome) };
}

function ok(result: AggregationOutcome): AggregationResult {
  if (!result.ok) throw new Error(`expected a result, got failure: ${result.reason}`);
  return result;
}

function str(labels: readonly boolean[]): string {
  return labels.map((l) => (l ? 'C' : 'I')).join('');
}

function tally(steps: [number, number][], yes = 0, no = 0): VoteTally {
  return { steps: steps.map(([correct, incorrect]) => ({ correct, incorrect })), outcome: { yes, no } };
}

describe('vote counting and label fitting', () => {
  it('counts only labelled steps, ignores extra labels and invalid samples', () => {
    const t = tallyVotes([v(0, 'CC', false), v(1, 'CCIC'), bad(2), v(3, 'CICCII')], 4);
    expect(t.steps).toEqual([{ correct: 3, incorrect: 0 }, { correct: 2, incorrect: 1 }, { correct: 1, incorrect: 1 }, { correct: 2, incorrect: 0 }]);
    expect(t.outcome).toEqual({ yes: 0, no: 3 });
  });

  it('rejects repeated sample indices and bad step counts', () => {
    expect(() => tallyVotes([v(0, 'C'), v(0, 'I')], 1)).toThrow(/sample index 0 appears twice/);
    expect(() => tallyVotes([v(0, 'C')], -1)).toThrow(RangeError);
    expect(() => tallyVotes([v(0, 'C')], 1.5)).toThrow(RangeError);
  });

  it('pads missing labels from the verdict and the written labels, and drops extra ones', () => {
    expect(fitLabels(labelsOf('CC'), 4, true)).toEqual({ labels: labelsOf('CCCC'), padded: true });
    expect(fitLabels(labelsOf('CC'), 4, false)).toEqual({ labels: labelsOf('CCII'), padded: true });
    expect(fitLabels(labelsOf('CI'), 3, true)).toEqual({ labels: labelsOf('CII'), padded: true });
    expect(fitLabels(labelsOf('CICC'), 2, true)).toEqual({ labels: labelsOf('CI'), padded: false });
    expect(fitLabels([], 2, true)).toEqual({ labels: labelsOf('CC'), padded: true });
  });

  it('enforces SPARK consistency in both directions', () => {
    expect(enforceConsistency(labelsOf('CICC'), true)).toEqual({ stepLabels: labelsOf('CIII'), outcome: false });
    expect(enforceConsistency(labelsOf('CCC'), false)).toEqual({ stepLabels: labelsOf('CCC'), outcome: true });
    expect(enforceConsistency(labelsOf('ICI'), false)).toEqual({ stepLabels: labelsOf('III'), outcome: false });
    expect(enforceConsistency([], false)).toEqual({ stepLabels: [], outcome: false });
  });
});

describe('singleVerification', () => {
  it('takes the valid verification with the lowest sample index, whatever the input order', () => {
    const r = ok(singleVerification([v(2, 'CC'), bad(0), v(1, 'CI')], 2));
    expect(r.method).toBe('single');
    expect(str(r.stepLabels)).toBe('CI');
    expect(r.outcome).toBe(false);
    expect(r.firstErrorStep).toBe(1);
    expect(r.counts).toEqual({ valid: 2, invalid: 1 });
    expect(r.votes).toEqual([{ correct: 2, incorrect: 0 }, { correct: 1, incorrect: 1 }]);
    expect(r.outcomeVotes).toEqual({ yes: 1, no: 1 });
    expect(r.target).toMatchObject({ sampleIndex: 1, text: 'verification 1', rule: 'exact' });
    expect(r.fallback).toBe(false);
    expect(r.revision).toBeNull();
  });

  it('keeps labels as written unless consistency is asked for', () => {
    const raw = ok(singleVerification([v(0, 'CIC', true)], 3));
    expect(str(raw.stepLabels)).toBe('CIC');
    expect(raw.outcome).toBe(true);
    expect(raw.consistent).toBe(false);
    const fixed = ok(singleVerification([v(0, 'CIC', true)], 3, { consistency: true }));
    expect(str(fixed.stepLabels)).toBe('CII');
    expect(fixed.outcome).toBe(false);
    expect(fixed.firstErrorStep).toBe(1);
  });

  it('pads a verification that labels too few steps', () => {
    const r = ok(singleVerification([v(0, 'CC', false)], 4));
    expect(str(r.stepLabels)).toBe('CCII');
    expect(r.firstErrorStep).toBe(2);
    // The only verification labels 2 of 4 steps: no exact match, the closest is still it.
    expect(r.target).toEqual({ sampleIndex: 0, text: 'verification 0', rule: 'closest', agreement: { matchingSteps: 2, stepCount: 4, outcomeMatches: true } });
  });

  it('fails clearly when nothing is valid or the solution has no steps', () => {
    expect(singleVerification([bad(0), bad(1)], 3)).toEqual({
      ok: false, method: 'single', reason: 'none of the 2 verifications is valid', counts: { valid: 0, invalid: 2 },
    });
    expect(singleVerification([], 3)).toMatchObject({ ok: false, reason: 'none of the 0 verifications is valid' });
    expect(singleVerification([v(0, 'C')], 0)).toMatchObject({ ok: false, reason: 'the solution has no steps' });
  });
});

describe('outcomeMajority', () => {
  const five = [v(4, 'II'), v(0, 'CI'), v(2, 'C', true), v(3, 'CC'), v(1, 'CC')];

  it('takes the majority verdict and the labels of the lowest-index verification that agrees and labels every step', () => {
    const r = ok(outcomeMajority(five, 2));
    expect(r.outcomeVotes).toEqual({ yes: 3, no: 2 });
    expect(r.outcome).toBe(true);
    expect(str(r.stepLabels)).toBe('CC');
    expect(r.ties.outcome).toBe(false);
    expect(r.target).toMatchObject({ sampleIndex: 1, rule: 'exact' });
  });

  it('prefers a complete verification over a lower-index one with too few steps', () => {
    const r = ok(outcomeMajority([v(0, 'C', true), v(1, 'CI', true), v(2, 'II')], 2));
    expect(r.outcome).toBe(true);
    expect(str(r.stepLabels)).toBe('CI'); // written labels of sample 1, not padded ones of sample 0
    expect(r.target).toMatchObject({ sampleIndex: 1, rule: 'exact' });
  });

  it('pads when every agreeing verification is short', () => {
    const yes = ok(outcomeMajority([v(0, 'C', true), v(1, 'C', true), v(2, 'II')], 3));
    expect(str(yes.stepLabels)).toBe('CCC');
    const no = ok(outcomeMajority([v(0, 'C', false), v(1, 'C', false), v(2, 'CCC')], 3));
    expect(no.outcome).toBe(false);
    expect(str(no.stepLabels)).toBe('CII');
    expect(no.firstErrorStep).toBe(1);
  });

  describe('ties (even K)', () => {
    const four = [v(0, 'CC'), v(1, 'CI'), v(2, 'CC'), v(3, 'II')];

    it('count as No by default', () => {
      const r = ok(outcomeMajority(four, 2));
      expect(r.outcomeVotes).toEqual({ yes: 2, no: 2 });
      expect(r.ties.outcome).toBe(true);
      expect(r.outcome).toBe(false);
      expect(str(r.stepLabels)).toBe('CI');
      expect(r.target.sampleIndex).toBe(1);
    });

    it('count as Yes under rule yes', () => {
      const r = ok(outcomeMajority(four, 2, { tieRule: 'yes' }));
      expect(r.outcome).toBe(true);
      expect(str(r.stepLabels)).toBe('CC');
      expect(r.target.sampleIndex).toBe(0);
    });

    it('follow the lowest-index valid verdict under rule first', () => {
      expect(ok(outcomeMajority(four, 2, { tieRule: 'first' })).outcome).toBe(true);
      const noFirst = [bad(0), v(1, 'CI'), v(2, 'CC'), v(3, 'IC', true), v(4, 'II')];
      const r = ok(outcomeMajority(noFirst, 2, { tieRule: 'first' }));
      expect(r.outcome).toBe(false);
      expect(str(r.stepLabels)).toBe('CI');
    });
  });

  it('fails on all-invalid input', () => {
    expect(outcomeMajority([bad(0)], 2)).toMatchObject({ ok: false, method: 'outcome-majority', counts: { valid: 0, invalid: 1 } });
  });
});

describe('stepMajority', () => {
  it('votes each step independently (a consensus no single verification wrote)', () => {
    const r = ok(stepMajority([v(0, 'CCC'), v(1, 'CII'), v(2, 'ICC')], 3));
    expect(r.votes).toEqual([{ correct: 2, incorrect: 1 }, { correct: 2, incorrect: 1 }, { correct: 2, incorrect: 1 }]);
    expect(str(r.stepLabels)).toBe('CCC');
    expect(r.outcome).toBe(true);
    expect(r.firstErrorStep).toBe(-1);
    expect(r.target).toMatchObject({ sampleIndex: 0, rule: 'exact' });

    const s = ok(stepMajority([v(0, 'CIC', true), v(1, 'ICI'), v(2, 'CCI')], 3, { consistency: false }));
    expect(str(s.stepLabels)).toBe('CCI');
    expect(s.outcome).toBe(false);
    expect(s.firstErrorStep).toBe(2);
  });

  it('propagates the first error and derives the outcome (consistency on by default)', () => {
    const verifs = [v(0, 'CIC', false), v(1, 'CIC', false), v(2, 'CCC')];
    const r = ok(stepMajority(verifs, 3));
    expect(r.consistent).toBe(true);
    expect(str(r.stepLabels)).toBe('CII');
    expect(r.outcome).toBe(false);
    expect(r.firstErrorStep).toBe(1);
    const raw = ok(stepMajority(verifs, 3, { consistency: false }));
    expect(str(raw.stepLabels)).toBe('CIC');
    expect(raw.outcome).toBe(false);
    expect(raw.firstErrorStep).toBe(1);
  });

  it('sets the outcome to Yes when every step is correct, whatever the verdict votes', () => {
    const verifs = [v(0, 'CC', false), v(1, 'CC', false), v(2, 'CI')];
    const r = ok(stepMajority(verifs, 2));
    expect(r.outcomeVotes).toEqual({ yes: 0, no: 3 });
    expect(r.outcome).toBe(true);
    expect(ok(stepMajority(verifs, 2, { consistency: false })).outcome).toBe(false);
  });

  describe('verifications with too few or too many steps, and ties', () => {
    const verifs = [v(0, 'CC', false), v(1, 'CCCI'), v(2, 'CCCC'), v(3, 'CCCCCI')];
    // step 4 (index 3): sample 0 does not vote, 1 says I, 2 says C, 3 says C; with sample 3 dropped: 1–1.
    const even = verifs.slice(0, 3);

    it('lets missing labels abstain and ignores extra labels', () => {
      const r = ok(stepMajority(verifs, 4));
      expect(r.votes).toEqual([{ correct: 4, incorrect: 0 }, { correct: 4, incorrect: 0 }, { correct: 3, incorrect: 0 }, { correct: 2, incorrect: 1 }]);
      expect(str(r.stepLabels)).toBe('CCCC');
      expect(r.ties.steps).toEqual([]);
      // Sample 3 labels six steps, so it never agrees exactly; sample 2 does.
      expect(r.target).toMatchObject({ sampleIndex: 2, rule: 'exact' });
    });

    it('decides a tied step as incorrect by default', () => {
      const r = ok(stepMajority(even, 4));
      expect(r.votes[3]).toEqual({ correct: 1, incorrect: 1 });
      expect(r.ties.steps).toEqual([3]);
      expect(str(r.stepLabels)).toBe('CCCI');
      expect(r.outcome).toBe(false);
      expect(r.firstErrorStep).toBe(3);
      expect(r.target).toMatchObject({ sampleIndex: 1, rule: 'exact' });
    });

    it('decides a tied step as correct under rule correct', () => {
      const r = ok(stepMajority(even, 4, { tieRule: 'correct' }));
      expect(str(r.stepLabels)).toBe('CCCC');
      expect(r.outcome).toBe(true);
      expect(r.target.sampleIndex).toBe(2);
    });

    it('takes the lowest-index voter on that step under rule first', () => {
      expect(str(ok(stepMajority(even, 4, { tieRule: 'first' })).stepLabels)).toBe('CCCI');
      const swapped = [v(0, 'CC', false), v(1, 'CCCC'), v(2, 'CCCI')];
      expect(str(ok(stepMajority(swapped, 4, { tieRule: 'first' })).stepLabels)).toBe('CCCC');
    });

    it('treats a step nobody labelled as a 0–0 tie', () => {
      const r = ok(stepMajority([v(0, 'C', true), v(1, 'C', true)], 2));
      expect(r.votes[1]).toEqual({ correct: 0, incorrect: 0 });
      expect(r.ties.steps).toEqual([1]);
      expect(str(r.stepLabels)).toBe('CI');
      expect(str(ok(stepMajority([v(0, 'C', true)], 2, { tieRule: 'correct' })).stepLabels)).toBe('CC');
      expect(str(ok(stepMajority([v(0, 'C', true)], 2, { tieRule: 'first' })).stepLabels)).toBe('CI');
    });
  });

  it('decides the outcome by vote and tie rule without consistency', () => {
    const verifs = [v(0, 'CC', true), v(1, 'CC', false)];
    const no = ok(stepMajority(verifs, 2, { consistency: false }));
    expect(no.outcome).toBe(false);
    expect(no.ties.outcome).toBe(true);
    expect(ok(stepMajority(verifs, 2, { consistency: false, outcomeTieRule: 'yes' })).outcome).toBe(true);
    expect(ok(stepMajority(verifs, 2)).ties.outcome).toBe(false);
  });

  it('fails on all-invalid input and ignores invalid samples otherwise', () => {
    expect(stepMajority([bad(0), bad(1)], 2)).toMatchObject({ ok: false, method: 'step-majority', reason: 'none of the 2 verifications is valid' });
    const r = ok(stepMajority([bad(0), v(1, 'CI'), bad(2)], 2));
    expect(r.counts).toEqual({ valid: 1, invalid: 2 });
    expect(str(r.stepLabels)).toBe('CI');
  });

  it('works on verifications that went through the real parser', () => {
    const texts = ['CCI', 'CII', 'CCI', 'CCC'].map((labels) => renderVerification({
      steps: labelsOf(labels).map((correct, i) => ({ title: `step ${i + 1}`, analysis: 'Checked.', correct })),
      outcome: !labels.includes('I'),
    }));
    const verifs = texts.map((text, i) => ({ sampleIndex: i, text, parsed: parseVerification(text) }));
    const r = ok(stepMajority(verifs, 3));
    expect(str(r.stepLabels)).toBe('CCI');
    expect(r.target).toMatchObject({ sampleIndex: 0, text: texts[0], rule: 'exact' });
  });

  it('is reachable by name through aggregateVerifications', () => {
    const verifs = [v(0, 'CI'), v(1, 'CC'), v(2, 'CC'), v(3, 'IC', false)];
    expect(str(ok(aggregateVerifications('single', verifs, 2)).stepLabels)).toBe('CI');
    expect(ok(aggregateVerifications('outcome-majority', verifs, 2)).outcome).toBe(false); // 2–2, tie → No
    expect(ok(aggregateVerifications('outcome-majority', verifs, 2, { outcomeTieRule: 'yes' })).outcome).toBe(true);
    expect(str(ok(aggregateVerifications('step-majority', verifs, 2)).stepLabels)).toBe('CC'); // step 2: 3–1
    expect(str(ok(aggregateVerifications('step-majority', [v(0, 'CI'), v(1, 'CC')], 2, { stepTieRule: 'correct' })).stepLabels)).toBe('CC');
  });
});

describe('selectTarget', () => {
  const consensus = { stepLabels: labelsOf('CCI'), outcome: false };

  it('prefers exact agreement at the lowest sample index', () => {
    const t = selectTarget([v(5, 'CCI'), v(3, 'CCC'), v(4, 'CCI')], consensus);
    expect(t).toEqual({ sampleIndex: 4, text: 'verification 4', rule: 'exact', agreement: { matchingSteps: 3, stepCount: 3, outcomeMatches: true } });
  });

  it('needs the outcome to agree too for an exact match', () => {
    const t = selectTarget([v(0, 'CCI', true), v(1, 'CCI')], consensus);
    expect(t).toMatchObject({ sampleIndex: 1, rule: 'exact' });
  });

  it('never counts a verification with too few or too many steps as exact', () => {
    expect(selectTarget([v(0, 'CCII'), v(1, 'CC', false)], consensus)).toMatchObject({ rule: 'closest', sampleIndex: 0 });
  });

  it('falls back to the closest: most matching steps, then matching outcome, then lowest index', () => {
    const verifs = [v(0, 'ICI'), v(1, 'CIC', false), v(2, 'CCC', true), v(3, 'CCC', false), v(4, 'CCC', false)];
    // matching steps: 0→2 (outcome ok), 1→1, 2→2 (outcome wrong), 3→2 (ok), 4→2 (ok)
    expect(selectTarget(verifs, consensus)).toEqual({
      sampleIndex: 0, text: 'verification 0', rule: 'closest', agreement: { matchingSteps: 2, stepCount: 3, outcomeMatches: true },
    });
    expect(selectTarget([v(2, 'CCC', true), v(3, 'CCC', false)], consensus)).toMatchObject({ sampleIndex: 3, rule: 'closest' });
    expect(selectTarget([v(7, 'CIC', true), v(2, 'CIC', true)], consensus)).toMatchObject({ sampleIndex: 2, rule: 'closest' });
  });

  it('gives no target under rule none when nothing agrees exactly, or when nothing is valid', () => {
    const none = { sampleIndex: null, text: null, rule: 'none', agreement: null };
    expect(selectTarget([v(0, 'CCC'), v(1, 'ICI')], consensus, 'none')).toEqual(none);
    expect(selectTarget([v(0, 'CCC'), v(1, 'CCI')], consensus, 'none')).toMatchObject({ sampleIndex: 1, rule: 'exact' });
    expect(selectTarget([bad(0)], consensus)).toEqual(none);
    expect(selectTarget([], consensus)).toEqual(none);
  });

  it('flows into the aggregation results', () => {
    const r = ok(stepMajority([v(0, 'CIC', false), v(1, 'CIC', false), v(2, 'CCC')], 3, { targetRule: 'none' }));
    expect(str(r.stepLabels)).toBe('CII');
    expect(r.target.rule).toBe('none');
    const c = ok(stepMajority([v(0, 'CIC', false), v(1, 'CIC', false), v(2, 'CCC')], 3));
    expect(c.target).toMatchObject({ sampleIndex: 0, rule: 'closest', agreement: { matchingSteps: 2, outcomeMatches: true } });
  });
});

describe('meta-critique methods', () => {
  const verifs = [v(0, 'CCC'), v(1, 'CCI'), v(2, 'CCC')];

  it('critiqueSingle takes the merged labels and its text as target', () => {
    const single = ok(singleVerification(verifs, 3));
    const r = critiqueSingle(single, merged('CIC', false));
    expect(r.method).toBe('critique-single');
    expect(str(r.stepLabels)).toBe('CII'); // consistency on by default
    expect(r.outcome).toBe(false);
    expect(r.firstErrorStep).toBe(1);
    expect(r.fallback).toBe(false);
    expect(r.target).toEqual({ sampleIndex: null, text: 'merged CIC', rule: 'merged', agreement: { matchingSteps: 2, stepCount: 3, outcomeMatches: true } });
    expect(r.revision).toEqual({ from: 'single', changedSteps: [1, 2], outcomeChanged: true });
    expect(r.votes).toEqual(single.votes);
    expect(r.counts).toEqual(single.counts);
    const raw = critiqueSingle(single, merged('CIC', false), { consistency: false });
    expect(str(raw.stepLabels)).toBe('CIC');
    expect(raw.revision?.changedSteps).toEqual([1]);
  });

  it('falls back to the input labels when the merged verification is missing or invalid', () => {
    const single = ok(singleVerification(verifs, 3));
    const invalid = critiqueSingle(single, { text: 'oops', parsed: { ok: false, reason: 'no "## Step k:" headings found' } });
    expect(invalid.fallback).toBe(true);
    expect(invalid.fallbackReason).toBe('merged verification is invalid: no "## Step k:" headings found');
    expect(invalid.method).toBe('critique-single');
    expect(str(invalid.stepLabels)).toBe('CCC');
    expect(invalid.outcome).toBe(true);
    expect(invalid.target).toEqual(single.target);
    expect(invalid.revision).toEqual({ from: 'single', changedSteps: [], outcomeChanged: false });
    const missing = critiqueSingle(single, null);
    expect(missing).toMatchObject({ fallback: true, fallbackReason: 'no merged verification' });
  });

  it('fits a merged verification with a different step count, or falls back if asked', () => {
    const single = ok(singleVerification(verifs, 3));
    expect(str(critiqueSingle(single, merged('CC', false)).stepLabels)).toBe('CCI');
    expect(str(critiqueSingle(single, merged('CCCIC', false)).stepLabels)).toBe('CCC');
    // Five labels cut to three all-correct ones: consistency makes the outcome Yes.
    expect(critiqueSingle(single, merged('CCCIC', false)).outcome).toBe(true);
    const strict = critiqueSingle(single, merged('CC', false), { onStepMismatch: 'fallback' });
    expect(strict).toMatchObject({ fallback: true, fallbackReason: 'merged verification labels 2 steps, the solution has 3' });
  });

  it('critiqueOutcomeConsensus revises the outcome-majority result', () => {
    const consensus = ok(outcomeMajority(verifs, 3));
    expect(consensus.target.sampleIndex).toBe(0);
    const r = critiqueOutcomeConsensus(consensus, merged('ICC', false));
    expect(r.method).toBe('critique-outcome-consensus');
    expect(str(r.stepLabels)).toBe('III');
    expect(r.revision).toEqual({ from: 'outcome-majority', changedSteps: [0, 1, 2], outcomeChanged: true });
  });

  it('hybrid revises the step-majority result and keeps its votes', () => {
    const step = ok(stepMajority([v(0, 'CCI'), v(1, 'CII'), v(2, 'CCI'), v(3, 'CCC')], 3));
    const r = hybrid(step, merged('CCC'));
    expect(r.method).toBe('hybrid');
    expect(str(r.stepLabels)).toBe('CCC');
    expect(r.outcome).toBe(true);
    expect(r.ties).toEqual({ outcome: false, steps: [] });
    expect(r.votes).toEqual(step.votes);
    expect(r.revision).toEqual({ from: 'step-majority', changedSteps: [2], outcomeChanged: true });
    const same = hybrid(step, merged('CCI'));
    expect(same.revision).toEqual({ from: 'step-majority', changedSteps: [], outcomeChanged: false });
    expect(hybrid(step, null)).toMatchObject({ method: 'hybrid', fallback: true, target: step.target });
  });

  it('refuses a result of the wrong method', () => {
    const single = ok(singleVerification(verifs, 3));
    expect(() => hybrid(single, merged('CCC'))).toThrow(/hybrid revises a step-majority result, got single/);
    expect(() => critiqueSingle(ok(stepMajority(verifs, 3)), merged('CCC'))).toThrow(RangeError);
    expect(() => critiqueOutcomeConsensus(single, merged('CCC'))).toThrow(RangeError);
  });
});

describe('stepMajorityDecided', () => {
  it('is always decided with no votes left, even on a tie', () => {
    expect(stepMajorityDecided(tally([[1, 1]], 1, 1), 0)).toBe(true);
    expect(stepMajorityDecided(tally([[0, 0]]), 0)).toBe(true);
  });

  it('rejects a negative or fractional remaining count', () => {
    expect(() => stepMajorityDecided(tally([[1, 0]]), -1)).toThrow(RangeError);
    expect(() => stepMajorityDecided(tally([[1, 0]]), 0.5)).toThrow(RangeError);
  });

  it('sees when the remaining votes could reach a tie that the tie rule flips', () => {
    expect(stepMajorityDecided(tally([[3, 0]], 3), 2)).toBe(true);
    expect(stepMajorityDecided(tally([[3, 0]], 3), 3)).toBe(false); // 3–3 → incorrect
    expect(stepMajorityDecided(tally([[3, 0]], 3), 3, 'correct')).toBe(true); // 3–3 → still correct
    // One vote left that could tie.
    expect(stepMajorityDecided(tally([[2, 1]], 3), 1)).toBe(false);
    expect(stepMajorityDecided(tally([[2, 1]], 3), 1, 'correct')).toBe(true);
    expect(stepMajorityDecided(tally([[1, 2]], 3), 1)).toBe(true);
    expect(stepMajorityDecided(tally([[1, 2]], 3), 1, 'correct')).toBe(false);
  });

  it('treats tie rule first as unknown whenever a tie is reachable', () => {
    expect(stepMajorityDecided(tally([[2, 1]], 3), 1, 'first')).toBe(false);
    expect(stepMajorityDecided(tally([[1, 2]], 3), 1, 'first')).toBe(false);
    expect(stepMajorityDecided(tally([[3, 1]], 4), 1, 'first')).toBe(true);
  });

  it('with consistency stops at a step certain to be incorrect', () => {
    const t = tally([[0, 5], [1, 1]], 0, 5);
    expect(stepMajorityDecided(t, 3)).toBe(true);
    expect(stepMajorityDecided(t, 3, 'incorrect', { consistency: false })).toBe(false);
    expect(stepMajorityDecided(tally([[5, 0], [2, 2]], 3, 2), 1)).toBe(false);
    expect(stepMajorityDecided(tally([[0, 0]]), 1)).toBe(false);
  });

  it('without consistency also needs the Yes/No majority settled', () => {
    expect(stepMajorityDecided(tally([[5, 0], [5, 0]], 5, 0), 2, 'incorrect', { consistency: false })).toBe(true);
    const close = tally([[5, 0], [5, 0]], 3, 2);
    expect(stepMajorityDecided(close, 1)).toBe(true);
    expect(stepMajorityDecided(close, 1, 'incorrect', { consistency: false })).toBe(false); // 3–3 → No
    expect(stepMajorityDecided(close, 1, 'incorrect', { consistency: false, outcomeTieRule: 'yes' })).toBe(true);
  });

  it('agrees with brute force over every way of casting the remaining votes', () => {
    // Each remaining verification votes C, I or nothing on each of two steps.
    const choices: [number, number][] = [[1, 0], [0, 1], [0, 0]];
    const ballots = choices.flatMap((a) => choices.map((b) => [a, b] as const));
    const finalLabels = (steps: StepVotes[], rule: StepTieRule): string =>
      str(enforceConsistency(steps.map((s) => decideStep(s, rule, undefined).correct), true).stepLabels);
    let checked = 0;
    for (const rule of ['incorrect', 'correct'] as const) {
      for (let remaining = 1; remaining <= 2; remaining++) {
        for (let c1 = 0; c1 <= 3; c1++) for (let i1 = 0; i1 <= 3; i1++) for (let c2 = 0; c2 <= 3; c2++) for (let i2 = 0; i2 <= 3; i2++) {
          const start = tally([[c1, i1], [c2, i2]]);
          const outcomes = new Set<string>();
          const walk = (steps: StepVotes[], left: number): void => {
            if (left === 0) { outcomes.add(finalLabels(steps, rule)); return; }
            for (const [a, b] of ballots) {
              walk([
                { correct: steps[0]!.correct + a[0], incorrect: steps[0]!.incorrect + a[1] },
                { correct: steps[1]!.correct + b[0], incorrect: steps[1]!.incorrect + b[1] },
              ], left - 1);
            }
          };
          walk(start.steps, remaining);
          expect(stepMajorityDecided(start, remaining, rule), `${rule} r=${remaining} ${c1}/${i1} ${c2}/${i2}`).toBe(outcomes.size === 1);
          checked++;
        }
      }
    }
    expect(checked).toBe(2 * 2 * 256);
  });
});

describe('stepMajorityConfident', () => {
  const opts = { threshold: 0.75, minVotes: 4 };

  it('stops once every relevant step has a large enough majority after enough votes', () => {
    expect(stepMajorityConfident(tally([[4, 0], [3, 1]], 3, 1), opts)).toBe(true);
    expect(stepMajorityConfident(tally([[3, 0], [3, 0]], 3, 0), opts)).toBe(false); // only 3 votes
    expect(stepMajorityConfident(tally([[4, 1], [3, 2]], 3, 2), opts)).toBe(false); // 3/5 < 0.75
  });

  it('never trusts a tied or unvoted step', () => {
    expect(stepMajorityConfident(tally([[2, 2]], 2, 2), { threshold: 0.51, minVotes: 1 })).toBe(false);
    expect(stepMajorityConfident(tally([[4, 0], [0, 0]], 4, 0), opts)).toBe(false);
  });

  it('with consistency ignores the steps after a confident first error', () => {
    const t = tally([[1, 3], [2, 2]], 0, 4);
    expect(stepMajorityConfident(t, opts)).toBe(true);
    expect(stepMajorityConfident(t, { ...opts, consistency: false })).toBe(false);
  });

  it('without consistency also needs a confident Yes/No majority', () => {
    const steps: [number, number][] = [[4, 0], [4, 0]];
    expect(stepMajorityConfident(tally(steps, 3, 1), { ...opts, consistency: false })).toBe(true);
    expect(stepMajorityConfident(tally(steps, 2, 2), { ...opts, consistency: false })).toBe(false);
    expect(stepMajorityConfident(tally(steps, 2, 2), opts)).toBe(true);
  });

  it('validates its options', () => {
    expect(() => stepMajorityConfident(tally([[1, 0]], 1, 0), { threshold: 0.5, minVotes: 1 })).toThrow(RangeError);
    expect(() => stepMajorityConfident(tally([[1, 0]], 1, 0), { threshold: 1.01, minVotes: 1 })).toThrow(RangeError);
    expect(() => stepMajorityConfident(tally([[1, 0]], 1, 0), { threshold: 0.8, minVotes: 0 })).toThrow(RangeError);
  });
});

describe('firstErrorF1', () => {
  it('computes the ProcessBench accuracies and F1 by hand', () => {
    const s = firstErrorF1([-1, 1, 2, 1, 3], [-1, -1, 2, 0, 3]);
    expect(s.nCorrect).toBe(2);
    expect(s.nErroneous).toBe(3);
    expect(s.accCorrect).toBe(0.5);
    expect(s.accErroneous).toBeCloseTo(2 / 3, 12);
    expect(s.f1).toBeCloseTo(4 / 7, 12);
  });

  it('needs an exact index: flagging a later or earlier step is wrong, and so is no answer', () => {
    expect(firstErrorF1([3, 1, null], [2, 2, 2])).toMatchObject({ accErroneous: 0, nErroneous: 3, accCorrect: null, f1: null });
    expect(firstErrorF1([-1], [2]).accErroneous).toBe(0);
  });

  it('reports null instead of NaN for an empty group', () => {
    expect(firstErrorF1([-1, 0], [-1, -1])).toEqual({ accErroneous: null, accCorrect: 0.5, f1: null, nErroneous: 0, nCorrect: 2 });
    expect(firstErrorF1([], [])).toEqual({ accErroneous: null, accCorrect: null, f1: null, nErroneous: 0, nCorrect: 0 });
  });

  it('gives F1 0 when both accuracies are 0 and 1 when both are perfect', () => {
    expect(firstErrorF1([0, 1], [-1, 2]).f1).toBe(0);
    expect(firstErrorF1([-1, 2, 0], [-1, 2, 0])).toEqual({ accErroneous: 1, accCorrect: 1, f1: 1, nErroneous: 2, nCorrect: 1 });
  });

  it('rejects mismatched lengths', () => {
    expect(() => firstErrorF1([1], [1, 2])).toThrow(RangeError);
  });

  it('scores aggregation results against ground truth', () => {
    const results = [
      ok(stepMajority([v(0, 'CCI'), v(1, 'CCI'), v(2, 'CCC')], 3)),
      ok(stepMajority([v(0, 'CC'), v(1, 'CI')], 2)),
    ];
    expect(results.map((r) => r.firstErrorStep)).toEqual([2, 1]);
    expect(firstErrorF1(results.map((r) => r.firstErrorStep), [2, -1])).toMatchObject({ accErroneous: 1, accCorrect: 0, f1: 0 });
  });
});

describe('outcomeAccuracy', () => {
  it('scores verdicts overall and per true class', () => {
    expect(outcomeAccuracy([true, false, true, null], [true, true, false, false])).toEqual({
      accuracy: 0.25, accYes: 0.5, accNo: 0, n: 4, nYes: 2, nNo: 2,
    });
    expect(outcomeAccuracy([true, true], [true, true])).toEqual({ accuracy: 1, accYes: 1, accNo: null, n: 2, nYes: 2, nNo: 0 });
    expect(outcomeAccuracy([], [])).toEqual({ accuracy: null, accYes: null, accNo: null, n: 0, nYes: 0, nNo: 0 });
    expect(() => outcomeAccuracy([true], [])).toThrow(RangeError);
  });
});
