/**
 * Parameters of the sandbox models: one zod schema with its inferred type per role, the
 * default models, and partial overrides (what a LoRA adapter or a config file carries).
 *
 * Probabilities are plain numbers in [0, 1]; "logits" are log-odds (sigmoid(logit) = probability).
 */
import { z } from 'zod';

const probability = z.number().min(0).max(1);
const logit = z.number().min(-50).max(50);

/** The policy (generator): slips per operation and behaviours RL can discover as reward hacks. */
export const policyParamsSchema = z.strictObject({
  /** Log-odds that a step of each operation states a wrong result. */
  errorLogits: z.strictObject({ add: logit, subtract: logit, multiply: logit, divide: logit }),
  /** Fraction of wrong results that are small slips (off by 1..smallDeltaMax) rather than large. */
  subtleFraction: probability,
  smallDeltaMax: z.number().int().min(1).max(100),
  largeDeltaMin: z.number().int().min(1).max(1000),
  largeDeltaMax: z.number().int().min(1).max(10_000),
  /** Log-odds, per pair of consecutive operations, of doing both in one step (step reduction). */
  mergeStepsLogit: logit,
  /** Log-odds, per step, of adding a filler step that only restates the value (step inflation). */
  splitStepsLogit: logit,
  /** Log-odds, per response, of appending an already-solved other problem after `</answer>`. */
  appendAfterAnswerLogit: logit,
  /** Log-odds, per response, of breaking the answer format (no `<answer>`, two or no `\boxed{}`). */
  formatViolationLogit: logit,
});

/** The perception of a judging role. */
export const judgeParamsSchema = z.strictObject({
  /** Detection log-odds of a wrong step: sigmoid(detectBias + detectSlope · log(1 + |relative error|)). */
  detectBias: logit,
  detectSlope: z.number().min(0).max(100),
  /** Probability of marking a correct step incorrect. */
  falseAlarm: probability,
  /** Probability of stating the opposite final verdict to the step labels. */
  outcomeNoise: probability,
  /** Spread (standard deviation, in log-odds) of how hard each particular step is to judge. */
  difficultySpread: z.number().min(0).max(10),
  /** Probability of judging a solution appended after the answer instead of the real one. */
  appendixFollow: probability,
  /** Log-odds added to detection when a reference answer disagrees with the final answer (subtracted from false alarms when it agrees). */
  referenceBoost: z.number().min(0).max(50),
  /** Probability that a verification breaks the format (no final verdict), before tempering. */
  formatViolation: probability,
});

/** The output style of the generative reward-model role. */
export const rewardModelStyleSchema = z.enum(['orm', 'prm', 'prm-cot']);

export const prmParamsSchema = judgeParamsSchema.extend({ style: rewardModelStyleSchema });

/** The merger applies a critique; each finding is applied with this probability. */
export const mergerParamsSchema = z.strictObject({ applyRate: probability });

/** Base rates a judge falls back to for input it cannot check (foreign problems, prose steps). */
export const baseRateParamsSchema = z.strictObject({
  stepIncorrectRate: probability,
  outcomeYesRate: probability,
});

/**
 * The model judging answers itself (co-evolving SPARK): pointwise Yes/No, pairwise A/B, reflection
 * on a shown solution, and re-solving after its own No. The first seven are what GRPO on recycled
 * items trains; `chainBoost` and `difficultySpread` are fixed traits of the model.
 */
export const selfJudgeParamsSchema = z.strictObject({
  /** Log-odds of accepting a correct answer. */
  acceptLogit: logit,
  /** Log-odds of rejecting a wrong answer: rejectBias + rejectSlope · ln(1 + |given − truth| / max(1, |truth|)). */
  rejectBias: logit,
  rejectSlope: logit,
  /** Log-odds of picking the correct answer of a pair: pairBias + pairSlope · the wrong one's error size. */
  pairBias: logit,
  pairSlope: logit,
  /** Log-odds added toward answering "A" whichever answer is correct (random A/B order in training removes it). */
  positionBias: logit,
  /** Added to every per-operation error logit when re-solving after judging an answer wrong (negative: more careful). */
  resolveShift: logit,
  /** Extra rejection log-odds when the whole reasoning chain is shown, not only its answer. */
  chainBoost: logit,
  /** Spread (standard deviation, in log-odds) of how hard each particular item is to judge. */
  difficultySpread: z.number().min(0).max(10),
});

/** Every parameter of one sandbox model: each model can play every role. */
export const simModelParamsSchema = z.strictObject({
  policy: policyParamsSchema,
  verifier: judgeParamsSchema,
  critic: judgeParamsSchema,
  merger: mergerParamsSchema,
  prm: prmParamsSchema,
  processbench: judgeParamsSchema,
  judge: baseRateParamsSchema,
  selfJudge: selfJudgeParamsSchema,
});

export type PolicyParams = z.infer<typeof policyParamsSchema>;
export type JudgeParams = z.infer<typeof judgeParamsSchema>;
export type PrmParams = z.infer<typeof prmParamsSchema>;
export type MergerParams = z.infer<typeof mergerParamsSchema>;
export type BaseRateParams = z.infer<typeof baseRateParamsSchema>;
export type SelfJudgeParams = z.infer<typeof selfJudgeParamsSchema>;
/** Every parameter of one sandbox model. */
export type SimModelParams = z.infer<typeof simModelParamsSchema>;

