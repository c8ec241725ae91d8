import { createHash } from 'node:crypto';
import type { ChatMessage, SamplingParams } from './chat.js';
import type { ChatClient } from '../deps.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { InferenceError } from './client.js';
import type { ObjectStore } from '../store/s3-store.js';

/** One stored sample: enough to audit where it came from and to reuse it instead of paying again. */
export interface CachedSample {
  /** Where it is stored: `<request object key>#<index>`, or a sample object's key (the layout before requests). */
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
  /** Where the requests are stored and looked up; default: the prompt's own group. */
  group?: SampleGroup;
  signal?: AbortSignal;
  /** Called after each request is stored, with the samples this call holds so far (heartbeat hook). */
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

/**
 * One object per request: the `n` samples of one chat completion, at
 * `cache/requests/<hh>/<group>/<prompt hash>-<first index>-<n>.json`. The prompt hash covers the model,
 * the messages and every sampling setting (the run's seed included); the first index and `n`
 * name the run of samples the request drew. A request is stored whole in one PUT once it is
 * answered, so a crash loses at most the requests in flight. A group's requests share a folder
 * ({@link SampleGroup}), so one LIST finds every sample stored for a prompt, whichever
 * requests drew them.
 */
export interface StoredRequest {
  kind: 'spark.samples';
  version: 2;
  /** The model that answered (the server's name for it). */
  model: string;
  /** Index of the first sample; the request drew samples [start, start + n). */
  start: number;
  n: number;
  /** The seed sent with the request ({@link requestSeed}); null when the run has none. */
  seed: number | null;
  /** Id of the response the samples came from. */
  responseId: string;
  /** Sample `start + j`, or null where every answer so far was cut by the token limit. */
  samples: (StoredChoice | null)[];
  /** Answers to this request that had choices cut by the token limit. */
  truncations: number;
}

export interface StoredChoice {
  text: string;
  finishReason: string;
  /** Set when the sample came from another response than the object's (a re-asked request). */
  responseId?: string;
}

export const REQUEST_PREFIX = 'cache/requests';
/** The layout before requests: one object per sample. Still read, never written. */
export const LEGACY_SAMPLE_PREFIX = 'cache/chat';

/**
 * Content address of what is asked: model, messages and sampling settings. Hashed once per
 * call; every request of the call is named by it and its run of sample indices.
 */
export function promptHash(model: string, messages: ChatMessage[], sampling: SamplingParams): string {
  return createHash('sha256').update(JSON.stringify(askedFor(model, messages, sampling))).digest('hex');
}

/** What is asked, in the field order both layouts hash (a change here renames every stored sample). */
function askedFor(model: string, messages: ChatMessage[], sampling: SamplingParams) {
  return {
    model,
    messages: messages.map((m) => [m.role, m.content]),
    temperature: sampling.temperature,
    topP: sampling.topP ?? null,
    maxTokens: sampling.maxTokens ?? null,
    seed: sampling.seed ?? null,
  };
}

/**
 * Requests stored together and found with one LIST: by default each prompt's own, or a group a
 * caller names (stage 1 names one per problem, so a problem's generator and verifier requests
 * are found with one LIST instead of one per call). The listing is taken once per group object
 * and kept up to date with what this process writes into it.
 */
export class SampleGroup {
  readonly folder: string;
  private listing: Promise<Map<string, Map<string, { start: number; n: number }>>> | null = null;

  /** `name` is hashed; the same name (e.g. the problem's generator prompt hash) is the same folder in every run. */
  constructor(name: string) {
    const hash = createHash('sha256').update(name).digest('hex');
    this.folder = `${REQUEST_PREFIX}/${hash.slice(0, 2)}/${hash}/`;
  }

