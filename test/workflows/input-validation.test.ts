import { describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { connectClient, uniqueTaskQueue, withWorker } from '../support/harness.js';

describe('workflow input validation on the worker', () => {
  it('fails a run started with bad input at once, naming each field and what was expected', async () => {
    const taskQueue = uniqueTaskQueue('validation');
    const { client, close } = await connectClient();
    try {
      await withWorker({ taskQueue }, async () => {
        const handle = await client.workflow.start('sampleSolutions', {
          taskQueue,
          workflowId: `test/${taskQueue}`,
          args: [{ runName: 'bad name!', dataset: { uri: '/tmp/local.jsonl' }, generator: { endpoint: { baseURL: 'nope' } } }],
        });
        const err = await handle.result().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const cause = (err as WorkflowFailedError).cause;
        expect(cause).toBeInstanceOf(ApplicationFailure);
        const failure = cause as ApplicationFailure;
        expect(failure.type).toBe('InvalidInput');
        expect(failure.nonRetryable).toBe(true);
        expect(failure.message).toContain('runName:');
        expect(failure.message).toContain('dataset.uri: an S3 URI like s3://bucket/datasets/problems.jsonl');
        expect(failure.message).toContain('generator.endpoint.baseURL');
        expect(failure.message).toContain('generator.model');
      });
    } finally {
      await close();
    }
  });
});
