/**
 * The real GSM8K and MATH500 files from ../shared/datasets: every row parses and every gold answer
 * survives the answer checker (itself, its boxed and restyled forms), so evaluation accuracy and
 * RLVR rewards are not lost to formatting.
 */
import { describe, expect, it } from 'vitest';
import { loadMathDataset, mathDatasetsDir } from '../../src/client/math-datasets.js';
import { answerComparisonMode, answersEquivalent, extractBoxedAnswer } from '../../src/spark/common/math-answer.js';
import { MathDatasetError, parseGsm8kRow, parseMath500Row, parseMathDataset, stripCalculatorAnnotations } from '../../src/spark/common/math-datasets.js';

describe('GSM8K', async () => {
  const test = await loadMathDataset('gsm8k-test');

  it('loads all 1,319 test rows with numeric gold answers', () => {
    expect(test).toHaveLength(1319);
    expect(new Set(test.map((p) => p.id)).size).toBe(1319);
    for (const p of test) expect(p.answer, p.id).toMatch(/^-?\d+(\.\d+)?$/);
  });

  it('parses known rows', () => {
    expect(test[0]).toMatchObject({ id: 'gsm8k-test-0', answer: '18' });
    expect(test[0]!.question).toMatch(/^Janet’s ducks lay 16 eggs per day/);
    expect(test[0]!.solution).toBe('Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day at the farmer’s market.');
    const house = test.find((p) => p.question.startsWith('Josh decides to try flipping a house'));
    expect(house?.answer).toBe('70000');
    expect(test.filter((p) => Number(p.answer) >= 1000).length).toBeGreaterThan(100); // "#### 1,600" rows lost their commas
  });

  it('every gold answer equals itself written as a model would', () => {
    for (const p of test) {
      const withSeparators = Number(p.answer).toLocaleString('en-US');
      expect(answersEquivalent(`\\boxed{\\$${withSeparators}}`, p.answer), p.id).toBe(true);
      expect(answersEquivalent(`${p.answer}.00`, p.answer), p.id).toBe(true);
      expect(answersEquivalent(String(Number(p.answer) + 1), p.answer), p.id).toBe(false);
    }
  });

  it('loads the train split and honours limit', async () => {
    expect(await loadMathDataset('gsm8k-train')).toHaveLength(7473);
    const few = await loadMathDataset('gsm8k-train', { limit: 3 });
    expect(few.map((p) => p.id)).toEqual(['gsm8k-train-0', 'gsm8k-train-1', 'gsm8k-train-2']);
  });
});

