/**
 * The model judging answers itself (co-evolving SPARK; prompts in src/spark/co-evolve/prompts.ts):
 * pointwise Yes/No, pairwise A/B, reflection on shown work, and re-solving after its own No.
 *
 * Each judging prompt calls for one Bernoulli decision whose log-odds are linear in the trained
 * self-judge parameters plus a fixed offset (the item's difficulty, the bonus for seeing the whole
 * chain). It is drawn first, then the phrasing; a rejected reflection and a re-solve go on with a
 * policy response whose error logits are shifted by `resolveShift`. The sandbox trainer
 * (sandbox/trainer/policy-fit.ts) reads decisions back with {@link judgingDecisionOf}, the same
 * definition the world draws from, so the two cannot drift apart.
 */
import { parseArithQuestion, sameValue, solveArith, statedNumbers } from '../arith.js';
import type { ChatMessage } from '../../src/core/inference/chat.js';
import { CO_EVOLVE_SECTIONS, readCoEvolveSection } from '../../src/spark/co-evolve/prompts.js';
import { extractLastBoxed, parsePolicyResponse } from '../../src/spark/common/formats.js';
import { rngFrom } from '../../src/core/random.js';
import type { PolicyParams, SelfJudgeParams, SimModelParams } from '../model-server/params.js';
import { writePolicyResponse } from './policy.js';
import { promptText } from './promptReader.js';
import type { Sampler } from './sampling.js';

/** The roles of the co-evolving SPARK prompts. */
export type SelfJudgeRole = 'pointwise-judge' | 'pairwise-judge' | 'reflection' | 'resolve';

/** The roles that make a judging decision (a re-solve only solves). */
export type JudgingRole = Exclude<SelfJudgeRole, 'resolve'>;

/** The self-judge parameters GRPO trains, in the trainer's vector order. */
export const SELF_JUDGE_TRAINED_NAMES = [
  'acceptLogit', 'rejectBias', 'rejectSlope', 'pairBias', 'pairSlope', 'positionBias', 'resolveShift',
] as const;
export type SelfJudgeTrainedParameter = (typeof SELF_JUDGE_TRAINED_NAMES)[number];

/** The fixed traits of a self-judge: what the trainer takes from the base model, not from the batch. */
export type SelfJudgeFixedParams = Pick<SelfJudgeParams, 'chainBoost' | 'difficultySpread'>;

/** A decision's log-odds: offset + Σ terms[name] · params[name]. */
export interface JudgingLogit {
  offset: number;
  terms: Partial<Record<SelfJudgeTrainedParameter, number>>;
}

/** What a judging completion concludes. */
export type JudgingVerdict = 'Yes' | 'No' | 'A' | 'B' | 'accept' | 'reject';

const OPPOSITE: Record<JudgingVerdict, JudgingVerdict> = { Yes: 'No', No: 'Yes', A: 'B', B: 'A', accept: 'reject', reject: 'accept' };

/** The one decision a judging prompt calls for: its log-odds, and the verdict it gives when it comes out true. */
export interface JudgingDecision {
  logit: JudgingLogit;
  /** A false outcome gives the opposite verdict. */
  whenTrue: JudgingVerdict;
}

/** The verdict a decision's outcome gives. */
export function verdictOf(decision: JudgingDecision, outcome: boolean): JudgingVerdict {
  return outcome ? decision.whenTrue : OPPOSITE[decision.whenTrue];
}

/** The log-odds of a decision under `params`. */
export function judgingLogitValue(logit: JudgingLogit, params: Pick<SelfJudgeParams, SelfJudgeTrainedParameter>): number {
  let z = logit.offset;
  for (const name of SELF_JUDGE_TRAINED_NAMES) z += (logit.terms[name] ?? 0) * params[name];
  return z;
}

/** The true final value of a question, or null when the world cannot read it. */
export function trueAnswerOf(question: string): number | null {
  const chain = parseArithQuestion(question);
  return chain ? (solveArith(chain).at(-1) ?? null) : null;
}

