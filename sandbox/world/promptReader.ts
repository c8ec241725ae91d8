/**
 * Reads a role's inputs back out of its prompt, as a model reads its context.
 * Tolerant by design: anything missing reads as empty, never as an error.
 */
import type { ChatMessage } from '../../src/core/inference/chat.js';
import { parsePolicyResponse } from '../../src/spark/common/formats.js';
import { ROLE_MARKERS, SECTION_TAGS } from '../../src/spark/common/prompts.js';

/** A solution as a judge reads it from a prompt. */
export interface SolutionText {
  steps: string[];
  answer: string | null;
  /** Whatever follows the final answer. */
  trailing: string;
}

/** The text the model reads: system and user turns. */
export function promptText(messages: readonly ChatMessage[]): string {
  return messages.filter((m) => m.role !== 'assistant').map((m) => m.content).join('\n');
}

/** The content of `<tag>…</tag>`, or '' if absent. */
export function readSection(text: string, tag: string): string {
  const open = text.indexOf(`<${tag}>`);
  if (open < 0) return '';
  const from = open + tag.length + 2;
  const close = text.indexOf(`</${tag}>`, from);
  return text.slice(from, close < 0 ? text.length : close).trim();
}

/** Splits a rendered solution (`Step k:` lines, `Final answer:`, trailing text) or a raw policy response. */
export function readSolutionText(text: string): SolutionText {
  if (/<step>/i.test(text) && !/^\s*Step\s*1\s*:/i.test(text)) {
    const parsed = parsePolicyResponse(text);
    return { steps: parsed.steps, answer: parsed.answerBlock, trailing: parsed.trailing };
  }
  const final = /^Final answer:[ \t]*(.*)$/im.exec(text);
  const head = final ? text.slice(0, final.index) : text;
  const tail = final ? text.slice(final.index + final[0].length) : '';
  return { steps: parsePolicyResponse(head).steps, answer: final ? (final[1] ?? '').trim() : null, trailing: tail };
}

/** The question of a generator prompt: what follows the last "Problem:" (the whole text if none). */
export function readGeneratorQuestion(messages: readonly ChatMessage[]): string {
  const user = messages.filter((m) => m.role === 'user').at(-1)?.content ?? promptText(messages);
  const at = user.lastIndexOf('Problem:');
  return (at >= 0 ? user.slice(at + 'Problem:'.length) : user).trim();
}

/** Inputs of the verifier, critic and merger prompts. */
export interface JudgePromptInputs {
  question: string;
  solution: SolutionText;
  reference: string | null;
  verification: string;
  critique: string;
}

export function readJudgePrompt(messages: readonly ChatMessage[]): JudgePromptInputs {
  const text = promptText(messages);
  const reference = readSection(text, SECTION_TAGS.reference);
  return {
    question: readSection(text, SECTION_TAGS.problem),
    solution: readSolutionText(readSection(text, SECTION_TAGS.solution)),
    reference: reference === '' ? null : reference,
    verification: readSection(text, SECTION_TAGS.verification),
    critique: readSection(text, SECTION_TAGS.critique),
  };
}

/** Inputs of the ORM and PRM prompts (`Problem:` / `Solution:` or `Student Solution:` / question). */
export function readRewardModelPrompt(messages: readonly ChatMessage[]): { question: string; solution: SolutionText } {
  const text = promptText(messages).trimEnd();
  const solutionLabel = /\n(?:Student )?Solution:[ \t]*/.exec(text);
  const problemAt = text.indexOf('Problem:');
  const question = text.slice(problemAt >= 0 ? problemAt + 'Problem:'.length : 0, solutionLabel ? solutionLabel.index : text.length).trim();
  let solution = solutionLabel ? text.slice(solutionLabel.index + solutionLabel[0].length) : '';
  for (const marker of [ROLE_MARKERS.prm, ROLE_MARKERS.orm]) {
    if (solution.endsWith(marker)) solution = solution.slice(0, -marker.length);
  }
  return { question, solution: readSolutionText(solution.trim()) };
}

/** Inputs of the ProcessBench template. */
export function readProcessBenchPrompt(messages: readonly ChatMessage[]): { question: string; paragraphs: string[] } {
  const text = promptText(messages);
  const from = text.indexOf('[Math Problem]');
  const to = text.indexOf('[Solution]');
  const question = from >= 0 && to > from ? text.slice(from + '[Math Problem]'.length, to).trim() : '';
  const paragraphs = [...text.matchAll(/<paragraph_(\d+)>\n?([\s\S]*?)\n?<\/paragraph_\1>/g)].map((m) => (m[2] ?? '').trim());
  return { question, paragraphs };
}