describe('MATH500', async () => {
  const math = await loadMathDataset('math500');

  it('loads all 500 rows, each with a boxed gold answer', () => {
    expect(math).toHaveLength(500);
    for (const p of math) {
      expect(p.solution, p.id).not.toMatch(/The answer is:/);
      expect(extractBoxedAnswer(p.solution), p.id).toBe(p.answer);
    }
  });

  it('parses known rows', () => {
    expect(math[0]).toMatchObject({ id: 'math500-0', answer: '\\left( 3, \\frac{\\pi}{2} \\right)' });
    expect(math[4]!.answer).toBe('\\text{Evelyn}');
    expect(math[103]!.answer).toBe('(3,4]');
    expect(math[217]!.answer).toBe('11,\\! 111,\\! 111,\\! 100');
    expect(math[422]!.answer).toBe('\\{1\\pm\\sqrt{5},-2\\}');
  });

  it('every gold answer equals its boxed form, its "The answer is" tail and a restyled copy', async () => {
    const { readFile } = await import('node:fs/promises');
    const raw = (await readFile(`${mathDatasetsDir()}/math500/test.jsonl`, 'utf8')).trim().split('\n');
    for (const [i, p] of math.entries()) {
      const tail = /The answer is:\s*([\s\S]*)$/.exec((JSON.parse(raw[i]!) as { answer: string }).answer)?.[1] ?? '';
      expect(answersEquivalent(tail, p.answer), `${p.id}: ${p.answer} vs tail ${tail}`).toBe(true);
      expect(answersEquivalent(`\\boxed{${p.answer}}`, p.answer), p.id).toBe(true);
      const restyled = `$\\displaystyle ${p.answer.replace(/\\frac/g, '\\dfrac').replace(/,/g, ', ')}$.`;
      expect(answersEquivalent(restyled, p.answer), `${p.id}: ${restyled}`).toBe(true);
      // A different way to write the same fractions, for the library to decide (mixed numbers such as 1\frac{4}{5} excluded).
      const slashed = p.answer.replace(/(?<![\d\s])\\[dt]?frac\{(-?\d+)\}\{(\d+)\}/g, '($1/$2)');
      expect(answersEquivalent(slashed, p.answer), `${p.id}: ${slashed}`).toBe(true);
    }
  });

  it('the library compares all but the five text answers', () => {
    const text = math.filter((p) => answerComparisonMode(p.answer) === 'text').map((p) => p.answer);
    // Names and words (Evelyn, east, even, ellipse, Navin) are compared as case-insensitive text; the other 495 by the library.
    expect(text).toEqual(['\\text{Evelyn}', '\\text{east}', '\\text{even}', '\\text{ellipse}', '\\text{Navin}']);
  });

  it('neighbouring answers are equivalent only when they are the same value', () => {
    const equivalent: string[] = [];
    for (let i = 0; i + 1 < math.length; i++) {
      if (answersEquivalent(math[i]!.answer, math[i + 1]!.answer)) equivalent.push(`${math[i]!.answer} ~ ${math[i + 1]!.answer}`);
    }
    expect(equivalent).toEqual(['5 ~ x=5', '7 ~ 7', '3 ~ 3']);
  });
});

describe('row parsing', () => {
  it('names the line and the field of a bad row', () => {
    expect(() => parseGsm8kRow({ question: 'q', answer: 'no marker' }, 4)).toThrow(/gsm8k\/test line 5: field "answer" has no "#### <final answer>" line/);
    expect(() => parseGsm8kRow({ answer: '#### 3' }, 0, 'train', 9)).toThrow(/gsm8k\/train line 9: field "question"/);
    expect(() => parseMath500Row({ question: 'q', answer: 'no box' }, 2)).toThrow(/math500 line 3: field "answer" has neither/);
    expect(() => parseMath500Row([1], 0)).toThrow(MathDatasetError);
    expect(() => parseMathDataset('math500', '{"question": "q", "answer": "\\\\boxed{1}"}\n\n{oops')).toThrow(/math500\/test.jsonl line 3: not valid JSON/);
  });

  it('takes the "The answer is" tail when there is no box, and keeps a row id', () => {
    expect(parseMath500Row({ question: 'q', answer: 'So x is 4.\nThe answer is: 4', unique_id: 'test/algebra/1.json' }, 0)).toEqual({
      id: 'test/algebra/1.json',
      question: 'q',
      answer: '4',
      solution: 'So x is 4.',
    });
  });

  it('strips calculator annotations from GSM8K solutions', () => {
    expect(stripCalculatorAnnotations('2/2=<<2/2=1>>1 bolt')).toBe('2/2=1 bolt');
    expect(parseGsm8kRow({ question: 'q', answer: 'It is 1,000+600=<<1000+600=1600>>1,600\n#### 1,600' }, 0).answer).toBe('1600');
  });

  it('reads from SPARK_DATASETS_DIR or dir and says where it looked', async () => {
    expect(mathDatasetsDir('/tmp/x', {})).toBe('/tmp/x');
    expect(mathDatasetsDir(undefined, { SPARK_DATASETS_DIR: '/data/sets' })).toBe('/data/sets');
    expect(mathDatasetsDir(undefined, {})).toMatch(/\/shared\/datasets$/);
    await expect(loadMathDataset('math500', { dir: '/nonexistent' })).rejects.toThrow(/cannot read \/nonexistent\/math500\/test.jsonl \(file not found\)/);
  });
});
