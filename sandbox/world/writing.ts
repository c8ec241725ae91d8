/**
 * How judges put their judgement into words: the analysis paragraph of each step and the
 * whole verification in the exact SPARK verifier format.
 */
import { renderVerification } from '../../src/spark/common/formats.js';
import type { VerificationStep } from '../../src/spark/common/formats.js';
import { formatValue } from '../arith.js';
import type { StepJudgement } from './perception.js';
import type { StepFact } from './reading.js';
import type { Sampler } from './sampling.js';

/** A recomputation that is itself wrong, as a judge raising a false alarm would write it. */
function misremembered(fact: StepFact, sampler: Sampler): string {
  const shown = fact.recomputed[0] ?? fact.shown[0] ?? '';
  const m = /=\s*(-?\d+(?:\.\d+)?)\s*$/.exec(shown);
  if (!m?.[1]) return shown;
  const wrong = Number(m[1]) + sampler.pick([-3, -2, -1, 1, 2, 3]);
  return `${shown.slice(0, m.index)}= ${formatValue(wrong)}`;
}

/** The analysis paragraph of one step; `wrongBefore` is the 1-based step that made it dependent. */
export function analyseStep(fact: StepFact, judgement: StepJudgement, wrongBefore: number, sampler: Sampler): string {
  const shown = fact.shown.join(' and ');
  switch (judgement) {
    case 'confirmed':
      return `The step computes ${shown}. Recomputing: ${fact.recomputed.join(' and ')}, which matches the stated result.`;
    case 'detected':
      return `The step states ${shown}. Recomputing: ${fact.error?.finding ?? 'the result differs'}. The stated result is wrong.`;
    case 'missed':
      return `The step states ${shown}. Recomputing gives the same result, so the calculation holds.`;
    case 'false-alarm':
      return `The step states ${shown}. Recomputing: ${misremembered(fact, sampler)}, which does not match the stated result.`;
    case 'dependent':
      return `This step builds on the result of Step ${wrongBefore}, which was wrong, so its result is wrong as well.`;
    case 'filler':
      return `This step only restates the current value${fact.value !== null ? ` ${formatValue(fact.value)}` : ''}; nothing new is computed.`;
    case 'prose-doubted':
      return 'The reasoning here cannot be confirmed by a calculation and looks doubtful.';
    case 'prose-accepted':
      return 'The reasoning here is plausible and consistent with the problem.';
  }
}

/** Writes a full verification in the SPARK format from per-step judgements. */
export function writeVerification(
  facts: readonly StepFact[],
  judgements: readonly StepJudgement[],
  labels: readonly boolean[],
  outcome: boolean,
  sampler: Sampler,
): string {
  let firstWrong = 0;
  const steps: VerificationStep[] = facts.map((fact, i) => {
    const judgement = judgements[i] ?? 'confirmed';
    const correct = labels[i] ?? true;
    const analysis = analyseStep(fact, judgement, firstWrong, sampler);
    if (!correct && firstWrong === 0) firstWrong = i + 1;
    return { title: fact.title, analysis, correct };
  });
  return renderVerification({ steps, outcome });
}
