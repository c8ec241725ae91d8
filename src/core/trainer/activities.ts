/**
 * Activities that drive a trainer server (trainer protocol v1): lay out the batches, run a range
 * of train steps ending in a committed checkpoint, publish the weights.
 *
 * Recovery lives here, not in the trainer: a retried activity finds its session and goes on from
 * the session's `nextStep`; a trainer that lost the session (restart, crash) or failed it (a
 * runtime error, a non-finite loss) gets it recreated from the newest committed checkpoint, and
 * the steps after it are replayed on the restored weights. Steps are idempotent by number, so
 * nothing is applied twice to the same weights.
 */
import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { TrainerClient, TrainerError } from './client.js';
import type { ChatMessage } from '../inference/chat.js';
import type { ObjectRef } from '../store/refs.js';
import { joinKey } from '../store/refs.js';
import type { CheckpointInfo, Loss, SessionConfig, SessionState } from './protocol.js';
import { CHECKPOINT_MARKER_NAME } from './protocol.js';
import { planBatches, toSftExample } from './plan.js';
import type { ObjectStore } from '../store/s3-store.js';
import type { ActivityDeps } from '../deps.js';
import { DatasetError, mapFailures } from '../temporal/failures.js';
import { activityCancellation, withHeartbeat } from '../temporal/heartbeat.js';

/** One planned step: its batch in S3. */
const PlannedStepSchema = z.object({ step: z.number().int(), epoch: z.number().int(), examples: z.number().int(), batch: z.object({ uri: z.string(), sha256: z.string(), bytes: z.number() }) });

/** `batches/manifest.json`: the whole data order of a training run. */
const BatchesManifestSchema = z.object({
  kind: z.literal('spark.train-batches'),
  version: z.literal(1),
  data: z.object({ uri: z.string(), sha256: z.string(), bytes: z.number() }),
  epochs: z.number().int(),
  batchSize: z.number().int(),
  seed: z.number().int(),
  examples: z.number().int(),
  steps: z.array(PlannedStepSchema),
});
type BatchesManifest = z.infer<typeof BatchesManifestSchema>;

export interface PreparedBatches {
  manifest: ObjectRef;
  steps: number;
  examples: number;
}

/** Per-step numbers the workflow keeps: small, so a chunk's worth fits in history. */
export interface StepMetrics {
  step: number;
  loss: number;
  examples: number;
}

export interface TrainStepsInput {
  trainerURL: string;
  sessionId: string;
  config: Omit<SessionConfig, 'resumeFrom'>;
  batchesManifestUri: string;
  loss: Loss;
  /** Apply steps [from, to), then commit a checkpoint at `checkpointUri`. */
  from: number;
  to: number;
  checkpointUri: string;
  /** The newest checkpoint the workflow knows is committed; null before the first. */
  resumeFrom: string | null;
}

export interface TrainStepsResult {
  checkpoint: CheckpointInfo;
  metrics: StepMetrics[];
  /** Steps the trainer applied in this call (replays after a lost session count too). */
  applied: number;
  /** Sessions created again because the trainer had lost them. */
  recreated: number;
}

/** Heartbeat details of trainSteps: the next step the session will take. */
interface TrainProgress {
  nextStep: number;
  /** Why the session was last created again (the trainer had failed it), for people watching the run. */
  recovered?: string;
}

const MAX_RECREATIONS = 3;

/** Whether a checkpoint's marker exists: no marker, no checkpoint. */
export async function checkpointCommitted(store: ObjectStore, uri: string): Promise<boolean> {
  return (await store.head(store.keyOf(`${uri}/${CHECKPOINT_MARKER_NAME}`))) !== null;
}

/** What {@link ensureTrainerSession} found and did. */
export interface EnsuredSession {
  session: SessionState;
  /** The session was created by this call (it was unknown to the trainer, or had failed there). */
  created: boolean;
  /** Set when a failed session was replaced: what the trainer said went wrong, and where it resumed. */
  replacedFailed?: string;
}

/**
 * The session, as the trainer has it; created (again) when the trainer does not know it or has
 * failed it, resuming from the newest committed of `candidates` (in order of preference).
 *
 * A `failed` session (the trainer's runtime raised, or a step's loss was not finite) keeps its
 * place on the trainer but its weights are in an unknown state, and the trainer answers its steps
 * with `unknown-session`; a create with the same sessionId replaces it. So it is treated as lost:
 * trusting it would send every step into `unknown-session` again and never recover.
 * Must run in an activity (it logs the replacement through the activity's logger).
 */
