/**
 * The meta-critic: re-checks every step with its own perception and reports where the
 * verification it was shown missed an error, raised a false alarm, or gave a verdict that
 * contradicts its own labels.
 */
import type { ChatMessage } from '../../src/core/inference/chat.js';
import { parseVerification, renderCritique } from '../../src/spark/common/formats.js';
import type { SimModelParams } from '../model-server/params.js';
import type { JudgeIdentity } from './judging.js';
import { judgeSolution } from './judging.js';
import { readJudgePrompt } from './promptReader.js';
import type { Sampler } from './sampling.js';
import { analyseStep } from './writing.js';

export function writeCriticResponse(messages: readonly ChatMessage[], params: SimModelParams, sampler: Sampler, identity: JudgeIdentity): string {
  const input = readJudgePrompt(messages);
  const { reading, perception } = judgeSolution(input, params.critic, params.judge, sampler, identity);
  const shown = parseVerification(input.verification);
  const shownLabels = shown.ok ? shown.steps.map((s) => s.correct) : [];
  const missedErrors: number[] = [];
  const falseAlarms: number[] = [];
  let firstWrong = 0;
  const notes = reading.facts.map((fact, i) => {
    const own = perception.labels[i] ?? true;
    const theirs = shownLabels[i];
    if (!own && theirs !== false) missedErrors.push(i + 1);
    if (own && theirs === false) falseAlarms.push(i + 1);
    const analysis = analyseStep(fact, perception.judgements[i] ?? 'confirmed', firstWrong, sampler);
    if (!own && firstWrong === 0) firstWrong = i + 1;
    const verdict = theirs === undefined
      ? 'The verification does not judge this step.'
      : `The verification marks it ${theirs ? 'correct' : 'incorrect'}, which I ${theirs === own ? 'agree with' : 'disagree with'}.`;
    return `${analysis} ${verdict}`;
  });
  const verdictConsistent = shown.ok ? shown.outcome === shown.steps.every((s) => s.correct) : false;
  const countMatches = shown.ok && shown.steps.length === reading.facts.length;
  const needsRevision = missedErrors.length > 0 || falseAlarms.length > 0 || !verdictConsistent || !countMatches;
  const critique = renderCritique({ missedErrors, falseAlarms, verdictConsistent, needsRevision }, notes);
  return shown.ok ? critique : `The verification does not follow the required format (${shown.reason}).\n\n${critique}`;
}
