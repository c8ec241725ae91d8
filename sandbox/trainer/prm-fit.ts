/**
 * What SFT means for a sandbox reward model: maximum-likelihood fitting of its judgement
 * parameters to the labels in the training data.
 *
 * A sandbox judge marks a wrong step with probability sigmoid(detectBias + detectSlope · log(1 +
 * relError)), a right one with probability falseAlarm, and flips its verdict with probability
 * outcomeNoise (sandbox/world/perception.ts). The trainer re-reads each example's solution with
 * the world's ground truth, so it knows which steps are really wrong and by how much; the labels
 * it is given say how the judge should have judged them. The negative log-likelihood of those
 * labels is the loss, and its exact gradient drives the optimiser: labels that miss errors pull
 * detection down, labels that flag right steps push false alarms up — noisy labels, worse PRM.
 *
 * The per-step conspicuity the world adds is not observed here, so the fit is of the marginal
 * rates. The optimiser at the end serves any parameter vector (the policy's too, ./policy-fit.ts).
 * Pure: no I/O.
 */
import type { ChatMessage } from '../../src/core/inference/chat.js';
import type { RewardModelStyle } from '../../src/spark/common/formats.js';
import { parseRewardModelOutput, parseVerification } from '../../src/spark/common/formats.js';
import { detectRole } from '../world/roles.js';
import type { Optimizer } from '../../src/core/trainer/protocol.js';
import type { PrmParams } from '../model-server/params.js';
import { readRewardModelPrompt } from '../world/promptReader.js';
import { readSolution } from '../world/reading.js';
import { logit, sigmoid } from '../world/sampling.js';

/** The fitted parameters, in unconstrained form: [detectBias, detectSlope, logit(falseAlarm), logit(outcomeNoise)]. */
export type JudgeVector = [number, number, number, number];
export const JUDGE_VECTOR_NAMES = ['detectBias', 'detectSlope', 'falseAlarmLogit', 'outcomeNoiseLogit'] as const;

/**
 * The sandbox's four parameters stand in for a model's billions, so a LoRA-sized learning rate
 * (1e-5) is scaled to move log-odds by about 0.1 per Adam step. Requests keep the learning rates
 * a real trainer would get.
 */
export const SIM_LEARNING_RATE_SCALE = 1e4;

export function judgeVector(p: Pick<PrmParams, 'detectBias' | 'detectSlope' | 'falseAlarm' | 'outcomeNoise'>): JudgeVector {
  return [p.detectBias, p.detectSlope, logit(p.falseAlarm), logit(p.outcomeNoise)];
}

/** The judge parameters a vector stands for (rounded to what JSON and the schemas carry well). */
export function judgeParamsOf(v: JudgeVector): Pick<PrmParams, 'detectBias' | 'detectSlope' | 'falseAlarm' | 'outcomeNoise'> {
  return { detectBias: v[0], detectSlope: v[1], falseAlarm: sigmoid(v[2]), outcomeNoise: sigmoid(v[3]) };
}

/** One judged step as the likelihood sees it. */
interface ObservedStep {
  /** The step is really wrong; `u` = log(1 + relError). */
  wrong: boolean;
  u: number;
  /** The label marks it incorrect (absent for ORM data, where only the verdict is seen). */
  markedWrong?: boolean;
}

/** What one SFT example tells about the judge. */
export type Observation =
  | { kind: 'steps'; steps: ObservedStep[]; outcome: boolean; consistentOutcome: boolean | null }
  | { kind: 'outcome'; steps: ObservedStep[]; outcome: boolean };

/** An example the trainer could not use, and why (reported in the step's metrics). */
export interface Unusable {
  reason: 'unreadable-prompt' | 'unparseable-completion' | 'step-count-mismatch';
}

/** The output style the completion is written in, or null when it is none of the three. */
export function completionStyle(prompt: readonly ChatMessage[], completion: string): RewardModelStyle | null {
  const role = detectRole(prompt);
  if (role === 'orm') return parseRewardModelOutput('orm', completion).ok ? 'orm' : null;
  if (role !== 'prm') return null;
  if (parseVerification(completion).ok) return 'prm-cot';
  return parseRewardModelOutput('prm', completion).ok ? 'prm' : null;
}