export async function ensureTrainerSession(
  store: ObjectStore,
  client: TrainerClient,
  sessionId: string,
  config: Omit<SessionConfig, 'resumeFrom'>,
  candidates: readonly (string | null)[],
): Promise<EnsuredSession> {
  let failedBecause: string | undefined;
  try {
    const session = await client.getSession(sessionId);
    if (session.status !== 'failed') return { session, created: false };
    failedBecause = session.statusMessage ?? 'the trainer gave no reason';
  } catch (err) {
    if (!(err instanceof TrainerError && err.code === 'unknown-session')) throw err;
  }
  let resumeFrom: string | undefined;
  for (const uri of candidates) {
    if (uri !== null && (await checkpointCommitted(store, uri))) {
      resumeFrom = uri;
      break;
    }
  }
  let replacedFailed: string | undefined;
  if (failedBecause !== undefined) {
    replacedFailed = `session ${sessionId} failed on the trainer (${failedBecause}); recreated from ${resumeFrom ?? 'fresh weights (no committed checkpoint)'}`;
    Context.current().log.warn(replacedFailed, { sessionId, trainerMessage: failedBecause, resumeFrom: resumeFrom ?? null });
  }
  const res = await client.createSession({ sessionId, ...config, ...(resumeFrom ? { resumeFrom } : {}) });
  return { session: res.session, created: res.created, ...(replacedFailed ? { replacedFailed } : {}) };
}

