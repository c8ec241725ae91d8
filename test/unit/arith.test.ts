import { describe, expect, it } from 'vitest';
import {
  applyOp, firstErrorIndex, generateProblems, parseArithQuestion, parseEquations, renderArithQuestion, solveArith,
} from '../../sandbox/arith.js';

const QUESTION = 'Start with 17. Add 25. Multiply by 3. Subtract 48. Divide by 6. What is the result?';

describe('generateProblems', () => {
  const problems = generateProblems({ seed: 5, count: 300 });

  it('is deterministic per seed and differs across seeds', () => {
    expect(generateProblems({ seed: 5, count: 3 })).toEqual(problems.slice(0, 3));
    expect(generateProblems({ seed: 6, count: 3 })).not.toEqual(problems.slice(0, 3));
  });

  it('makes 4..8 operations with exact divisions and moderate values', () => {
    for (const p of problems) {
      expect(p.ops.length).toBeGreaterThanOrEqual(4);
      expect(p.ops.length).toBeLessThanOrEqual(8);
      for (const v of p.values) {
        expect(Number.isInteger(v)).toBe(true);
        expect(v).toBeGreaterThan(0);
        expect(v).toBeLessThanOrEqual(999);
      }
      expect(p.answer).toBe(p.values.at(-1));
    }
    expect(new Set(problems.flatMap((p) => p.ops.map((o) => o.kind)))).toEqual(new Set(['add', 'subtract', 'multiply', 'divide']));
  });

  it('writes questions that parse back to the same chain', () => {
    for (const p of problems) {
      expect(parseArithQuestion(p.question)).toEqual({ start: p.start, ops: p.ops });
      expect(solveArith({ start: p.start, ops: p.ops })).toEqual(p.values);
    }
  });
});

describe('parseArithQuestion', () => {
  it('reads a chain inside a longer text, tolerating case and spacing', () => {
    expect(parseArithQuestion(`Problem:  start with 17.  add 25. MULTIPLY BY 3.\nWhat is the result?`)).toEqual({
      start: 17, ops: [{ kind: 'add', operand: 25 }, { kind: 'multiply', operand: 3 }],
    });
    expect(renderArithQuestion(parseArithQuestion(QUESTION)!)).toBe(QUESTION);
  });

  it('returns null for foreign problems', () => {
    expect(parseArithQuestion('Janet has 16 eggs. How many are left?')).toBeNull();
    expect(parseArithQuestion('Start with 4. What is the result?')).toBeNull();
  });
});

describe('parseEquations', () => {
  it('reads every operator spelling in order', () => {
    expect(parseEquations('17 + 25 = 42, then 42 × 3 = 126; 126 - 48 = 78 and 78 / 6 = 13, 2 \\times 3 = 6, 8 ÷ 2 = 4').map((e) => e.kind))
      .toEqual(['add', 'multiply', 'subtract', 'divide', 'multiply', 'divide']);
    expect(applyOp(10, 'divide', 4)).toBe(2.5);
  });
});

describe('firstErrorIndex', () => {
  const right = ['17 + 25 = 42.', '42 × 3 = 126.', '126 - 48 = 78.', '78 ÷ 6 = 13.'];

  it('is -1 for a correct solution, with or without filler steps', () => {
    expect(firstErrorIndex(QUESTION, right)).toBe(-1);
    expect(firstErrorIndex(QUESTION, ['We start from 17.', ...right.slice(0, 2), 'So far the value is 126.', ...right.slice(2)])).toBe(-1);
    expect(firstErrorIndex(QUESTION, ['25 + 17 = 42.', ...right.slice(1)])).toBe(-1);
  });

  it('finds the earliest wrong result even when later steps are consistent with it', () => {
    expect(firstErrorIndex(QUESTION, ['17 + 25 = 42.', '42 × 3 = 127.', '127 - 48 = 79.', '79 ÷ 6 = 13.17.'])).toBe(1);
    expect(firstErrorIndex(QUESTION, ['17 + 25 = 43.', '43 × 3 = 129.', '129 - 48 = 81.', '81 ÷ 6 = 13.5.'])).toBe(0);
  });

  it('flags wrong operations, wrong carried values, wrong restated values and merged steps', () => {
    expect(firstErrorIndex(QUESTION, ['17 + 25 = 42.', '42 × 4 = 168.', '168 - 48 = 120.', '120 ÷ 6 = 20.'])).toBe(1);
    expect(firstErrorIndex(QUESTION, ['17 + 25 = 42.', '40 × 3 = 120.', '120 - 48 = 72.', '72 ÷ 6 = 12.'])).toBe(1);
    expect(firstErrorIndex(QUESTION, ['17 + 25 = 42.', 'The current value is 44.', '42 × 3 = 126.'])).toBe(1);
    expect(firstErrorIndex(QUESTION, ['17 + 25 = 42, then 42 × 3 = 126.', '126 - 48 = 78, then 78 ÷ 6 = 14.'])).toBe(1);
  });

  it('puts an unfinished solution wrong at its last step', () => {
    expect(firstErrorIndex(QUESTION, right.slice(0, 3))).toBe(2);
  });

  it('refuses a question without a chain', () => {
    expect(() => firstErrorIndex('How many eggs?', ['16 - 3 = 13'])).toThrow(RangeError);
  });
});
