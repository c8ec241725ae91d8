import { createHash } from 'node:crypto';
import type { ChatMessage, SamplingParams } from '../domain/chat.js';
import type { ChatClient } from './deps.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { InferenceError } from '../backends/inference.js';
import type { ObjectStore } from '../backends/s3-store.js';

/** One stored sample: enough to audit where it came from and to reuse it instead of paying again. */
export interface CachedSample {
  key: string;
  index: number;
  text: string;
  finishReason: string;
  model: string;
  responseId: string;
  /** Which request produced it: a run of samples asked for in one call with `n`. */
  request: { seed: number | undefined; n: number; choice: number };
}

export interface SampleRequest {
  client: ChatClient;
  model: string;
  messages: ChatMessage[];
  sampling: SamplingParams;
  /** Sample indices wanted, e.g. 0..K-1. */
  indices: number[];
  signal?: AbortSignal;
  /** Called after each request is stored (heartbeat hook). */
  onStored?: (stored: number) => void;
  /** Called for each request answered by the server and each new sample stored (cost accounting). */
  onCall?: () => void;
  onSample?: () => void;
}

export interface SampleResult {
  samples: CachedSample[];
  callsMade: number;
  samplesReused: number;
}

const CACHE_PREFIX = 'cache/chat';

/**
 * Content address of one sample: what was asked, with which sampling settings, and which
 * sample it is. Two runs with the same config hit the same keys; no call is paid twice.
 */
export function sampleKey(model: string, messages: ChatMessage[], sampling: SamplingParams, index: number): string {
  const canonical = JSON.stringify({
    model,
    messages: messages.map((m) => [m.role, m.content]),
    temperature: sampling.temperature,
    topP: sampling.topP ?? null,
    maxTokens: sampling.maxTokens ?? null,
    seed: sampling.seed ?? null,
    index,
  });
  const hash = createHash('sha256').update(canonical).digest('hex');
  return `${CACHE_PREFIX}/${hash.slice(0, 2)}/${hash}.json`;
}

/**
 * Seed of the request that draws samples [start, start+n): distinct per run of samples so
 * samples drawn in separate requests are independent, and stable so a re-run asks the same.
 */
export function requestSeed(seed: number | undefined, start: number): number | undefined {
  if (seed === undefined) return undefined;
  return start === 0 ? seed : (seed * 1_000_003 + start) % 2_147_483_647;
}

/**
 * Returns the wanted samples, reading stored ones and asking the server only for the rest.
 * Each response is written to the store before this returns, so a crash after a call loses
 * at most the calls still in flight. The wanted indices are asked for in contiguous runs, one
 * request with `n` per run where the server supports it, else one request per sample (see
 * {@link planRequests} for runs that are partly stored). Truncated samples are not stored and
 * raise a retryable error after the good ones are kept.
 */
export async function sampleWithCache(store: ObjectStore, req: SampleRequest): Promise<SampleResult> {
  const keys = req.indices.map((i) => sampleKey(req.model, req.messages, req.sampling, i));
  const found = await Promise.all(keys.map((k) => readCached(store, k)));
  const samples = new Map<number, CachedSample>();
  const missing: number[] = [];
  const joined: { index: number; pending: Promise<CachedSample | null> }[] = [];
  req.indices.forEach((index, j) => {
    const hit = found[j];
    const pending = inflight.get(keys[j]!);
    if (hit) samples.set(index, hit);
    else if (pending) joined.push({ index, pending });
    else missing.push(index);
  });

  // Claim the samples this call will draw, so a concurrent identical request in this process
  // waits for them instead of paying again (and two writers never race on one key).
  const claims = new Map<number, { resolve: (s: CachedSample | null) => void }>();
  for (const index of missing) {
    const key = keys[req.indices.indexOf(index)]!;
    let resolve!: (s: CachedSample | null) => void;
    const pending = new Promise<CachedSample | null>((r) => (resolve = r));
    inflight.set(key, pending);
    claims.set(index, {
      resolve: (sample) => {
        inflight.delete(key);
        resolve(sample);
      },
    });
  }

  const requests = await planRequests(store, req, keys, new Set(missing));
  let callsMade = 0;
  let truncated = 0;
  try {
    await Promise.all(
      requests.map(async ({ start, end, take }) => {
        const seed = requestSeed(req.sampling.seed, start);
        const result = await req.client.chat(
          { model: req.model, messages: req.messages, sampling: { ...req.sampling, seed }, n: end - start },
          req.signal,
        );
        callsMade += 1;
        req.onCall?.();
        let cut = 0;
        await Promise.all(
          result.choices.map(async (choice, j) => {
            const index = start + j;
            if (!take.has(index)) return;
            if (choice.finishReason === 'length') {
              cut += 1;
              return;
            }
            const sample: CachedSample = {
              key: keys[req.indices.indexOf(index)]!,
              index,
              text: choice.text,
              finishReason: choice.finishReason,
              model: result.model || req.model,
              responseId: result.id,
              request: { seed, n: end - start, choice: j },
            };
            await store.putJson(sample.key, sample);
            req.onSample?.();
            samples.set(index, sample);
            claims.get(index)?.resolve(sample);
          }),
        );
        if (cut > 0) {
          truncated += cut;
          const marker = truncationKey(keys[req.indices.indexOf(start)]!, end - start);
          const seen = (await store.getJsonIfExists<{ count: number }>(marker))?.count ?? 0;
          await store.putJson(marker, { count: seen + 1 });
        }
        req.onStored?.(samples.size);
      }),
    );
  } finally {
    // Whatever was not stored (failure, truncation) is free to be drawn by the next caller.
    for (const claim of claims.values()) claim.resolve(null);
  }
  let samplesReused = found.filter(Boolean).length;
  for (const { index, pending } of joined) {
    const sample = await pending;
    if (!sample) throw new InferenceError('server-error', `a concurrent request for the same sample (index ${index}) failed; retrying`);
    samples.set(index, sample);
    samplesReused += 1;
  }
  if (truncated > 0) {
    throw new InferenceError('truncated', `${truncated} sample(s) hit the token limit (max_tokens=${req.sampling.maxTokens ?? 'server default'}); kept the others`);
  }
  return { samples: req.indices.map((i) => samples.get(i)!), callsMade, samplesReused };
}

