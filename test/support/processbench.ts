import { randomUUID } from 'node:crypto';
import type { ObjectStore } from '../../src/backends/s3-store.js';
import type { SandboxProcessBenchSplit } from '../../src/domain/processbench-sandbox.js';

/** Writes each split of a sandbox ProcessBench as its own JSONL file, as published; returns split → S3 URI. */
export async function uploadSandboxBenchmark(store: ObjectStore, benchmark: readonly SandboxProcessBenchSplit[]): Promise<Record<string, string>> {
  const folder = `test/processbench/${randomUUID()}`;
  const uris: Record<string, string> = {};
  for (const { split, rows } of benchmark) {
    const ref = await store.put(`${folder}/${split}.jsonl`, rows.map((r) => JSON.stringify(r)).join('\n') + '\n', 'application/x-ndjson');
    uris[split] = ref.uri;
  }
  return uris;
}