/** A given answer as a number: the last number of its last `\boxed{}` (or of the text), null if none. */
export function readAnswerValue(text: string): number | null {
  return statedNumbers(extractLastBoxed(text) ?? text).at(-1) ?? null;
}

/** Whether a given answer is right, and how far off: f = ln(1 + |given − truth| / max(1, |truth|)); ln 2 when unreadable. */
export function answerError(given: number | null, truth: number): { correct: boolean; size: number } {
  if (given === null) return { correct: false, size: Math.LN2 };
  if (sameValue(given, truth)) return { correct: true, size: 0 };
  return { correct: false, size: Math.log1p(Math.abs(given - truth) / Math.max(1, Math.abs(truth))) };
}

/**
 * How hard an item is to judge, in log-odds: fixed per (question, answers shown), and on purpose
 * independent of the server seed and the model, so the trainer can recompute it.
 */
export function itemDifficulty(spread: number, question: string, shown: readonly string[]): number {
  return spread * rngFrom('self-judge-difficulty', question, ...shown).normal();
}

/** The sections of a co-evolution prompt, as a model reads them. */
export interface SelfJudgePrompt {
  question: string;
  /** pointwise: the candidate; pairwise: A then B; reflection: the shown work; resolve: the incorrect answer. */
  shown: string[];
  /** reflection: a whole solution is shown, not only its answer. */
  chainShown: boolean;
}

export function readSelfJudgePrompt(role: SelfJudgeRole, messages: readonly ChatMessage[]): SelfJudgePrompt {
  const text = promptText(messages);
  const S = CO_EVOLVE_SECTIONS;
  const section = (heading: string) => readCoEvolveSection(text, heading);
  const question = section(S.question);
  switch (role) {
    case 'pointwise-judge': return { question, shown: [section(S.candidate)], chainShown: false };
    case 'pairwise-judge': return { question, shown: [section(S.answerA), section(S.answerB)], chainShown: false };
    case 'reflection': {
      const chainShown = text.includes(`${S.solution}\n`);
      return { question, shown: [section(chainShown ? S.solution : S.answer)], chainShown };
    }
    case 'resolve': return { question, shown: [section(S.incorrect)], chainShown: false };
  }
}

/** The final answer shown work arrives at, as written: a solution's last boxed answer, or the answer itself. */
export function shownFinalAnswer(shown: string, chainShown: boolean): string {
  if (!chainShown) return (extractLastBoxed(shown) ?? shown).trim();
  const parsed = parsePolicyResponse(shown);
  return (parsed.boxed.at(-1) ?? parsed.answerBlock ?? '').trim();
}

/**
 * The judging decision a prompt calls for, or null when the world cannot read its question
 * (then the model answers Yes / A / correct at the base rate 0.5, and the trainer skips it).
 * - pointwise: a correct answer is accepted (Yes) with log-odds acceptLogit + d; a wrong one is
 *   rejected (No) with rejectBias + rejectSlope·f + d.
 * - pairwise: "A" with s·(pairBias + pairSlope·f_wrong + d) + positionBias, s = +1 when A is the
 *   correct one and −1 when B is; positionBias alone when both or neither are correct.
 * - reflection: as pointwise on the shown final answer, plus chainBoost for rejecting a wrong
 *   whole solution.
 */
export function judgingDecisionOf(role: JudgingRole, prompt: SelfJudgePrompt, fixed: SelfJudgeFixedParams): JudgingDecision | null {
  const truth = trueAnswerOf(prompt.question);
  if (truth === null) return null;
  if (role === 'pairwise-judge') {
    const [a = '', b = ''] = prompt.shown;
    // Sorted, so a pair is as hard in either order: only positionBias tells the orders apart.
    const d = itemDifficulty(fixed.difficultySpread, prompt.question, [a, b].sort());
    const checkA = answerError(readAnswerValue(a), truth);
    const checkB = answerError(readAnswerValue(b), truth);
    if (checkA.correct === checkB.correct) return { logit: { offset: 0, terms: { positionBias: 1 } }, whenTrue: 'A' };
    const s = checkA.correct ? 1 : -1;
    const wrongSize = checkA.correct ? checkB.size : checkA.size;
    return { logit: { offset: s * d, terms: { pairBias: s, pairSlope: s * wrongSize, positionBias: 1 } }, whenTrue: 'A' };
  }
  const shown = prompt.shown[0] ?? '';
  const d = itemDifficulty(fixed.difficultySpread, prompt.question, [shown]);
  const answer = role === 'reflection' ? shownFinalAnswer(shown, prompt.chainShown) : shown;
  const check = answerError(readAnswerValue(answer), truth);
  const [accept, reject] = role === 'reflection' ? ['accept', 'reject'] as const : ['Yes', 'No'] as const;
  if (check.correct) return { logit: { offset: d, terms: { acceptLogit: 1 } }, whenTrue: accept };
  const boost = role === 'reflection' && prompt.chainShown ? fixed.chainBoost : 0;
  return { logit: { offset: d + boost, terms: { rejectBias: 1, rejectSlope: check.size } }, whenTrue: reject };
}

