import {
  ApplicationFailure, continueAsNew, defineQuery, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { PrmDataActivities, PrmDataResult } from './train-prm.activities.js';
import type { PreparedBatches, StepMetrics, TrainingActivities } from '../../core/trainer/activities.js';
import type { TrainPrmConfig, TrainPrmInput } from './train-prm.input.js';
import { TrainPrmInputSchema } from './train-prm.input.js';
import { hashParts } from '../../core/random.js';
import type { ObjectRef } from '../../core/store/refs.js';
import { joinKey, parseS3Uri } from '../../core/store/refs.js';
import type { PublishResponse } from '../../core/trainer/protocol.js';
import { checkpointUri, sessionIdFor } from '../../core/trainer/plan.js';
import { bulkIo, trainerChunk } from '../../core/temporal/activity-presets.js';
import { SparkConfigHash, SparkRun, SparkStage, SparkStatus, SparkStep } from '../../core/temporal/search-attributes.js';
import { claimRunOutputs } from '../../core/temporal/run-outputs.workflow.js';
import { parseWorkflowInput } from '../../core/temporal/validate.js';

const data = proxyActivities<PrmDataActivities & Pick<TrainingActivities, 'prepareTrainBatches'>>(bulkIo);
const trainer = proxyActivities<Pick<TrainingActivities, 'trainSteps' | 'publishModel'>>(trainerChunk);

/** What a run hands to the next after continue-as-new. */
export interface TrainPrmState {
  prmData: PrmDataResult;
  batches: PreparedBatches;
  sessionId: string;
  /** Steps [0, stepsDone) are in `checkpoint`. */
  stepsDone: number;
  checkpoint: string | null;
  lossCurve: LossPoint[];
  recreatedSessions: number;
  runs: number;
}

/** Mean training loss of one checkpointed chunk of steps. */
export interface LossPoint {
  step: number;
  loss: number;
}

export interface TrainPrmProgress {
  stage: 'building-data' | 'training' | 'publishing' | 'completed';
  stepsDone: number;
  steps: number;
  examples: number;
  lastLoss: number | null;
  checkpoint: string | null;
  /** Times the trainer had lost the session and it was recreated from a checkpoint. */
  recreatedSessions: number;
  runs: number;
}

export interface TrainPrmResult {
  data: ObjectRef;
  dataManifest: ObjectRef;
  batchesManifest: ObjectRef;
  examples: number;
  steps: number;
  checkpoint: string;
  sessionId: string;
  lossCurve: LossPoint[];
  /** The served model, when `publish` was given. */
  model: PublishResponse | null;
}

export const trainPrmProgress = defineQuery<TrainPrmProgress>('progress');

/** Chunks kept per run before continuing as new (each is a few events). */
const CHUNKS_PER_RUN = 500;

/**
 * SPARK stage 2: fine-tune a generative reward model on stage-1 labels. Builds the SFT data in
 * the chosen style, lays out the batches, runs the steps on a trainer server in chunks that each
 * end in a committed checkpoint, and publishes the weights to an inference server.
 *
 * Crash-safe by construction: steps are idempotent by number; a lost trainer session is
 * recreated from the newest committed checkpoint by the activity; the workflow only moves past
 * a chunk once its checkpoint is committed.
 */
export async function trainPrm(rawInput: TrainPrmInput, state?: TrainPrmState): Promise<TrainPrmResult> {
  const config: TrainPrmConfig = parseWorkflowInput(TrainPrmInputSchema, rawInput, 'trainPrm');
  const prefix = config.outputPrefix ?? joinKey('runs', config.runName, 'prm');
  const info = workflowInfo();
  const configHash = hashParts(JSON.stringify({ ...config, runName: null, outputPrefix: null }));
  // The prefix's outputs do not depend on where the trainer runs or where the model is served, so
  // the claim leaves those out: a re-run that only publishes elsewhere (or not at all) reuses them.
  const decisive = { ...config, runName: null, outputPrefix: null, trainer: null, publish: null };
  const progress: TrainPrmProgress = {
    stage: state ? 'training' : 'building-data',
    stepsDone: state?.stepsDone ?? 0,
    steps: state?.batches.steps ?? 0,
    examples: state?.batches.examples ?? 0,
    lastLoss: state?.lossCurve.at(-1)?.loss ?? null,
    checkpoint: state?.checkpoint ?? null,
    recreatedSessions: state?.recreatedSessions ?? 0,
    runs: state?.runs ?? 1,
  };
  setHandler(trainPrmProgress, () => progress);
  upsertSearchAttributes([
    { key: SparkRun, value: config.runName },
    { key: SparkStage, value: 'train-prm' },
    { key: SparkStatus, value: 'running' },
    { key: SparkConfigHash, value: configHash },
  ]);
  // Another configuration's data, checkpoints and model under this prefix are refused, not replaced.
  if (!state) await claimRunOutputs({ prefix, workflow: 'trainPrm', runName: config.runName, workflowId: info.workflowId, configHash: hashParts(JSON.stringify(decisive)), decisive });

  const prmData = state?.prmData ?? (await data.buildPrmData({
    labelsManifestUri: config.labelsManifestUri,
    options: { method: config.method, style: config.style, ...config.data, seed: config.seed },
    outputPrefix: joinKey(prefix, 'data'),
  }));
  if (prmData.lines === 0) {
    throw ApplicationFailure.create({
      type: 'InvalidDataset',
      nonRetryable: true,
      message: `no training examples: every labelled solution was dropped (${JSON.stringify(prmData.counts.dropped)}); see ${prmData.manifest.uri}`,
    });
  }
  const batches = state?.batches ?? (await data.prepareTrainBatches({ data: prmData.data, epochs: config.epochs, batchSize: config.batchSize, seed: config.seed, outputPrefix: joinKey(prefix, 'batches') }));
  progress.stage = 'training';
  progress.steps = batches.steps;
  progress.examples = batches.examples;

  const bucketUri = `s3://${parseS3Uri(prmData.data.uri).bucket}`;
  const sessionId = state?.sessionId ?? sessionIdFor(info.workflowId, info.firstExecutionRunId);
  const session = { baseModel: config.baseModel, adapter: config.adapter, optimizer: config.optimizer, seed: config.seed };
  // Checkpoints are keyed by what determines them, so a re-run with the same data and settings
  // reuses them and a run with other settings never resumes from them.
  const checkpointPrefix = joinKey(prefix, 'checkpoints', hashParts(JSON.stringify(session), batches.manifest.sha256).slice(0, 16));
  let checkpoint = state?.checkpoint ?? null;
  const lossCurve = state?.lossCurve ?? [];
  let chunks = 0;
  while (progress.stepsDone < batches.steps) {
    if (chunks >= CHUNKS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      return continueAsNew<typeof trainPrm>(rawInput, {
        prmData, batches, sessionId, stepsDone: progress.stepsDone, checkpoint, lossCurve, recreatedSessions: progress.recreatedSessions, runs: progress.runs + 1,
      });
    }
    const to = Math.min(batches.steps, progress.stepsDone + config.checkpointEvery);
    const out = await trainer.trainSteps({
      trainerURL: config.trainer.baseURL,
      sessionId,
      config: session,
      batchesManifestUri: batches.manifest.uri,
      loss: { kind: 'sft' },
      from: progress.stepsDone,
      to,
      checkpointUri: checkpointUri(bucketUri, checkpointPrefix, to),
      resumeFrom: checkpoint,
    });
    chunks++;
    checkpoint = out.checkpoint.uri;
    lossCurve.push({ step: to - 1, loss: meanLoss(out.metrics) });
    progress.stepsDone = to;
    progress.checkpoint = checkpoint;
    progress.lastLoss = lossCurve.at(-1)!.loss;
    progress.recreatedSessions += out.recreated;
    upsertSearchAttributes([{ key: SparkStep, value: to }]);
  }

  let model: PublishResponse | null = null;
  if (config.publish && checkpoint) {
    progress.stage = 'publishing';
    model = await trainer.publishModel({
      trainerURL: config.trainer.baseURL,
      sessionId,
      config: session,
      checkpointUri: checkpoint,
      inferenceBaseURL: config.publish.inferenceBaseURL,
      modelName: config.publish.modelName ?? `${config.runName}-prm`,
    });
  }
  progress.stage = 'completed';
  upsertSearchAttributes([{ key: SparkStatus, value: 'completed' }]);
  return {
    data: prmData.data,
    dataManifest: prmData.manifest,
    batchesManifest: batches.manifest,
    examples: batches.examples,
    steps: batches.steps,
    checkpoint: checkpoint!,
    sessionId,
    lossCurve,
    model,
  };
}

function meanLoss(metrics: readonly StepMetrics[]): number {
  return metrics.length === 0 ? Number.NaN : metrics.reduce((s, m) => s + m.loss, 0) / metrics.length;
}