/** Partial parameters, two levels deep (error logits may be given one by one). */
export const simModelOverridesSchema = z.strictObject({
  policy: policyParamsSchema.extend({ errorLogits: policyParamsSchema.shape.errorLogits.partial() }).partial().optional(),
  verifier: judgeParamsSchema.partial().optional(),
  critic: judgeParamsSchema.partial().optional(),
  merger: mergerParamsSchema.partial().optional(),
  prm: prmParamsSchema.partial().optional(),
  processbench: judgeParamsSchema.partial().optional(),
  judge: baseRateParamsSchema.partial().optional(),
  selfJudge: selfJudgeParamsSchema.partial().optional(),
});
/** Partial model parameters. */
export type SimModelOverrides = z.infer<typeof simModelOverridesSchema>;

/** A LoRA adapter document: parameter overrides plus the base model they apply to. */
export const adapterDocumentSchema = simModelOverridesSchema.extend({ base: z.string().min(1).optional() });
export type AdapterDocument = z.infer<typeof adapterDocumentSchema>;

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Merges plain objects recursively; `undefined` leaves a value unchanged. */
export function deepMerge<T>(base: T, patch: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(patch)) return (patch === undefined ? base : patch) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v !== undefined) out[k] = deepMerge(out[k], v);
  }
  return out as T;
}

/** Applies overrides and validates the result. */
export function applyOverrides(base: SimModelParams, overrides: SimModelOverrides | undefined): SimModelParams {
  return simModelParamsSchema.parse(deepMerge(base, overrides));
}

/** Judge parameters of the weak judge (the generator's base model judging). */
const weakJudge: JudgeParams = {
  detectBias: -0.4,
  detectSlope: 3,
  falseAlarm: 0.12,
  outcomeNoise: 0.08,
  difficultySpread: 1.2,
  appendixFollow: 0.9,
  referenceBoost: 1.5,
  formatViolation: 0.04,
};

/** Judge parameters of the strong judge (the paper's Qwen3-32B verifier). */
const strongJudge: JudgeParams = {
  detectBias: 0.8,
  detectSlope: 4,
  falseAlarm: 0.06,
  outcomeNoise: 0.03,
  difficultySpread: 1.0,
  appendixFollow: 0.3,
  referenceBoost: 2.5,
  formatViolation: 0.02,
};

/**
 * `sim-policy`: an error-prone generator (about 40% of solutions wrong at temperature 1 on
 * 4–8 operations) and a weak judge, like the paper's Qwen2.5-14B-Instruct.
 */
export const SIM_POLICY_PARAMS: SimModelParams = {
  policy: {
    errorLogits: { add: -2.9, subtract: -2.6, multiply: -2.2, divide: -2.0 },
    subtleFraction: 0.5,
    smallDeltaMax: 3,
    largeDeltaMin: 8,
    largeDeltaMax: 60,
    mergeStepsLogit: -5,
    splitStepsLogit: -5,
    appendAfterAnswerLogit: -6,
    formatViolationLogit: -4.5,
  },
  verifier: weakJudge,
  critic: weakJudge,
  merger: { applyRate: 0.9 },
  prm: { ...weakJudge, style: 'prm-cot' },
  processbench: weakJudge,
  judge: { stepIncorrectRate: 0.15, outcomeYesRate: 0.6 },
  // A weak self-judge: says Yes too readily, misses small errors, prefers whatever comes first.
  selfJudge: {
    acceptLogit: 0.6,
    rejectBias: -0.6,
    rejectSlope: 1.0,
    pairBias: 0.3,
    pairSlope: 1.0,
    positionBias: 0.8,
    resolveShift: 0,
    chainBoost: 0.5,
    difficultySpread: 1.0,
  },
};

/** `sim-verifier`: a strong judge and a careful generator, like the paper's Qwen3-32B. */
export const SIM_VERIFIER_PARAMS: SimModelParams = {
  policy: {
    ...SIM_POLICY_PARAMS.policy,
    errorLogits: { add: -5, subtract: -4.8, multiply: -4.2, divide: -4 },
  },
  verifier: strongJudge,
  critic: strongJudge,
  merger: { applyRate: 1 },
  prm: { ...strongJudge, style: 'prm-cot' },
  processbench: strongJudge,
  judge: { stepIncorrectRate: 0.1, outcomeYesRate: 0.5 },
  selfJudge: {
    acceptLogit: 2.5,
    rejectBias: 1.5,
    rejectSlope: 2.0,
    pairBias: 2.0,
    pairSlope: 2.0,
    positionBias: 0.1,
    resolveShift: -1.0,
    chainBoost: 1.0,
    difficultySpread: 1.0,
  },
};

/**
 * `sim-policy-wordy`: `sim-policy` that restates the current value after most steps, often more
 * than once (about 2.5 steps per operation), like a policy whose format SFT left it wordy: many of
 * its answers run past 20 steps. It is where SPARK's step-count guard shows what it does.
 */
export const SIM_POLICY_WORDY_PARAMS: SimModelParams = {
  ...SIM_POLICY_PARAMS,
  policy: { ...SIM_POLICY_PARAMS.policy, splitStepsLogit: 0.5 },
};

/** The models every sandbox server serves unless told otherwise. */
export const DEFAULT_SIM_MODELS: Readonly<Record<string, SimModelParams>> = {
  'sim-policy': SIM_POLICY_PARAMS,
  'sim-verifier': SIM_VERIFIER_PARAMS,
  'sim-policy-wordy': SIM_POLICY_WORDY_PARAMS,
};
