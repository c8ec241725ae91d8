/**
 * The merger: rewrites a verification applying its critique, in the exact verifier format.
 * Each finding of the critique is applied with probability `merger.applyRate` (always when
 * greedy); the dependency rule and the verdict are then made consistent.
 */
import type { ChatMessage } from '../../domain/chat.js';
import { parseCritique, parseVerification } from '../../domain/formats.js';
import type { SimModelParams } from '../params.js';
import type { JudgeIdentity } from './judging.js';
import { judgeSolution } from './judging.js';
import type { StepJudgement } from './perception.js';
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
  const judgements: StepJudgement[] = [];
  let sawWrong = false;
  for (const [i, fact] of reading.facts.entries()) {
    let j: StepJudgement;
    if (fact.kind === 'filler') j = 'filler';
    else if (sawWrong) j = 'dependent';
    else if (fact.kind === 'prose') j = labels[i] ? 'prose-accepted' : 'prose-doubted';
    else if (labels[i]) j = fact.error ? 'missed' : 'confirmed';
    else j = fact.error ? 'detected' : 'false-alarm';
    judgements.push(j);
    sawWrong ||= j === 'detected' || j === 'false-alarm' || j === 'prose-doubted';
    labels[i] = !(j === 'detected' || j === 'false-alarm' || j === 'prose-doubted' || j === 'dependent');
  }
  return writeVerification(reading.facts, judgements, labels, labels.every(Boolean), sampler);
}
