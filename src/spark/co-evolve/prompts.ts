/**
 * Prompts of the co-evolving SPARK (method B): the policy judging answers (pointwise Yes/No,
 * pairwise A/B), judging and correcting a wrong solution (reflection), and re-solving after its
 * own No at test time. Each judging type has many paraphrased instructions so the model does not
 * learn one wording; the sections (`[Question]`, `[Candidate answer]`, …) are fixed, so a reader
 * (the sandbox model, the trainer) finds the parts whatever the wording.
 */
import type { ChatMessage } from '../../core/inference/chat.js';
import type { RecycledItem } from './recycling.js';
import { extractLastBoxed } from '../common/formats.js';

/** Section headings shared by every template of a type. */
export const CO_EVOLVE_SECTIONS = {
  question: '[Question]',
  candidate: '[Candidate answer]',
  answerA: '[Answer A]',
  answerB: '[Answer B]',
  solution: '[Proposed solution]',
  answer: '[Proposed answer]',
  incorrect: '[Incorrect answer]',
} as const;

/** The fixed last line of each prompt: how to answer (the verifiable reward reads the last `\boxed{}`). */
export const CO_EVOLVE_FORMATS = {
  pointwise: 'Explain briefly, then give your verdict as \\boxed{Yes} or \\boxed{No}.',
  pairwise: 'Explain briefly, then give the correct one as \\boxed{A} or \\boxed{B}.',
  reflection: 'If it is correct, say so and repeat its final answer as <answer>\\boxed{...}</answer>. If it is wrong, say so and write a corrected solution, one calculation per <step>...</step>, ending with <answer>\\boxed{...}</answer>.',
  resolve: 'Solve the problem again, one calculation per <step>...</step>, and give the final answer inside <answer>...</answer> containing exactly one \\boxed{}. Write nothing after </answer>.',
} as const;

/** Paraphrased instructions for pointwise judging (SPARK: 24). */
export const POINTWISE_INSTRUCTIONS: readonly string[] = [
  'Is the candidate answer to the question below correct?',
  'Decide whether the following answer to the math question is right.',
  'Check the candidate answer against the question. Is it correct?',
  'You are grading a final answer. Does it correctly answer the question?',
  'Here is a question and a proposed final answer. Is the answer correct?',
  'Judge the final answer below: is it the correct result for the question?',
  'Verify the candidate answer. Would a careful solver arrive at the same result?',
  'Below is a problem with a candidate answer. Tell me whether the answer is correct.',
  'Evaluate the correctness of the given answer to this question.',
  'As a math teacher, decide if this final answer deserves full marks.',
  'Does the candidate answer solve the question correctly?',
  'Work out whether the stated answer to the question is correct.',
  'A student gave the answer below. Is the student right?',
  'Assess the candidate answer: correct or incorrect?',
  'Confirm or reject the following final answer to the problem.',
  'Read the question and the answer. Is the answer the true result?',
  'Is the following final result for the question accurate?',
  'Determine if the proposed answer matches the correct solution of the question.',
  'Check this answer carefully. Is it correct for the question asked?',
  'Grade the final answer below as correct or incorrect.',
  'Someone answered the question below. Did they get it right?',
  'Your task is to verify a final answer. Is it correct?',
  'Inspect the candidate answer to the question and decide whether it is correct.',
  'Given the question, is the candidate answer the correct one?',
];

/** Paraphrased instructions for pairwise judging (SPARK: 20). */
export const PAIRWISE_INSTRUCTIONS: readonly string[] = [
  'Two answers to the question below are given. Which one is correct?',
  'Compare answers A and B to the math question. Which is right?',
  'Exactly one of the two answers below is correct. Pick it.',
  'Which of the two candidate answers correctly answers the question?',
  'Decide between answer A and answer B for the question below.',
  'Two students answered the question. Whose answer is correct?',
  'Choose the correct final answer from the two options.',
  'Here are two proposed answers. Identify the one that solves the question.',
  'Judge both answers and select the correct one.',
  'One answer is right and one is wrong. Which is right?',
  'Evaluate answers A and B to the question; which one is correct?',
  'As a grader, pick the answer that deserves full marks.',
  'Which answer, A or B, is the true result for the question?',
  'Select the correct answer to the question from A and B.',
  'Read the question and both answers. Which answer is correct?',
  'Compare the two final answers and choose the correct one.',
  'Of the two answers below, which one matches the correct solution?',
  'Determine which candidate answer is right for this problem.',
  'Two final answers are proposed for the question. Pick the correct one.',
  'Verify answers A and B and tell me which one is correct.',
];

/** Paraphrased instructions for reflection ("judge this, and if wrong give the correct solution"). */
export const REFLECTION_INSTRUCTIONS: readonly string[] = [
  'Judge whether the proposed work below is correct; if it is wrong, give the correct solution.',
  'Check the proposed work for the question. If it is incorrect, solve the problem correctly.',
  'Review the work below. Is it right? If not, correct it.',
  'A student submitted the work below. Grade it, and if it is wrong, write a correct solution.',
  'Verify the proposed work. When it is wrong, provide the right solution instead.',
  'Decide if the work below answers the question correctly, and fix it if it does not.',
  'Examine the proposed work to the question. If you find it wrong, solve the question yourself.',
  'Is the proposed work correct? If it is not, give a correct solution.',
];

