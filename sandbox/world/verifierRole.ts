/** The step-by-step verifier (plain or reference-guided) and the generative reward models. */
import { renderOrmAnswer, renderPrmLabels } from '../../src/spark/common/formats.js';
import type { ChatMessage } from '../../src/core/inference/chat.js';
import type { SimModelParams } from '../model-server/params.js';
import type { JudgeIdentity } from './judging.js';
import { judgeSolution } from './judging.js';
import { readJudgePrompt, readRewardModelPrompt } from './promptReader.js';
import type { Sampler } from './sampling.js';
import { writeVerification } from './writing.js';

export function writeVerifierResponse(messages: readonly ChatMessage[], params: SimModelParams, sampler: Sampler, identity: JudgeIdentity): string {
  const input = readJudgePrompt(messages);
  const { reading, perception } = judgeSolution(input, params.verifier, params.judge, sampler, identity);
  const text = writeVerification(reading.facts, perception.judgements, perception.labels, perception.outcome, sampler);
  // Drawn last so every earlier decision stays as it was; greedy decoding never breaks format.
  return sampler.chance(params.verifier.formatViolation) ? withoutVerdict(text) : text;
}

/** A verification that rambles instead of concluding: its verdict line is gone, so it cannot be parsed. */
function withoutVerdict(text: string): string {
  const cut = text.lastIndexOf('**Verification:');
  return `${cut >= 0 ? text.slice(0, cut) : text}I would need to re-check the whole solution before giving a verdict.`;
}

/**
 * The ORM prompt is answered Yes/No; the shared PRM prompt is answered in the model's
 * `prm.style`: `prm` gives label lines, anything else the full PRM-CoT rationale.
 */
export function writeRewardModelResponse(
  role: 'orm' | 'prm',
  messages: readonly ChatMessage[],
  params: SimModelParams,
  sampler: Sampler,
  identity: JudgeIdentity,
): string {
  const input = readRewardModelPrompt(messages);
  const { reading, perception } = judgeSolution(input, params.prm, params.judge, sampler, identity);
  if (role === 'orm') return renderOrmAnswer(perception.outcome);
  if (params.prm.style === 'prm') return renderPrmLabels(perception.labels, perception.outcome);
  return writeVerification(reading.facts, perception.judgements, perception.labels, perception.outcome, sampler);
}
