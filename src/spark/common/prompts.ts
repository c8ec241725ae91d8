/**
 * Prompt builders for every model role, written to be sent to a real instruction-tuned model
 * (Qwen on vLLM, a hosted API) as they are.
 *
 * Each template carries a fixed phrase ({@link ROLE_MARKERS}) that identifies its role, so the
 * sandbox model server (`sandbox/world/roles.ts`) can tell the roles apart from the prompt alone, as a real model does.
 */
import type { ChatMessage } from '../../core/inference/chat.js';
import type { RewardModelStyle } from './formats.js';
import { CRITIQUE_QUESTION, VERDICT_QUESTION } from './formats.js';

/** The fixed phrase of each role's template. */
export const ROLE_MARKERS = {
  generator: 'Put each step inside <step>...</step> tags',
  verifier: 'Verify the solution step by step.',
  referenceGuided: 'Compare the final answer with the reference answer.',
  critic: 'Critique the verification below.',
  merger: 'Rewrite the verification so that it reads as if written in one go',
  orm: 'Is the answer correct (Yes/No)?',
  prm: "Let's verify step by step.",
  processbench: 'return the index of the paragraph where the earliest error occurs',
} as const;

/** Tags around the sections of the verifier, critic and merger prompts. */
export const SECTION_TAGS = {
  problem: 'problem',
  solution: 'solution',
  reference: 'reference_answer',
  verification: 'verification',
  critique: 'critique',
} as const;

/** A solution as judges see it. */
export interface SolutionView {
  question: string;
  steps: readonly string[];
  /** The final answer as the policy gave it (e.g. `\boxed{42}`), shown after the steps. */
  answer?: string | null;
  /** Text the policy wrote after its answer, shown verbatim (judges can be fooled by it). */
  trailing?: string;
}

/** Numbers the steps `Step 1: …`, then the final answer and any trailing text. */
export function renderSolutionSteps(view: Omit<SolutionView, 'question'>): string {
  const lines = view.steps.map((s, i) => `Step ${i + 1}: ${s.trim()}`);
  if (view.answer) lines.push(`Final answer: ${view.answer.trim()}`);
  const text = lines.join('\n');
  return view.trailing && view.trailing.trim().length > 0 ? `${text}\n${view.trailing.trim()}` : text;
}

function section(tag: string, content: string): string {
  return `<${tag}>\n${content.trim()}\n</${tag}>`;
}

/** Removes `<think>…</think>` blocks (and an unclosed trailing one) before a text is shown to another model. */
function withoutThinking(text: string): string {
  return text.replace(/<think>[\s\S]*?<\/think>/gi, '').replace(/<think>[\s\S]*$/i, '').trim();
}

/** The policy prompt: steps in `<step>` tags, the answer in `<answer>` with exactly one `\boxed{}`. */
export function buildGeneratorMessages(question: string): ChatMessage[] {
  return [
    { role: 'system', content: 'You are a careful mathematician who solves problems one small step at a time.' },
    {
      role: 'user',
      content: [
        'Solve the following problem step by step.',
        `${ROLE_MARKERS.generator}, one step per calculation, and give the final answer inside <answer>...</answer> containing exactly one \\boxed{}. Write nothing after </answer>.`,
        '',
        `Problem: ${question.trim()}`,
      ].join('\n'),
    },
  ];
}

const VERIFIER_FORMAT = [
  'For each step, write a heading "## Step k: <short title>", analyse the step, and end it with exactly one of "**This step is correct.**" or "**This step is incorrect.**".',
  'A step that depends on an earlier incorrect step is also incorrect.',
  `After the last step, write the final line exactly as "**Verification: ${VERDICT_QUESTION} X**" where X is Yes or No.`,
].join(' ');

/** The step-by-step verifier prompt; with `referenceAnswer` it is the reference-guided baseline. */
export function buildVerifierMessages(input: SolutionView & { referenceAnswer?: string | null }): ChatMessage[] {
  const reference = input.referenceAnswer != null && input.referenceAnswer !== '';
  const task = [
    `You will be given a math problem and a student's solution split into numbered steps. ${ROLE_MARKERS.verifier}`,
    reference ? ` ${ROLE_MARKERS.referenceGuided}` : '',
    ` ${VERIFIER_FORMAT}`,
  ].join('');
  const parts = [task, '', section(SECTION_TAGS.problem, input.question)];
  if (reference) parts.push('', section(SECTION_TAGS.reference, String(input.referenceAnswer)));
  parts.push('', section(SECTION_TAGS.solution, renderSolutionSteps(input)));
  return [
    { role: 'system', content: 'You are a meticulous math teacher who grades solutions step by step.' },
    { role: 'user', content: parts.join('\n') },
  ];
}

