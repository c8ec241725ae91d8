import { describe, expect, it } from 'vitest';
import { answerComparisonMode, answersEquivalent, extractBoxedAnswer, normalizeAnswer } from '../../src/spark/common/math-answer.js';

describe('extractBoxedAnswer', () => {
  it('takes the last box with balanced braces, \\fbox too', () => {
    expect(extractBoxedAnswer('so \\boxed{1} then $\\boxed{\\frac{\\sqrt{3}}{2}}$.')).toBe('\\frac{\\sqrt{3}}{2}');
    expect(extractBoxedAnswer('\\boxed{\\left\\{1, 2\\right\\}} and \\fbox{7}')).toBe('7');
    expect(extractBoxedAnswer('\\boxed{(3, \\frac{\\pi}{2})}')).toBe('(3, \\frac{\\pi}{2})');
  });

  it('accepts a brace-less box and returns null without one', () => {
    expect(extractBoxedAnswer('the answer is \\boxed 42.')).toBe('42.');
    expect(extractBoxedAnswer('no box here')).toBeNull();
    expect(extractBoxedAnswer('\\boxed{5} then \\boxed{6')).toBe('5');
  });
});

describe('normalizeAnswer', () => {
  it.each([
    ['$\\dfrac{1}{2}$.', '\\frac{1}{2}'],
    ['\\left( 3, \\frac{\\pi}{2} \\right)', '(3,\\frac{\\pi}{2})'],
    ['5\\text{ cm}', '5'],
    ['864 \\mbox{ inches}^2', '864'],
    ['\\frac{270}7\\text{ degrees}', '\\frac{270}7'],
    ['90^\\circ', '90'],
    ['90^{\\circ}', '90'],
    ['12.5\\%', '12.5'],
    ['\\$32,\\!348', '32348'],
    ['1,000,000', '1000000'],
    ['18 dollars', '18'],
    ['\\text{(C)}', 'C'],
    ['\\text{Evelyn}', 'Evelyn'],
    ['x = 3', '3'],
    ['x \\in [-2,7]', '[-2,7]'],
    ['\\cot x', '\\cot x'],
    ['3 \\text{ or } 5', '3,5'],
    ['\\boxed{7}', '7'],
  ])('%s → %s', (raw, normalized) => {
    expect(normalizeAnswer(raw)).toBe(normalized);
  });

  it('keeps what only looks like noise', () => {
    expect(normalizeAnswer('2k + 2')).toBe('2k+2'); // letters after a number are algebra, not a unit
    expect(normalizeAnswer('3 xy')).toBe('3xy');
    expect(normalizeAnswer('5x - 7y + 11z + 4 = 0')).toBe('5x-7y+11z+4=0'); // an equation, not "x = …"
    expect(normalizeAnswer('\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}')).toBe('\\begin{pmatrix}1\\\\2\\end{pmatrix}');
  });
});

