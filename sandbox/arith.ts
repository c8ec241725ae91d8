/**
 * The sandbox's problem world: seeded chains of integer operations with a known answer.
 *
 * "Start with 17. Add 25. Multiply by 3. Subtract 48. Divide by 6. What is the result?"
 * The question text alone determines the chain, so any process that sees only the text
 * (a judge, the ProcessBench labeller) can recover the ground truth.
 */
import { rngFrom } from '../src/core/random.js';
import type { Rng } from '../src/core/random.js';

/** The four operations of the world. */
export type ArithOpKind = 'add' | 'subtract' | 'multiply' | 'divide';

/** One operation of a chain: "Add 25" is `{ kind: 'add', operand: 25 }`. */
export interface ArithOp {
  kind: ArithOpKind;
  operand: number;
}

/** A start value and the operations applied to it in order. */
export interface ArithChain {
  start: number;
  ops: ArithOp[];
}

/** A generated problem with its ground truth. */
export interface ArithProblem extends ArithChain {
  id: string;
  question: string;
  /** The true final value. */
  answer: number;
  /** The true value after each operation (`values[i]` follows `ops[i]`). */
  values: number[];
}

/** An equation `a op b = c` as written in a solution step. */
export interface StepEquation {
  a: number;
  kind: ArithOpKind;
  b: number;
  c: number;
}

export const ARITH_OP_KINDS: readonly ArithOpKind[] = ['add', 'subtract', 'multiply', 'divide'];

const OP_SYMBOL: Record<ArithOpKind, string> = { add: '+', subtract: '-', multiply: '×', divide: '÷' };
const OP_VERB: Record<ArithOpKind, string> = { add: 'Add', subtract: 'Subtract', multiply: 'Multiply by', divide: 'Divide by' };

/** Tolerance for comparing stated values: non-integer results are written with two decimals. */
const VALUE_TOLERANCE = 0.006;

/** The symbol a solution uses for an operation. */
export function opSymbol(kind: ArithOpKind): string {
  return OP_SYMBOL[kind];
}

