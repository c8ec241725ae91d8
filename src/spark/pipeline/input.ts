import { z } from 'zod';
import { InferenceEndpointSchema } from '../../core/inference/endpoints.js';
import { needsPrm } from '../rl/rewards.js';
import type { EvaluatePrmInput } from '../prm/evaluate-prm.input.js';
import { EvaluatePrmInputSchema } from '../prm/evaluate-prm.input.js';
import type { RlTrainInput } from '../rl/input.js';
import { RlTrainInputSchema } from '../rl/input.js';
import { RunNameSchema } from '../labels/sample-solutions.input.js';
import type { SynthesizeLabelsInput } from '../labels/input.js';
import { SynthesizeLabelsInputSchema } from '../labels/input.js';
import type { TrainPrmInput } from '../prm/train-prm.input.js';
import { TrainPrmInputSchema } from '../prm/train-prm.input.js';

/** The pipeline's stages in the order they run; each is a child workflow. */
export const PIPELINE_STAGES = ['labels', 'train-prm', 'evaluate-prm', 'rl-train'] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

const S3_URI = /^s3:\/\/[^/]+\/.+/;

// The stages' own schemas are the one source of each setting's meaning, limits and defaults.
const L = SynthesizeLabelsInputSchema.shape;
const T = TrainPrmInputSchema.shape;
const E = EvaluatePrmInputSchema.shape;
const R = RlTrainInputSchema.shape;

/** A stage-1 model role: on the pipeline's inference server unless it names its own (e.g. a hosted API). */
const stage1Role = (role: typeof L.generator) => role.omit({ endpoint: true }).extend({ endpoint: InferenceEndpointSchema.optional() }).strict();

/**
 * Input of `sparkPipeline`: SPARK end to end from one JSON object. Stage 1 labels a dataset, a
 * generative PRM is trained on the labels and published, scored on ProcessBench, and used as the
 * reward of GRPO on the policy. Each stage is a child workflow that gets its input built from this
 * one (see `stageInputs`), so a pipeline input that parses makes valid stage inputs.
 */