/** The meta-critique prompt: re-check the solution and critique one verification of it. */
export function buildCriticMessages(input: SolutionView & { verification: string }): ChatMessage[] {
  const task = [
    `You will be given a math problem, a student's solution and a teacher's step-by-step verification of it. ${ROLE_MARKERS.critic}`,
    'Re-check every step of the solution independently, then look for errors the verification missed, steps it marked incorrect although they are right (false alarms), flawed reasoning, and a final verdict that contradicts its own step labels.',
    'Write one section "### Re-check of Step k" per step, then these lines:',
    '"**Missed errors: Step a, Step b**" (or "none"), "**False alarms: Step c**" (or "none"),',
    '"**Verdict consistent with step labels: Yes|No**", and last',
    `"**Critique: ${CRITIQUE_QUESTION} Yes|No**".`,
  ].join(' ');
  return [
    { role: 'system', content: 'You are an expert reviewer of math grading.' },
    {
      role: 'user',
      content: [
        task,
        '',
        section(SECTION_TAGS.problem, input.question),
        '',
        section(SECTION_TAGS.solution, renderSolutionSteps(input)),
        '',
        section(SECTION_TAGS.verification, withoutThinking(input.verification)),
      ].join('\n'),
    },
  ];
}

/** The merge prompt: rewrite a verification applying its critique, in the verifier format. */
export function buildMergeMessages(input: SolutionView & { verification: string; critique: string }): ChatMessage[] {
  const task = [
    "You will be given a math problem, a student's solution, a teacher's step-by-step verification of it and a critique of that verification.",
    `${ROLE_MARKERS.merger}, fixing every problem the critique found. Do not mention the critique.`,
    VERIFIER_FORMAT,
  ].join(' ');
  return [
    { role: 'system', content: 'You are a meticulous math teacher who grades solutions step by step.' },
    {
      role: 'user',
      content: [
        task,
        '',
        section(SECTION_TAGS.problem, input.question),
        '',
        section(SECTION_TAGS.solution, renderSolutionSteps(input)),
        '',
        section(SECTION_TAGS.verification, withoutThinking(input.verification)),
        '',
        section(SECTION_TAGS.critique, withoutThinking(input.critique)),
      ].join('\n'),
    },
  ];
}

/**
 * The generative reward-model prompts of SPARK stage 2, exactly:
 * ORM `Problem: {q}` / `Solution: {s}` / `Is the answer correct (Yes/No)?`;
 * PRM and PRM-CoT `Problem: {q}` / `Student Solution: {s}` / `Let's verify step by step.`
 */
export function buildPrmMessages(input: SolutionView & { style: RewardModelStyle }): ChatMessage[] {
  const solution = renderSolutionSteps(input);
  const content = input.style === 'orm'
    ? `Problem: ${input.question.trim()}\nSolution: ${solution}\n${ROLE_MARKERS.orm}`
    : `Problem: ${input.question.trim()}\nStudent Solution: ${solution}\n${ROLE_MARKERS.prm}`;
  return [{ role: 'user', content }];
}

/** ProcessBench's own critic template: paragraphs as `<paragraph_i>`, earliest wrong index or -1 in `\boxed{}`. */
export function buildProcessBenchMessages(input: { problem: string; steps: readonly string[] }): ChatMessage[] {
  const tagged = input.steps.map((s, i) => `<paragraph_${i}>\n${s}\n</paragraph_${i}>\n\n`).join('');
  const content = [
    'The following is a math problem and a solution (split into paragraphs, enclosed with tags and indexed from 0):',
    '',
    '[Math Problem]',
    '',
    input.problem,
    '',
    '[Solution]',
    '',
    tagged,
    `Your task is to review and critique the solution paragraph by paragraph. Once you identify an error in a paragraph, ${ROLE_MARKERS.processbench}. Otherwise, return the index of -1 (which typically denotes "not found").`,
    '',
    'Please put your final answer (i.e., the index) in \\boxed{}.',
  ].join('\n');
  return [{ role: 'user', content }];
}
