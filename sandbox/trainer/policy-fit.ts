/**
 * What GRPO means for the sandbox policy: a policy gradient on the logits of its decisions.
 *
 * The sandbox policy (sandbox/world/policy.ts) writes a response by a sequence of Bernoulli
 * decisions, each on one logit parameter: per operation an error, per operation after the first
 * a merge into the previous step, per step a geometric run of filler steps, per response a format
 * violation and, if the format is kept, an appended solution. Everything else it writes (phrasing,
 * the size of a slip) is not trained. Those decisions can be read back from the text exactly,
 * with the world's arithmetic, so the log-probability of a response under any parameters is known
 * and its gradient is exact.
 *
 * The same model also judges answers (co-evolving SPARK, sandbox/world/selfJudge.ts): a judging
 * completion holds one decision whose log-odds are linear in the self-judge parameters, and a
 * reflection that rejects, like a re-solve, goes on with a policy response whose error decisions
 * have log-odds errorLogit + resolveShift. So in general a decision's logit is linear in the
 * combined vector [policy ; selfJudge], and the gradient follows by the chain rule.
 *
 * Each decision sits at a character of the completion (where the text reveals it), so it takes the
 * advantage of the span holding that character, as a token would. The loss per response is
 * −Σ A·log π(decision) + β·KL(π‖π_ref) − c·H(π) over its decisions, averaged over the batch.
 * The update is on-policy and single: the PPO ratio is 1 and its clip never binds. Pure: no I/O.
 */
import type { ArithChain } from '../arith.js';
import { applyOp, parseArithQuestion, parseEquations, sameValue, statedNumbers } from '../arith.js';
import type { ChatMessage } from '../../src/core/inference/chat.js';
import { readVerdict } from '../../src/spark/co-evolve/prompts.js';
import { parsePolicyResponse } from '../../src/spark/common/formats.js';
import { detectRole } from '../world/roles.js';
import type { GrpoExample, Optimizer } from '../../src/core/trainer/protocol.js';
import type { PolicyParams, SelfJudgeParams } from '../model-server/params.js';
import { SIM_POLICY_PARAMS } from '../model-server/params.js';
import { MAX_FILLERS_PER_STEP } from '../world/policy.js';
import { readGeneratorQuestion } from '../world/promptReader.js';
import { sigmoid } from '../world/sampling.js';
import type { JudgingLogit, JudgingRole, JudgingVerdict, SelfJudgeFixedParams, SelfJudgeRole, SelfJudgeTrainedParameter } from '../world/selfJudge.js';
import {
  judgingDecisionOf, readSelfJudgePrompt, REFLECTION_ACCEPT, REFLECTION_REJECT, SELF_JUDGE_TRAINED_NAMES,
} from '../world/selfJudge.js';
import type { OptimizerState, ParameterSpace } from './prm-fit.js';
import { optimizerStep, scheduledLearningRate } from './prm-fit.js';

/** The trained policy logits, in this order. */
export const POLICY_VECTOR_NAMES = [
  'addErrorLogit', 'subtractErrorLogit', 'multiplyErrorLogit', 'divideErrorLogit',
  'mergeStepsLogit', 'splitStepsLogit', 'appendAfterAnswerLogit', 'formatViolationLogit',
] as const;
export type PolicyVector = [number, number, number, number, number, number, number, number];
export type PolicyParameter = (typeof POLICY_VECTOR_NAMES)[number];

const INDEX = Object.fromEntries(POLICY_VECTOR_NAMES.map((name, i) => [name, i])) as Record<PolicyParameter, number>;
const ERROR_PARAMETER = { add: 'addErrorLogit', subtract: 'subtractErrorLogit', multiply: 'multiplyErrorLogit', divide: 'divideErrorLogit' } as const;

