/**
 * A ProcessBench-format benchmark drawn from the sandbox world, with true labels.
 *
 * Questions come from `generateProblems`; solutions are written one step per operation in the
 * phrasings the sandbox policy uses. An erroneous row gets one slip at a uniformly chosen step,
 * of either kind the policy makes (small: off by 1..3; large: off by 8..60, the policy's default
 * sizes), and later steps compute correctly from the stated value, so the error propagates as it
 * does in policy samples. Every label is checked against `firstErrorIndex`.
 *
 * Pure and deterministic for a seed.
 */
import type { ArithOp, ArithProblem } from './arith.js';
import { applyOp, firstErrorIndex, formatValue, generateProblems, opSymbol, sameValue } from './arith.js';
import type { ProcessBenchRow } from '../src/spark/prm/processbench.js';
import type { Rng } from '../src/core/random.js';
import { rngFrom } from '../src/core/random.js';

/** One split: its name and how many operations its problems have. */
export interface SandboxSplitSpec {
  name: string;
  minOps: number;
  maxOps: number;
}

/** ProcessBench's split names, harder (longer chains) from gsm8k to omnimath. */
export const SANDBOX_PROCESSBENCH_SPLITS: readonly SandboxSplitSpec[] = [
  { name: 'gsm8k', minOps: 4, maxOps: 5 },
  { name: 'math', minOps: 5, maxOps: 6 },
  { name: 'olympiadbench', minOps: 6, maxOps: 7 },
  { name: 'omnimath', minOps: 7, maxOps: 8 },
];

export interface SandboxProcessBenchOptions {
  seed: number | string;
  /** Rows per split. */
  countPerSplit: number;
  /** Share of rows with an error in each split (default 0.5): exactly round(share · countPerSplit) rows. */
  errorShare?: number;
  /** Default: {@link SANDBOX_PROCESSBENCH_SPLITS}. */
  splits?: readonly SandboxSplitSpec[];
}

export type SandboxErrorKind = 'small' | 'large';

/** A ProcessBench row; `error_kind` (extra, like any field the schema passes through) says which slip. */
export type SandboxProcessBenchRow = ProcessBenchRow & {
  generator: string;
  final_answer_correct: boolean;
  error_kind: SandboxErrorKind | null;
};

export interface SandboxProcessBenchSplit {
  split: string;
  rows: SandboxProcessBenchRow[];
}

const SMALL_DELTA: readonly [number, number] = [1, 3];
const LARGE_DELTA: readonly [number, number] = [8, 60];
const VERB: Record<ArithOp['kind'], string> = { add: 'Add', subtract: 'Subtract', multiply: 'Multiply by', divide: 'Divide by' };

/** One step as the sandbox policy writes a single operation. */
function stepText(op: ArithOp, input: number, stated: number, rng: Rng): string {
  const equation = `${formatValue(input)} ${opSymbol(op.kind)} ${formatValue(op.operand)} = ${formatValue(stated)}`;
  const operand = formatValue(op.operand);
  return rng.pick([
    `${VERB[op.kind]} ${operand}: ${equation}.`,
    `We ${VERB[op.kind].toLowerCase()} ${operand}, so ${equation}.`,
    `Next, ${equation}.`,
  ]);
}

/** Which rows of a split get an error: exactly `n` of `count`, chosen by a seeded shuffle. */
function erroneousRows(count: number, n: number, rng: Rng): Set<number> {
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return new Set(order.slice(0, n));
}

function writeRow(problem: ArithProblem, id: string, withError: boolean, rng: Rng): SandboxProcessBenchRow {
  // Drawn in a fixed order, so a row depends only on (seed, split, index, withError).
  const errorStep = rng.int(0, problem.ops.length - 1);
  const kind: SandboxErrorKind = rng.bernoulli(0.5) ? 'small' : 'large';
  const size = kind === 'small' ? rng.int(...SMALL_DELTA) : rng.int(...LARGE_DELTA);
  const up = rng.bernoulli(0.5);

  let value = problem.start;
  const steps = problem.ops.map((op, i) => {
    const truth = applyOp(value, op.kind, op.operand);
    // Keep a slipped value positive, as the world's values are; size >= 1 so it is never the truth.
    const stated = withError && i === errorStep ? (up || truth - size <= 0 ? truth + size : truth - size) : truth;
    const text = stepText(op, value, stated, rng);
    value = stated;
    return text;
  });
  const label = withError ? errorStep : -1;
  const truthLabel = firstErrorIndex(problem.question, steps);
  if (truthLabel !== label) throw new Error(`processbench-sandbox: row ${id} is labelled ${label} but its first error is at ${truthLabel}`);
  return {
    id,
    generator: 'sandbox',
    problem: problem.question,
    steps,
    final_answer_correct: sameValue(value, problem.answer),
    label,
    error_kind: withError ? kind : null,
  };
}

/** The benchmark, one entry per split in the order given. */
export function generateSandboxProcessBench(options: SandboxProcessBenchOptions): SandboxProcessBenchSplit[] {
  const { seed, countPerSplit: count } = options;
  const errorShare = options.errorShare ?? 0.5;
  const splits = options.splits ?? SANDBOX_PROCESSBENCH_SPLITS;
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`countPerSplit must be a non-negative integer, got ${count}`);
  if (!(errorShare >= 0 && errorShare <= 1)) throw new RangeError(`errorShare must be in [0, 1], got ${errorShare}`);
  if (splits.length === 0) throw new RangeError('at least one split is needed');
  const names = new Set<string>();
  for (const s of splits) {
    if (s.name === '' || names.has(s.name)) throw new RangeError(`split names must be non-empty and unique, got "${s.name}"`);
    names.add(s.name);
  }
  return splits.map((spec) => {
    const problems = generateProblems({ seed: `processbench-${seed}-${spec.name}`, count, minOps: spec.minOps, maxOps: spec.maxOps });
    const withError = erroneousRows(count, Math.round(errorShare * count), rngFrom('processbench-sandbox-errors', seed, spec.name));
    const rows = problems.map((problem, i) =>
      writeRow(problem, `${spec.name}-${i}`, withError.has(i), rngFrom('processbench-sandbox-row', seed, spec.name, i)));
    return { split: spec.name, rows };
  });
}
