import { ApplicationFailure } from '@temporalio/common';
import { ZodError } from 'zod';
import { InferenceError } from '../inference/client.js';
import { ObjectAccessError, ObjectNotFoundError, S3ConfigError } from '../store/s3-store.js';
import { TrainerError } from '../trainer/client.js';

/** Failure types, so retry policies and people can tell what went wrong. */
export const FailureType = {
  invalidInput: 'InvalidInput',
  objectNotFound: 'ObjectNotFound',
  objectAccess: 'ObjectAccess',
  /** The worker's S3 settings cannot work (credentials, bucket, endpoint host): fix them and restart the worker. */
  s3Config: 'S3Config',
  invalidDataset: 'InvalidDataset',
  inference: (kind: string) => `Inference.${kind}`,
  trainer: (code: string) => `Trainer.${code}`,
} as const;

/** A dataset that cannot be used as given (bad rows, missing fields, wrong kind): retrying cannot help. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
}

/**
 * The single place where backend errors become Temporal failures: transient trouble is
 * retryable (with the server's retry-after as the next delay), bad input and missing data are not.
 */
export function toApplicationFailure(err: unknown): Error {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof InferenceError) {
    return ApplicationFailure.create({
      type: FailureType.inference(err.kind),
      message: err.message,
      nonRetryable: !err.retryable,
      nextRetryDelay: err.retryAfterMs !== undefined ? Math.max(1, Math.round(err.retryAfterMs)) : undefined,
      details: [{ kind: err.kind, status: err.status ?? null }],
    });
  }
  if (err instanceof TrainerError) {
    return ApplicationFailure.create({
      type: FailureType.trainer(err.code),
      message: err.message,
      nonRetryable: !err.retryable,
      details: [{ code: err.code, status: err.status ?? null, ...(err.details ? { details: err.details } : {}) }],
    });
  }
  if (err instanceof ObjectNotFoundError) {
    return ApplicationFailure.create({ type: FailureType.objectNotFound, message: err.message, nonRetryable: true });
  }
  if (err instanceof S3ConfigError) {
    return ApplicationFailure.create({ type: FailureType.s3Config, message: `worker S3 settings: ${err.message}`, nonRetryable: true });
  }
  if (err instanceof ObjectAccessError) {
    return ApplicationFailure.create({ type: FailureType.objectAccess, message: err.message, nonRetryable: true });
  }
  if (err instanceof DatasetError) {
    return ApplicationFailure.create({ type: FailureType.invalidDataset, message: err.message, nonRetryable: true });
  }
  if (err instanceof ZodError) {
    return ApplicationFailure.create({ type: FailureType.invalidInput, message: formatZodError(err), nonRetryable: true });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** `field.path: what was expected` lines a person can act on. */
export function formatZodError(err: ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(input)'}: ${i.message}`).join('; ');
}

/** Wraps an activity body so every error leaves through toApplicationFailure. */
export async function mapFailures<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toApplicationFailure(err);
  }
}
