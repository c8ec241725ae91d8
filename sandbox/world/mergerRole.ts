/**
 * The merger: rewrites a verification applying its critique, in the exact verifier format.
 * Each finding of the critique is applied with probability `merger.applyRate` (always when
 * greedy); the dependency rule and the verdict are then made consistent.
 */
import type { ChatMessage } from '../../src/core/inference/chat.js';
import { parseCritique, parseVerification } from '../../src/spark/common/formats.js';
import type { SimModelParams } from '../model-server/params.js';
import type { JudgeIdentity } from './judging.js';
import { judgeSolution } from './judging.js';
import type { StepJudgement } from './perception.js';
import { judgeInOrder, judgedWrong } from './perception.js';
import { readJudgePrompt } from './promptReader.js';
import { readSolution } from './reading.js';
import type { Sampler } from './sampling.js';
import { writeVerification } from './writing.js';

export function writeMergerResponse(messages: readonly ChatMessage[], params: SimModelParams, sampler: Sampler, identity: JudgeIdentity): string {
  const input = readJudgePrompt(messages);
  const shown = parseVerification(input.verification);
  if (!shown.ok) {
    // Nothing to revise: write a fresh verification instead.
    const { reading, perception } = judgeSolution(input, params.verifier, params.judge, sampler, identity);
    return writeVerification(reading.facts, perception.judgements, perception.labels, perception.outcome, sampler);
  }
  const reading = readSolution(input.question, input.solution.steps, input.solution.answer);
  const labels = reading.facts.map((_, i) => shown.steps[i]?.correct ?? true);
  const critique = parseCritique(input.critique);
  if (critique.ok) {
    for (const k of critique.missedErrors) if (k >= 1 && k <= labels.length && sampler.chance(params.merger.applyRate)) labels[k - 1] = false;
    for (const k of critique.falseAlarms) if (k >= 1 && k <= labels.length && sampler.chance(params.merger.applyRate)) labels[k - 1] = true;
  }
  const judgements = judgeInOrder(reading.facts, (fact, i): StepJudgement => {
    if (fact.kind === 'prose') return labels[i] ? 'prose-accepted' : 'prose-doubted';
    if (labels[i]) return fact.error ? 'missed' : 'confirmed';
    return fact.error ? 'detected' : 'false-alarm';
  });
  const finalLabels = judgements.map((j) => !judgedWrong(j));
  return writeVerification(reading.facts, judgements, finalLabels, finalLabels.every(Boolean), sampler);
}