/**
 * Reads one example: the solution's true steps from the prompt, the judgement from the completion.
 * Steps after the first one marked wrong are judged wrong as dependents and say nothing new;
 * filler steps are always right; prose is judged at a base rate the trainer does not fit.
 */
export function observe(prompt: readonly ChatMessage[], completion: string): { style: RewardModelStyle; observation: Observation } | Unusable {
  const style = completionStyle(prompt, completion);
  const { question, solution } = readRewardModelPrompt(prompt);
  if (question === '' || solution.steps.length === 0) return { reason: 'unreadable-prompt' };
  if (style === null) return { reason: 'unparseable-completion' };
  const reading = readSolution(question, solution.steps, solution.answer);
  const parsed = parseRewardModelOutput(style, completion);
  if (!parsed.ok) return { reason: 'unparseable-completion' };
  const judged = (fact: (typeof reading.facts)[number]): ObservedStep => ({ wrong: fact.error !== null, u: Math.log1p(fact.error?.relError ?? 0) });

  if (parsed.steps === null) {
    return { style, observation: { kind: 'outcome', outcome: parsed.outcome, steps: reading.facts.filter((f) => f.kind === 'equation').map(judged) } };
  }
  if (parsed.steps.length !== reading.facts.length) return { reason: 'step-count-mismatch' };
  const steps: ObservedStep[] = [];
  for (const [i, fact] of reading.facts.entries()) {
    const markedWrong = !(parsed.steps[i]?.correct ?? true);
    if (fact.kind === 'equation') steps.push({ ...judged(fact), markedWrong });
    if (markedWrong) break;
  }
  const checkable = reading.facts.some((f) => f.kind === 'equation');
  const consistentOutcome = checkable ? parsed.steps.every((s) => s.correct) : null;
  return { style, observation: { kind: 'steps', steps, outcome: parsed.outcome, consistentOutcome } };
}

/** The log-odds that a step is marked wrong. */
function stepLogOdds(v: JudgeVector, s: ObservedStep): number {
  return s.wrong ? v[0] + v[1] * s.u : v[2];
}

/** Adds d(x)/dθ · g to `grad` for a step's log-odds x. */
function addStepGrad(grad: number[], s: ObservedStep, g: number): void {
  if (s.wrong) {
    grad[0]! += g;
    grad[1]! += g * s.u;
  } else grad[2]! += g;
}

const EPS = 1e-12;

/** The negative log-likelihood of one observation and its gradient. */
export function negLogLikelihood(v: JudgeVector, obs: Observation): { loss: number; grad: JudgeVector } {
  const grad = [0, 0, 0, 0];
  let loss = 0;
  const n = sigmoid(v[3]);
  if (obs.kind === 'steps') {
    for (const s of obs.steps) {
      const p = sigmoid(stepLogOdds(v, s));
      // -log p (marked wrong) or -log(1-p) (marked right); d/dx is p-1 or p.
      loss -= Math.log(Math.max(s.markedWrong ? p : 1 - p, EPS));
      addStepGrad(grad, s, s.markedWrong ? p - 1 : p);
    }
    if (obs.consistentOutcome !== null) {
      const flipped = obs.outcome !== obs.consistentOutcome;
      loss -= Math.log(Math.max(flipped ? n : 1 - n, EPS));
      grad[3]! += flipped ? n - 1 : n;
    }
  } else {
    // P(Yes) = q(1-n) + (1-q)n, where q = Π(1 - p_i) is the chance no step is flagged.
    const ps = obs.steps.map((s) => sigmoid(stepLogOdds(v, s)));
    const q = ps.reduce((acc, p) => acc * (1 - p), 1);
    const pYes = q * (1 - n) + (1 - q) * n;
    const pObs = obs.outcome ? pYes : 1 - pYes;
    loss -= Math.log(Math.max(pObs, EPS));
    const dLossdPYes = (obs.outcome ? -1 : 1) / Math.max(pObs, EPS);
    const dPdq = 1 - 2 * n;
    // dq/dx_i = -q · p_i
    for (const [i, s] of obs.steps.entries()) addStepGrad(grad, s, dLossdPYes * dPdq * -q * ps[i]!);
    grad[3]! += dLossdPYes * (1 - 2 * q) * n * (1 - n);
  }
  return { loss, grad: grad as JudgeVector };
}

