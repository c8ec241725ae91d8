import { randomUUID } from 'node:crypto';
import type { ObjectStore } from '../../src/core/store/s3-store.js';
import { generateProblems } from '../../sandbox/arith.js';
import type { ObjectRef } from '../../src/core/store/refs.js';

/** Writes `count` sandbox problems as a JSONL dataset under a fresh key (with `answer` fields if asked). */
export async function uploadSandboxProblems(store: ObjectStore, opts: { seed: number; count: number; withAnswers?: boolean }): Promise<ObjectRef> {
  const rows = generateProblems({ seed: opts.seed, count: opts.count })
    .map((p) => JSON.stringify({ id: p.id, question: p.question, ...(opts.withAnswers ? { answer: String(p.answer) } : {}) }));
  return store.put(`test/datasets/${randomUUID()}.jsonl`, `${rows.join('\n')}\n`, 'application/x-ndjson');
}