/** The test-time re-solve instruction, after the model judged its own answer wrong. */
export const RESOLVE_INSTRUCTION = 'Here is a question and an incorrect answer to it. Solve the question again correctly.';

const system: ChatMessage = { role: 'system', content: 'You are a careful mathematician who checks answers and corrects mistakes.' };

function template(list: readonly string[], index: number): string {
  return list[((index % list.length) + list.length) % list.length]!;
}

export function buildPointwiseJudgeMessages(question: string, answer: string, templateIndex: number): ChatMessage[] {
  const S = CO_EVOLVE_SECTIONS;
  return [system, { role: 'user', content: [template(POINTWISE_INSTRUCTIONS, templateIndex), '', S.question, question.trim(), '', S.candidate, answer.trim(), '', CO_EVOLVE_FORMATS.pointwise].join('\n') }];
}

export function buildPairwiseJudgeMessages(question: string, a: string, b: string, templateIndex: number): ChatMessage[] {
  const S = CO_EVOLVE_SECTIONS;
  return [system, { role: 'user', content: [template(PAIRWISE_INSTRUCTIONS, templateIndex), '', S.question, question.trim(), '', S.answerA, a.trim(), '', S.answerB, b.trim(), '', CO_EVOLVE_FORMATS.pairwise].join('\n') }];
}

/** `shown` is a whole policy response (`chain`) or only its final answer (`answer`). */
export function buildReflectionMessages(question: string, shown: string, shownIs: 'chain' | 'answer', templateIndex: number): ChatMessage[] {
  const S = CO_EVOLVE_SECTIONS;
  const heading = shownIs === 'chain' ? S.solution : S.answer;
  return [system, { role: 'user', content: [template(REFLECTION_INSTRUCTIONS, templateIndex), '', S.question, question.trim(), '', heading, shown.trim(), '', CO_EVOLVE_FORMATS.reflection].join('\n') }];
}

export function buildResolveMessages(question: string, incorrectAnswer: string): ChatMessage[] {
  const S = CO_EVOLVE_SECTIONS;
  return [system, { role: 'user', content: [RESOLVE_INSTRUCTION, '', S.question, question.trim(), '', S.incorrect, incorrectAnswer.trim(), '', CO_EVOLVE_FORMATS.resolve].join('\n') }];
}

/** The prompt of a recycled item. */
export function recycledItemMessages(item: RecycledItem): ChatMessage[] {
  switch (item.kind) {
    case 'pointwise': return buildPointwiseJudgeMessages(item.question, item.answer, item.template);
    case 'pairwise': return buildPairwiseJudgeMessages(item.question, item.a, item.b, item.template);
    case 'reflection': return buildReflectionMessages(item.question, item.shown, item.shownIs, item.template);
  }
}

/** A judging verdict read from a completion's last `\boxed{}` (null: none, or not one of the two). */
export function readVerdict(kind: 'pointwise', text: string): 'Yes' | 'No' | null;
export function readVerdict(kind: 'pairwise', text: string): 'A' | 'B' | null;
export function readVerdict(kind: 'pointwise' | 'pairwise', text: string): 'Yes' | 'No' | 'A' | 'B' | null {
  const boxed = extractLastBoxed(text)?.replace(/\\text\{([^}]*)\}/g, '$1').trim().toLowerCase() ?? null;
  if (boxed === null) return null;
  if (kind === 'pointwise') return boxed === 'yes' ? 'Yes' : boxed === 'no' ? 'No' : null;
  return boxed === 'a' ? 'A' : boxed === 'b' ? 'B' : null;
}

/** Which co-evolution role a prompt asks for, from its sections (null: none of them). */
export function coEvolveRoleOf(text: string): 'pointwise-judge' | 'pairwise-judge' | 'reflection' | 'resolve' | null {
  const S = CO_EVOLVE_SECTIONS;
  if (!text.includes(S.question)) return null;
  if (text.includes(S.incorrect)) return 'resolve';
  if (text.includes(S.answerA) && text.includes(S.answerB)) return 'pairwise-judge';
  if (text.includes(S.solution) || text.includes(S.answer)) return 'reflection';
  if (text.includes(S.candidate)) return 'pointwise-judge';
  return null;
}

/** The text under a section heading, up to the next heading or the format line. */
export function readCoEvolveSection(text: string, heading: string): string {
  const at = text.indexOf(`${heading}\n`);
  if (at < 0) return '';
  const rest = text.slice(at + heading.length + 1);
  const ends = [...Object.values(CO_EVOLVE_SECTIONS), ...Object.values(CO_EVOLVE_FORMATS)]
    .map((h) => rest.indexOf(`\n\n${h}`)).filter((i) => i >= 0);
  return (ends.length > 0 ? rest.slice(0, Math.min(...ends)) : rest).trim();
}