/** The mean loss and gradient of a batch. */
export function batchGradient(v: JudgeVector, observations: readonly Observation[]): { loss: number; grad: JudgeVector } {
  const total = [0, 0, 0, 0];
  let loss = 0;
  for (const obs of observations) {
    const r = negLogLikelihood(v, obs);
    loss += r.loss;
    r.grad.forEach((g, i) => (total[i]! += g));
  }
  const k = Math.max(1, observations.length);
  return { loss: loss / k, grad: total.map((g) => g / k) as JudgeVector };
}

/** Adam's moments and how many updates were made, for a parameter vector of any length. */
export interface OptimizerState<V extends number[] = JudgeVector> {
  m: V;
  v: V;
  t: number;
}

export const ZERO_OPTIMIZER_STATE: OptimizerState = { m: [0, 0, 0, 0], v: [0, 0, 0, 0], t: 0 };

/** A fresh optimiser state for a vector of `length` parameters. */
export function zeroOptimizerState<V extends number[]>(length: number): OptimizerState<V> {
  return { m: new Array<number>(length).fill(0) as V, v: new Array<number>(length).fill(0) as V, t: 0 };
}

/** How requested learning rates map onto a parameter vector, and the bounds its schemas allow. */
export interface ParameterSpace {
  learningRateScale: number;
  /** [lowest, highest] per parameter. */
  bounds: readonly (readonly [number, number])[];
}

/** The judge vector: the world's schemas bound log-odds to ±50 and the slope to [0, 100]; rates stay within ±20 log-odds. */
export const JUDGE_SPACE: ParameterSpace = { learningRateScale: SIM_LEARNING_RATE_SCALE, bounds: [[-50, 50], [0, 100], [-20, 20], [-20, 20]] };

/** The scheduled learning rate: linear warm-up over `warmupSteps` updates, then constant. */
export function scheduledLearningRate(opt: Optimizer, updatesDone: number): number {
  return opt.warmupSteps > 0 ? opt.learningRate * Math.min(1, (updatesDone + 1) / opt.warmupSteps) : opt.learningRate;
}

/**
 * One optimiser update of any parameter vector (the judge's by default). Weight decay pulls
 * toward the base model's parameters (`anchor`): the adapter is the difference, as with LoRA.
 * AdamW decays decoupled; adam and sgd add it to the gradient.
 */
export function optimizerStep<V extends number[] = JudgeVector>(
  theta: V,
  anchor: V,
  grad: V,
  state: OptimizerState<V>,
  opt: Optimizer,
  learningRate: number,
  space: ParameterSpace = JUDGE_SPACE,
): { theta: V; state: OptimizerState<V>; gradNorm: number } {
  const gradNorm = Math.hypot(...grad);
  const clip = opt.maxGradNorm !== undefined && gradNorm > opt.maxGradNorm ? opt.maxGradNorm / gradNorm : 1;
  const lr = learningRate * space.learningRateScale;
  const coupledDecay = opt.name === 'adamw' ? 0 : opt.weightDecay;
  const g = grad.map((x, i) => x * clip + coupledDecay * (theta[i]! - anchor[i]!));
  const t = state.t + 1;
  let next: number[];
  let m = state.m;
  let v = state.v;
  if (opt.name === 'sgd') {
    next = theta.map((x, i) => x - lr * g[i]!);
  } else {
    const [b1, b2] = opt.betas;
    m = state.m.map((x, i) => b1 * x + (1 - b1) * g[i]!) as V;
    v = state.v.map((x, i) => b2 * x + (1 - b2) * g[i]! * g[i]!) as V;
    next = theta.map((x, i) => {
      const mHat = m[i]! / (1 - b1 ** t);
      const vHat = v[i]! / (1 - b2 ** t);
      const decoupled = opt.name === 'adamw' ? opt.weightDecay * (x - anchor[i]!) : 0;
      return x - lr * (mHat / (Math.sqrt(vHat) + 1e-8) + decoupled);
    });
  }
  const bounded = next.map((x, i) => {
    const [lo, hi] = space.bounds[i] ?? [-Infinity, Infinity];
    return Math.min(hi, Math.max(lo, x));
  }) as V;
  return { theta: bounded, state: { m, v, t }, gradNorm };
}
