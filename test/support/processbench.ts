import { randomUUID } from 'node:crypto';
import type { ObjectStore } from '../../src/core/store/s3-store.js';
import type { SandboxProcessBenchOptions, SandboxProcessBenchSplit } from '../../sandbox/processbench-sandbox.js';
import { generateSandboxProcessBench } from '../../sandbox/processbench-sandbox.js';

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

/** Generates a sandbox ProcessBench (true labels known) and writes it as {@link uploadSandboxBenchmark} does. */
export function uploadGeneratedSandboxBenchmark(store: ObjectStore, options: SandboxProcessBenchOptions): Promise<Record<string, string>> {
  return uploadSandboxBenchmark(store, generateSandboxProcessBench(options));
}