/**
 * GRPO learning rates (SPARK: 1e-6) are scaled so that RL moves the sandbox policy about as far as
 * a few hundred steps move a real one: 200 on-policy AdamW steps at 1e-6 of 16 prompts × 8
 * rollouts, rewarded for correct answers (group z-scores, KL 0.001), lower every error logit by
 * about 1.5 log-odds (solve rate 0.59 → 0.86). Adam steps by about lr × scale when a gradient's
 * sign is steady and less when it is noisy, as policy gradients are.
 */
export const GRPO_LEARNING_RATE_SCALE = 1e4;

/** The policy vector's optimiser space: every logit within the schema's ±50. */
export const POLICY_SPACE: ParameterSpace = {
  learningRateScale: GRPO_LEARNING_RATE_SCALE,
  bounds: POLICY_VECTOR_NAMES.map(() => [-50, 50] as const),
};

export function policyVector(p: Pick<PolicyParams, 'errorLogits' | 'mergeStepsLogit' | 'splitStepsLogit' | 'appendAfterAnswerLogit' | 'formatViolationLogit'>): PolicyVector {
  const e = p.errorLogits;
  return [e.add, e.subtract, e.multiply, e.divide, p.mergeStepsLogit, p.splitStepsLogit, p.appendAfterAnswerLogit, p.formatViolationLogit];
}

/** The policy parameters a vector stands for: the `policy` overrides of an adapter. */
export function policyOverridesOf(v: PolicyVector): Pick<PolicyParams, 'errorLogits' | 'mergeStepsLogit' | 'splitStepsLogit' | 'appendAfterAnswerLogit' | 'formatViolationLogit'> {
  return {
    errorLogits: { add: v[0], subtract: v[1], multiply: v[2], divide: v[3] },
    mergeStepsLogit: v[4],
    splitStepsLogit: v[5],
    appendAfterAnswerLogit: v[6],
    formatViolationLogit: v[7],
  };
}

/** The trained self-judge parameters, in SELF_JUDGE_TRAINED_NAMES order. */
export type SelfJudgeVector = [number, number, number, number, number, number, number];
export const SELF_JUDGE_VECTOR_NAMES = SELF_JUDGE_TRAINED_NAMES;

/** The self-judge's optimiser space: the policy's learning-rate scale, every parameter within the schema's ±50. */
export const SELF_JUDGE_SPACE: ParameterSpace = {
  learningRateScale: GRPO_LEARNING_RATE_SCALE,
  bounds: SELF_JUDGE_VECTOR_NAMES.map(() => [-50, 50] as const),
};

export function selfJudgeVector(p: Pick<SelfJudgeParams, SelfJudgeTrainedParameter>): SelfJudgeVector {
  return SELF_JUDGE_VECTOR_NAMES.map((name) => p[name]) as SelfJudgeVector;
}

/** The self-judge parameters a vector stands for: the `selfJudge` overrides of an adapter. */
export function selfJudgeOverridesOf(v: SelfJudgeVector): Pick<SelfJudgeParams, SelfJudgeTrainedParameter> {
  return Object.fromEntries(SELF_JUDGE_VECTOR_NAMES.map((name, i) => [name, v[i]!])) as Pick<SelfJudgeParams, SelfJudgeTrainedParameter>;
}

/** Where the self-judge parameters start in the combined vector [policy ; selfJudge] the GRPO loss works on. */
export const SELF_JUDGE_OFFSET = POLICY_VECTOR_NAMES.length;

/** The combined vector [policy ; selfJudge]. */
export function combinedVector(policy: PolicyVector, selfJudge: SelfJudgeVector): number[] {
  return [...policy, ...selfJudge];
}

const SELF_JUDGE_INDEX = Object.fromEntries(SELF_JUDGE_VECTOR_NAMES.map((name, i) => [name, SELF_JUDGE_OFFSET + i])) as Record<SelfJudgeTrainedParameter, number>;

/** One decision the policy made: which logit, what came out, and the completion character that shows it. */
export interface Decision {
  parameter: PolicyParameter;
  outcome: boolean;
  at: number;
}

