import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';

/**
 * Validates a workflow's one JSON input on the worker side, so runs started from the
 * `temporal` CLI, tctl or the Web UI get the same clear errors as the project's CLI.
 * Bad input fails the run at once (non-retryable) naming each field and what was expected.
 */
export function parseWorkflowInput<S extends z.ZodType>(schema: S, raw: unknown, workflow: string): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(input)'}: ${i.message}`);
  throw ApplicationFailure.create({
    type: 'InvalidInput',
    nonRetryable: true,
    message: `invalid ${workflow} input: ${problems.join('; ')}`,
    details: [problems],
  });
}