export const SparkPipelineInputSchema = z
  .strictObject({
    runName: RunNameSchema,
    endpoints: z.strictObject({
      /** The OpenAI-compatible server that serves the models and loads published weights (vLLM's LoRA load). */
      inference: InferenceEndpointSchema,
      /** The trainer server (trainer protocol v1). */
      trainer: T.trainer,
    }),
    /** Stage 1 (`synthesizeLabels`); needed when `stages` has `labels`. */
    labels: z
      .strictObject({
        dataset: L.dataset,
        generator: stage1Role(L.generator),
        verifier: stage1Role(L.verifier),
        critic: stage1Role(L.critic.unwrap()).optional(),
        solutionsPerProblem: L.solutionsPerProblem,
        verificationsPerSolution: L.verificationsPerSolution,
        methods: L.methods,
        aggregation: L.aggregation,
        parseRetries: L.parseRetries,
        referenceGuided: L.referenceGuided,
        adaptive: L.adaptive,
        shards: L.shards,
      })
      .optional(),
    /** Stage 2 training (`trainPrm`): whose labels, in which style, on which base model. */
    prm: z.strictObject({
      method: T.method,
      style: T.style,
      data: T.data,
      /** The model to fine-tune, as the trainer names it. */
      baseModel: T.baseModel,
      adapter: T.adapter,
      optimizer: T.optimizer,
      epochs: T.epochs,
      batchSize: T.batchSize,
      checkpointEvery: T.checkpointEvery,
      /** Name the PRM is served under (default `<runName>-prm`); with `train-prm` skipped, a PRM already served under it. */
      modelName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,255}$/, 'a model name of letters, digits and . _ : / -').optional(),
      /** With the `labels` stage skipped: the labels manifest of an earlier `synthesizeLabels` run. */
      labelsManifestUri: z.string().regex(S3_URI, 'an S3 URI like s3://bucket/runs/<run>/labels/manifest.json').optional(),
    }),
    /** Stage 2 evaluation (`evaluatePrm`) of the PRM, in its own style; needed when `stages` has `evaluate-prm`. */
    processBench: z
      .strictObject({
        /** Split name → its file (S3 URI or a path on the worker), in ProcessBench's published schema. */
        splits: E.benchmark.shape.splits,
        limit: E.benchmark.shape.limit,
        /** Also score this served model (e.g. the untrained base) on the same splits, for comparison. */
        baseModel: z.string().min(1).optional(),
        sampling: E.model.shape.sampling,
        samples: E.samples,
        chunkSize: E.chunkSize,
        concurrency: E.concurrency,
      })
      .optional(),
    /** Stage 3 (`rlTrain`): GRPO on the policy with the PRM as reward; needed when `stages` has `rl-train`. */
    rl: z
      .strictObject({
        policy: R.policy.omit({ endpoint: true }).strict(),
        formulation: R.reward.shape.formulation,
        guards: R.reward.shape.guards,
        /** How stage 3 asks the PRM for each rollout's reward (greedy); the defaults are rlTrain's (4,096 tokens, 64 in flight). */
        rewardModel: R.reward.shape.prm.unwrap().pick({ maxTokens: true, maxInFlight: true }).partial().strict().optional(),
        /** Training prompts. */
        dataset: R.dataset,
        /** Held-out sets; the evaluation at the last step is the pipeline's final evaluation. */
        evaluation: R.evaluation,
        grpo: R.grpo,
        totalSteps: R.totalSteps,
        checkpointEvery: R.checkpointEvery,
        publishEvery: R.publishEvery,
        stepsPerRun: R.stepsPerRun,
      })
      .optional(),
    /** Seed of every stage (sampling, data order, trainer sessions). */
    seed: z.number().int().nonnegative().default(0),
    /** Which stages to run; a skipped stage's output is taken from `prm.labelsManifestUri` or `prm.modelName`. */
    stages: z
      .array(z.enum(PIPELINE_STAGES))
      .min(1)
      .refine((s) => new Set(s).size === s.length, 'name each stage once')
      .default([...PIPELINE_STAGES]),
  })
  .superRefine((v, ctx) => {
    const runs = (s: PipelineStage) => v.stages.includes(s);
    const need = (section: 'labels' | 'processBench' | 'rl', stage: PipelineStage) => {
      if (runs(stage) && !v[section]) ctx.addIssue({ code: 'custom', path: [section], message: `the ${stage} stage needs its settings here (or leave "${stage}" out of stages)` });
    };
    need('labels', 'labels');
    need('processBench', 'evaluate-prm');
    need('rl', 'rl-train');
    if (runs('train-prm') && !runs('labels') && !v.prm.labelsManifestUri) {
      ctx.addIssue({ code: 'custom', path: ['prm', 'labelsManifestUri'], message: 'with the labels stage skipped, train-prm needs the labels manifest of an earlier run' });
    }
    if (runs('labels') && v.prm.labelsManifestUri) {
      ctx.addIssue({ code: 'custom', path: ['prm', 'labelsManifestUri'], message: 'the labels stage makes the labels manifest; give one only when that stage is skipped' });
    }
    // Each stage's own checks (cross-field rules included), reported at the pipeline field they come from.
    const inputs = stageInputs(v, { labelsManifestUri: v.prm.labelsManifestUri ?? 's3://placeholder/labels/manifest.json' });
    const check = (stage: PipelineStage, schema: z.ZodType, input: unknown, where: PathMap) => {
      if (!runs(stage) || input === null) return;
      const parsed = schema.safeParse(input);
      if (parsed.success) return;
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: mapPath(issue.path, where), message: `${issue.message} (${stage})` });
    };
    check('labels', SynthesizeLabelsInputSchema, inputs.labels, LABELS_PATHS);
    check('train-prm', TrainPrmInputSchema, inputs.trainPrm, TRAIN_PRM_PATHS);
    check('evaluate-prm', EvaluatePrmInputSchema, inputs.evaluatePrm, EVALUATE_PATHS);
    check('rl-train', RlTrainInputSchema, inputs.rlTrain, RL_PATHS);
  });
export type SparkPipelineInput = z.input<typeof SparkPipelineInputSchema>;
export type SparkPipelineConfig = z.output<typeof SparkPipelineInputSchema>;

/** The name the PRM is served under. */
export function prmModelName(c: SparkPipelineConfig): string {
  return c.prm.modelName ?? `${c.runName}-prm`;
}

/** Key prefixes of the stages' outputs (each stage's default layout under `runs/<runName>/`). */
export function evaluationPrefix(c: SparkPipelineConfig, which: 'prm' | 'base'): string {
  return `runs/${c.runName}/evaluate-prm/${which}`;
}

/**
 * Every stage's input, built from the pipeline's config and the references earlier stages made.
 * A stage that is not configured gets `null`.
 */
