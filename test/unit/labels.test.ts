import { describe, expect, it } from 'vitest';
import type { SampledVerification } from '../../src/spark/labels/aggregation.js';
import { Semaphore } from '../../src/core/concurrency.js';
import { parseVerification, renderVerification } from '../../src/spark/common/formats.js';
import type { DrawPolicy } from '../../src/spark/labels/labels.js';
import { addCounts, critiqueSubject, methodLabels, nextDraw, voteLabels, voteMethodsFor, ZERO_COUNTS } from '../../src/spark/labels/labels.js';

/** A verification of `labels` (true = correct) with the given verdict, or an unparseable text. */
function verification(sampleIndex: number, labels: boolean[] | null, outcome = labels?.every(Boolean) ?? false): SampledVerification {
  const text = labels === null
    ? 'I am not sure about this one.'
    : renderVerification({ steps: labels.map((correct, i) => ({ title: `step ${i + 1}`, analysis: 'checked', correct })), outcome });
  return { sampleIndex, text, parsed: parseVerification(text) };
}

const policy = (over: Partial<DrawPolicy> = {}): DrawPolicy => ({
  k: 4,
  parseRetries: 2,
  adaptive: { enabled: false, initial: 2, step: 1 },
  aggregation: {},
  ...over,
});

describe('nextDraw', () => {
  it('asks for all K at once, then one replacement per unparseable verification while the budget lasts', () => {
    expect(nextDraw([], 3, policy())).toEqual({ done: false, indices: [0, 1, 2, 3] });
    const drawn = [verification(0, [true, true, true]), verification(1, null), verification(2, null), verification(3, [true, false, false])];
    expect(nextDraw(drawn, 3, policy())).toEqual({ done: false, indices: [4, 5] });
    const replaced = [...drawn, verification(4, null), verification(5, [true, true, true])];
    // K + parseRetries = 6 draws: nothing more, although only 3 are valid.
    expect(nextDraw(replaced, 3, policy())).toEqual({ done: true, reason: 'retries-exhausted' });
    expect(nextDraw(drawn.filter((v) => v.parsed.ok).concat(verification(4, [true, true, true]), verification(5, [true, true, true])), 3, policy()))
      .toEqual({ done: true, reason: 'complete' });
  });

  it('never draws for a solution without steps', () => {
    expect(nextDraw([], 0, policy())).toEqual({ done: true, reason: 'no-steps' });
  });

  it('adaptive: starts with `initial`, goes on by `step`, and stops once the missing votes cannot change the labels', () => {
    const adaptive = policy({ k: 5, adaptive: { enabled: true, initial: 2, step: 1 } });
    expect(nextDraw([], 2, adaptive)).toEqual({ done: false, indices: [0, 1] });
    // 1-1 on step 1: three more votes can still go either way.
    const split = [verification(0, [true, true]), verification(1, [false, false])];
    expect(nextDraw(split, 2, adaptive)).toEqual({ done: false, indices: [2] });
    // 3-0 correct on both steps with 2 votes missing: decided.
    const agreed = [verification(0, [true, true]), verification(1, [true, true]), verification(2, [true, true])];
    expect(nextDraw(agreed, 2, adaptive)).toEqual({ done: true, reason: 'decided' });
  });

  it('adaptive with a confidence threshold stops before the exact rule would', () => {
    const drawn = [verification(0, [true]), verification(1, [true]), verification(2, [true]), verification(3, [false])];
    const exact = policy({ k: 16, adaptive: { enabled: true, initial: 4, step: 2 } });
    expect(nextDraw(drawn, 1, exact)).toEqual({ done: false, indices: [4, 5] });
    expect(nextDraw(drawn, 1, { ...exact, adaptive: { ...exact.adaptive, confidence: 0.75 } })).toEqual({ done: true, reason: 'confident' });
  });
});

describe('methods and critique subjects', () => {
  it('critique methods need their base vote method, listed once, in a fixed order', () => {
    expect(voteMethodsFor(['hybrid', 'critique-single', 'single'])).toEqual(['single', 'step-majority']);
    expect(voteMethodsFor(['critique-outcome-consensus'])).toEqual(['outcome-majority']);
  });

  it('the critique subject is the base target, or the consensus written out when nothing agrees', () => {
    const verifs = [verification(0, [true, false]), verification(1, [false, true]), verification(2, [true, true])];
    const votes = voteLabels(['single', 'step-majority'], verifs, 2, { targetRule: 'none' });
    expect(critiqueSubject(votes.single)).toBe(verifs[0]!.text);
    // Step majority: 2–1 correct on both steps, so [true, true] with Yes; verification 2 agrees exactly.
    expect(critiqueSubject(votes['step-majority'])).toBe(verifs[2]!.text);
    // Each verification flags a different step: the majority (all correct) is nobody's verdict.
    const split = [verification(0, [false, true, true]), verification(1, [true, false, true]), verification(2, [true, true, false])];
    const subject = critiqueSubject(voteLabels(['step-majority'], split, 3, { targetRule: 'none' })['step-majority']);
    expect(subject).toContain('Consensus of 3 verifications');
    expect(parseVerification(subject!)).toMatchObject({ ok: true, outcome: true, steps: [{ correct: true }, { correct: true }, { correct: true }] });
    expect(critiqueSubject(voteLabels(['single'], [verification(0, null)], 2, {}).single)).toBeNull();
  });

  it('a critique method without base labels reports why; with a merged verification it takes its labels', () => {
    const none = voteLabels(['single'], [verification(0, null)], 2, {});
    const failed = methodLabels(['critique-single'], none, {}, true)['critique-single'];
    expect(failed).toMatchObject({ ok: false, reason: expect.stringContaining('no single labels to critique') });
    const votes = voteLabels(['single'], [verification(0, [true, true])], 2, {});
    const merged = verification(9, [true, false]);
    const revised = methodLabels(['single', 'critique-single'], votes, { 'critique-single': { text: merged.text, parsed: merged.parsed } }, true);
    expect(revised.single).toMatchObject({ ok: true, stepLabels: [true, true] });
    expect(revised['critique-single']).toMatchObject({ ok: true, stepLabels: [true, false], outcome: false, target: { rule: 'merged' } });
  });

  it('counts add field by field', () => {
    const a = { ...ZERO_COUNTS, problems: 1, callsMade: 3 };
    expect(addCounts(a, { ...ZERO_COUNTS, problems: 2, parseFailures: 1 })).toEqual({ ...ZERO_COUNTS, problems: 3, callsMade: 3, parseFailures: 1 });
  });
});

describe('Semaphore', () => {
  it('runs at most `limit` at once, in arrival order, and lets an aborted waiter leave the queue', async () => {
    const gate = new Semaphore(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const releases: (() => void)[] = [];
    const task = (i: number) => gate.run(async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(i);
      await new Promise<void>((r) => releases.push(r));
      running--;
    });
    const abort = new AbortController();
    const tasks = [task(0), task(1), task(2)];
    const aborted = gate.run(async () => order.push(99), abort.signal);
    const last = task(3);
    expect(gate.queued).toBe(3);
    abort.abort(new Error('cancelled'));
    await expect(aborted).rejects.toThrow('cancelled');
    expect(gate.queued).toBe(2);
    const tick = () => new Promise((r) => setTimeout(r, 1));
    for (let finished = 0; finished < 4; finished++) {
      while (releases.length === 0) await tick();
      releases.shift()!();
      await tick();
    }
    await Promise.all([...tasks, last]);
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3]);
    expect(gate.inFlight).toBe(0);
  });
});