/** A response the trainer could not read back (counted as skipped). */
export interface UnreadableResponse {
  reason: 'unreadable-prompt' | 'unreadable-completion';
  detail: string;
}

/** A `<step>` block of the completion and where its parts are. */
interface StepSpan {
  text: string;
  /** First character of the step's content. */
  start: number;
  /** Where `</step>` begins: the model closes the step here. */
  close: number;
}

const STEP_RE = /<step>([\s\S]*?)<\/step>/gi;
const RESULT_RE = /=\s*(-?\d+(?:\.\d+)?)/g;

/** The step blocks before the answer, located as parsePolicyResponse reads them. */
function stepSpans(completion: string): StepSpan[] {
  const close = /<\/answer>/i.exec(completion);
  const main = close ? completion.slice(0, close.index + close[0].length) : completion;
  const open = main.search(/<answer>/i);
  const region = open >= 0 ? main.slice(0, open) : main;
  return [...region.matchAll(STEP_RE)].map((m) => {
    const inner = m[1] ?? '';
    const start = m.index + m[0].indexOf('>') + 1;
    return { text: inner, start, close: start + inner.length };
  });
}

/** Where each `= result` of a step states its number; the step's start when the text does not line up. */
function resultOffsets(step: StepSpan, count: number): number[] {
  const found = [...step.text.matchAll(RESULT_RE)].map((m) => step.start + m.index + m[0].length - (m[1] ?? '').length);
  return found.length === count ? found : new Array<number>(count).fill(step.start);
}

/**
 * Every decision the policy made in `completion`, answering the generator prompt `prompt`.
 * The policy computes each step from its own previous stated value, so a step's error decision
 * is whether its stated result differs from that computation.
 */
export function readDecisions(prompt: readonly ChatMessage[], completion: string): { decisions: Decision[] } | UnreadableResponse {
  const chain: ArithChain | null = parseArithQuestion(readGeneratorQuestion(prompt));
  if (!chain) return { reason: 'unreadable-prompt', detail: 'the prompt states no arithmetic chain' };
  return readPolicyDecisions(chain, completion);
}

/** The decisions of a policy response solving `chain` (a whole completion, or the solution part of one); `at` counts from its start. */
export function readPolicyDecisions(chain: ArithChain, completion: string): { decisions: Decision[] } | UnreadableResponse {
  const parsed = parsePolicyResponse(completion);
  const spans = stepSpans(completion);
  if (spans.length === 0 || spans.length !== parsed.steps.length || spans.some((s, i) => s.text.trim() !== parsed.steps[i])) {
    return { reason: 'unreadable-completion', detail: 'the steps are not <step> blocks the policy writes' };
  }
  const unreadable = (detail: string): UnreadableResponse => ({ reason: 'unreadable-completion', detail });
  const decisions: Decision[] = [];
  let value = chain.start;
  let done = 0;
  /** Filler steps after the current step group, where the group's own step closes, and where its last step (or filler) closes. */
  let fillers = 0;
  let equationClose: number | null = null;
  let groupClose: number | null = null;
  const endGroup = () => {
    // k fillers are k split decisions that came out true, then one that came out false (none after the last possible).
    if (groupClose !== null && fillers < MAX_FILLERS_PER_STEP) decisions.push({ parameter: 'splitStepsLogit', outcome: false, at: groupClose });
  };
  for (const span of spans) {
    const equations = parseEquations(span.text);
    if (equations.length === 0) {
      if (statedNumbers(span.text).length === 0) return unreadable(`a step states no number: "${span.text.trim()}"`);
      if (groupClose === null) return unreadable('a filler step before any operation');
      if (fillers === MAX_FILLERS_PER_STEP) return unreadable(`more than ${MAX_FILLERS_PER_STEP} filler steps in a row`);
      decisions.push({ parameter: 'splitStepsLogit', outcome: true, at: span.start });
      fillers++;
      groupClose = span.close;
      continue;
    }
    endGroup();
    const results = resultOffsets(span, equations.length);
    for (const [k, eq] of equations.entries()) {
      const op = chain.ops[done];
      if (!op) return unreadable('more operations than the question has');
      if (eq.kind !== op.kind || !sameValue(eq.a, value) || !sameValue(eq.b, op.operand)) {
        return unreadable(`step does not perform operation ${done + 1} on the value so far: "${span.text.trim()}"`);
      }
      // Merging is revealed inside the previous step (", then …") or by closing it.
      if (done > 0) decisions.push({ parameter: 'mergeStepsLogit', outcome: k > 0, at: k > 0 ? results[k]! : equationClose! });
      decisions.push({ parameter: ERROR_PARAMETER[op.kind], outcome: !sameValue(eq.c, applyOp(value, op.kind, op.operand)), at: results[k]! });
      value = eq.c;
      done++;
    }
    fillers = 0;
    equationClose = span.close;
    groupClose = span.close;
  }
  endGroup();
  if (done !== chain.ops.length) return unreadable(`${done} of the question's ${chain.ops.length} operations are worked`);

  // The answer part starts after the last step: the format and the appendix are decided there.
  const afterSteps = spans.at(-1)!.close + '</step>'.length;
  const formatKept = parsed.answerBlock !== null && parsed.boxed.length === 1;
  decisions.push({ parameter: 'formatViolationLogit', outcome: !formatKept, at: afterSteps });
  if (formatKept) {
    const appended = parseArithQuestion(parsed.trailing) !== null;
    if (!appended && parsed.trailing.trim() !== '') return unreadable('text after </answer> that is not another solved problem');
    decisions.push({ parameter: 'appendAfterAnswerLogit', outcome: appended, at: completion.length - parsed.trailing.length });
  }
  return { decisions };
}

