/**
 * Rows of the public math sets (GSM8K, MATH500) as problems with a gold final answer, for
 * evaluation accuracy and RLVR rewards. Pure parsing: `src/client/math-datasets.ts` reads the files.
 */
// formats.ts, not math-answer.ts: parsing rows must not load the math library.
import { extractLastBoxed } from './formats.js';

/** A math problem with its gold final answer and the worked solution it came from. */
export interface MathProblem {
  id: string;
  question: string;
  /** The gold final answer, as written (LaTeX for MATH500, a plain number for GSM8K). */
  answer: string;
  /** The reference worked solution. */
  solution: string;
}

/** The math sets this project reads, and where each lies under the datasets folder. */
export const MATH_DATASET_FILES = {
  'gsm8k-test': 'gsm8k/test.jsonl',
  'gsm8k-train': 'gsm8k/train.jsonl',
  math500: 'math500/test.jsonl',
} as const;
export type MathDatasetName = keyof typeof MATH_DATASET_FILES;

/** A row that is not what its dataset promises; the message names the dataset, line and field. */
export class MathDatasetError extends Error {
  override readonly name = 'MathDatasetError';
}

function rowRecord(row: unknown, where: string): Record<string, unknown> {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new MathDatasetError(`${where}: expected a JSON object`);
  return row as Record<string, unknown>;
}

function stringField(record: Record<string, unknown>, field: string, where: string): string {
  const value = record[field];
  if (typeof value !== 'string' || value.trim() === '') throw new MathDatasetError(`${where}: field "${field}" must be a non-empty string`);
  return value;
}

/** Removes GSM8K's calculator annotations: `3*4=<<3*4=12>>12` → `3*4=12`. */
export function stripCalculatorAnnotations(text: string): string {
  return text.replace(/<<[^<>]*>>/g, '');
}

/**
 * One GSM8K row (`question`, `answer` = worked solution ending in `#### <final answer>`).
 * The answer loses its thousands commas (`1,600` → `1600`); the solution is the text before
 * `####` without calculator annotations. `index` is the 0-based row, `line` the 1-based line.
 */
export function parseGsm8kRow(row: unknown, index: number, split: 'test' | 'train' = 'test', line = index + 1): MathProblem {
  const where = `gsm8k/${split} line ${line}`;
  const record = rowRecord(row, where);
  const question = stringField(record, 'question', where);
  const worked = stringField(record, 'answer', where);
  const marker = worked.lastIndexOf('####');
  if (marker < 0) throw new MathDatasetError(`${where}: field "answer" has no "#### <final answer>" line`);
  const answer = worked.slice(marker + 4).trim().replace(/,/g, '');
  if (answer === '') throw new MathDatasetError(`${where}: field "answer" has an empty final answer after "####"`);
  return { id: `gsm8k-${split}-${index}`, question, answer, solution: stripCalculatorAnnotations(worked.slice(0, marker)).trim() };
}

const ANSWER_TAIL_RE = /The answer is:\s*([\s\S]*?)\s*$/;

/**
 * One MATH500 row (`question`, `answer` = worked solution with `\boxed{…}`, ending in
 * `The answer is: X`). The gold answer is the last boxed expression, else the `The answer is:`
 * tail; the solution keeps its box and drops the tail. Rows with `unique_id` or `id` keep it.
 */
export function parseMath500Row(row: unknown, index: number, line = index + 1): MathProblem {
  const where = `math500 line ${line}`;
  const record = rowRecord(row, where);
  const question = stringField(record, 'question', where);
  const worked = stringField(record, 'answer', where);
  const tail = ANSWER_TAIL_RE.exec(worked);
  const solution = (tail ? worked.slice(0, tail.index) : worked).trim();
  const answer = (extractLastBoxed(solution) ?? tail?.[1] ?? '').trim();
  if (answer === '') throw new MathDatasetError(`${where}: field "answer" has neither a \\boxed{} answer nor a "The answer is:" line`);
  const ownId = record.unique_id ?? record.id;
  const id = typeof ownId === 'string' || typeof ownId === 'number' ? String(ownId) : `math500-${index}`;
  return { id, question, answer, solution };
}

/** Parses a whole JSONL file of one math set, skipping blank lines; stops after `limit` problems. */
export function parseMathDataset(name: MathDatasetName, jsonl: string, limit = Infinity): MathProblem[] {
  const problems: MathProblem[] = [];
  const lines = jsonl.split('\n');
  for (let i = 0; i < lines.length && problems.length < limit; i++) {
    const text = lines[i]!.trim();
    if (text === '') continue;
    let row: unknown;
    try {
      row = JSON.parse(text);
    } catch {
      throw new MathDatasetError(`${MATH_DATASET_FILES[name]} line ${i + 1}: not valid JSON`);
    }
    const index = problems.length;
    problems.push(
      name === 'math500' ? parseMath500Row(row, index, i + 1) : parseGsm8kRow(row, index, name === 'gsm8k-test' ? 'test' : 'train', i + 1),
    );
  }
  return problems;
}
