/**
 * Replays recorded histories (test/fixtures/histories/*.binpb, recorded with scripts/record-history.ts)
 * against the current workflow bundle. A code change that would make running workflows
 * nondeterministic fails here: guard it with `patched()` and record a new fixture.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import proto from '@temporalio/proto';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { repoRoot } from '../support/paths.js';

const dir = join(repoRoot, 'test/fixtures/histories');
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.binpb')).sort();
/** Fixture name → the workflow ID it ran under (workflows derive child IDs from it). */
const workflowIds = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as Record<string, string>;

describe('recorded histories replay on the current workflow code', () => {
  it('has fixtures to replay', () => {
    expect(fixtures.length).toBeGreaterThan(0);
  });

  it.each(fixtures)('%s', { timeout: 60_000 }, async (file) => {
    const history = proto.temporal.api.history.v1.History.decode(readFileSync(join(dir, file)));
    const workflowId = workflowIds[file.replace(/\.binpb$/, '')];
    expect(workflowId, `${file} is listed in index.json`).toBeDefined();
    await Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') } }, history, workflowId);
  });
});

describe('replay catches a workflow change that is not patched', () => {
  it('fails trainPrm\'s recorded history on a bundle whose trainPrm sleeps first', { timeout: 120_000 }, async () => {
    const { code } = await bundleWorkflowCode({ workflowsPath: join(repoRoot, 'test/support/changed-workflows.ts'), logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} } as never });
    const history = proto.temporal.api.history.v1.History.decode(readFileSync(join(dir, 'trainPrm.binpb')));
    const replay = Worker.runReplayHistory({ workflowBundle: { code } }, history, workflowIds.trainPrm);
    await expect(replay).rejects.toBeInstanceOf(DeterminismViolationError);
  });
});