/** The advantage at character `at`: the step span holding it, else the response's advantage. */
export function advantageAt(example: Pick<GrpoExample, 'advantage' | 'stepAdvantages'>, at: number): number {
  return example.stepAdvantages?.find((s) => at < s.end)?.advantage ?? example.advantage;
}

/** A decision's log-odds as a linear function of the combined vector: offset + Σ coef·θ[index]. */
export interface LinearLogit {
  offset: number;
  terms: readonly { index: number; coef: number }[];
}

/** One decision as the loss sees it: on one logit of the vector (`index`), or on a linear logit. */
export type ObservedDecision = { outcome: boolean; advantage: number } & ({ index: number } | LinearLogit);

/** One response as the GRPO loss sees it: each decision with its logit and advantage. */
export interface PolicyObservation {
  decisions: ObservedDecision[];
  /** The response's own advantage (for the batch's mean). */
  advantage: number;
}

/** The fixed self-judge traits of sim-policy, for callers that read only generator responses. */
const DEFAULT_SELF_JUDGE_FIXED: SelfJudgeFixedParams = SIM_POLICY_PARAMS.selfJudge;

/**
 * Reads one GRPO example into what the loss needs, by the role its prompt asks for: a generator
 * response, or a co-evolution completion (judging, reflection, re-solve). `selfJudgeFixed` are the
 * base model's fixed self-judge traits, which set the judging decisions' offsets.
 */
export function observePolicy(example: GrpoExample, selfJudgeFixed: SelfJudgeFixedParams = DEFAULT_SELF_JUDGE_FIXED): { observation: PolicyObservation } | UnreadableResponse {
  const role = detectRole(example.prompt);
  if (role === 'pointwise-judge' || role === 'pairwise-judge' || role === 'reflection' || role === 'resolve') {
    const read = readSelfJudgeDecisions(role, example.prompt, example.completion, selfJudgeFixed);
    if ('reason' in read) return read;
    return {
      observation: {
        advantage: example.advantage,
        decisions: read.decisions.map(({ at, ...d }) => ({ ...d, advantage: advantageAt(example, at) })),
      },
    };
  }
  const read = readDecisions(example.prompt, example.completion);
  if ('reason' in read) return read;
  return {
    observation: {
      advantage: example.advantage,
      decisions: read.decisions.map((d) => ({ index: INDEX[d.parameter], outcome: d.outcome, advantage: advantageAt(example, d.at) })),
    },
  };
}

