/**
 * What GRPO means for the sandbox policy: a policy gradient on the logits of its decisions.
 *
 * The sandbox policy (src/sim/world/policy.ts) writes a response by a sequence of Bernoulli
 * decisions, each on one logit parameter: per operation an error, per operation after the first
 * a merge into the previous step, per step a geometric run of filler steps, per response a format
 * violation and, if the format is kept, an appended solution. Everything else it writes (phrasing,
 * the size of a slip) is not trained. Those decisions can be read back from the text exactly,
 * with the world's arithmetic, so the log-probability of a response under any parameters is known
 * and its gradient is exact.
 *
 * Each decision sits at a character of the completion (where the text reveals it), so it takes the
 * advantage of the span holding that character, as a token would. The loss per response is
 * −Σ A·log π(decision) + β·KL(π‖π_ref) − c·H(π) over its decisions, averaged over the batch.
 * The update is on-policy and single: the PPO ratio is 1 and its clip never binds. Pure: no I/O.
 */
import type { ArithChain } from '../../domain/arith.js';
import { applyOp, parseArithQuestion, parseEquations, sameValue, statedNumbers } from '../../domain/arith.js';
import type { ChatMessage } from '../../domain/chat.js';
import { parsePolicyResponse } from '../../domain/formats.js';
import type { GrpoExample } from '../../domain/trainer-protocol.js';
import type { PolicyParams } from '../params.js';
import { MAX_FILLERS_PER_STEP } from '../world/policy.js';
import { readGeneratorQuestion } from '../world/promptReader.js';
import { sigmoid } from '../world/sampling.js';
import type { ParameterSpace } from './prm-fit.js';

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

/** One response as the GRPO loss sees it: each decision with its logit index and advantage. */
export interface PolicyObservation {
  decisions: { index: number; outcome: boolean; advantage: number }[];
  /** The response's own advantage (for the batch's mean). */
  advantage: number;
}

/** Reads one GRPO example into what the loss needs. */
export function observePolicy(example: GrpoExample): { observation: PolicyObservation } | UnreadableResponse {
  const read = readDecisions(example.prompt, example.completion);
  if ('reason' in read) return read;
  return {
    observation: {
      advantage: example.advantage,
      decisions: read.decisions.map((d) => ({ index: INDEX[d.parameter], outcome: d.outcome, advantage: advantageAt(example, d.at) })),
    },
  };
}

/** The GRPO loss settings the sandbox uses (clipRatio has no effect on-policy). */
export interface GrpoSettings {
  klCoefficient: number;
  entropyCoefficient: number;
  klEstimator: 'low-var-kl' | 'k1' | 'k2';
}

/** What one GRPO forward-backward gives. */
export interface GrpoResult {
  loss: number;
  grad: PolicyVector;
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

/**
 * The GRPO loss of a batch and its exact gradient in the policy logits. Per decision with logit ℓ,
 * outcome o and advantage A: −A·log π(o) (gradient −A·(o − σ(ℓ))), plus β times the exact
 * Bernoulli KL to the reference logit ℓ_ref (gradient σ(ℓ)(1 − σ(ℓ))(ℓ − ℓ_ref), whichever
 * estimator is reported), minus c times the entropy (gradient c·σ(ℓ)(1 − σ(ℓ))·ℓ).
 */
export function grpoLoss(theta: PolicyVector, reference: PolicyVector, observations: readonly PolicyObservation[], settings: GrpoSettings): GrpoResult {
  const grad = [0, 0, 0, 0, 0, 0, 0, 0];
  let loss = 0;
  let klSum = 0;
  let entropySum = 0;
  let decisions = 0;
  let advantageSum = 0;
  for (const obs of observations) {
    advantageSum += obs.advantage;
    for (const d of obs.decisions) {
      const x = theta[d.index]!;
      const ref = reference[d.index]!;
      const p = sigmoid(x);
      const logP = d.outcome ? logSigmoid(x) : logSigmoid(-x);
      const logRef = d.outcome ? logSigmoid(ref) : logSigmoid(-ref);
      const exactKl = p * (logSigmoid(x) - logSigmoid(ref)) + (1 - p) * (logSigmoid(-x) - logSigmoid(-ref));
      const entropy = -(p * logSigmoid(x) + (1 - p) * logSigmoid(-x));
      const spread = p * (1 - p);
      loss += -d.advantage * logP + settings.klCoefficient * exactKl - settings.entropyCoefficient * entropy;
      grad[d.index]! += -d.advantage * ((d.outcome ? 1 : 0) - p) + settings.klCoefficient * spread * (x - ref) + settings.entropyCoefficient * spread * x;
      klSum += estimateKl(settings.klEstimator, logP - logRef);
      entropySum += entropy;
      decisions++;
    }
  }
  const n = Math.max(1, observations.length);
  const perDecision = Math.max(1, decisions);
  return {
    loss: loss / n,
    grad: grad.map((g) => g / n) as PolicyVector,
    kl: klSum / perDecision,
    entropy: entropySum / perDecision,
    decisions,
    meanAdvantage: advantageSum / n,
  };
}
