/**
 * The policy (generator): solves a chain one step per operation in the SPARK policy format.
 *
 * Each step states a wrong result with a probability set per operation; a wrong result
 * propagates, because later steps compute correctly from the stated value. Behaviour
 * parameters (merge, split, append after the answer, break the format) are the reward hacks
 * RL can discover.
 *
 * Every trainable behaviour is a Bernoulli decision on a logit parameter, drawn in this order:
 * per operation an error, per operation after the first a merge into the previous step, per
 * step a run of filler steps (a geometric number), per response a format violation and, if the
 * format is kept, an appendix. The sandbox trainer reads these decisions back from the text
 * (sandbox/trainer/policy-fit.ts); keep the two in step.
 */
import type { ArithChain, ArithOp } from '../arith.js';
import {
  applyOp, formatValue, generateProblems, opSymbol, parseArithQuestion, statedNumbers,
} from '../arith.js';
import { renderPolicyResponse } from '../../src/spark/common/formats.js';
import type { PolicyParams } from '../model-server/params.js';
import type { Sampler } from './sampling.js';

interface WorkedOp {
  op: ArithOp;
  input: number;
  stated: number;
}

const VERB: Record<ArithOp['kind'], string> = { add: 'Add', subtract: 'Subtract', multiply: 'Multiply by', divide: 'Divide by' };

function equation(w: WorkedOp): string {
  return `${formatValue(w.input)} ${opSymbol(w.op.kind)} ${formatValue(w.op.operand)} = ${formatValue(w.stated)}`;
}

/** Works through the chain, slipping now and then; later steps build on what was stated. */
function workChain(chain: ArithChain, params: PolicyParams, sampler: Sampler): WorkedOp[] {
  let value = chain.start;
  return chain.ops.map((op) => {
    const truth = applyOp(value, op.kind, op.operand);
    let stated = truth;
    if (sampler.chanceLogit(params.errorLogits[op.kind])) {
      const subtle = sampler.rng.bernoulli(params.subtleFraction);
      const size = subtle
        ? sampler.int(1, params.smallDeltaMax)
        : sampler.int(params.largeDeltaMin, Math.max(params.largeDeltaMin, params.largeDeltaMax));
      stated = truth + (sampler.rng.bernoulli(0.5) ? size : -size); // size >= 1: never the truth
    }
    const worked = { op, input: value, stated };
    value = stated;
    return worked;
  });
}

function stepText(group: readonly WorkedOp[], sampler: Sampler): string {
  const [first] = group;
  if (!first) return '';
  if (group.length === 1) {
    const verb = VERB[first.op.kind].toLowerCase();
    return sampler.pick([
      `${VERB[first.op.kind]} ${formatValue(first.op.operand)}: ${equation(first)}.`,
      `We ${verb} ${formatValue(first.op.operand)}, so ${equation(first)}.`,
      `Next, ${equation(first)}.`,
    ]);
  }
  const verbs = group.map((w, i) => `${i === 0 ? VERB[w.op.kind] : VERB[w.op.kind].toLowerCase()} ${formatValue(w.op.operand)}`);
  return `${verbs.join(', then ')}: ${group.map(equation).join(', then ')}.`;
}

function fillerText(value: number, sampler: Sampler): string {
  return sampler.pick([
    `So far the value is ${formatValue(value)}.`,
    `Let me keep track: we now have ${formatValue(value)}.`,
    `The current result is ${formatValue(value)}.`,
  ]);
}

/** The most filler steps after one step: k fillers are k split decisions that succeeded, then one that failed (none after the last). */
export const MAX_FILLERS_PER_STEP = 6;

/** Groups operations into steps (merging) and adds filler steps (splitting). */
function layOutSteps(worked: readonly WorkedOp[], params: PolicyParams, sampler: Sampler): string[] {
  const groups: WorkedOp[][] = [];
  for (const w of worked) {
    const last = groups.at(-1);
    if (last && sampler.chanceLogit(params.mergeStepsLogit)) last.push(w);
    else groups.push([w]);
  }
  const steps: string[] = [];
  for (const group of groups) {
    steps.push(stepText(group, sampler));
    const last = group.at(-1);
    if (!last) continue;
    // Geometric: after each filler the split decision is drawn again, so inflation can run long
    // enough for the step-count guard to matter; no filler, no further draw.
    for (let fillers = 0; fillers < MAX_FILLERS_PER_STEP && sampler.chanceLogit(params.splitStepsLogit); fillers++) {
      steps.push(fillerText(last.stated, sampler));
    }
  }
  return steps;
}

/** An already-solved different problem, written after the answer (the solution-appending hack). */
function appendedSolution(sampler: Sampler): string {
  const [problem] = generateProblems({ seed: `appendix-${sampler.int(0, 1_000_000)}`, count: 1, minOps: 4, maxOps: 5 });
  if (!problem) return '';
  let input = problem.start;
  const steps = problem.ops.map((op, i) => {
    const stated = problem.values[i] as number;
    const text = `${formatValue(input)} ${opSymbol(op.kind)} ${formatValue(op.operand)} = ${formatValue(stated)}.`;
    input = stated;
    return text;
  });
  return `\n\n${problem.question}\n${renderPolicyResponse({ steps, answer: formatValue(problem.answer) })}`;
}

/** Answers a question the world cannot parse with a plausible guessed chain. */
function guessedChain(question: string, sampler: Sampler): ArithChain {
  const numbers = statedNumbers(question).filter((n) => Number.isFinite(n) && Math.abs(n) < 1e6).slice(0, 6);
  const start = numbers[0] ?? sampler.int(2, 20);
  const operands = numbers.slice(1);
  while (operands.length < 3) operands.push(sampler.int(2, 9));
  const kinds: ArithOp['kind'][] = ['add', 'subtract', 'multiply'];
  return { start, ops: operands.map((operand) => ({ kind: sampler.pick(kinds), operand })) };
}

/** Breaks the answer format in one of the ways real policies do. */
function brokenAnswer(steps: readonly string[], answer: string, sampler: Sampler): string {
  const body = steps.map((s) => `<step>${s}</step>`).join('\n');
  return sampler.pick([
    `${body}\nThe final answer is \\boxed{${answer}}.`,
    `${body}\n<answer>\\boxed{${answer}} or possibly \\boxed{${Number(answer) + 1}}</answer>`,
    `${body}\n<answer>${answer}</answer>`,
  ]);
}

/** One sampled policy response to `question`. */
export function writePolicyResponse(question: string, params: PolicyParams, sampler: Sampler): string {
  const chain = parseArithQuestion(question) ?? guessedChain(question, sampler);
  const worked = workChain(chain, params, sampler);
  const steps = layOutSteps(worked, params, sampler);
  const answer = formatValue(worked.at(-1)?.stated ?? chain.start);
  if (sampler.chanceLogit(params.formatViolationLogit)) return brokenAnswer(steps, answer, sampler);
  const trailing = sampler.chanceLogit(params.appendAfterAnswerLogit) ? appendedSolution(sampler) : '';
  return renderPolicyResponse({ steps, answer, trailing });
}

