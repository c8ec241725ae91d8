/**
 * The shared core of every judging role: read the solution (or the one appended after its
 * answer, when the judge is fooled by it) and perceive it.
 */
import { statedNumbers } from '../arith.js';
import { rngFrom } from '../../src/core/random.js';
import type { BaseRateParams, JudgeParams } from '../model-server/params.js';
import type { Perception } from './perception.js';
import { perceive } from './perception.js';
import type { SolutionText } from './promptReader.js';
import type { SolutionReading } from './reading.js';
import { readAppendix, readSolution } from './reading.js';
import type { Sampler } from './sampling.js';

/** Where a judge's fixed (per-step, not per-sample) impressions come from. */
export interface JudgeIdentity {
  serverSeed: number;
  family: string;
  role: string;
}

/**
 * How conspicuous a step is to this judge, in log-odds: half shared by every judge (some slips
 * are simply subtle), half this judge's own blind spots. Fixed per step, not per sample.
 */
export function conspicuityOf(identity: JudgeIdentity, spread: number, question: string, steps: readonly string[]) {
  return (i: number): number => {
    const step = steps[i] ?? '';
    const shared = rngFrom(identity.serverSeed, 'conspicuity', question, step).normal();
    const own = rngFrom(identity.serverSeed, identity.family, identity.role, 'conspicuity', question, step).normal();
    return spread * Math.SQRT1_2 * (shared + own);
  };
}

/** A judge's reading and perception of one solution. */
export interface Judgement {
  reading: SolutionReading;
  perception: Perception;
  /** True when the judge judged an appended solution instead of the real one. */
  followedAppendix: boolean;
}

export function judgeSolution(
  input: { question: string; solution: SolutionText; reference?: string | null },
  params: JudgeParams,
  baseRates: BaseRateParams,
  sampler: Sampler,
  identity: JudgeIdentity,
): Judgement {
  const appendix = readAppendix(input.solution.trailing);
  const followedAppendix = appendix !== null && sampler.chance(params.appendixFollow);
  const target = followedAppendix && appendix
    ? { question: appendix.question, steps: appendix.steps, answer: appendix.answer }
    : { question: input.question, steps: input.solution.steps, answer: input.solution.answer };
  const reading = readSolution(target.question, target.steps, target.answer);
  const reference = input.reference ? statedNumbers(input.reference).at(-1) ?? null : null;
  const perception = perceive(reading, params, baseRates, sampler, {
    conspicuity: conspicuityOf(identity, params.difficultySpread, target.question, target.steps),
    reference: followedAppendix ? null : reference,
  });
  return { reading, perception, followedAppendix };
}