  /** The stored requests of one prompt in this group, by key. */
  async requestsOf(store: ObjectStore, prompt: string): Promise<Map<string, { start: number; n: number }>> {
    this.listing ??= store.list(this.folder).then((keys) => {
      const byPrompt = new Map<string, Map<string, { start: number; n: number }>>();
      for (const key of keys) {
        const m = /\/([0-9a-f]{64})-(\d+)-(\d+)\.json$/.exec(key);
        if (!m) continue;
        let runs = byPrompt.get(m[1]!);
        if (!runs) byPrompt.set(m[1]!, (runs = new Map()));
        runs.set(key, { start: Number(m[2]), n: Number(m[3]) });
      }
      return byPrompt;
    });
    this.listing.catch(() => (this.listing = null));
    const byPrompt = await this.listing;
    let runs = byPrompt.get(prompt);
    if (!runs) byPrompt.set(prompt, (runs = new Map()));
    return runs;
  }
}

/** Key of the object holding the request that drew samples [start, start + n) of a prompt, in a group's folder. */
export function requestKey(group: SampleGroup, prompt: string, start: number, n: number): string {
  return `${group.folder}${prompt}-${start}-${n}.json`;
}

/**
 * Key of one sample in the layout before requests (one object per sample). Runs stored that
 * way are still read back, so re-running them makes no call.
 */
export function sampleKey(model: string, messages: ChatMessage[], sampling: SamplingParams, index: number): string {
  const canonical = JSON.stringify({ ...askedFor(model, messages, sampling), index });
  const hash = createHash('sha256').update(canonical).digest('hex');
  return `${LEGACY_SAMPLE_PREFIX}/${hash.slice(0, 2)}/${hash}.json`;
}

/**
 * Seed of the request that draws samples [start, start+n): distinct per run of samples so
 * samples drawn in separate requests are independent, and stable so a re-run asks the same.
 */
export function requestSeed(seed: number | undefined, start: number): number | undefined {
  if (seed === undefined) return undefined;
  return start === 0 ? seed : (seed * 1_000_003 + start) % 2_147_483_647;
}

/** After this many truncated answers to the same request, its missing samples get requests of their own. */
const SAME_SEED_TRUNCATIONS = 2;

/** What one call of {@link sampleWithCache} has found, drawn and paid so far. */
interface CallState {
  store: ObjectStore;
  req: SampleRequest;
  prompt: string;
  group: SampleGroup;
  /** Whether the bucket holds samples in the layout before requests (checked once a minute). */
  legacy: boolean;
  /** The prompt's stored requests (from the group's LIST, plus what this process wrote), by key. */
  stored: Map<string, { start: number; n: number }>;
  /** Stored requests read by this call, by key. */
  docs: Map<string, Promise<StoredRequest | null>>;
  samples: Map<number, CachedSample>;
  callsMade: number;
  drawn: number;
  reused: number;
  truncated: number;
}

/**
 * Returns the wanted samples, reading stored requests and asking the server only for the rest.
 * One LIST (per group) finds the prompt's stored requests; a wanted sample is read from whichever stored
 * request holds it (so a run asking fewer samples, or other ones, reuses what a larger request
 * drew). The wanted indices missing from the store are asked for in contiguous runs, one request with `n` per run where the
 * server supports it, else one request per sample; each answered request is written to the
 * store (one object, one PUT) before this returns, so a crash loses at most the requests in
 * flight. A request whose answer had samples cut by the token limit keeps the good ones and is
 * asked again whole with its own seed, so its samples are exactly those of an uninterrupted
 * run; after {@link SAME_SEED_TRUNCATIONS} such answers its missing samples get requests of
 * their own. Truncated samples raise a retryable error after the good ones are stored. An answer
 * whose every sample used all of `maxTokens` is the model's own (a base model that never stops):
 * those samples are kept, cut, rather than asked again forever.
 * Identical requests in flight in one process are made once.
 */
export async function sampleWithCache(store: ObjectStore, req: SampleRequest): Promise<SampleResult> {
  const prompt = promptHash(req.model, req.messages, req.sampling);
  const group = req.group ?? new SampleGroup(prompt);
  const [legacy, stored] = await Promise.all([legacyLayoutPresent(store), group.requestsOf(store, prompt)]);
  const state: CallState = {
    store,
    req,
    prompt,
    group,
    legacy,
    stored,
    docs: new Map(),
    samples: new Map(),
    callsMade: 0,
    drawn: 0,
    reused: 0,
    truncated: 0,
  };
  const runs = req.client.endpoint.supportsN ? contiguousRuns(req.indices) : req.indices.map((i) => [i, i + 1] as const);
  await Promise.all(runs.map(([start, end]) => resolveRun(state, start, end, true)));
  if (state.truncated > 0) {
    throw new InferenceError('truncated', `${state.truncated} sample(s) hit the token limit (max_tokens=${req.sampling.maxTokens ?? 'server default'}); kept the others`);
  }
  return { samples: req.indices.map((i) => state.samples.get(i)!), callsMade: state.callsMade, samplesReused: state.reused };
}

/** Samples [start, end) as found or drawn; null where the answer was cut by the token limit. */
type RunSamples = (CachedSample | null)[];

/** Requests being resolved by this process right now, per store and request key. */
const inflight = new WeakMap<ObjectStore, Map<string, Promise<RunSamples>>>();

/**
 * Fills `state.samples` with samples [start, end) of one request. A concurrent identical
 * request in this process is waited for instead of paid again (and two writers never race on
 * one object); what it found or drew counts as reused here.
 */
async function resolveRun(state: CallState, start: number, end: number, topLevel: boolean): Promise<void> {
  const key = requestKey(state.group, state.prompt, start, end - start);
  let running = inflight.get(state.store);
  if (!running) inflight.set(state.store, (running = new Map()));
  const pending = running.get(key);
  let samples: RunSamples;
  if (pending) {
    samples = await pending;
    for (const s of samples) if (s) state.reused += 1;
  } else {
    const own = drawRun(state, key, start, end, topLevel);
    running.set(key, own);
    try {
      samples = await own;
    } finally {
      running.delete(key);
    }
  }
  samples.forEach((s, j) => {
    if (s) state.samples.set(start + j, s);
    else state.truncated += 1;
  });
}

async function drawRun(state: CallState, key: string, start: number, end: number, topLevel: boolean): Promise<RunSamples> {
  const { store, req } = state;
  const n = end - start;
  const exact = state.stored.has(key) ? await readStored(state, key) : null;
  const out: RunSamples = exact ? toSamples(exact, key, []) : new Array<null>(n).fill(null);
  // Samples of this run that other stored requests of the prompt hold.
  for (const [other, run] of state.stored) {
    if (other === key || run.start >= end || run.start + run.n <= start) continue;
    if (!out.some((s, j) => s === null && start + j >= run.start && start + j < run.start + run.n)) continue;
    const doc = await readStored(state, other);
    if (!doc) continue;
    toSamples(doc, other, []).forEach((s, j) => {
      const i = doc.start + j - start;
      if (s && i >= 0 && i < n && out[i] === null) out[i] = s;
    });
  }
  let legacy: StoredRequest | null = null;
  if (!exact && topLevel && state.legacy && !out.some((s) => s !== null)) {
    const found = await readLegacyRun(state, start, end);
    if (found) {
      legacy = found.doc;
      toSamples(found.doc, found.firstKey, legacyKeysOf(found.doc)).forEach((s, j) => (out[j] = s));
    }
  }
  const found = out.filter((s) => s !== null).length;
  state.reused += found;
  if (found === n) return out;

  const truncations = exact?.truncations ?? legacy?.truncations ?? 0;
  const missing = out.flatMap((s, j) => (s ? [] : [start + j]));
  const runs = state.req.client.endpoint.supportsN ? contiguousRuns(missing) : missing.map((i) => [i, i + 1] as const);
  if (truncations >= SAME_SEED_TRUNCATIONS && !(runs.length === 1 && runs[0]![1] - runs[0]![0] === n)) {
    // The server cuts this seeded request every time: the missing samples get requests of their own.
    await Promise.all(runs.map(async ([s, e]) => {
      const sub = new Map<number, CachedSample>();
      const subState: CallState = { ...state, samples: sub, callsMade: 0, drawn: 0, reused: 0, truncated: 0 };
      await resolveRun(subState, s, e, false);
      state.callsMade += subState.callsMade;
      state.drawn += subState.drawn;
      state.reused += subState.reused;
      for (const [i, sample] of sub) out[i - start] = sample;
    }));
    return out;
  }

  // Asked again whole with its own seed, so its samples are those of an uninterrupted run.
  const seed = requestSeed(req.sampling.seed, start);
  const result = await req.client.chat({ model: req.model, messages: req.messages, sampling: { ...req.sampling, seed }, n }, req.signal);
  state.callsMade += 1;
  req.onCall?.();
  const responseId = exact?.responseId || result.id;
  const samples: (StoredChoice | null)[] = out.map((s) => s && {
    text: s.text,
    finishReason: s.finishReason,
    ...(s.responseId !== responseId ? { responseId: s.responseId } : {}),
  });
  let cut = 0;
  let added = 0;
  // Every answer ran to max_tokens: that is the model, not a fault (a cut by a broken connection or
  // a server fault comes back shorter), and a seeded request would give the same cut answers again.
  // They are kept as they are (finishReason 'length'), and the parsers judge them like any text.
  const maxTokens = req.sampling.maxTokens;
  const allAtLimit =
    maxTokens !== undefined &&
    result.choices.every((c) => c.finishReason === 'length') &&
    result.usage.completionTokens >= result.choices.length * maxTokens;
  result.choices.forEach((choice, j) => {
    if (samples[j]) return;
    if (choice.finishReason === 'length' && !allAtLimit) {
      cut += 1;
      return;
    }
    samples[j] = { text: choice.text, finishReason: choice.finishReason, ...(responseId !== result.id ? { responseId: result.id } : {}) };
    added += 1;
  });
  const next: StoredRequest = {
    kind: 'spark.samples',
    version: 2,
    model: exact?.model || result.model || req.model,
    start,
    n,
    seed: seed ?? null,
    responseId,
    samples,
    truncations: truncations + (cut > 0 ? 1 : 0),
  };
  await store.put(key, JSON.stringify(next), 'application/json', { bare: true });
  state.stored.set(key, { start, n });
  state.docs.set(key, Promise.resolve(next));
  for (let i = 0; i < added; i++) req.onSample?.();
  state.drawn += added;
  const stored = toSamples(next, key, []);
  req.onStored?.(state.samples.size + stored.filter(Boolean).length);
  return stored;
}

/** A stored request of the prompt, read at most once per call. */
function readStored(state: CallState, key: string): Promise<StoredRequest | null> {
  let doc = state.docs.get(key);
  if (!doc) state.docs.set(key, (doc = readRequest(state.store, key)));
  return doc;
}

/** The samples of a stored request as {@link CachedSample}s, with where each is stored. */
function toSamples(doc: StoredRequest, key: string, legacyKeys: readonly (string | null)[]): RunSamples {
  return doc.samples.map((c, j) => c && {
    key: legacyKeys[j] ?? `${key}#${doc.start + j}`,
    index: doc.start + j,
    text: c.text,
    finishReason: c.finishReason,
    model: doc.model,
    responseId: c.responseId ?? doc.responseId,
    request: { seed: doc.seed ?? undefined, n: doc.n, choice: j },
  });
}

/**
 * A stored request, or null when there is none. An object that cannot be read back intact (a
 * checksum mismatch, bad JSON, another shape) is treated as absent and asked again, so one
 * damaged object cannot block a run forever.
 */
async function readRequest(store: ObjectStore, key: string): Promise<StoredRequest | null> {
  try {
    const doc = await store.getJsonIfExists<StoredRequest>(key);
    return doc && doc.kind === 'spark.samples' && Array.isArray(doc.samples) && doc.samples.length === doc.n ? doc : null;
  } catch (err) {
    if (isDamaged(err)) return null;
    throw err;
  }
}

/** One sample of the layout before requests. */
interface LegacySample {
  key: string;
  index: number;
  text: string;
  finishReason: string;
  model: string;
  responseId: string;
  request: { seed?: number; n: number; choice: number };
}

/** Keys of legacy samples, remembered beside a converted request so callers see where each is. */
const legacyKeys = new WeakMap<StoredRequest, (string | null)[]>();
function legacyKeysOf(doc: StoredRequest): (string | null)[] {
  return legacyKeys.get(doc) ?? [];
}

/**
 * Samples [start, end) from the layout before requests, as one request, or null when its first
 * sample is not there (then the request is asked whole, as that layout also did for a run it
 * held only in part). Its truncation count comes along, so the same rules apply.
 */
async function readLegacyRun(state: CallState, start: number, end: number): Promise<{ doc: StoredRequest; firstKey: string } | null> {
  const { store, req } = state;
  const key = (i: number) => sampleKey(req.model, req.messages, req.sampling, i);
  const firstKey = key(start);
  const first = await readLegacy(store, firstKey);
  if (!first) return null;
  const keys = [firstKey];
  for (let i = start + 1; i < end; i++) keys.push(key(i));
  const rest = await Promise.all(keys.slice(1).map((k) => readLegacy(store, k)));
  const all = [first, ...rest];
  const marker = all.some((s) => !s)
    ? await store.getJsonIfExists<{ count: number }>(firstKey.replace(/\.json$/, `.n${end - start}.truncations.json`)).catch(() => null)
    : null;
  const doc: StoredRequest = {
    kind: 'spark.samples',
    version: 2,
    model: first.model,
    start,
    n: end - start,
    seed: first.request.seed ?? null,
    responseId: '',
    samples: all.map((s) => s && { text: s.text, finishReason: s.finishReason, responseId: s.responseId }),
    truncations: marker?.count ?? 0,
  };
  legacyKeys.set(doc, all.map((s, j) => (s ? keys[j]! : null)));
  return { doc, firstKey };
}

async function readLegacy(store: ObjectStore, key: string): Promise<LegacySample | null> {
  try {
    return await store.getJsonIfExists<LegacySample>(key);
  } catch (err) {
    if (isDamaged(err)) return null;
    throw err;
  }
}

function isDamaged(err: unknown): boolean {
  return err instanceof SyntaxError || /checksum/i.test((err as Error).message);
}

/** How long a bucket found free of legacy samples is trusted to stay so (an older worker may still write some). */
const LEGACY_RECHECK_MS = 60_000;
const legacyChecks = new WeakMap<ObjectStore, { at: number; present: Promise<boolean> }>();

/**
 * Whether the bucket holds samples in the layout before requests. Looked up with one LIST and
 * remembered (a yes for good, a no for a minute), so a bucket without them costs no extra read
 * per request, and one with them costs one read of the run's first sample per new request.
 */
function legacyLayoutPresent(store: ObjectStore): Promise<boolean> {
  const known = legacyChecks.get(store);
  if (known && Date.now() - known.at < LEGACY_RECHECK_MS) return known.present;
  const present = store.hasAny(`${LEGACY_SAMPLE_PREFIX}/`).then((yes) => {
    if (yes) legacyChecks.set(store, { at: Number.POSITIVE_INFINITY, present });
    return yes;
  });
  present.catch(() => legacyChecks.delete(store));
  legacyChecks.set(store, { at: Date.now(), present });
  return present;
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
