/**
 * The neural world's training and evaluation text, rendered with the project's own prompts.
 *
 * Small transformers trained from scratch on this text play SPARK's roles (`trainer/…/world/`).
 * Problems come from the sandbox's one generator (`../arith.ts`), with smaller values so a model
 * of a few million parameters learns much of the world in minutes. Every step's truth comes from
 * `firstErrorIndex`, the same function that scores the scripted sandbox.
 *
 * One canonical way of writing each role's answer keeps sequences short and learnable:
 * - a solution: one `<step>Add 25: 17 + 25 = 42</step>` per operation, then `<answer>\boxed{v}</answer>`;
 * - a verification (verifier prompt, and PRM-CoT output): per step, the operation as its title,
 *   the verifier's own re-derivation from the problem, what the step states, and the label; a step
 *   after the first wrong one "depends on" it and is incorrect, as SPARK's verifier format asks.
 *
 * Wrong solutions carry slips a solver makes: a result off by a little or a lot, an operand
 * misread, the wrong input carried over; later steps compute correctly from what was stated, so
 * an error propagates. Pure and deterministic for a seed.
 */
import type { ArithOp, ArithProblem, GenerateProblemsOptions } from '../arith.js';
import { applyOp, firstErrorIndex, formatValue, generateProblems, opSymbol, parseEquations } from '../arith.js';
import { renderPolicyResponse, renderVerification } from '../../src/spark/common/formats.js';
import type { VerificationStep } from '../../src/spark/common/formats.js';
import { buildGeneratorMessages, buildPrmMessages, buildVerifierMessages } from '../../src/spark/common/prompts.js';
import type { ChatMessage } from '../../src/core/inference/chat.js';
import type { Rng } from '../../src/core/random.js';
import { rngFrom } from '../../src/core/random.js';

/** The problem distribution of a world: the options given to `generateProblems`, without seed and count. */
export type WorldProblemSettings = Omit<GenerateProblemsOptions, 'seed' | 'count'>;

/** The default world: 4–5 operations (the RL step guard wants at least 4), values up to 99. */
export const DEFAULT_WORLD_PROBLEMS: Required<Pick<WorldProblemSettings, 'minOps' | 'maxOps' | 'maxValue' | 'maxAddend' | 'maxStart'>> = {
  minOps: 4,
  maxOps: 5,
  maxValue: 99,
  maxAddend: 30,
  maxStart: 30,
};

/** One worked step as a solution states it. */
export interface WrittenStep {
  input: number;
  kind: ArithOp['kind'];
  operand: number;
  result: number;
}

/** A solution with the truth about it. */
export interface WorldSolution {
  steps: WrittenStep[];
  /** The step texts (`17 + 25 = 42`). */
  stepTexts: string[];
  /** The policy-format response. */
  response: string;
  /** 0-based first wrong step, -1 when all are right (from `firstErrorIndex`). */
  firstError: number;
}

const VERB: Record<ArithOp['kind'], string> = { add: 'Add', subtract: 'Subtract', multiply: 'Multiply by', divide: 'Divide by' };

/** `17 + 25 = 42` */
export function equationText(step: WrittenStep): string {
  return `${formatValue(step.input)} ${opSymbol(step.kind)} ${formatValue(step.operand)} = ${formatValue(step.result)}`;
}

/** The operation as the problem states it: `Add 25`. */
export function operationText(op: ArithOp): string {
  return `${VERB[op.kind]} ${formatValue(op.operand)}`;
}

/**
 * A step as a solution writes it: the operation it performs, then its equation
 * (`Add 25: 17 + 25 = 42`). Restating the operation lets a small model find the next one in the
 * problem by looking at where the previous step's copy came from.
 */
export function stepText(step: WrittenStep): string {
  return `${operationText({ kind: step.kind, operand: step.operand })}: ${equationText(step)}`;
}

