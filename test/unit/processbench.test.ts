import { describe, expect, it } from 'vitest';
import { firstErrorIndex, parseArithQuestion, parseEquations, solveArith } from '../../sandbox/arith.js';
import {
  PROCESSBENCH_SPLITS, formatProcessBenchTable, majorityFirstError, parseProcessBenchJsonl, processBenchReport,
} from '../../src/spark/prm/processbench.js';
import type { ProcessBenchResult } from '../../src/spark/prm/processbench.js';
import { SANDBOX_PROCESSBENCH_SPLITS, generateSandboxProcessBench } from '../../sandbox/processbench-sandbox.js';

const r = (split: string, label: number, prediction: number | null): ProcessBenchResult => ({ split, label, prediction });

// gsm8k: errors 1 of 3 right (a null among them), correct rows 1 of 2 right → F1 = 2·(1/3)·(1/2)/(5/6) = 0.4.
// math: only correct rows → no error accuracy, no F1. olympiadbench: both accuracies 0 → F1 0.
// omnimath: listed but without results.
const RESULTS: ProcessBenchResult[] = [
  r('gsm8k', 2, 2), r('gsm8k', 0, 1), r('gsm8k', 1, null), r('gsm8k', -1, -1), r('gsm8k', -1, 0),
  r('math', -1, -1), r('math', -1, -1),
  r('olympiadbench', 1, 0), r('olympiadbench', -1, 3),
];

describe('processBenchReport', () => {
  const report = processBenchReport(RESULTS, PROCESSBENCH_SPLITS);

  it('scores each split as ProcessBench does', () => {
    const [gsm8k, math, olympiad, omnimath] = report.splits;
    expect(report.splits.map((s) => s.split)).toEqual(['gsm8k', 'math', 'olympiadbench', 'omnimath']);
    expect(gsm8k).toMatchObject({ n: 5, nErroneous: 3, nCorrect: 2, correctAcc: 0.5 });
    expect(gsm8k?.errorAcc).toBeCloseTo(1 / 3, 12);
    expect(gsm8k?.f1).toBeCloseTo(0.4, 12);
    expect(math).toEqual({ split: 'math', n: 2, nErroneous: 0, nCorrect: 2, errorAcc: null, correctAcc: 1, f1: null });
    expect(olympiad).toEqual({ split: 'olympiadbench', n: 2, nErroneous: 1, nCorrect: 1, errorAcc: 0, correctAcc: 0, f1: 0 });
    expect(omnimath).toEqual({ split: 'omnimath', n: 0, nErroneous: 0, nCorrect: 0, errorAcc: null, correctAcc: null, f1: null });
  });

  it('averages over the splits with an F1 and names the skipped ones', () => {
    const { average } = report;
    expect(average).toMatchObject({ split: 'average', n: 9, nErroneous: 4, nCorrect: 5, skipped: ['math', 'omnimath'] });
    expect(average.f1).toBeCloseTo(0.2, 12);
    expect(average.errorAcc).toBeCloseTo(1 / 6, 12);
    expect(average.correctAcc).toBeCloseTo(0.25, 12);
  });

  it('counts a null prediction wrong on a correct row too, and keeps unlisted splits in order of appearance', () => {
    const rep = processBenchReport([r('b', -1, null), r('a', 0, 0), r('b', -1, -1)], ['a']);
    expect(rep.splits.map((s) => [s.split, s.correctAcc])).toEqual([['a', null], ['b', 0.5]]);
  });

  it('has no average when no split has an F1', () => {
    const rep = processBenchReport([r('gsm8k', -1, -1)]);
    expect(rep.average).toMatchObject({ errorAcc: null, correctAcc: null, f1: null, skipped: ['gsm8k'] });
    expect(processBenchReport([]).splits).toEqual([]);
  });

  it('renders a markdown table with one-decimal percentages and n/a', () => {
    expect(formatProcessBenchTable(report)).toBe([
      '| split | error acc | correct acc | F1 |',
      '| --- | ---: | ---: | ---: |',
      '| gsm8k | 33.3 | 50.0 | 40.0 |',
      '| math | n/a | 100.0 | n/a |',
      '| olympiadbench | 0.0 | 0.0 | 0.0 |',
      '| omnimath | n/a | n/a | n/a |',
      '| average | 16.7 | 25.0 | 20.0 |',
      '',
      'Average over 2 of 4 splits; no F1 (a group without rows) for: math, omnimath.',
    ].join('\n'));
    const full = formatProcessBenchTable(processBenchReport([r('gsm8k', 0, 0), r('gsm8k', -1, -1)]));
    expect(full.split('\n').at(-1)).toBe('| average | 100.0 | 100.0 | 100.0 |');
  });
});