/** A decision of a co-evolution completion: its linear logit in the combined vector, its outcome, and where the text shows it. */
export type SelfJudgeDecision = LinearLogit & { outcome: boolean; at: number };

/** A judging logit in the combined vector's indices, terms in vector order. */
function linearJudgingLogit(logit: JudgingLogit): LinearLogit {
  const terms = SELF_JUDGE_VECTOR_NAMES
    .filter((name) => logit.terms[name] !== undefined)
    .map((name) => ({ index: SELF_JUDGE_INDEX[name], coef: logit.terms[name]! }));
  return { offset: logit.offset, terms };
}

/** The verdict a judging completion states, where it shows it, and where a corrected solution starts (reflection). */
function readJudgingVerdict(role: JudgingRole, completion: string): { verdict: JudgingVerdict; at: number; solutionFrom: number | null } | null {
  if (role === 'reflection') {
    if (completion.startsWith(REFLECTION_REJECT)) return { verdict: 'reject', at: 0, solutionFrom: REFLECTION_REJECT.length };
    const echoed = /^<answer>\\boxed\{[^\n]*\}<\/answer>$/.test(completion.slice(REFLECTION_ACCEPT.length));
    return completion.startsWith(REFLECTION_ACCEPT) && echoed ? { verdict: 'accept', at: 0, solutionFrom: null } : null;
  }
  const verdict = role === 'pointwise-judge' ? readVerdict('pointwise', completion) : readVerdict('pairwise', completion);
  return verdict ? { verdict, at: Math.max(0, completion.lastIndexOf('\\boxed{')), solutionFrom: null } : null;
}

/**
 * Every decision of a co-evolution completion: the judging decision (none for a re-solve), then
 * the policy decisions of a re-solve or a reflection's corrected solution, whose error decisions
 * have log-odds errorLogit + resolveShift.
 */
export function readSelfJudgeDecisions(
  role: SelfJudgeRole,
  prompt: readonly ChatMessage[],
  completion: string,
  selfJudgeFixed: SelfJudgeFixedParams,
): { decisions: SelfJudgeDecision[] } | UnreadableResponse {
  const read = readSelfJudgePrompt(role, prompt);
  const chain = parseArithQuestion(read.question);
  if (!chain) return { reason: 'unreadable-prompt', detail: 'the prompt states no arithmetic chain' };
  const decisions: SelfJudgeDecision[] = [];
  let solutionFrom: number | null = 0;
  if (role !== 'resolve') {
    const decision = judgingDecisionOf(role, read, selfJudgeFixed);
    const verdict = readJudgingVerdict(role, completion);
    if (!decision) return { reason: 'unreadable-prompt', detail: 'the prompt states no arithmetic chain' };
    if (!verdict) return { reason: 'unreadable-completion', detail: `no ${role} verdict in the format the sandbox model writes` };
    decisions.push({ ...linearJudgingLogit(decision.logit), outcome: verdict.verdict === decision.whenTrue, at: verdict.at });
    solutionFrom = verdict.solutionFrom;
  }
  if (solutionFrom === null) return { decisions };
  const solution = readPolicyDecisions(chain, completion.slice(solutionFrom));
  if ('reason' in solution) return solution;
  for (const d of solution.decisions) {
    const terms = [{ index: INDEX[d.parameter], coef: 1 }];
    // Re-solving after a No is as careful as resolveShift makes it, on every operation.
    if (d.parameter.endsWith('ErrorLogit')) terms.push({ index: SELF_JUDGE_INDEX.resolveShift, coef: 1 });
    decisions.push({ offset: 0, terms, outcome: d.outcome, at: solutionFrom + d.at });
  }
  return { decisions };
}

