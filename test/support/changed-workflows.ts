/**
 * The workflow bundle with one deliberate change that is not patched: `trainPrm` sleeps before
 * it does anything else, so its first command differs from a recorded history's. The replay test
 * checks that replaying against it fails, i.e. that replay can catch such a change.
 */
import { sleep } from '@temporalio/workflow';
import { trainPrm as recorded } from '../../src/workflows/index.js';

export * from '../../src/workflows/index.js';

export async function trainPrm(...args: Parameters<typeof recorded>): ReturnType<typeof recorded> {
  await sleep('1 second');
  return recorded(...args);
}