export function createTrainingActivities({ store }: Pick<ActivityDeps, 'store'>) {
  const ensureSession = (client: TrainerClient, sessionId: string, config: TrainStepsInput['config'], candidates: (string | null)[]) =>
    ensureTrainerSession(store, client, sessionId, config, candidates);

  return {
    /**
     * Turns PRM data (chat examples) into one SFT batch file per train step, in a seeded order
     * per epoch, plus a manifest. Keys are fixed by `outputPrefix`; an existing manifest for the
     * same data and plan is reused, so a retry rewrites nothing.
     */
    async prepareTrainBatches(input: { data: ObjectRef; epochs: number; batchSize: number; seed: number; outputPrefix: string }): Promise<PreparedBatches> {
      return mapFailures(async () => {
        const manifestKey = joinKey(input.outputPrefix, 'manifest.json');
        const existing = BatchesManifestSchema.safeParse(await store.getJsonIfExists(manifestKey));
        if (existing.success && existing.data.data.sha256 === input.data.sha256 && existing.data.epochs === input.epochs && existing.data.batchSize === input.batchSize && existing.data.seed === input.seed) {
          const ref = await store.head(manifestKey);
          if (ref) return { manifest: ref, steps: existing.data.steps.length, examples: existing.data.examples };
        }
        const lines = (await store.getText(input.data.uri)).split('\n').filter((l) => l.trim() !== '');
        const examples = lines.map((line, i) => {
          try {
            return JSON.stringify(toSftExample((JSON.parse(line) as { messages: ChatMessage[] }).messages));
          } catch (err) {
            throw new DatasetError(`${input.data.uri} line ${i + 1}: ${(err as Error).message}`);
          }
        });
        if (examples.length === 0) throw new DatasetError(`${input.data.uri} has no examples: nothing to train on (were all labels dropped? see the PRM data manifest's counts)`);
        const plan = planBatches(examples.length, input);
        const steps: BatchesManifest['steps'] = [];
        for (const [step, { epoch, indices }] of plan.entries()) {
          const body = indices.map((i) => examples[i]).join('\n') + '\n';
          const batch = await store.put(joinKey(input.outputPrefix, `step-${String(step).padStart(6, '0')}.jsonl`), body, 'application/x-ndjson');
          steps.push({ step, epoch, examples: indices.length, batch });
        }
        const manifest: BatchesManifest = { kind: 'spark.train-batches', version: 1, data: input.data, epochs: input.epochs, batchSize: input.batchSize, seed: input.seed, examples: examples.length, steps };
        return { manifest: await store.putJson(manifestKey, manifest), steps: steps.length, examples: examples.length };
      });
    },

    /**
     * Applies steps [from, to), then saves the checkpoint at `checkpointUri` and the steps'
     * metrics next to it (`<checkpoint>.metrics.json`). Heartbeats the next step; survives its own
     * retries and trainer restarts; a chunk already committed with its metrics is returned as is.
     */
    async trainSteps(input: TrainStepsInput): Promise<TrainStepsResult> {
      return mapFailures(async () => {
        const client = new TrainerClient(input.trainerURL, { signal: activityCancellation() });
        const manifest = BatchesManifestSchema.parse(await store.getJson(input.batchesManifestUri));
        if (input.to > manifest.steps.length) throw new DatasetError(`${input.batchesManifestUri} plans ${manifest.steps.length} steps; step ${input.to - 1} does not exist`);
        // A chunk committed before (a re-run, or a retry after the save) is read back, not trained again.
        const metricsKey = store.keyOf(`${input.checkpointUri}.metrics.json`);
        const marker = await store.getJsonIfExists<{ step: number | null }>(store.keyOf(`${input.checkpointUri}/${CHECKPOINT_MARKER_NAME}`));
        const savedMetrics = marker ? await store.getJsonIfExists<StepMetrics[]>(metricsKey) : null;
        if (marker && savedMetrics) {
          return { checkpoint: { uri: input.checkpointUri, step: marker.step, markerUri: `${input.checkpointUri}/${CHECKPOINT_MARKER_NAME}` }, metrics: savedMetrics, applied: 0, recreated: 0 };
        }
        const progress: TrainProgress = { nextStep: -1 };
        let recreated = 0;
        let applied = 0;
        const metrics = new Map<number, StepMetrics>();
        return withHeartbeat(async () => {
          // This chunk's own checkpoint first: a previous attempt may have committed it already.
          const candidates = [input.checkpointUri, input.resumeFrom];
          // Says at once (not at the next beat, which a short chunk may never reach) why the session was recreated.
          const noteRecovery = (ensured: EnsuredSession) => {
            if (!ensured.replacedFailed) return;
            progress.recovered = ensured.replacedFailed;
            Context.current().heartbeat(progress);
          };
          const first = await ensureSession(client, input.sessionId, input.config, candidates);
          let { session } = first;
          noteRecovery(first);
          // Past the first chunk (or on a retry) the session should exist: creating it means the trainer lost it.
          if (first.created && (first.replacedFailed || input.resumeFrom !== null || Context.current().info.attempt > 1)) recreated++;
          // Steps the session already has are asked again: the trainer answers with their stored
          // metrics (applied: false) and refuses a different batch under the same number.
          let next = Math.min(input.from, session.nextStep);
          while (next < input.to) {
            progress.nextStep = next;
            const planned = manifest.steps[next]!;
            try {
              const res = await client.trainStep(input.sessionId, { step: next, batch: planned.batch, loss: input.loss });
              if (res.applied) applied++;
              if (next >= input.from) metrics.set(next, { step: next, loss: res.metrics.loss ?? Number.NaN, examples: res.metrics.examples ?? planned.examples });
              next++;
            } catch (err) {
              // The trainer restarted under us, or failed the session: recreate it from the newest checkpoint and go on from there.
              if (!(err instanceof TrainerError && err.code === 'unknown-session') || recreated >= MAX_RECREATIONS) throw err;
              recreated++;
              const again = await ensureSession(client, input.sessionId, input.config, candidates);
              session = again.session;
              noteRecovery(again);
              next = Math.min(input.from, session.nextStep);
            }
          }
          const saved = await client.saveCheckpoint(input.sessionId, { uri: input.checkpointUri, step: input.to - 1 });
          const chunkMetrics = [...metrics.values()].sort((a, b) => a.step - b.step);
          await store.putJson(metricsKey, chunkMetrics);
          return {
            checkpoint: { uri: saved.uri, step: saved.step, markerUri: saved.markerUri },
            metrics: chunkMetrics,
            applied,
            recreated,
          };
        }, () => progress);
      });
    },

    /** Serves a committed checkpoint from an inference server under `modelName` (idempotent by name). */
    async publishModel(input: { trainerURL: string; sessionId: string; config: TrainStepsInput['config']; checkpointUri: string; inferenceBaseURL: string; modelName: string }) {
      return mapFailures(async () => {
        const client = new TrainerClient(input.trainerURL, { signal: activityCancellation() });
        await ensureSession(client, input.sessionId, input.config, [input.checkpointUri]);
        return client.publish(input.sessionId, { inferenceBaseURL: input.inferenceBaseURL, modelName: input.modelName, checkpointUri: input.checkpointUri });
      });
    },
  };
}

export type TrainingActivities = ReturnType<typeof createTrainingActivities>;
