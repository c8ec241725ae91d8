import {
  ActivityFailure, allHandlersFinished, ApplicationFailure, condition, continueAsNew, defineQuery, defineSignal, defineUpdate, proxyActivities, setHandler,
  upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { PreparedRlData, RlActivities, RlLoopState, RlRolloutsResult } from './activities.js';
import type { HyperparameterUpdate, RlTrainConfig } from './input.js';
import { HyperparameterUpdateSchema } from './input.js';
import { hashParts } from '../../core/random.js';
import { joinKey, parseS3Uri } from '../../core/store/refs.js';
import type { RlMetricsRow } from './grpo.js';
import { rlLearningRate, stepName } from './grpo.js';
import { sessionIdFor } from '../../core/trainer/plan.js';
import { bulkIo, modelBatch, trainerStep } from '../../core/temporal/activity-presets.js';
import { claimRunOutputs } from '../../core/temporal/run-outputs.workflow.js';
import { SparkAccuracy, SparkConfigHash, SparkItemsDone, SparkReward, SparkRun, SparkStage, SparkStatus, SparkStep } from '../../core/temporal/search-attributes.js';

const io = proxyActivities<RlActivities>(bulkIo);
const models = proxyActivities<RlActivities>(modelBatch);
const trainer = proxyActivities<RlActivities>(trainerStep);

/** One entry of the run's audit log (`audit/NNNNNN.json`). */
export interface AuditEntry {
  seq: number;
  /** Workflow time (deterministic), ISO 8601. */
  at: string;
  /** The step the change takes effect before. */
  step: number;
  action: 'pause' | 'resume' | 'stop' | 'set-hyperparameters';
  details?: Record<string, unknown>;
}

/** The settings that decide a run's trajectory: run length, checkpoint cadence and evaluations do not, so a run can be extended or re-scheduled. */
export function decisiveConfigHash(config: Omit<RlTrainConfig, 'reward'> & Record<string, unknown>): string {
  return hashParts(JSON.stringify(decisiveConfig(config)));
}

/** The settings {@link decisiveConfigHash} is computed over. */
export function decisiveConfig(config: Omit<RlTrainConfig, 'reward'> & Record<string, unknown>): Record<string, unknown> {
  const { runName: _name, outputPrefix: _prefix, resumeFrom: _resume, totalSteps: _total, checkpointEvery: _every, evaluation: _evaluation, stepsPerRun: _perRun, ...decisive } = config;
  return decisive;
}

/** Checkpoints are keyed by what determines them: other settings or data never share them. */
function checkpointPrefixOf(prefix: string, configHash: string, datasetSha256: string): string {
  return joinKey(prefix, 'checkpoints', hashParts(configHash, datasetSha256).slice(0, 16));
}

/** Everything the loop needs to go on; carried through continue-as-new. */
export interface RlTrainState {
  prepared: PreparedRlData;
  sessionId: string;
  /** Trainer steps [0, step) are applied. */
  step: number;
  /** With extra steps: rollout steps done (the rest of the trainer steps were extra steps). Absent: every step is a rollout step. */
  rlStep?: number;
  lastCheckpoint: string | null;
  servedModel: string;
  learningRate: number | null;
  klCoefficient: number;
  paused: boolean;
  stopRequested: boolean;
  auditSeq: number;
  recent: RlMetricsRow[];
  evals: { set: string; step: number; accuracy: number }[];
  runs: number;
  /** With extra steps: the extra-step source's state, as its own fields (co-evolution: `cache`, `consumed`). */
  [sourceField: string]: unknown;
}

export interface RlTrainProgress {
  stage: 'preparing' | 'training' | 'paused' | 'stopping' | 'completed' | 'stopped';
  step: number;
  totalSteps: number;
  servedModel: string;
  lastCheckpoint: string | null;
  learningRate: number;
  klCoefficient: number;
  latest: RlMetricsRow | null;
  latestEvals: { set: string; step: number; accuracy: number }[];
  runs: number;
  /** With extra steps: trainer steps that were extra steps so far, and what the source adds (co-evolution: `cachedItems`). */
  recycledSteps?: number;
  [sourceProgress: string]: unknown;
}

export interface RlTrainResult {
  /** Rollout steps done. */
  steps: number;
  /** With extra steps: every trainer step, extra ones included. */
  trainerSteps?: number;
  stopped: boolean;
  checkpoint: string | null;
  servedModel: string;
  metricsPrefix: string;
  evals: { set: string; step: number; accuracy: number }[];
}

export const rlTrainProgress = defineQuery<RlTrainProgress>('progress');
export const rlLatestCheckpoint = defineQuery<string | null>('latestCheckpoint');
export const rlRecentMetrics = defineQuery<RlMetricsRow[], [number?]>('recentMetrics');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Stops after the next checkpoint (one is saved at once if the current step is not one). */
export const stopSignal = defineSignal('stopAfterCheckpoint');
export const setHyperparametersUpdate = defineUpdate<{ learningRate: number; klCoefficient: number; fromStep: number }, [HyperparameterUpdate]>('setHyperparameters');

const RECENT = 50;

/** The trainer step an extra step is, and what it trains with. */
export interface ExtraStepContext {
  config: RlTrainConfig;
  outputPrefix: string;
  step: number;
  servedModel: string;
  learningRate: number;
  klCoefficient: number;
}

/**
 * Extra trainer steps between rollout steps, from a stage built on this loop (co-evolution: a step
 * on each full batch of recycled items). The loop carries the source's state (its own fields in
 * the carried state, and in each checkpoint's `loop`) without reading it.
 */
export interface ExtraStepSource {
  /** Metrics `kind` of its steps. */
  kind: string;
  /** Added to each rollout step's `rlRollouts` input, for the rollouts hook (co-evolution: `recycle`). */
  rolloutOptions: Record<string, unknown>;
  /** Its fields at the start of a run, or as the checkpoint's `loop` a run resumes from left them. */
  initial(resumed: Readonly<Record<string, unknown>> | undefined): Record<string, unknown>;
  /** The extra step to run now, if the state holds one: how to roll it out, and its fields after it. */
  next(state: Readonly<Record<string, unknown>>, step: ExtraStepContext): { rollouts: () => Promise<RlRolloutsResult>; after: Record<string, unknown> } | null;
  /** Its fields after rollout step `rlStep` gave `rollouts`. */
  afterRollouts(state: Readonly<Record<string, unknown>>, rollouts: RlRolloutsResult, rlStep: number): Record<string, unknown>;
  /** What it adds to the progress query. */
  progress(state: Readonly<Record<string, unknown>>): Record<string, unknown>;
}

/** How a GRPO loop differs between `rlTrain` and the stages built on it. */
export interface GrpoLoopMode {
  /** The `SparkStage` search attribute. */
  stage: string;
  /** The workflow's input as given (continue-as-new passes it on). */
  rawInput: unknown;
  /** Where outputs go unless the input says otherwise. */
  defaultPrefix: string;
  /** A checkpoint resumes only under the same hash (see decisiveConfigHash). */
  configHash: string;
  /** Extra steps between rollout steps (co-evolution's), or null: every step is a rollout step. */
  extraSteps: ExtraStepSource | null;
}

/**
 * The GRPO loop of `rlTrain` and `coEvolve`. Each rollout step draws its prompts from the seed and
 * step, rolls out and scores (`rlRollouts`), applies one idempotent train step (`rlTrainStep`),
 * checkpoints and publishes on schedule, evaluates on schedule, and records a metrics row keyed by
 * step. With an extra-step source (co-evolution), the source may put a trainer step of its own
 * before the next rollout step; the loop checkpoints, resumes and reports those steps like its own.
 * People can pause, resume, stop after a checkpoint and change the learning rate or KL coefficient
 * while it runs; each change goes into the audit log.
 */
export async function runGrpoLoop(config: RlTrainConfig, mode: GrpoLoopMode, carried?: RlTrainState): Promise<RlTrainResult> {
  const prefix = config.outputPrefix ?? mode.defaultPrefix;
  const info = workflowInfo();
  const { configHash } = mode;
  const extra = mode.extraSteps;
  upsertSearchAttributes([
    { key: SparkRun, value: config.runName },
    { key: SparkStage, value: mode.stage },
    { key: SparkStatus, value: 'running' },
    { key: SparkConfigHash, value: configHash },
  ]);

  const pending: AuditEntry[] = [];
  let state: RlTrainState | undefined = carried;
  const progress: RlTrainProgress = {
    stage: carried ? 'training' : 'preparing',
    step: carried?.step ?? 0,
    totalSteps: config.totalSteps,
    servedModel: carried?.servedModel ?? config.policy.model,
    lastCheckpoint: carried?.lastCheckpoint ?? null,
    learningRate: config.policy.optimizer.learningRate,
    klCoefficient: carried?.klCoefficient ?? config.grpo.klCoefficient,
    latest: carried?.recent.at(-1) ?? null,
    latestEvals: carried?.evals ?? [],
    runs: carried?.runs ?? 1,
  };
  const audit = (action: AuditEntry['action'], details?: Record<string, unknown>): void => {
    if (!state) return;
    state.auditSeq += 1;
    pending.push({ seq: state.auditSeq, at: new Date().toISOString(), step: state.step, action, ...(details ? { details } : {}) });
  };
  setHandler(rlTrainProgress, () => progress);
  setHandler(rlLatestCheckpoint, () => state?.lastCheckpoint ?? null);
  setHandler(rlRecentMetrics, (n = 10) => (state?.recent ?? []).slice(-Math.max(1, Math.min(n, RECENT))));
  setHandler(pauseSignal, () => {
    if (state && !state.paused) {
      state.paused = true;
      audit('pause');
    }
  });
  setHandler(resumeSignal, () => {
    if (state?.paused) {
      state.paused = false;
      audit('resume');
    }
  });
  setHandler(stopSignal, () => {
    if (state && !state.stopRequested) {
      state.stopRequested = true;
      audit('stop');
    }
  });
  setHandler(setHyperparametersUpdate, (update) => {
    const s = state!;
    const before = { learningRate: s.learningRate, klCoefficient: s.klCoefficient };
    if (update.learningRate !== undefined) s.learningRate = update.learningRate;
    if (update.klCoefficient !== undefined) s.klCoefficient = update.klCoefficient;
    audit('set-hyperparameters', { before, after: { learningRate: s.learningRate, klCoefficient: s.klCoefficient }, ...(update.reason ? { reason: update.reason } : {}) });
    progress.klCoefficient = s.klCoefficient;
    return { learningRate: s.learningRate ?? config.policy.optimizer.learningRate, klCoefficient: s.klCoefficient, fromStep: s.step };
  }, {
    validator: (update) => {
      const parsed = HyperparameterUpdateSchema.safeParse(update);
      if (!parsed.success) throw new Error(`invalid setHyperparameters: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(update)'}: ${i.message}`).join('; ')}`);
      if (!state) throw new Error('the run is still preparing; try again in a moment');
    },
  });

  if (!state) {
    // Another configuration's steps, checkpoints and metrics under this prefix are refused, not mixed in.
    await claimRunOutputs({ prefix, workflow: info.workflowType, runName: config.runName, workflowId: info.workflowId, configHash, decisive: decisiveConfig(config) });
    const prepared = await io.prepareRlData({ config, outputPrefix: prefix });
    let step = 0;
    let lastCheckpoint: string | null = null;
    let servedModel = config.policy.model;
    let learningRate: number | null = null;
    let klCoefficient = config.grpo.klCoefficient;
    // An explicit checkpoint is verified; otherwise a re-run of the same settings and data picks up
    // at its own newest checkpoint, so finished steps are not trained again.
    const resumed = config.resumeFrom
      ? { uri: config.resumeFrom, info: await io.verifyRlResume({ resumeFrom: config.resumeFrom, configHash, datasetSha256: prepared.datasetSha256, baseModel: config.policy.baseModel }) }
      : await io.findRlCheckpoint({ prefix: checkpointPrefixOf(prefix, configHash, prepared.datasetSha256) });
    if (resumed) {
      step = resumed.info.step + 1;
      lastCheckpoint = resumed.uri;
      servedModel = resumed.info.servedModel;
      learningRate = resumed.info.learningRate ?? null;
      klCoefficient = resumed.info.klCoefficient ?? klCoefficient;
    }
    state = {
      prepared, sessionId: sessionIdFor(info.workflowId, info.firstExecutionRunId), step, lastCheckpoint, servedModel,
      learningRate, klCoefficient, paused: false, stopRequested: false, auditSeq: 0, recent: [], evals: [], runs: 1,
      // The extra-step source's state as it was after the checkpoint's step.
      ...(extra ? { rlStep: resumed?.info.loop?.rlStep ?? step, ...extra.initial(resumed?.info.loop) } : {}),
    };
  }
  const s = state;
  /** Rollout steps done: every trainer step is one, unless there are extra steps. */
  const rlStepOf = (x: RlTrainState): number => x.rlStep ?? x.step;
  const extraProgress = (): void => {
    if (!extra) return;
    progress.recycledSteps = s.step - rlStepOf(s);
    Object.assign(progress, extra.progress(s));
  };
  progress.stage = 'training';
  progress.step = rlStepOf(s);
  extraProgress();
  progress.servedModel = s.servedModel;
  progress.lastCheckpoint = s.lastCheckpoint;

  const bucketUri = `s3://${parseS3Uri(s.prepared.prompts.uri).bucket}`;
  // Checkpoints are keyed by what determines them: other settings or data never share them.
  const checkpointPrefix = checkpointPrefixOf(prefix, configHash, s.prepared.datasetSha256);
  const session = { baseModel: config.policy.baseModel, adapter: config.policy.adapter, optimizer: config.policy.optimizer, seed: config.seed };
  const flushAudit = async (): Promise<void> => {
    if (pending.length > 0) await io.recordAudit({ outputPrefix: joinKey(prefix, 'audit', info.firstExecutionRunId), entries: pending.splice(0) });
  };
  const evaluate = async (step: number): Promise<void> => {
    for (const set of s.prepared.evalSets) {
      const r = await models.evaluatePolicy({ config, outputPrefix: prefix, set, servedModel: s.servedModel, step });
      s.evals = [...s.evals.filter((e) => e.set !== set.name || e.step !== step), { set: set.name, step, accuracy: r.accuracy }].slice(-200);
    }
    progress.latestEvals = s.prepared.evalSets.map((set) => s.evals.filter((e) => e.set === set.name).at(-1)).filter((e) => e !== undefined);
    const first = progress.latestEvals[0];
    if (first) upsertSearchAttributes([{ key: SparkAccuracy, value: first.accuracy }]);
  };

  if (s.step === 0 && s.evals.length === 0) await evaluate(0);
  if (rlStepOf(s) >= config.totalSteps && s.evals.length === 0 && s.lastCheckpoint !== null) await evaluate(rlStepOf(s));
  let stepsThisRun = 0;
  let stopped = false;
  while (rlStepOf(s) < config.totalSteps) {
    if (s.paused) {
      progress.stage = 'paused';
      await flushAudit();
      await condition(() => !s.paused || s.stopRequested);
      progress.stage = 'training';
    }
    await flushAudit();
    if (s.stopRequested && s.lastCheckpoint !== null && s.lastCheckpoint.endsWith(stepName(s.step - 1))) {
      stopped = true;
      break;
    }
    if (stepsThisRun >= config.stepsPerRun || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await flushAudit();
      return continueAsNew<(input: unknown, carried: RlTrainState) => Promise<RlTrainResult>>(mode.rawInput, { ...s, runs: s.runs + 1 });
    }

    const step = s.step;
    const rlStep = rlStepOf(s);
    const learningRate = s.learningRate ?? rlLearningRate(config.policy.optimizer.learningRate, config.grpo.warmupFraction, config.totalSteps, rlStep);
    // The extra-step source may take this trainer step (co-evolution: a full batch of recycled items).
    const extraStep = extra?.next(s, { config, outputPrefix: prefix, step, servedModel: s.servedModel, learningRate, klCoefficient: s.klCoefficient }) ?? null;
    const onExtra = extraStep !== null;
    const roll = () => extraStep
      ? extraStep.rollouts()
      : models.rlRollouts({
        config, outputPrefix: prefix, prepared: s.prepared, step: rlStep, servedModel: s.servedModel, learningRate, klCoefficient: s.klCoefficient,
        ...(extra ? { trainerStep: step, ...extra.rolloutOptions } : {}),
      });
    let rollouts;
    try {
      rollouts = await roll();
    } catch (err) {
      // The inference server restarted and forgot the published policy: serve it again, once.
      const forgotten = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'Inference.not-found';
      if (!forgotten || s.lastCheckpoint === null || s.servedModel === config.policy.model) throw err;
      await trainer.republishPolicy({ trainerURL: config.trainer.baseURL, sessionId: s.sessionId, session, checkpoint: s.lastCheckpoint, inferenceBaseURL: config.policy.endpoint.baseURL, modelName: s.servedModel });
      rollouts = await roll();
    }
    // The loop state after this step, saved with its checkpoint so a resume finds the source's state as it was.
    const after: RlLoopState | undefined = extra
      ? extraStep
        ? { rlStep, ...extraStep.after }
        : { rlStep: rlStep + 1, ...extra.afterRollouts(s, rollouts, rlStep) }
      : undefined;
    const last = !onExtra && rlStep === config.totalSteps - 1;
    const publish = (step + 1) % config.publishEvery === 0 || last;
    const save = publish || (step + 1) % config.checkpointEvery === 0 || s.stopRequested;
    const modelName = `${config.runName}-policy-${stepName(step + 1)}`;
    const out = await trainer.rlTrainStep({
      trainerURL: config.trainer.baseURL,
      sessionId: s.sessionId,
      session,
      outputPrefix: prefix,
      step,
      resumeCandidates: [s.lastCheckpoint],
      checkpoint: save ? {
        uri: `${bucketUri}/${joinKey(checkpointPrefix, stepName(step))}`,
        info: {
          configHash, datasetSha256: s.prepared.datasetSha256, baseModel: config.policy.baseModel, servedModel: publish ? modelName : s.servedModel, learningRate: s.learningRate, klCoefficient: s.klCoefficient,
          ...(after ? { loop: after } : {}),
        },
      } : null,
      publish: publish ? { inferenceBaseURL: config.policy.endpoint.baseURL, modelName } : null,
      metrics: { ...rollouts.summary, step, servedModel: s.servedModel, learningRate, klCoefficient: s.klCoefficient, ...(extra ? { kind: extraStep ? extra.kind : 'rollout', rlStep } : {}) },
    });
    s.step = step + 1;
    if (after) Object.assign(s, after);
    stepsThisRun += 1;
    if (out.checkpoint) s.lastCheckpoint = out.checkpoint;
    if (out.servedModel) s.servedModel = out.servedModel;
    s.recent = [...s.recent, out.metrics].slice(-RECENT);
    progress.step = rlStepOf(s);
    extraProgress();
    progress.latest = out.metrics;
    progress.learningRate = learningRate;
    progress.servedModel = s.servedModel;
    progress.lastCheckpoint = s.lastCheckpoint;
    // SparkReward stays the rollouts' reward: an extra step's reward measures something else (co-evolution: judging accuracy).
    upsertSearchAttributes([{ key: SparkStep, value: rlStepOf(s) }, { key: SparkItemsDone, value: s.step }, ...(onExtra ? [] : [{ key: SparkReward, value: out.metrics.rewardMean }])]);
    // The input check makes every evaluation step a publish step, so the served model is this step's policy.
    const done = rlStepOf(s);
    if (!onExtra && publish && (done % config.evaluation.every === 0 || done === config.totalSteps)) await evaluate(done);
  }

  await flushAudit();
  progress.stage = stopped ? 'stopped' : 'completed';
  upsertSearchAttributes([{ key: SparkStatus, value: progress.stage }]);
  return { steps: rlStepOf(s), ...(extra ? { trainerSteps: s.step } : {}), stopped, checkpoint: s.lastCheckpoint, servedModel: s.servedModel, metricsPrefix: joinKey(prefix, 'metrics'), evals: s.evals };
}