export function stageInputs(c: SparkPipelineConfig, refs: { labelsManifestUri: string }): {
  labels: SynthesizeLabelsInput | null;
  trainPrm: TrainPrmInput;
  evaluatePrm: EvaluatePrmInput | null;
  evaluateBase: EvaluatePrmInput | null;
  rlTrain: RlTrainInput | null;
} {
  const endpoint = c.endpoints.inference;
  const prmModel = prmModelName(c);
  const { runName, seed } = c;
  const labels = c.labels;
  const evaluate = (model: string, which: 'prm' | 'base'): EvaluatePrmInput | null => c.processBench ? {
    runName,
    outputPrefix: evaluationPrefix(c, which),
    benchmark: { splits: c.processBench.splits, ...(c.processBench.limit !== undefined ? { limit: c.processBench.limit } : {}) },
    model: { endpoint, model, sampling: c.processBench.sampling },
    style: c.prm.style as EvaluatePrmInput['style'],
    samples: c.processBench.samples,
    seed,
    chunkSize: c.processBench.chunkSize,
    concurrency: c.processBench.concurrency,
  } : null;
  return {
    labels: labels ? {
      runName,
      dataset: labels.dataset,
      generator: { ...labels.generator, endpoint: labels.generator.endpoint ?? endpoint },
      verifier: { ...labels.verifier, endpoint: labels.verifier.endpoint ?? endpoint },
      ...(labels.critic ? { critic: { ...labels.critic, endpoint: labels.critic.endpoint ?? endpoint } } : {}),
      solutionsPerProblem: labels.solutionsPerProblem,
      verificationsPerSolution: labels.verificationsPerSolution,
      methods: labels.methods,
      aggregation: labels.aggregation,
      parseRetries: labels.parseRetries,
      referenceGuided: labels.referenceGuided,
      adaptive: labels.adaptive,
      seed,
      shards: labels.shards,
    } : null,
    trainPrm: {
      runName,
      labelsManifestUri: refs.labelsManifestUri,
      method: c.prm.method,
      style: c.prm.style,
      data: c.prm.data,
      trainer: c.endpoints.trainer,
      baseModel: c.prm.baseModel,
      adapter: c.prm.adapter,
      optimizer: c.prm.optimizer,
      epochs: c.prm.epochs,
      batchSize: c.prm.batchSize,
      checkpointEvery: c.prm.checkpointEvery,
      publish: { inferenceBaseURL: endpoint.baseURL, modelName: prmModel },
      seed,
    },
    evaluatePrm: evaluate(prmModel, 'prm'),
    evaluateBase: c.processBench?.baseModel ? evaluate(c.processBench.baseModel, 'base') : null,
    rlTrain: c.rl ? {
      runName,
      policy: { ...c.rl.policy, endpoint },
      trainer: c.endpoints.trainer,
      reward: {
        formulation: c.rl.formulation,
        // Baselines (verifiable, random, majority-vote) do not ask a PRM.
        ...(needsPrm(c.rl.formulation) ? { prm: { endpoint, model: prmModel, style: c.prm.style, ...c.rl.rewardModel } } : {}),
        guards: c.rl.guards,
      },
      dataset: c.rl.dataset,
      evaluation: c.rl.evaluation,
      grpo: c.rl.grpo,
      totalSteps: c.rl.totalSteps,
      checkpointEvery: c.rl.checkpointEvery,
      publishEvery: c.rl.publishEvery,
      seed,
      stepsPerRun: c.rl.stepsPerRun,
    } : null,
  };
}

/** Where a stage input's field comes from in the pipeline input: the longest matching prefix wins. */
type PathMap = readonly (readonly [readonly string[], readonly string[]])[];

const COMMON: PathMap = [[['runName'], ['runName']], [['seed'], ['seed']]];
const LABELS_PATHS: PathMap = [
  ...COMMON, [[], ['labels']], [['generator', 'endpoint'], ['endpoints', 'inference']], [['verifier', 'endpoint'], ['endpoints', 'inference']], [['critic', 'endpoint'], ['endpoints', 'inference']],
];
const TRAIN_PRM_PATHS: PathMap = [
  ...COMMON, [[], ['prm']], [['trainer'], ['endpoints', 'trainer']], [['publish', 'inferenceBaseURL'], ['endpoints', 'inference', 'baseURL']], [['publish', 'modelName'], ['prm', 'modelName']],
];
const EVALUATE_PATHS: PathMap = [
  ...COMMON, [[], ['processBench']], [['benchmark'], ['processBench']], [['model', 'endpoint'], ['endpoints', 'inference']], [['model', 'model'], ['prm', 'modelName']],
  [['model', 'sampling'], ['processBench', 'sampling']], [['style'], ['prm', 'style']],
];
const RL_PATHS: PathMap = [
  ...COMMON, [[], ['rl']], [['policy', 'endpoint'], ['endpoints', 'inference']], [['trainer'], ['endpoints', 'trainer']], [['reward'], ['rl']],
  [['reward', 'prm', 'style'], ['prm', 'style']], [['reward', 'prm'], ['prm', 'modelName']],
];

function mapPath(path: readonly PropertyKey[], map: PathMap): PropertyKey[] {
  let best: readonly [readonly string[], readonly string[]] = map.find(([from]) => from.length === 0)!;
  for (const entry of map) {
    const [from] = entry;
    if (from.length > best[0].length && from.length <= path.length && from.every((k, i) => path[i] === k)) best = entry;
  }
  const [from, to] = best;
  // A field kept under its own name in the section ([] → section) keeps the whole path.
  return [...to, ...path.slice(from.length)];
}
