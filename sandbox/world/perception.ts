/**
 * A judge's noisy perception of a reading: which steps it marks incorrect and its verdict.
 *
 * P(detect a wrong step) = sigmoid(detectBias + detectSlope · log(1 + relError) + d), where d is
 * how conspicuous this particular step is (drawn once per step, so the same slip is hard for
 * every sample). Correct steps draw false alarms; a step after one judged wrong is wrong too
 * (SPARK: steps that depend on a wrong step are incorrect); filler steps are always correct.
 */
import type { BaseRateParams, JudgeParams } from '../model-server/params.js';
import type { Sampler } from './sampling.js';
import { logit, sigmoid } from './sampling.js';
import type { SolutionReading } from './reading.js';

/** How one step was judged, and why. */
export type StepJudgement =
  | 'confirmed' /* right, judged right */
  | 'detected' /* wrong, judged wrong */
  | 'missed' /* wrong, judged right */
  | 'false-alarm' /* right, judged wrong */
  | 'dependent' /* judged wrong because an earlier step was */
  | 'filler' /* restates a value; judged right */
  | 'prose-doubted' /* unchecked prose, judged wrong at the base rate */
  | 'prose-accepted';

/** A perception of a whole solution. */
export interface Perception {
  judgements: StepJudgement[];
  /** true = the step is marked correct. */
  labels: boolean[];
  /** The final verdict (true = Yes). */
  outcome: boolean;
}

/** What, besides its parameters, shapes one judge's perception. */
export interface PerceptionContext {
  /** How conspicuous step i is, in log-odds (positive = easier to judge). */
  conspicuity(stepIndex: number): number;
  /** A reference answer, for the reference-guided verifier. */
  reference?: number | null;
}

export function judgedWrong(j: StepJudgement): boolean {
  return j === 'detected' || j === 'false-alarm' || j === 'dependent' || j === 'prose-doubted';
}

/**
 * Walks the steps in order the way every judge does: filler is always fine, and once a step was
 * judged wrong every later step is wrong as a dependent; `judgeFresh` decides the others.
 */
export function judgeInOrder(
  facts: SolutionReading['facts'],
  judgeFresh: (fact: SolutionReading['facts'][number], index: number) => StepJudgement,
): StepJudgement[] {
  const judgements: StepJudgement[] = [];
  let sawWrong = false;
  for (const [i, fact] of facts.entries()) {
    const j: StepJudgement = fact.kind === 'filler' ? 'filler' : sawWrong ? 'dependent' : judgeFresh(fact, i);
    judgements.push(j);
    sawWrong ||= judgedWrong(j);
  }
  return judgements;
}

/** Judges every step of a reading, then the outcome. */
export function perceive(
  reading: SolutionReading,
  params: JudgeParams,
  baseRates: BaseRateParams,
  sampler: Sampler,
  context: PerceptionContext,
): Perception {
  const reference = context.reference ?? null;
  const answerKnown = reference !== null && reading.finalValue !== null;
  const referenceDisagrees = answerKnown && Math.abs((reading.finalValue as number) - reference) > 0.006;
  // A reference answer that disagrees makes the judge look harder; one that agrees makes it trust the steps.
  const detectShift = referenceDisagrees ? params.referenceBoost : 0;
  const alarmShift = answerKnown && !referenceDisagrees ? -params.referenceBoost : 0;

  const judgements = judgeInOrder(reading.facts, (fact, i) => {
    if (fact.kind === 'prose') return sampler.chance(baseRates.stepIncorrectRate) ? 'prose-doubted' : 'prose-accepted';
    const d = context.conspicuity(i);
    if (fact.error) {
      const x = params.detectBias + detectShift + params.detectSlope * Math.log1p(fact.error.relError) + d;
      return sampler.chance(sigmoid(x)) ? 'detected' : 'missed';
    }
    const x = logit(params.falseAlarm) + alarmShift - d;
    return sampler.chance(sigmoid(x)) ? 'false-alarm' : 'confirmed';
  });
  const labels = judgements.map((j) => !judgedWrong(j));
  const checkable = reading.facts.some((f) => f.kind === 'equation');
  let outcome = checkable ? labels.every(Boolean) : sampler.chance(baseRates.outcomeYesRate);
  if (referenceDisagrees) outcome = false;
  if (sampler.chance(params.outcomeNoise)) outcome = !outcome;
  return { judgements, labels, outcome };
}
