import { describe, expect, it } from 'vitest';
import {
  extractAllBoxed, extractLastBoxed, firstIncorrectStep, parseCritique, parsePolicyResponse, parseProcessBenchAnswer,
  parseRewardModelOutput, parseVerification, renderCritique, renderOrmAnswer, renderPolicyResponse, renderPrmLabels,
  renderVerification, stripThink,
} from '../../src/spark/common/formats.js';

describe('extractLastBoxed', () => {
  it('keeps nested braces and takes the last complete box', () => {
    expect(extractLastBoxed('first \\boxed{1} then \\boxed{\\frac{1}{2}}')).toBe('\\frac{1}{2}');
    expect(extractLastBoxed('\\boxed{\\sqrt{x^{2}+1}} and \\boxed {a{b{c}}d}')).toBe('a{b{c}}d');
    expect(extractAllBoxed('\\fbox{3} \\boxed{4}')).toEqual(['3', '4']);
  });

  it('ignores an unterminated box and returns null without one', () => {
    expect(extractLastBoxed('\\boxed{7} then \\boxed{8')).toBe('7');
    expect(extractLastBoxed('no box here')).toBeNull();
  });
});

describe('policy responses', () => {
  it('round-trips the SPARK policy format', () => {
    const text = renderPolicyResponse({ steps: ['17 + 25 = 42.', '42 × 3 = 126.'], answer: '126' });
    expect(parsePolicyResponse(text)).toEqual({ steps: ['17 + 25 = 42.', '42 × 3 = 126.'], answerBlock: '\\boxed{126}', boxed: ['126'], trailing: '' });
  });

  it('keeps what follows </answer> apart and counts only boxes before it', () => {
    const text = '<step>a</step><answer>\\boxed{1}</answer>\n\nStart with 2. Add 3. <step>2 + 3 = 5</step><answer>\\boxed{5}</answer>';
    const parsed = parsePolicyResponse(text);
    expect(parsed.steps).toEqual(['a']);
    expect(parsed.boxed).toEqual(['1']);
    expect(parsed.trailing).toContain('\\boxed{5}');
  });

  it('splits plain "Step k:" and blank-line solutions from real models, ignoring <think>', () => {
    expect(parsePolicyResponse('<think>hmm</think>Step 1: add.\n**Step 2:** multiply.\n## Step 3: done \\boxed{3}').steps)
      .toEqual(['add.', 'multiply.', 'done \\boxed{3}']);
    expect(parsePolicyResponse('First we add.\n\nThen we multiply.\n\n  \nSo \\boxed{4}').steps)
      .toEqual(['First we add.', 'Then we multiply.', 'So \\boxed{4}']);
    const noAnswer = parsePolicyResponse('<step>x</step> The answer is \\boxed{2} or \\boxed{3}');
    expect(noAnswer.answerBlock).toBeNull();
    expect(noAnswer.boxed).toEqual(['2', '3']);
  });
});

describe('verifications', () => {
  const rendered = renderVerification({
    steps: [
      { title: 'Add 25', analysis: '17 + 25 = 42 holds.', correct: true },
      { title: 'Multiply by 3', analysis: '42 × 3 = 126, not 127.', correct: false },
    ],
    outcome: false,
  });

  it('round-trips the exact SPARK verifier format', () => {
    expect(rendered).toContain('## Step 1: Add 25');
    expect(rendered).toContain('**This step is incorrect.**');
    expect(rendered.trim().split('\n').at(-1)).toBe('**Verification: Is the answer correct (Yes/No)? No**');
    expect(parseVerification(rendered)).toEqual({ ok: true, steps: [{ index: 1, correct: true }, { index: 2, correct: false }], outcome: false });
  });

  it('tolerates think blocks, case, spacing and bold in other places', () => {
    const text = [
      '<think>Step 1: scratch work. This step is incorrect.</think>',
      '### step 1 - check: Add',
      'Fine. this step is CORRECT.',
      '**Step 2:** Multiply',
      'It is wrong. **This step is not correct.**',
      '**Verification:** Is the answer correct (yes/no)? **YES**',
    ].join('\n');
    // "step 1 - check" is not a heading (no colon right after the number); fix it and parse.
    expect(parseVerification(text).ok).toBe(false);
    const fixed = text.replace('### step 1 - check: Add', '### step 1: Add');
    expect(parseVerification(fixed)).toEqual({ ok: true, steps: [{ index: 1, correct: true }, { index: 2, correct: false }], outcome: true });
  });

  it('says why a malformed verification is rejected', () => {
    expect(parseVerification('## Step 1: x\n**This step is correct.**')).toMatchObject({ ok: false, reason: expect.stringContaining('verdict') });
    expect(parseVerification('All good.\n**Verification: Is the answer correct (Yes/No)? Yes**')).toMatchObject({ ok: false, reason: expect.stringContaining('headings') });
    expect(parseVerification('## Step 1: a\nok\n## Step 2: b\n**This step is correct.**\n**Verification: Is the answer correct (Yes/No)? Yes**'))
      .toMatchObject({ ok: false, reason: expect.stringContaining('step 1 has no') });
    expect(parseVerification('## Step 1: a\n**This step is correct.**\n## Step 3: b\n**This step is correct.**\n**Verification: Is the answer correct (Yes/No)? Yes**'))
      .toMatchObject({ ok: false, reason: expect.stringContaining('numbered 1..2') });
  });

  it('finds the first incorrect step as a 0-based index', () => {
    expect(firstIncorrectStep([{ correct: true }, { correct: false }, { correct: false }])).toBe(1);
    expect(firstIncorrectStep([{ correct: true }])).toBe(-1);
  });
});

