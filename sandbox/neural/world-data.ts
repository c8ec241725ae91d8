/**
 * The neural world's datasets on S3, drawn from the distribution a world was trained on
 * (`world.json`'s `problems`) with seeds of their own: problems for stage 1 and for GRPO (with
 * answers, for the verifiable reward and held-out accuracy) and a world ProcessBench split.
 * Each is written once under a name that says what it holds.
 */
import type { ObjectStore } from '../../src/core/store/s3-store.js';
import type { ObjectRef } from '../../src/core/store/refs.js';
import { joinKey } from '../../src/core/store/refs.js';
import { hashParts } from '../../src/core/random.js';
import type { WorldProblemSettings } from './world-text.js';
import { worldProblems, worldProcessBench } from './world-text.js';

function settingsTag(settings: WorldProblemSettings): string {
  return hashParts(JSON.stringify(settings)).slice(0, 8);
}

/** `count` world problems drawn under `seed` as a JSONL dataset of `{id, question[, answer]}`. */
export async function worldDataset(store: ObjectStore, settings: WorldProblemSettings, opts: { seed: string; count: number; withAnswers?: boolean }): Promise<ObjectRef> {
  const rows = worldProblems(settings, opts.seed, opts.count).map((p) =>
    JSON.stringify(opts.withAnswers ? { id: p.id, question: p.question, answer: String(p.answer) } : { id: p.id, question: p.question }));
  const name = joinKey('datasets', `neural-world-${settingsTag(settings)}`, `${opts.seed}-${opts.count}${opts.withAnswers ? '-answers' : ''}.jsonl`);
  const { ref } = await store.putIfAbsent(name, rows.join('\n') + '\n', 'application/x-ndjson');
  return ref;
}

/** A world ProcessBench split (`world`) of `rows` rows, half with an error; returns split → S3 URI as `evaluatePrm` takes it. */
export async function worldProcessBenchSplits(store: ObjectStore, settings: WorldProblemSettings, opts: { seed: string; rows: number }): Promise<Record<string, string>> {
  const rows = worldProcessBench(settings, opts.seed, opts.rows);
  const key = joinKey('benchmarks', `neural-world-${settingsTag(settings)}`, `${opts.seed}-${opts.rows}`, 'world.jsonl');
  const { ref } = await store.putIfAbsent(key, rows.map((r) => JSON.stringify(r)).join('\n') + '\n', 'application/x-ndjson');
  return { world: ref.uri };
}
