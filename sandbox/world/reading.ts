/**
 * How a judge reads a solution: re-derive every step from its text.
 *
 * For each `a op b = c` the judge checks the arithmetic, that `a` is the value the previous
 * step arrived at, and (when the question states a chain) that the operation is the one the
 * problem asks for. The size of what is wrong is kept as a relative error, because a judge
 * notices a result off by 60 far more easily than one off by 1.
 */
import type { ArithChain, ArithOp, StepEquation } from '../arith.js';
import {
  applyOp, formatValue, opSymbol, parseArithQuestion, parseEquations, sameValue, statedNumbers,
} from '../arith.js';
import { extractLastBoxed, parsePolicyResponse } from '../../src/spark/common/formats.js';

/** What a careful check of one step finds. */
export interface StepFact {
  text: string;
  /** `equation`: checkable; `filler`: restates a value only; `prose`: nothing to check (foreign input). */
  kind: 'equation' | 'filler' | 'prose';
  title: string;
  /** The step's equations as written, e.g. `17 + 25 = 44`. */
  shown: string[];
  /** The same equations recomputed, e.g. `17 + 25 = 42`. */
  recomputed: string[];
  /** What is wrong with the step and how much (|relative error|), or null if it is right. */
  error: { relError: number; finding: string } | null;
  /** The value the step ends on, if it states one. */
  value: number | null;
}

/** A judge's reading of a whole solution. */
export interface SolutionReading {
  question: string;
  chain: ArithChain | null;
  facts: StepFact[];
  /** The value the solution arrives at: its boxed answer, else the last stated value. */
  finalValue: number | null;
}

const VERB: Record<ArithOp['kind'], string> = { add: 'add', subtract: 'subtract', multiply: 'multiply by', divide: 'divide by' };

function relativeError(stated: number, truth: number): number {
  return Math.abs(stated - truth) / Math.max(1, Math.abs(truth));
}

function showEquation(eq: StepEquation, c = eq.c): string {
  return `${formatValue(eq.a)} ${opSymbol(eq.kind)} ${formatValue(eq.b)} = ${formatValue(c)}`;
}

function usesInput(eq: StepEquation, input: number): boolean {
  const commutative = eq.kind === 'add' || eq.kind === 'multiply';
  return sameValue(eq.a, input) || (commutative && sameValue(eq.b, input));
}

function matchesOp(eq: StepEquation, op: ArithOp, input: number | null): boolean {
  if (eq.kind !== op.kind) return false;
  if (sameValue(eq.b, op.operand)) return true;
  const commutative = eq.kind === 'add' || eq.kind === 'multiply';
  return commutative && sameValue(eq.a, op.operand) && (input === null || sameValue(eq.b, input));
}

function titleOf(equations: readonly StepEquation[]): string {
  const parts = equations.map((eq) => `${VERB[eq.kind]} ${formatValue(eq.b)}`);
  const text = parts.join(', then ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Reads every step of a solution to `question`. */
export function readSolution(question: string, steps: readonly string[], answer?: string | null): SolutionReading {
  const chain = parseArithQuestion(question);
  let previous: number | null = chain ? chain.start : null;
  let opIndex = 0;
  const facts: StepFact[] = steps.map((text) => {
    const equations = chain ? parseEquations(text) : [];
    const last = statedNumbers(text).at(-1) ?? null;
    // Outside the arithmetic world nothing can be re-derived: the judge falls back to base rates.
    if (!chain) return { text, kind: 'prose', title: 'Review the reasoning', shown: [], recomputed: [], error: null, value: last };
    if (equations.length === 0) {
      if (last === null) return { text, kind: 'prose', title: 'Review the reasoning', shown: [], recomputed: [], error: null, value: null };
      return { text, kind: 'filler', title: 'Restate the current value', shown: [], recomputed: [], error: null, value: last };
    }
    const findings: { relError: number; finding: string }[] = [];
    for (const eq of equations) {
      const truth = applyOp(eq.a, eq.kind, eq.b);
      if (!sameValue(eq.c, truth)) {
        findings.push({ relError: relativeError(eq.c, truth), finding: `${showEquation(eq, truth)}, not ${formatValue(eq.c)}` });
      }
      if (previous !== null && !usesInput(eq, previous)) {
        findings.push({ relError: relativeError(eq.a, previous), finding: `the previous result was ${formatValue(previous)}, but the step uses ${formatValue(eq.a)}` });
      }
      const op = chain.ops[opIndex];
      if (!op) findings.push({ relError: 1, finding: 'the problem asks for no further operation' });
      else if (!matchesOp(eq, op, previous)) findings.push({ relError: 1, finding: `the problem says to ${VERB[op.kind]} ${formatValue(op.operand)}` });
      opIndex++;
      previous = eq.c;
    }
    const worst = findings.reduce<{ relError: number; finding: string } | null>((w, f) => (!w || f.relError > w.relError ? f : w), null);
    return {
      text,
      kind: 'equation',
      title: titleOf(equations),
      shown: equations.map((eq) => showEquation(eq)),
      recomputed: equations.map((eq) => showEquation(eq, applyOp(eq.a, eq.kind, eq.b))),
      error: worst ? { relError: worst.relError, finding: findings.map((f) => f.finding).join('; ') } : null,
      value: previous,
    };
  });
  // A solution that stops before the last operation is wrong at its last checkable step.
  const lastChecked = facts.map((f) => f.kind).lastIndexOf('equation');
  const lastFact = facts[lastChecked];
  if (chain && lastFact && !lastFact.error && opIndex < chain.ops.length) {
    lastFact.error = { relError: 1, finding: 'the solution stops before applying every operation of the problem' };
  }
  const boxed = answer ? extractLastBoxed(answer) ?? answer : null;
  const answerValue = boxed !== null ? statedNumbers(boxed).at(-1) ?? null : null;
  const lastValue = facts.map((f) => f.value).filter((v): v is number => v !== null).at(-1) ?? null;
  return { question, chain, facts, finalValue: answerValue ?? lastValue };
}

/** A different problem and its solution written after the answer, if the text holds one. */
export function readAppendix(trailing: string | undefined): { question: string; steps: string[]; answer: string | null } | null {
  if (!trailing) return null;
  const chain = parseArithQuestion(trailing);
  if (!chain) return null;
  const questionEnd = trailing.search(/what is the result\?/i);
  const rest = questionEnd >= 0 ? trailing.slice(questionEnd) : trailing;
  const parsed = parsePolicyResponse(rest.replace(/^what is the result\?/i, ''));
  if (parsed.steps.length === 0) return null;
  return { question: trailing.slice(0, questionEnd >= 0 ? questionEnd + 'What is the result?'.length : trailing.length), steps: parsed.steps, answer: parsed.answerBlock };
}