/** The GRPO loss settings the sandbox uses (clipRatio has no effect on-policy). */
export interface GrpoSettings {
  klCoefficient: number;
  entropyCoefficient: number;
  klEstimator: 'low-var-kl' | 'k1' | 'k2';
}

/** What one GRPO forward-backward gives. */
export interface GrpoResult<V extends number[] = PolicyVector> {
  loss: number;
  grad: V;
  /** The named estimator's KL to the reference, averaged over decisions. */
  kl: number;
  /** The policy's entropy per decision, averaged over decisions. */
  entropy: number;
  decisions: number;
  meanAdvantage: number;
}

/** log σ(x), without overflow. */
function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

/** The per-sample KL estimators, from log π(o) − log π_ref(o); low-var-kl is k3, clamped as verl does. */
function estimateKl(estimator: GrpoSettings['klEstimator'], logRatio: number): number {
  if (estimator === 'k1') return logRatio;
  if (estimator === 'k2') return 0.5 * logRatio * logRatio;
  return Math.min(10, Math.max(-10, Math.exp(-logRatio) - 1 + logRatio));
}

/** A decision's log-odds under `theta`. */
function decisionLogit(theta: readonly number[], d: ObservedDecision): number {
  if ('index' in d) return theta[d.index]!;
  let z = d.offset;
  for (const t of d.terms) z += t.coef * theta[t.index]!;
  return z;
}

/**
 * The GRPO loss of a batch and its exact gradient in the vector `theta` (the policy logits, or the
 * combined [policy ; selfJudge]). Per decision with logit z, outcome o and advantage A: −A·log π(o)
 * (dz: −A·(o − σ(z))), plus β times the exact Bernoulli KL to the reference logit z_ref (the same
 * decision under `reference`; dz: σ(z)(1 − σ(z))(z − z_ref), whichever estimator is reported),
 * minus c times the entropy (dz: c·σ(z)(1 − σ(z))·z); a linear logit passes dz on to each of its
 * parameters times its coefficient.
 */
export function grpoLoss<V extends number[] = PolicyVector>(theta: V, reference: V, observations: readonly PolicyObservation[], settings: GrpoSettings): GrpoResult<V> {
  const grad = theta.map(() => 0);
  let loss = 0;
  let klSum = 0;
  let entropySum = 0;
  let decisions = 0;
  let advantageSum = 0;
  for (const obs of observations) {
    advantageSum += obs.advantage;
    for (const d of obs.decisions) {
      const x = decisionLogit(theta, d);
      const ref = decisionLogit(reference, d);
      const p = sigmoid(x);
      const logP = d.outcome ? logSigmoid(x) : logSigmoid(-x);
      const logRef = d.outcome ? logSigmoid(ref) : logSigmoid(-ref);
      const exactKl = p * (logSigmoid(x) - logSigmoid(ref)) + (1 - p) * (logSigmoid(-x) - logSigmoid(-ref));
      const entropy = -(p * logSigmoid(x) + (1 - p) * logSigmoid(-x));
      const spread = p * (1 - p);
      loss += -d.advantage * logP + settings.klCoefficient * exactKl - settings.entropyCoefficient * entropy;
      const dz = -d.advantage * ((d.outcome ? 1 : 0) - p) + settings.klCoefficient * spread * (x - ref) + settings.entropyCoefficient * spread * x;
      if ('index' in d) grad[d.index]! += dz;
      else for (const t of d.terms) grad[t.index]! += t.coef * dz;
      klSum += estimateKl(settings.klEstimator, logP - logRef);
      entropySum += entropy;
      decisions++;
    }
  }
  const n = Math.max(1, observations.length);
  const perDecision = Math.max(1, decisions);
  return {
    loss: loss / n,
    grad: grad.map((g) => g / n) as V,
    kl: klSum / perDecision,
    entropy: entropySum / perDecision,
    decisions,
    meanAdvantage: advantageSum / n,
  };
}

