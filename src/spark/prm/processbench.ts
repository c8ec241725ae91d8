/**
 * ProcessBench (Qwen): rows as published, the per-split metric and its table, and the majority
 * vote over sampled answers of a critic.
 *
 * Pure: no Node built-ins, no I/O, so workflows can use it as well as activities and CLIs.
 */
import { z } from 'zod';
import { firstErrorF1 } from '../labels/aggregation/metrics.js';

/**
 * One row of a ProcessBench split. `label` is the 0-based index of the earliest erroneous step,
 * -1 when every step is correct. Other fields pass through untouched.
 */
export const ProcessBenchRowSchema = z.looseObject({
  id: z.string().min(1),
  generator: z.string().optional(),
  problem: z.string().min(1),
  steps: z.array(z.string()).min(1),
  final_answer_correct: z.boolean().optional(),
  label: z.number().int().min(-1),
}).superRefine((row, ctx) => {
  if (row.label >= row.steps.length) {
    ctx.addIssue({ code: 'custom', path: ['label'], message: `step ${row.label} does not exist (${row.steps.length} steps)` });
  }
});
export type ProcessBenchRow = z.infer<typeof ProcessBenchRowSchema>;

/** A row and the split it was read from (the published rows do not name their split). */
export type ProcessBenchCase = ProcessBenchRow & { split: string };

/** The split names of the published benchmark, in the order its tables use. */
export const PROCESSBENCH_SPLITS: readonly string[] = ['gsm8k', 'math', 'olympiadbench', 'omnimath'];