/** The policy re-solving after judging an answer wrong: every error logit shifted by resolveShift. */
export function resolvingPolicy(policy: PolicyParams, resolveShift: number): PolicyParams {
  const e = policy.errorLogits;
  return {
    ...policy,
    errorLogits: { add: e.add + resolveShift, subtract: e.subtract + resolveShift, multiply: e.multiply + resolveShift, divide: e.divide + resolveShift },
  };
}

/** How a reflection completion begins: accepting the shown work, or rejecting it before a corrected solution. */
export const REFLECTION_ACCEPT = 'The proposed solution is correct.\n';
export const REFLECTION_REJECT = 'The proposed solution is wrong. A corrected solution:\n';

const REASONS: Record<'Yes' | 'No' | 'A' | 'B', readonly string[]> = {
  Yes: [
    'Working through the operations in order gives the same result, so the answer is correct.',
    'Recomputing each step, I arrive at the candidate answer.',
    'The candidate answer matches the result of the calculation.',
  ],
  No: [
    'Working through the operations in order gives a different result, so the answer is wrong.',
    'Recomputing each step, I do not arrive at the candidate answer.',
    'The candidate answer does not match the result of the calculation.',
  ],
  A: [
    'Working through the operations in order gives answer A.',
    'Recomputing each step, I arrive at answer A, not answer B.',
    'Answer A matches the result of the calculation; answer B does not.',
  ],
  B: [
    'Working through the operations in order gives answer B.',
    'Recomputing each step, I arrive at answer B, not answer A.',
    'Answer B matches the result of the calculation; answer A does not.',
  ],
};

/** The judging verdict: the decision when the question is readable, else a coin flip (Yes / A / accept when true). */
function drawVerdict(role: JudgingRole, prompt: SelfJudgePrompt, params: SelfJudgeParams, sampler: Sampler): JudgingVerdict {
  const decision = judgingDecisionOf(role, prompt, params);
  if (decision) return verdictOf(decision, sampler.chanceLogit(judgingLogitValue(decision.logit, params)));
  const base: JudgingVerdict = role === 'pointwise-judge' ? 'Yes' : role === 'pairwise-judge' ? 'A' : 'accept';
  return sampler.chance(0.5) ? base : OPPOSITE[base];
}

/** One sampled completion of a co-evolution prompt. */
export function writeSelfJudgeResponse(role: SelfJudgeRole, messages: readonly ChatMessage[], params: SimModelParams, sampler: Sampler): string {
  const prompt = readSelfJudgePrompt(role, messages);
  const resolve = () => writePolicyResponse(prompt.question, resolvingPolicy(params.policy, params.selfJudge.resolveShift), sampler);
  if (role === 'resolve') return resolve();
  const verdict = drawVerdict(role, prompt, params.selfJudge, sampler);
  if (verdict === 'accept') return `${REFLECTION_ACCEPT}<answer>\\boxed{${shownFinalAnswer(prompt.shown[0] ?? '', prompt.chainShown)}}</answer>`;
  if (verdict === 'reject') return `${REFLECTION_REJECT}${resolve()}`;
  return `${sampler.pick(REASONS[verdict])}\n\\boxed{${verdict}}`;
}