/** The kinds of slip a wrong solution makes at its first wrong step. */
export type SlipKind = 'result-small' | 'result-large' | 'operand' | 'carry';

/** A stated number that is not `truth`: off by 1..3 (small) or 4..15 (large), kept positive. */
function offBy(rng: Rng, truth: number, small: boolean): number {
  for (;;) {
    const size = small ? rng.int(1, 3) : rng.int(4, 15);
    const value = truth + (rng.bernoulli(0.5) ? size : -size);
    if (value > 0) return value;
  }
}

/**
 * Writes a solution of `problem`; with `slipAt` (0-based) the step there holds a slip of `slip`'s
 * kind, and later steps compute correctly from the stated value.
 */
export function writeSolution(problem: ArithProblem, rng: Rng, slipAt: number | null = null, slip: SlipKind = 'result-small'): WorldSolution {
  let value = problem.start;
  const steps = problem.ops.map((op, i) => {
    let input = value;
    let operand = op.operand;
    if (i === slipAt && slip === 'carry' && i > 0) input = offBy(rng, value, true);
    if (i === slipAt && slip === 'operand') operand = offBy(rng, op.operand, true);
    let result = applyOp(input, op.kind, operand);
    if (i === slipAt && (slip.startsWith('result') || (slip === 'carry' && i === 0))) result = offBy(rng, result, slip !== 'result-large');
    if (!Number.isFinite(result)) result = offBy(rng, value, true); // a misread divisor of 0
    value = result;
    return { input, kind: op.kind, operand, result };
  });
  const stepTexts = steps.map(stepText);
  const response = renderPolicyResponse({ steps: stepTexts, answer: formatValue(value) });
  return { steps, stepTexts, response, firstError: firstErrorIndex(problem.question, stepTexts) };
}

/** A wrong solution: one slip at a uniformly chosen step, of a kind drawn by the usual shares. */
export function writeWrongSolution(problem: ArithProblem, rng: Rng): WorldSolution {
  for (;;) {
    const at = rng.int(0, problem.ops.length - 1);
    const slip = rng.pick<SlipKind>(['result-small', 'result-small', 'result-large', 'operand', 'carry']);
    const solution = writeSolution(problem, rng, at, slip);
    if (solution.firstError >= 0) return solution; // a slip can land on the truth (e.g. x × 1): draw again
  }
}

/**
 * The verification of a solution as the world's truth writes it. Each step is titled with the
 * operation the problem asks for at that point; the verifier re-derives it from the value so far
 * before it reads back what the step states, then compares the two (re-deriving first keeps a
 * small model from copying the stated result). Steps after the first wrong one depend on it.
 */
export function writeVerification(problem: ArithProblem, stepTexts: readonly string[]): string {
  const firstError = firstErrorIndex(problem.question, stepTexts);
  const steps: VerificationStep[] = stepTexts.map((text, i) => {
    const op = problem.ops[i];
    const input = i === 0 ? problem.start : problem.values[i - 1];
    const stated = parseEquations(text)[0];
    const states = stated ? equationText({ input: stated.a, kind: stated.kind, operand: stated.b, result: stated.c }) : text;
    const title = op ? operationText(op) : 'Nothing left to do';
    const recomputed = op && input !== undefined
      ? `Recompute: ${equationText({ input, kind: op.kind, operand: op.operand, result: problem.values[i] as number })}. The step states ${states}.`
      : `Nothing is left to compute. The step states ${states}.`;
    const analysis = firstError >= 0 && i > firstError ? `Depends on Step ${firstError + 1}.` : recomputed;
    return { title, analysis, correct: firstError < 0 || i < firstError };
  });
  return renderVerification({ steps, outcome: firstError < 0 });
}

/** One supervised example: the chat messages and the target completion. */
export interface TextExample {
  role: 'solve' | 'verify' | 'prm';
  messages: ChatMessage[];
  completion: string;
}