/** A request to send: samples [start, end) with the run's seed; only `take` are stored. */
interface PlannedRequest {
  start: number;
  end: number;
  take: Set<number>;
}

/** After this many truncated answers to the same run, its missing samples are drawn with fresh seeds. */
const SAME_SEED_TRUNCATIONS = 2;

/**
 * Which requests draw the missing samples. The wanted indices form fixed runs (one request with
 * `n` each, or one per sample without `n` support), and a run that lost only some samples (a
 * crash while storing, a truncated answer) is asked again whole with its own seed, so its
 * samples are exactly those of an uninterrupted run. A server that truncates the same seeded
 * run again would do so forever; after {@link SAME_SEED_TRUNCATIONS} the missing samples get
 * requests of their own, with their own seeds.
 */
async function planRequests(store: ObjectStore, req: SampleRequest, keys: string[], missing: Set<number>): Promise<PlannedRequest[]> {
  const runs = req.client.endpoint.supportsN ? contiguousRuns(req.indices) : req.indices.map((i) => [i, i + 1] as const);
  const planned: PlannedRequest[] = [];
  for (const [start, end] of runs) {
    const take = new Set([...missing].filter((i) => i >= start && i < end));
    if (take.size === 0) continue;
    const partial = take.size < end - start;
    const marker = partial ? await store.getJsonIfExists<{ count: number }>(truncationKey(keys[req.indices.indexOf(start)]!, end - start)) : null;
    if ((marker?.count ?? 0) < SAME_SEED_TRUNCATIONS) {
      planned.push({ start, end, take });
      continue;
    }
    for (const [s, e] of contiguousRuns([...take])) planned.push({ start: s, end: e, take: new Set([...take].filter((i) => i >= s && i < e)) });
  }
  return planned;
}

/** Counts truncated answers to the run of `n` samples starting at the sample stored at `firstKey`. */
function truncationKey(firstKey: string, n: number): string {
  return firstKey.replace(/\.json$/, `.n${n}.truncations.json`);
}

/** Samples being drawn by this process right now, by key. */
const inflight = new Map<string, Promise<CachedSample | null>>();

/**
 * A stored sample, or null when there is none. An entry that cannot be read back intact
 * (a checksum mismatch, bad JSON) is treated as absent and drawn again, so one damaged object
 * cannot block a run forever.
 */
async function readCached(store: ObjectStore, key: string): Promise<CachedSample | null> {
  try {
    return await store.getJsonIfExists<CachedSample>(key);
  } catch (err) {
    if (err instanceof SyntaxError || /checksum/i.test((err as Error).message)) return null;
    throw err;
  }
}

function contiguousRuns(indices: readonly number[]): (readonly [number, number])[] {
  const sorted = [...indices].sort((a, b) => a - b);
  const runs: [number, number][] = [];
  for (const i of sorted) {
    const last = runs[runs.length - 1];
    if (last && last[1] === i) last[1] = i + 1;
    else runs.push([i, i + 1]);
  }
  return runs;
}

/** Quick retries of transient failures inside one activity. */
export interface CallRetry {
  /** Attempts in all, the first included. */
  attempts: number;
  initialMs: number;
  maxMs: number;
}

/**
 * For activities that make many calls (a whole problem of stage 1): a transient failure of one
 * call (429, 5xx, timeout, reset, a bad body, a truncated sample) is retried here a few times,
 * honouring `retry-after`, instead of failing the activity and waiting out Temporal's growing
 * backoff while the other calls are fine. What keeps failing still fails the activity, and
 * Temporal retries it; stored samples are never drawn again.
 */
export const BATCH_CALL_RETRY: CallRetry = { attempts: 4, initialMs: 250, maxMs: 10_000 };

/** {@link sampleWithCache} with {@link CallRetry}; the counts cover every attempt. */
export async function sampleWithRetry(store: ObjectStore, req: SampleRequest, retry: CallRetry = BATCH_CALL_RETRY): Promise<SampleResult> {
  let callsMade = 0;
  let drawn = 0;
  const counted: SampleRequest = {
    ...req,
    onCall: () => {
      callsMade += 1;
      req.onCall?.();
    },
    onSample: () => {
      drawn += 1;
      req.onSample?.();
    },
  };
  for (let attempt = 1; ; attempt++) {
    try {
      const out = await sampleWithCache(store, counted);
      return { samples: out.samples, callsMade, samplesReused: out.samples.length - drawn };
    } catch (err) {
      if (!(err instanceof InferenceError) || !err.retryable || attempt >= retry.attempts) throw err;
      const backoff = Math.min(retry.maxMs, retry.initialMs * 2 ** (attempt - 1));
      await sleep(Math.min(retry.maxMs, Math.max(backoff, err.retryAfterMs ?? 0)), undefined, { signal: req.signal });
    }
  }
}