describe('parseProcessBenchJsonl', () => {
  const row = (fields: Record<string, unknown> = {}): string => JSON.stringify({
    id: 'gsm8k-0', generator: 'Qwen2-7B-Instruct', problem: 'Sue lives in a fun neighborhood...',
    steps: ['To find out how many...', 'Then...'], final_answer_correct: false, label: 1, ...fields,
  });

  it('reads published rows, skipping blank lines, keeping extra fields and tagging the split', () => {
    const rows = parseProcessBenchJsonl(`${row()}\n\n${row({ id: 'gsm8k-1', label: -1, source: 'x' })}\n`, 'gsm8k');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ id: 'gsm8k-0', split: 'gsm8k', label: 1, steps: ['To find out how many...', 'Then...'] });
    expect(rows[1]).toMatchObject({ id: 'gsm8k-1', label: -1, source: 'x' });
    // generator and final_answer_correct are optional
    expect(parseProcessBenchJsonl(JSON.stringify({ id: 'a', problem: 'p', steps: ['s'], label: 0 }), 's')).toHaveLength(1);
  });

  it('also reads a split stored as one JSON array', () => {
    const rows = parseProcessBenchJsonl(`[\n${row()},\n${row({ id: 'gsm8k-1' })}\n]`, 'gsm8k');
    expect(rows.map((x) => x.id)).toEqual(['gsm8k-0', 'gsm8k-1']);
    expect(() => parseProcessBenchJsonl(`[${row()}, 3]`, 'gsm8k')).toThrow('gsm8k item 2: expected a JSON object');
  });

  it('names the line and the field of a bad row', () => {
    const bad = (line: string): string => `${row()}\n${line}`;
    expect(() => parseProcessBenchJsonl(bad('{"id":'), 'math')).toThrow('math line 2: not valid JSON');
    expect(() => parseProcessBenchJsonl(bad('[1]'), 'math')).toThrow('math line 2: expected a JSON object');
    expect(() => parseProcessBenchJsonl(bad(row({ id: 'b', problem: undefined })), 'math')).toThrow(/^math line 2: field "problem": /);
    expect(() => parseProcessBenchJsonl(bad(row({ id: 'b', steps: ['a', 2] })), 'math')).toThrow(/^math line 2: field "steps\[1\]": /);
    expect(() => parseProcessBenchJsonl(bad(row({ id: 'b', steps: [] })), 'math')).toThrow(/^math line 2: field "steps": /);
    expect(() => parseProcessBenchJsonl(bad(row({ id: 'b', label: 0.5 })), 'math')).toThrow(/^math line 2: field "label": /);
    expect(() => parseProcessBenchJsonl(bad(row({ id: 'b', label: -2 })), 'math')).toThrow(/^math line 2: field "label": /);
    expect(() => parseProcessBenchJsonl(bad(row({ id: 'b', label: 2 })), 'math'))
      .toThrow('math line 2: field "label": step 2 does not exist (2 steps)');
    expect(() => parseProcessBenchJsonl(bad(row({ id: 'b', final_answer_correct: 'no' })), 'math')).toThrow(/^math line 2: field "final_answer_correct": /);
    expect(() => parseProcessBenchJsonl(`${row()}\n\n${row()}`, 'math')).toThrow('math line 3: field "id": "gsm8k-0" already used at math line 1');
  });
});

describe('majorityFirstError', () => {
  it('takes the most frequent answer', () => {
    expect(majorityFirstError([2, 2, 3])).toBe(2);
    expect(majorityFirstError([-1, -1, 4])).toBe(-1);
    expect(majorityFirstError([null, 2, -1, -1, null])).toBe(-1);
  });

  it('breaks ties toward the earliest step, with -1 after every step', () => {
    expect(majorityFirstError([3, 1, 3, 1])).toBe(1);
    expect(majorityFirstError([-1, 4, -1, 4])).toBe(4);
    expect(majorityFirstError([-1, 0])).toBe(0);
  });

  it('ignores nulls and answers that are no step index; nothing left is null', () => {
    expect(majorityFirstError([5, -2, -2, 1.5, 1.5])).toBe(5);
    expect(majorityFirstError([null, null])).toBeNull();
    expect(majorityFirstError([])).toBeNull();
  });
});