/** Rounds to two decimals, the precision solutions state non-integer values with. */
export function roundValue(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Writes a value the way solutions state it: integers plainly, others with up to two decimals. */
export function formatValue(x: number): string {
  return String(roundValue(x));
}

/** True when two stated values are the same number at solution precision. */
export function sameValue(x: number, y: number): boolean {
  return Math.abs(x - y) < VALUE_TOLERANCE;
}

/** Applies one operation; division of a non-multiple gives a two-decimal value. */
export function applyOp(value: number, kind: ArithOpKind, operand: number): number {
  switch (kind) {
    case 'add': return roundValue(value + operand);
    case 'subtract': return roundValue(value - operand);
    case 'multiply': return roundValue(value * operand);
    case 'divide': return operand === 0 ? Number.NaN : roundValue(value / operand);
  }
}

/** The value after each operation of a chain. */
export function solveArith(chain: ArithChain): number[] {
  const values: number[] = [];
  let value = chain.start;
  for (const op of chain.ops) {
    value = applyOp(value, op.kind, op.operand);
    values.push(value);
  }
  return values;
}

/** The question text of a chain. */
export function renderArithQuestion(chain: ArithChain): string {
  const ops = chain.ops.map((op) => `${OP_VERB[op.kind]} ${formatValue(op.operand)}.`);
  return ['Start with ' + formatValue(chain.start) + '.', ...ops, 'What is the result?'].join(' ');
}

const NUMBER = String.raw`-?\d+(?:\.\d+)?`;
const START_RE = new RegExp(String.raw`start\s+with\s+(${NUMBER})\s*\.`, 'i');
const OP_SENTENCE_RE = new RegExp(String.raw`^\s*(add|subtract|multiply\s+by|divide\s+by)\s+(${NUMBER})\s*\.`, 'i');

/**
 * Recovers the chain from a question, wherever it sits inside a longer text.
 * Returns null when the text holds no "Start with N." followed by at least one operation.
 */
export function parseArithQuestion(text: string): ArithChain | null {
  const start = START_RE.exec(text);
  if (!start?.[1]) return null;
  let rest = text.slice(start.index + start[0].length);
  const ops: ArithOp[] = [];
  for (;;) {
    const m = OP_SENTENCE_RE.exec(rest);
    if (!m?.[1] || !m[2]) break;
    const verb = m[1].toLowerCase().split(/\s+/)[0];
    const kind: ArithOpKind = verb === 'add' ? 'add' : verb === 'subtract' ? 'subtract' : verb === 'multiply' ? 'multiply' : 'divide';
    ops.push({ kind, operand: Number(m[2]) });
    rest = rest.slice(m[0].length);
  }
  return ops.length > 0 ? { start: Number(start[1]), ops } : null;
}

const SYMBOL_KIND: Record<string, ArithOpKind> = {
  '+': 'add', '-': 'subtract', '−': 'subtract', '*': 'multiply', '×': 'multiply', 'x': 'multiply', '·': 'multiply',
  '\\times': 'multiply', '\\cdot': 'multiply', '/': 'divide', '÷': 'divide', '\\div': 'divide',
};
const EQUATION_RE = new RegExp(
  String.raw`(${NUMBER})\s*(\\times|\\cdot|\\div|[+\-−*×x·/÷])\s*(${NUMBER})\s*=\s*(${NUMBER})`,
  'g',
);

/** Every `a op b = c` equation in a step, in order of appearance. */
export function parseEquations(text: string): StepEquation[] {
  const found: StepEquation[] = [];
  for (const m of text.replace(/,(?=\d{3}\b)/g, '').matchAll(EQUATION_RE)) {
    const kind = SYMBOL_KIND[m[2] ?? ''];
    if (!kind) continue;
    found.push({ a: Number(m[1]), kind, b: Number(m[3]), c: Number(m[4]) });
  }
  return found;
}

/** The numbers a text states, in order (used for steps without an equation). */
export function statedNumbers(text: string): number[] {
  return [...text.matchAll(new RegExp(NUMBER, 'g'))].map((m) => Number(m[0]));
}

/** True when `eq` performs `op` on `input` (either operand order for + and ×). */
function performsOp(eq: StepEquation, op: ArithOp, input: number): boolean {
  if (eq.kind !== op.kind) return false;
  if (sameValue(eq.a, input) && sameValue(eq.b, op.operand)) return true;
  const commutative = op.kind === 'add' || op.kind === 'multiply';
  return commutative && sameValue(eq.b, input) && sameValue(eq.a, op.operand);
}

/**
 * Ground truth for a solution: the 0-based index of the earliest step whose stated
 * result is wrong, or -1 when every step is right. This is the label ProcessBench uses.
 *
 * Each equation must perform the next operation of the chain on the true current value
 * and state the true result; a step without an equation is wrong only if the last number
 * it states differs from the true current value. A solution that stops before the chain
 * is complete is wrong at its last step.
 *
 * @throws RangeError if the question does not state an arithmetic chain.
 */
export function firstErrorIndex(question: string, stepTexts: readonly string[]): number {
  const chain = parseArithQuestion(question);
  if (!chain) throw new RangeError('firstErrorIndex: the question does not state an arithmetic chain');
  const values = solveArith(chain);
  let done = 0; // operations performed so far
  for (const [i, step] of stepTexts.entries()) {
    const current = done === 0 ? chain.start : (values[done - 1] as number);
    const equations = parseEquations(step);
    if (equations.length === 0) {
      const last = statedNumbers(step).at(-1);
      if (last !== undefined && !sameValue(last, current)) return i;
      continue;
    }
    for (const eq of equations) {
      const op = chain.ops[done];
      const input = done === 0 ? chain.start : (values[done - 1] as number);
      if (!op || !performsOp(eq, op, input) || !sameValue(eq.c, values[done] as number)) return i;
      done++;
    }
  }
  return done < chain.ops.length && stepTexts.length > 0 ? stepTexts.length - 1 : -1;
}

/** Options for {@link generateProblems}. */
export interface GenerateProblemsOptions {
  seed: number | string;
  count: number;
  /** Fewest operations per problem (default 4, so the 4..20 step guard is meaningful). */
  minOps?: number;
  /** Most operations per problem (default 8). */
  maxOps?: number;
  /** Largest value a chain may reach, start included (default 999). The neural world uses 99. */
  maxValue?: number;
  /** Largest operand of an addition or subtraction (default 60). */
  maxAddend?: number;
  /** Largest start value (default 60; at most `maxValue`). */
  maxStart?: number;
}

/** The bounds {@link generateProblems} draws within, with their defaults filled in. */
interface ValueBounds {
  maxValue: number;
  maxAddend: number;
}

/** Picks an operation that keeps values positive, moderate (≤ `maxValue`) and divisions exact. */
function nextOp(rng: Rng, value: number, bounds: ValueBounds): ArithOp {
  const { maxValue, maxAddend } = bounds;
  const choices: (() => ArithOp)[] = [];
  if (value <= maxValue - 2) choices.push(() => ({ kind: 'add', operand: rng.int(2, Math.min(maxAddend, maxValue - value)) }));
  if (value > 3) choices.push(() => ({ kind: 'subtract', operand: rng.int(1, Math.min(value - 1, maxAddend)) }));
  const factors = [2, 3, 4, 5, 6, 7, 8, 9].filter((m) => value * m <= maxValue);
  if (factors.length > 0) choices.push(() => ({ kind: 'multiply', operand: rng.pick(factors) }));
  const divisors = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].filter((d) => value % d === 0 && value / d >= 2);
  if (divisors.length > 0) choices.push(() => ({ kind: 'divide', operand: rng.pick(divisors) }));
  return rng.pick(choices)();
}

/** One problem per index, each a pure function of (seed, index). */
export function generateProblems(options: GenerateProblemsOptions): ArithProblem[] {
  const minOps = options.minOps ?? 4;
  const maxOps = options.maxOps ?? 8;
  const bounds: ValueBounds = { maxValue: options.maxValue ?? 999, maxAddend: options.maxAddend ?? 60 };
  const maxStart = Math.min(options.maxStart ?? 60, bounds.maxValue);
  if (minOps < 1 || maxOps < minOps) throw new RangeError(`generateProblems: need 1 <= minOps <= maxOps, got ${minOps}..${maxOps}`);
  if (bounds.maxValue < 12 || bounds.maxAddend < 2 || maxStart < 4) {
    throw new RangeError(`generateProblems: need maxValue >= 12, maxAddend >= 2 and maxStart >= 4, got ${bounds.maxValue}, ${bounds.maxAddend}, ${maxStart}`);
  }
  return Array.from({ length: options.count }, (_, index) => {
    const rng = rngFrom('arith-problem', options.seed, index);
    const start = rng.int(2, maxStart);
    const ops: ArithOp[] = [];
    let value = start;
    for (let k = rng.int(minOps, maxOps); k > 0; k--) {
      const op = nextOp(rng, value, bounds);
      ops.push(op);
      value = applyOp(value, op.kind, op.operand);
    }
    const chain = { start, ops };
    const values = solveArith(chain);
    return {
      id: `arith-${options.seed}-${index}`,
      question: renderArithQuestion(chain),
      start,
      ops,
      answer: values[values.length - 1] as number,
      values,
    };
  });
}