describe('critiques', () => {
  it('round-trips and says what is missing', () => {
    const text = renderCritique({ missedErrors: [2, 4], falseAlarms: [], verdictConsistent: false, needsRevision: true }, ['fine', 'wrong', 'x', 'y']);
    expect(parseCritique(text)).toEqual({ ok: true, missedErrors: [2, 4], falseAlarms: [], verdictConsistent: false, needsRevision: true });
    expect(parseCritique('**Missed errors: none**\n**False alarms: Step 3**\n**Critique: Does the verification need revision (Yes/No)? no**'))
      .toEqual({ ok: true, missedErrors: [], falseAlarms: [3], verdictConsistent: true, needsRevision: false });
    expect(parseCritique('**Missed errors: none**')).toMatchObject({ ok: false, reason: expect.stringContaining('need revision') });
  });
});

describe('reward-model outputs', () => {
  it('parses ORM answers leniently', () => {
    expect(parseRewardModelOutput('orm', renderOrmAnswer(true))).toEqual({ ok: true, outcome: true, steps: null });
    expect(parseRewardModelOutput('orm', '<think>maybe yes</think>\n**No**')).toEqual({ ok: true, outcome: false, steps: null });
    expect(parseRewardModelOutput('orm', 'The answer is \\boxed{Yes}')).toEqual({ ok: true, outcome: true, steps: null });
    expect(parseRewardModelOutput('orm', 'Perhaps.')).toMatchObject({ ok: false });
  });

  it('round-trips PRM label lines and rejects them without a verdict', () => {
    const text = renderPrmLabels([true, true, false], false);
    expect(text.split('\n')[2]).toBe('Step 3: Incorrect');
    expect(parseRewardModelOutput('prm', text)).toEqual({
      ok: true, outcome: false, steps: [{ index: 1, correct: true }, { index: 2, correct: true }, { index: 3, correct: false }],
    });
    expect(parseRewardModelOutput('prm', '- **Step 1**: correct\n**Verification: Is the answer correct (Yes/No)? Yes**'))
      .toEqual({ ok: true, outcome: true, steps: [{ index: 1, correct: true }] });
    expect(parseRewardModelOutput('prm', 'Step 1: Correct')).toMatchObject({ ok: false });
  });

  it('reads PRM-CoT as a verification', () => {
    const text = renderVerification({ steps: [{ title: 't', analysis: 'a', correct: true }], outcome: true });
    expect(parseRewardModelOutput('prm-cot', text)).toEqual({ ok: true, outcome: true, steps: [{ index: 1, correct: true }] });
  });
});

describe('ProcessBench answers', () => {
  it('reads the boxed index, -1 included', () => {
    expect(parseProcessBenchAnswer('The earliest error is in paragraph 2.\n\\boxed{2}')).toBe(2);
    expect(parseProcessBenchAnswer('No error. $\\boxed{-1}$')).toBe(-1);
    expect(parseProcessBenchAnswer('\\boxed{\\text{3}}')).toBe(3);
    expect(parseProcessBenchAnswer('\\boxed{two}')).toBeNull();
    expect(parseProcessBenchAnswer('no box')).toBeNull();
  });
});

describe('stripThink', () => {
  it('removes closed, stray-closed and unclosed reasoning blocks', () => {
    expect(stripThink('<think>a</think>b')).toBe('b');
    expect(stripThink('reasoning</think>answer')).toBe('answer');
    expect(stripThink('answer<think>never closed')).toBe('answer');
  });
});