function fieldName(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

function parseRow(value: unknown, where: string): ProcessBenchRow {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: expected a JSON object`);
  const parsed = ProcessBenchRowSchema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `field "${fieldName(i.path)}": ${i.message}`);
    throw new Error(`${where}: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * The rows of one split file. Accepts JSON Lines (blank lines skipped) and also a single JSON
 * array of rows, so a split loads whichever way it was exported. Errors name the split, the line
 * (1-based; for an array, the item) and the field. Ids must be unique within a split: results
 * are keyed by them.
 */
export function parseProcessBenchJsonl(text: string, split: string): ProcessBenchCase[] {
  const entries: { value: unknown; where: string }[] = [];
  if (text.trimStart().startsWith('[')) {
    let array: unknown;
    try {
      array = JSON.parse(text);
    } catch {
      throw new Error(`${split}: not valid JSON`);
    }
    if (!Array.isArray(array)) throw new Error(`${split}: expected a JSON array of rows`);
    array.forEach((value: unknown, i) => entries.push({ value, where: `${split} item ${i + 1}` }));
  } else {
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (line === '') continue;
      const where = `${split} line ${i + 1}`;
      try {
        entries.push({ value: JSON.parse(line), where });
      } catch {
        throw new Error(`${where}: not valid JSON`);
      }
    }
  }
  const seen = new Map<string, string>();
  return entries.map(({ value, where }) => {
    const row = parseRow(value, where);
    const first = seen.get(row.id);
    if (first !== undefined) throw new Error(`${where}: field "id": "${row.id}" already used at ${first}`);
    seen.set(row.id, where);
    return { ...row, split };
  });
}

// ---------------------------------------------------------------------------------------------
// Metric
// ---------------------------------------------------------------------------------------------

/** One scored row: the true label and the model's prediction (null: no parseable answer). */
export interface ProcessBenchResult {
  split: string;
  label: number;
  prediction: number | null;
}

/** ProcessBench scores of one split; accuracies and F1 are fractions in [0, 1]. */
export interface ProcessBenchSplitScore {
  split: string;
  n: number;
  nErroneous: number;
  nCorrect: number;
  /** Exact-match rate on rows with label ≠ -1; null when the split has none. */
  errorAcc: number | null;
  /** Rate of predicting -1 on rows with label = -1; null when the split has none. */
  correctAcc: number | null;
  /** 2·a·b/(a+b), 0 when both are 0; null when either accuracy is null. */
  f1: number | null;
}

/**
 * The headline row. Counts are totals over every split; accuracies and F1 are unweighted means
 * over the splits that have an F1 (as ProcessBench averages F1 over its splits). Splits without
 * an F1 are skipped, not counted as 0, and listed in `skipped`; with none left, all three are null.
 */
export interface ProcessBenchAverage extends Omit<ProcessBenchSplitScore, 'split'> {
  split: 'average';
  skipped: string[];
}

export interface ProcessBenchReport {
  splits: ProcessBenchSplitScore[];
  average: ProcessBenchAverage;
}

function mean(values: readonly number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * Scores results per split with the ProcessBench metric (`firstErrorF1`): a prediction counts
 * only if it equals the label exactly, and a null prediction is always wrong. Splits come in the
 * order of `splits` (listed splits appear even when they have no results, with null scores),
 * then any other split in order of first appearance.
 */
export function processBenchReport(results: readonly ProcessBenchResult[], splits: readonly string[] = []): ProcessBenchReport {
  const groups = new Map<string, ProcessBenchResult[]>(splits.map((s) => [s, []]));
  for (const r of results) {
    const group = groups.get(r.split);
    if (group) group.push(r);
    else groups.set(r.split, [r]);
  }
  const scores = [...groups].map(([split, rows]): ProcessBenchSplitScore => {
    const s = firstErrorF1(rows.map((r) => r.prediction), rows.map((r) => r.label));
    return { split, n: rows.length, nErroneous: s.nErroneous, nCorrect: s.nCorrect, errorAcc: s.accErroneous, correctAcc: s.accCorrect, f1: s.f1 };
  });
  const scored = scores.filter((s) => s.f1 !== null);
  const average: ProcessBenchAverage = {
    split: 'average',
    n: scores.reduce((a, s) => a + s.n, 0),
    nErroneous: scores.reduce((a, s) => a + s.nErroneous, 0),
    nCorrect: scores.reduce((a, s) => a + s.nCorrect, 0),
    // Scored splits have both accuracies; `?? 0` only satisfies the type checker.
    errorAcc: mean(scored.map((s) => s.errorAcc ?? 0)),
    correctAcc: mean(scored.map((s) => s.correctAcc ?? 0)),
    f1: mean(scored.map((s) => s.f1 ?? 0)),
    skipped: scores.filter((s) => s.f1 === null).map((s) => s.split),
  };
  return { splits: scores, average };
}

/** A fraction as a percentage with one decimal, like the ProcessBench tables; 'n/a' for null. */
function percent(x: number | null): string {
  return x === null ? 'n/a' : (x * 100).toFixed(1);
}

/** The report as a markdown table (split | error acc | correct acc | F1), average last. */
export function formatProcessBenchTable(report: ProcessBenchReport): string {
  const row = (s: ProcessBenchSplitScore): string =>
    `| ${s.split.replace(/\|/g, '\\|')} | ${percent(s.errorAcc)} | ${percent(s.correctAcc)} | ${percent(s.f1)} |`;
  const lines = [
    '| split | error acc | correct acc | F1 |',
    '| --- | ---: | ---: | ---: |',
    ...report.splits.map(row),
    row(report.average),
  ];
  const { skipped } = report.average;
  if (skipped.length > 0) {
    const used = report.splits.length - skipped.length;
    lines.push('', `Average over ${used} of ${report.splits.length} splits; no F1 (a group without rows) for: ${skipped.join(', ')}.`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Majority vote over sampled answers
// ---------------------------------------------------------------------------------------------

/**
 * The most frequent first-error prediction among sampled answers. Ties go to the smallest step
 * index, and -1 ("no error") counts as larger than any index: when the votes are split, the
 * earliest suspected error wins. Nulls (no parseable answer) and values that are neither -1 nor a
 * step index (negative or not an integer) are not votes; with no votes the result is null.
 * Indices past the end of the solution are votes like any other (the metric counts them wrong).
 */
export function majorityFirstError(predictions: readonly (number | null)[]): number | null {
  const counts = new Map<number, number>();
  for (const p of predictions) {
    if (p === null || !Number.isInteger(p) || p < -1) continue;
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  const order = (v: number): number => (v === -1 ? Infinity : v);
  let best: number | null = null;
  let bestCount = 0;
  for (const [value, count] of counts) {
    if (count > bestCount || (count === bestCount && best !== null && order(value) < order(best))) {
      best = value;
      bestCount = count;
    }
  }
  return best;
}
