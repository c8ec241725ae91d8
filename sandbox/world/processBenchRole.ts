/** The ProcessBench critic: the earliest wrong paragraph (0-based) or -1, in `\boxed{}`. */
import type { ChatMessage } from '../../src/core/inference/chat.js';
import type { SimModelParams } from '../model-server/params.js';
import type { JudgeIdentity } from './judging.js';
import { judgeSolution } from './judging.js';
import { readProcessBenchPrompt } from './promptReader.js';
import type { Sampler } from './sampling.js';
import { analyseStep } from './writing.js';

export function writeProcessBenchResponse(messages: readonly ChatMessage[], params: SimModelParams, sampler: Sampler, identity: JudgeIdentity): string {
  const { question, paragraphs } = readProcessBenchPrompt(messages);
  const solution = { steps: paragraphs, answer: null, trailing: '' };
  const { reading, perception } = judgeSolution({ question, solution }, params.processbench, params.judge, sampler, identity);
  const earliest = perception.labels.indexOf(false);
  const reviewed = earliest < 0 ? reading.facts : reading.facts.slice(0, earliest + 1);
  const lines = reviewed.map((fact, i) => `Paragraph ${i}: ${analyseStep(fact, perception.judgements[i] ?? 'confirmed', 0, sampler)}`);
  const conclusion = earliest < 0
    ? 'Every paragraph is correct, so no error was found.'
    : `The earliest error occurs in paragraph ${earliest}.`;
  return `${lines.join('\n\n')}\n\n${conclusion}\n\n\\boxed{${earliest}}`;
}
