/**
 * How good a labels dataset is, where the truth is known: on the sandbox every question is an
 * arithmetic chain, so `firstErrorIndex` gives the true first wrong step of each solution and
 * each method's stored labels can be scored with the ProcessBench metric and outcome accuracy.
 */
import type { AggregationMethod } from '../src/spark/labels/aggregation.js';
import { firstErrorF1, outcomeAccuracy } from '../src/spark/labels/aggregation.js';
import { firstErrorIndex } from './arith.js';
import type { LabelLine, StoredLabels } from '../src/spark/labels/labels.js';

/** One method's scores over the scored solutions of a dataset. */
export interface MethodQuality {
  method: AggregationMethod;
  /** Solutions scored (every line with an arithmetic question, labelled or not). */
  solutions: number;
  /** Of those, solutions with a wrong step (truth ≠ -1) and without one. */
  nErroneous: number;
  nCorrect: number;
  /** ProcessBench first-error scores; null where a group is empty. */
  f1: number | null;
  accErroneous: number | null;
  accCorrect: number | null;
  /** Share of Yes/No verdicts equal to the truth; null when nothing was scored. */
  outcomeAccuracy: number | null;
  /** Solutions the method gave no labels (stored as ok:false, or absent); they count as wrong. */
  unlabelled: number;
}

export interface LabelQuality {
  rows: MethodQuality[];
  /** Lines whose question is not an arithmetic chain: no ground truth, so not scored. */
  skipped: number;
}

/** The true first wrong step of a line, or null when its question has no ground truth. */
function truthOf(line: LabelLine): number | null {
  try {
    return firstErrorIndex(line.question, line.steps);
  } catch (err) {
    // Only "not an arithmetic chain" means skip; anything else is a bug worth seeing.
    if (err instanceof RangeError) return null;
    throw err;
  }
}

/** The labels a method gave, or null when it gave none (failed or not run on this line). */
function labelsOf(line: LabelLine, method: AggregationMethod): Extract<StoredLabels, { ok: true }> | null {
  const labels = line.labels[method];
  return labels?.ok ? labels : null;
}

/** Scores one method against the truths of the scored lines (same order). */
function scoreMethod(method: AggregationMethod, lines: readonly LabelLine[], truths: readonly number[]): MethodQuality {
  const labels = lines.map((line) => labelsOf(line, method));
  // An unlabelled solution is a null prediction, which the metrics always count as wrong:
  // a method that fails often must not look better for it.
  const fe = firstErrorF1(labels.map((l) => l?.firstErrorStep ?? null), truths);
  const oc = outcomeAccuracy(labels.map((l) => l?.outcome ?? null), truths.map((t) => t === -1));
  return {
    method,
    solutions: truths.length,
    nErroneous: fe.nErroneous,
    nCorrect: fe.nCorrect,
    f1: fe.f1,
    accErroneous: fe.accErroneous,
    accCorrect: fe.accCorrect,
    outcomeAccuracy: oc.accuracy,
    unlabelled: labels.filter((l) => l === null).length,
  };
}

/** Scores every method in `methods` on the lines that have ground truth. */
export function labelQuality(lines: readonly LabelLine[], methods: readonly AggregationMethod[]): LabelQuality {
  const scored: LabelLine[] = [];
  const truths: number[] = [];
  for (const line of lines) {
    const truth = truthOf(line);
    if (truth === null) continue;
    scored.push(line);
    truths.push(truth);
  }
  return {
    rows: methods.map((m) => scoreMethod(m, scored, truths)),
    skipped: lines.length - scored.length,
  };
}

/** A table cell: a number, a text, or null for "no value". */
export type Cell = number | string | null;

/** Extra columns of one row (header → value), e.g. verifier samples or requests it cost. */
export type ExtraCells = Readonly<Record<string, Cell>>;

/** Rates always show 3 decimals so columns line up; integral counts stay integers. */
function formatRate(x: number | null): string {
  return x === null ? 'n/a' : x.toFixed(3);
}

function formatCell(x: Cell | undefined): string {
  if (x === null || x === undefined) return 'n/a';
  if (typeof x === 'string') return x;
  return Number.isInteger(x) ? String(x) : x.toFixed(3);
}

/** Extra headers in first-seen order, so callers control the column order by their first row. */
function extraHeaders(extras: readonly (ExtraCells | undefined)[]): string[] {
  const seen = new Set<string>();
  for (const row of extras) for (const key of Object.keys(row ?? {})) seen.add(key);
  return [...seen];
}

/** Pads every column to its widest cell: the first (names) left-aligned, numbers right-aligned. */
function alignColumns(table: readonly (readonly string[])[]): string[] {
  const widths = table[0]?.map((_, c) => Math.max(...table.map((row) => row[c]?.length ?? 0))) ?? [];
  return table.map((row) =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ').trimEnd(),
  );
}

/**
 * Renders the scores as an aligned plain-text table, one row per method, with a rule under the
 * header. `extras[i]` holds additional columns for `rows[i]` (missing values show as n/a).
 * A row's name may qualify its method, e.g. `step-majority (adaptive)`.
 */
export function formatQualityTable(rows: readonly (Omit<MethodQuality, 'method'> & { method: string })[], extras: readonly (ExtraCells | undefined)[] = []): string {
  const extra = extraHeaders(extras);
  const header = ['method', 'F1', 'acc(err)', 'acc(ok)', 'outcome acc', 'unlabelled', ...extra];
  const body = rows.map((r, i) => [
    r.method,
    formatRate(r.f1),
    formatRate(r.accErroneous),
    formatRate(r.accCorrect),
    formatRate(r.outcomeAccuracy),
    String(r.unlabelled),
    ...extra.map((h) => formatCell(extras[i]?.[h])),
  ]);
  const [head = '', ...lines] = alignColumns([header, ...body]);
  return [head, '-'.repeat(head.length), ...lines].join('\n');
}
