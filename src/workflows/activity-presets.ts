import type { ActivityOptions } from '@temporalio/workflow';

/**
 * Options declared once per kind of call. Non-retryable failures (bad input, missing data,
 * 4xx from a model server) are marked so by the activities, not listed here.
 */

/** A call to a model server: may queue behind other work on a busy GPU, so allow minutes. */
export const llmCall: ActivityOptions = {
  startToCloseTimeout: '15 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 30 },
};

/** Small reads and writes to the object store. */
export const storeIo: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
};
