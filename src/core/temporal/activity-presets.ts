import type { ActivityOptions } from '@temporalio/workflow';

/**
 * Options declared once per kind of call. Non-retryable failures (bad input, missing data,
 * 4xx from a model server) are marked so by the activities, not listed here.
 */

/**
 * A call to a model server: may queue behind other work on a busy GPU, so allow minutes; the
 * activity heartbeats every second while waiting, so a dead worker is noticed in 10 s.
 */
export const llmCall: ActivityOptions = {
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 30 },
};

/** Small reads and writes to the object store. */
export const storeIo: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
};

/**
 * Many model calls in one activity (all solutions and verifications of a problem): allow an
 * hour on busy servers; heartbeats still notice a dead worker in 10 s, and the stored samples
 * make a retry pay only for calls that had not finished.
 */
export const modelBatch: ActivityOptions = { ...llmCall, startToCloseTimeout: '1 hour' };

/** Reading or writing a whole dataset or run's outputs (thousands of objects): up to 30 minutes. */
export const bulkIo: ActivityOptions = { ...storeIo, startToCloseTimeout: '30 minutes' };

/** {@link bulkIo} for activities that heartbeat as they go, so a dead worker is noticed in a minute. */
export const bulkIoHeartbeat: ActivityOptions = { ...bulkIo, heartbeatTimeout: '1 minute' };

/**
 * Train steps on a trainer server: a step can take minutes on a busy GPU; heartbeats notice a
 * dead worker in 30 s; a trainer that is down is retried with backoff for about an hour.
 * `trainerChunk` runs several steps (and a checkpoint) in one activity, `trainerStep` one step
 * with its checkpoint and publish.
 */
const trainerRetry: ActivityOptions['retry'] = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 60 };
export const trainerChunk: ActivityOptions = { startToCloseTimeout: '1 hour', heartbeatTimeout: '30 seconds', retry: trainerRetry };
export const trainerStep: ActivityOptions = { startToCloseTimeout: '2 hours', heartbeatTimeout: '30 seconds', retry: trainerRetry };