function solutionFor(problem: ArithProblem, rng: Rng, errorShare: number): WorldSolution {
  return rng.bernoulli(errorShare) ? writeWrongSolution(problem, rng) : writeSolution(problem, rng);
}

/** The policy's example: the generator prompt and a correct solution. */
export function solveExample(problem: ArithProblem, rng: Rng): TextExample {
  return { role: 'solve', messages: buildGeneratorMessages(problem.question), completion: writeSolution(problem, rng).response };
}

/** The verifier's example: the verifier prompt on a solution (wrong with probability `errorShare`) and its true verification. */
export function verifyExample(problem: ArithProblem, rng: Rng, errorShare: number): TextExample {
  const solution = solutionFor(problem, rng, errorShare);
  const answer = `\\boxed{${formatValue(solution.steps.at(-1)?.result ?? problem.start)}}`;
  return {
    role: 'verify',
    messages: buildVerifierMessages({ question: problem.question, steps: solution.stepTexts, answer }),
    completion: writeVerification(problem, solution.stepTexts),
  };
}

/**
 * A PRM-CoT example: SPARK's PRM prompt and the verification as its answer. Half show the final
 * answer line (as `trainPrm` and the RL reward render it), half do not (as ProcessBench rows do).
 */
export function prmExample(problem: ArithProblem, rng: Rng, errorShare: number): TextExample {
  const solution = solutionFor(problem, rng, errorShare);
  const answer = rng.bernoulli(0.5) ? `\\boxed{${formatValue(solution.steps.at(-1)?.result ?? problem.start)}}` : undefined;
  return {
    role: 'prm',
    messages: buildPrmMessages({ question: problem.question, steps: solution.stepTexts, answer, style: 'prm-cot' }),
    completion: writeVerification(problem, solution.stepTexts),
  };
}

/** Problems of a world split, by a seed of their own; `exclude` drops any whose question is there. */
export function worldProblems(settings: WorldProblemSettings, seed: string, count: number, exclude?: ReadonlySet<string>): ArithProblem[] {
  const out: ArithProblem[] = [];
  for (let batch = 0; out.length < count; batch++) {
    for (const p of generateProblems({ ...settings, seed: `${seed}-${batch}`, count: count - out.length })) {
      if (!exclude?.has(p.question)) out.push(p);
    }
    if (batch > 100) throw new RangeError(`worldProblems: could not draw ${count} problems outside the excluded set`);
  }
  return out;
}

/** The rng of one example: a pure function of the seed, the split and the index. */
export function exampleRng(seed: string | number, split: string, index: number): Rng {
  return rngFrom('neural-world', seed, split, index);
}

/** A ProcessBench row of the world (the published schema), with its truth. */
export interface WorldProcessBenchRow {
  id: string;
  generator: string;
  problem: string;
  steps: string[];
  final_answer_correct: boolean;
  label: number;
}

/**
 * A world ProcessBench split: `count` problems drawn under `seed`, each solved in the world's
 * format, floor(errorShare · count) of them with one slip, spread evenly (so any first rows hold
 * both kinds). Labels come from `firstErrorIndex`.
 */
export function worldProcessBench(settings: WorldProblemSettings, seed: string, count: number, errorShare = 0.5): WorldProcessBenchRow[] {
  return worldProblems(settings, `${seed}-processbench`, count).map((p, i) => {
    const rng = exampleRng(seed, 'processbench', i);
    const wrong = Math.floor((i + 1) * errorShare) > Math.floor(i * errorShare);
    const solution = wrong ? writeWrongSolution(p, rng) : writeSolution(p, rng);
    return {
      id: `${p.id}-pb`,
      generator: 'neural-world',
      problem: p.question,
      steps: solution.stepTexts,
      final_answer_correct: Math.abs((solution.steps.at(-1)?.result ?? Number.NaN) - p.answer) < 0.006,
      label: solution.firstError,
    };
  });
}