describe('generateSandboxProcessBench', () => {
  const bench = generateSandboxProcessBench({ seed: 3, countPerSplit: 60 });
  const rows = bench.flatMap((s) => s.rows);

  it('is deterministic for a seed and differs across seeds', () => {
    expect(generateSandboxProcessBench({ seed: 3, countPerSplit: 60 })).toEqual(bench);
    expect(generateSandboxProcessBench({ seed: 4, countPerSplit: 60 })).not.toEqual(bench);
  });

  it('has every split, in order, with its number of operations and unique ids', () => {
    expect(bench.map((s) => s.split)).toEqual(['gsm8k', 'math', 'olympiadbench', 'omnimath']);
    for (const [i, spec] of SANDBOX_PROCESSBENCH_SPLITS.entries()) {
      const split = bench[i]!;
      expect(split.rows).toHaveLength(60);
      for (const row of split.rows) {
        expect(row.steps.length).toBeGreaterThanOrEqual(spec.minOps);
        expect(row.steps.length).toBeLessThanOrEqual(spec.maxOps);
      }
    }
    expect(new Set(rows.map((row) => row.id)).size).toBe(rows.length);
  });

  it('labels every row with its true first error', () => {
    for (const row of rows) {
      expect(firstErrorIndex(row.problem, row.steps)).toBe(row.label);
      expect(row.final_answer_correct).toBe(row.label === -1);
      expect(row.error_kind === null).toBe(row.label === -1);
    }
  });

  it('makes small and large slips at every position', () => {
    const erroneous = rows.filter((row) => row.label !== -1);
    for (const row of erroneous) {
      const chain = parseArithQuestion(row.problem)!;
      const truth = solveArith(chain)[row.label]!;
      const [eq] = parseEquations(row.steps[row.label]!);
      const delta = Math.abs(eq!.c - truth);
      if (row.error_kind === 'small') expect([1, 2, 3]).toContain(delta);
      else expect(delta >= 8 && delta <= 60).toBe(true);
    }
    expect(new Set(erroneous.map((row) => row.error_kind))).toEqual(new Set(['small', 'large']));
    // omnimath has 7–8 operations: an error can sit at any of steps 0..7.
    const omnimath = bench[3]!.rows.filter((row) => row.label !== -1);
    expect(new Set(omnimath.map((row) => row.label))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7]));
  });

  it('gives each split the requested share of erroneous rows', () => {
    for (const split of bench) expect(split.rows.filter((row) => row.label !== -1)).toHaveLength(30);
    for (const split of generateSandboxProcessBench({ seed: 3, countPerSplit: 45, errorShare: 0.3 })) {
      const share = split.rows.filter((row) => row.label !== -1).length / 45;
      expect(Math.abs(share - 0.3)).toBeLessThanOrEqual(1 / 45);
    }
    const none = generateSandboxProcessBench({ seed: 3, countPerSplit: 10, errorShare: 0, splits: [{ name: 'x', minOps: 4, maxOps: 4 }] });
    expect(none.map((s) => [s.split, s.rows.every((row) => row.label === -1)])).toEqual([['x', true]]);
  });

  it('writes rows the ProcessBench parser reads back', () => {
    const [first] = bench;
    const jsonl = first!.rows.map((row) => JSON.stringify(row)).join('\n');
    expect(parseProcessBenchJsonl(jsonl, first!.split)).toEqual(first!.rows.map((row) => ({ ...row, split: first!.split })));
  });

  it('rejects bad options', () => {
    expect(() => generateSandboxProcessBench({ seed: 1, countPerSplit: -1 })).toThrow(RangeError);
    expect(() => generateSandboxProcessBench({ seed: 1, countPerSplit: 1, errorShare: 1.5 })).toThrow(RangeError);
    expect(() => generateSandboxProcessBench({ seed: 1, countPerSplit: 1, splits: [] })).toThrow(RangeError);
    expect(() => generateSandboxProcessBench({ seed: 1, countPerSplit: 1, splits: [{ name: 'a', minOps: 4, maxOps: 5 }, { name: 'a', minOps: 4, maxOps: 5 }] }))
      .toThrow(RangeError);
  });
});