/** What GRPO trains: the policy and the self-judge, each with its own optimiser state. */
export interface GrpoParameters {
  policy: PolicyVector;
  policyOptimizer: OptimizerState<PolicyVector>;
  selfJudge: SelfJudgeVector;
  selfJudgeOptimizer: OptimizerState<SelfJudgeVector>;
}

/** One GRPO update and what it reports. */
export interface GrpoUpdate {
  next: GrpoParameters;
  result: GrpoResult<number[]>;
  /** The policy's learning rate when it stepped, else the self-judge's. */
  learningRate: number;
  /** The gradient norm of what stepped (both groups together when both did). */
  gradNorm: number;
  /** Decisions on self-judge parameters and their gradient norm; null when the self-judge did not step. */
  selfJudge: { decisions: number; gradNorm: number } | null;
}

/**
 * One GRPO update of the policy and the self-judge on a batch's observations, each anchored at the
 * base model (KL reference and weight decay). A group steps only when some decision touches it:
 * Adam's momentum would move it on a zero gradient, so plain RLVR batches leave the self-judge
 * (and its optimiser state) exactly as it was, and a batch of judging items leaves the policy.
 */
export function grpoUpdate(
  current: GrpoParameters,
  anchors: { policy: PolicyVector; selfJudge: SelfJudgeVector },
  observations: readonly PolicyObservation[],
  settings: GrpoSettings,
  optimizer: Optimizer,
  learningRate?: number,
): GrpoUpdate {
  const result = grpoLoss(combinedVector(current.policy, current.selfJudge), combinedVector(anchors.policy, anchors.selfJudge), observations, settings);
  const indices = (d: ObservedDecision) => ('index' in d ? [d.index] : d.terms.map((t) => t.index));
  const all = observations.flatMap((o) => o.decisions);
  const touchesPolicy = all.some((d) => indices(d).some((i) => i < SELF_JUDGE_OFFSET));
  const judgeDecisions = all.filter((d) => indices(d).some((i) => i >= SELF_JUDGE_OFFSET)).length;
  const next: GrpoParameters = {
    policy: current.policy, policyOptimizer: current.policyOptimizer, selfJudge: current.selfJudge, selfJudgeOptimizer: current.selfJudgeOptimizer,
  };
  const norms: number[] = [];
  let rate: number | null = null;
  if (touchesPolicy) {
    const lr = learningRate ?? scheduledLearningRate(optimizer, current.policyOptimizer.t);
    const grad = result.grad.slice(0, SELF_JUDGE_OFFSET) as PolicyVector;
    const update = optimizerStep(current.policy, anchors.policy, grad, current.policyOptimizer, optimizer, lr, POLICY_SPACE);
    next.policy = update.theta;
    next.policyOptimizer = update.state;
    norms.push(update.gradNorm);
    rate = lr;
  }
  let selfJudge: GrpoUpdate['selfJudge'] = null;
  if (judgeDecisions > 0) {
    const lr = learningRate ?? scheduledLearningRate(optimizer, current.selfJudgeOptimizer.t);
    const grad = result.grad.slice(SELF_JUDGE_OFFSET) as SelfJudgeVector;
    const update = optimizerStep(current.selfJudge, anchors.selfJudge, grad, current.selfJudgeOptimizer, optimizer, lr, SELF_JUDGE_SPACE);
    next.selfJudge = update.theta;
    next.selfJudgeOptimizer = update.state;
    norms.push(update.gradNorm);
    rate ??= lr;
    selfJudge = { decisions: judgeDecisions, gradNorm: update.gradNorm };
  }
  return {
    next,
    result,
    learningRate: rate ?? learningRate ?? scheduledLearningRate(optimizer, current.policyOptimizer.t),
    gradNorm: norms.length === 1 ? norms[0]! : Math.hypot(...norms),
    selfJudge,
  };
}
