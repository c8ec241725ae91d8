import { patched, proxyActivities } from '@temporalio/workflow';
import type { ClaimRunOutputsInput, RunOutputActivities } from '../store/run-outputs.js';
import { storeIo } from './activity-presets.js';

const claims = proxyActivities<RunOutputActivities>(storeIo);

/** The patch that added the claim: histories recorded before it replay without the activity. */
export const CLAIM_RUN_OUTPUTS_PATCH = 'claim-run-outputs';

/**
 * Claims the stage's output prefix for this configuration before anything is written there
 * (src/core/store/run-outputs.ts); fails the run when the prefix holds another configuration's outputs.
 * Call it once, in the first run of a workflow (not after continue-as-new).
 */
export async function claimRunOutputs(input: ClaimRunOutputsInput): Promise<void> {
  if (!patched(CLAIM_RUN_OUTPUTS_PATCH)) return;
  await claims.claimRunOutputs.executeWithOptions({ ...storeIo, summary: `claim ${input.prefix}/ for config ${input.configHash.slice(0, 12)}` }, [input]);
}
