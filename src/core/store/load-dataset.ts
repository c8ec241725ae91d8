import { readFile } from 'node:fs/promises';
import type { ObjectStore } from './s3-store.js';
import { sha256Hex } from './s3-store.js';
import type { FieldMap, Problem } from './dataset.js';
import { parseProblems } from './dataset.js';
import { DatasetError } from '../temporal/failures.js';

/**
 * Rows [offset, offset+limit) of a JSONL problem dataset, from S3 or a path on this worker, and
 * the sha256 of the whole file (lineage). A row that cannot be read fails with the line and field.
 */
export async function readProblems(
  store: ObjectStore,
  uri: string,
  range: { fields: FieldMap; offset: number; limit?: number | undefined },
): Promise<{ problems: Problem[]; sha256: string }> {
  let text: string;
  if (uri.startsWith('s3://')) text = await store.getText(uri);
  else {
    try {
      text = await readFile(uri, 'utf8');
    } catch (err) {
      throw new DatasetError(`dataset ${uri} cannot be read on this worker: ${(err as Error).message}`);
    }
  }
  try {
    return { problems: parseProblems(text, range.fields, range.offset, range.limit ?? Infinity), sha256: sha256Hex(text) };
  } catch (err) {
    throw new DatasetError(`${uri}: ${(err as Error).message}`);
  }
}