describe('answersEquivalent', () => {
  it.each([
    // numbers and fractions
    ['\\frac{1}{2}', '0.5'],
    ['\\dfrac12', '1/2'],
    ['\\tfrac{1}{2}', '.5'],
    ['-\\frac{3}{4}', '-0.75'],
    ['- 5', '-5'],
    ['10', '10.00'],
    ['1\\frac{4}{5}', '\\frac{9}{5}'],
    ['137 \\frac{1}{2}', '137.5'],
    ['10^{-3}', '0.001'],
    // radicals, π, complex numbers, bases
    ['\\sqrt{8}', '2\\sqrt{2}'],
    ['\\frac{\\sqrt{3}}{3}', '\\frac{1}{\\sqrt3}'],
    ['3\\sqrt{13}', '\\sqrt{117}'],
    ['\\sqrt[3]{8}', '2'],
    ['\\frac{\\pi}{2}', '\\pi/2'],
    ['18+2\\pi', '2\\pi + 18'],
    ['6 - 5i', '-5i+6'],
    ['52_8', '52_{8}'],
    // intervals, tuples, sets, lists
    ['(1,2]', '(1, 2]'],
    ['\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]', '[\\pi^2/8, 5\\pi^2/4]'],
    ['(-\\infty, 2) \\cup (3, \\infty)', '(3,\\infty)\\cup(-\\infty,2)'],
    ['\\left( 3, \\frac{\\pi}{2} \\right)', '(3, \\pi/2)'],
    ['\\{1, 2\\}', '\\{2, 1\\}'],
    ['1, -2', '-2,1'],
    ['1 \\pm \\sqrt{19}', '1-\\sqrt{19}, 1+\\sqrt{19}'],
    ['\\{1\\pm\\sqrt{5},-2\\}', '-2, 1+\\sqrt5, 1-\\sqrt5'],
    ['\\begin{pmatrix} -1/3 \\\\ 2/3 \\end{pmatrix}', '\\begin{pmatrix} -\\frac13 \\\\ \\frac{2}{3} \\end{pmatrix}'],
    // units, words, degrees, percent, separators, equations
    ['5\\text{ cm}', '5'],
    ['15\\mbox{ cm}^2', '15'],
    ['5.4 \\text{ cents}', '5.4'],
    ['90^\\circ', '90'],
    ['25\\%', '25'],
    ['1,000', '1000'],
    ['10,\\!080', '10080'],
    ['\\$18.90', '18.9'],
    ['x = 3', '3'],
    ['y = 2x + 3', '3+2x'],
    ['5x - 7y + 11z + 4 = 0', '-5x + 7y - 11z - 4 = 0'],
    // algebra decided by the library
    ['x^2+2x+1', '(x+1)^2'],
    ['2k+2', '2(k+1)'],
    ['\\cot x', '\\frac{\\cos x}{\\sin x}'],
    ['\\frac{11+9a}{20}', '\\frac{9a+11}{20}'],
    // text and multiple choice
    ['\\text{Evelyn}', 'evelyn'],
    ['\\text{(C)}', 'C'],
    ['(B)', '\\textbf{(B)}'],
  ])('%s ≡ %s', (a, b) => {
    expect(answersEquivalent(a, b)).toBe(true);
    expect(answersEquivalent(b, a)).toBe(true);
  });

  it.each([
    ['\\frac{1}{3}', '0.33'],
    ['\\frac13', '0.333'],
    ['3.14', '\\pi'],
    ['3', '4'],
    ['-3', '3'],
    ['(1,2)', '[1,2]'],
    ['(1,2]', '[1,2]'],
    ['(-\\infty, 0]', '(-\\infty, 0)'],
    ['(3, \\frac{\\pi}{2})', '(\\frac{\\pi}{2}, 3)'], // tuples keep their order
    ['1, 2, 3', '1, 2'],
    ['1, 2', '(1, 2)'],
    ['\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}', '\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}'],
    ['3R^2', '3r^2'],
    ['x', '2'],
    ['\\text{east}', 'west'],
    ['\\text{(A)}', 'B'],
    ['2\\sqrt{2}', '\\sqrt{2}'],
  ])('%s ≢ %s', (a, b) => {
    expect(answersEquivalent(a, b)).toBe(false);
    expect(answersEquivalent(b, a)).toBe(false);
  });

  it('gives up on what takes too long to decide: unequal, not a hang', () => {
    const started = Date.now();
    expect(answersEquivalent('\\sum_{n=1}^{10^9} n', '5')).toBe(false);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('never throws and falls back to normalised string equality', () => {
    expect(answersEquivalent('', '')).toBe(false);
    expect(answersEquivalent('\\frac{', '\\frac{')).toBe(true);
    expect(answersEquivalent('\\frac{', '\\frac{ ')).toBe(true);
    expect(answersEquivalent('}}}{{{', '1')).toBe(false);
    expect(answersEquivalent('x'.repeat(5000), 'x'.repeat(5000))).toBe(true);
  });

  it('does not carry symbols declared by one comparison into the next', () => {
    expect(answersEquivalent('f(x)', 'f(x)')).toBe(true);
    expect(answersEquivalent('f+1', '1+f')).toBe(true); // `f` was a function in the previous comparison
  });

  it('says which answers the library compares', () => {
    expect(answerComparisonMode('\\frac{1}{2}')).toBe('library');
    expect(answerComparisonMode('(0,9) \\cup (9,36)')).toBe('library');
    expect(answerComparisonMode('\\text{Evelyn}')).toBe('text');
  });
});
