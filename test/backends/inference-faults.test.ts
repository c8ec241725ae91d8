import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { InferenceClient, InferenceError } from '../../src/core/inference/client.js';
import { toApplicationFailure } from '../../src/core/temporal/failures.js';
import type { StoredRequest } from '../../src/core/inference/sample-store.js';
import { promptHash, requestKey, SampleGroup, sampleWithCache } from '../../src/core/inference/sample-store.js';
import { buildGeneratorMessages } from '../../src/spark/common/prompts.js';
import { generateProblems } from '../../sandbox/arith.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import { makeStore } from '../support/harness.js';

type Sim = Awaited<ReturnType<typeof startSimServer>>;
let sim: Sim;
const store = makeStore();
const question = generateProblems({ seed: 3, count: 1 })[0]!.question;
const messages = buildGeneratorMessages(question);
const sampling = { temperature: 0.8, topP: 0.95, maxTokens: 512, seed: 11 };

beforeAll(async () => {
  sim = await startSimServer({ seed: 5 });
});
afterAll(async () => {
  await sim.close();
  store.destroy();
});

const noFaults = { rate429: 0, rate500: 0, rateHang: 0, rateTruncated: 0, rateMalformed: 0, rateReset: 0 };

async function failureFor(faults: Partial<typeof noFaults> & { retryAfterSeconds?: number }, opts: { model?: string; timeoutMs?: number; n?: number } = {}) {
  sim.setConfig({ faults: { ...noFaults, ...faults } });
  const client = new InferenceClient({ baseURL: sim.url, supportsN: true, timeoutMs: opts.timeoutMs ?? 10_000 });
  const err = await client
    .chat({ model: opts.model ?? 'sim-policy', messages, sampling, n: opts.n ?? 1 })
    .then(() => null, (e: unknown) => e);
  sim.setConfig({ faults: noFaults });
  expect(err).toBeInstanceOf(InferenceError);
  const failure = toApplicationFailure(err);
  expect(failure).toBeInstanceOf(ApplicationFailure);
  return { error: err as InferenceError, failure: failure as ApplicationFailure };
}

describe('inference faults reach the right Temporal failure', () => {
  it('429 is retryable and carries the server\'s retry-after as the next retry delay', async () => {
    const { error, failure } = await failureFor({ rate429: 1, retryAfterSeconds: 3 });
    expect(error.kind).toBe('rate-limited');
    expect(failure.type).toBe('Inference.rate-limited');
    expect(failure.nonRetryable).toBe(false);
    expect(failure.nextRetryDelay).toBe(3000);
  });

  it('500 is a retryable server error', async () => {
    const { failure } = await failureFor({ rate500: 1 });
    expect(failure.type).toBe('Inference.server-error');
    expect(failure.nonRetryable).toBe(false);
  });

  it('a hung request times out on the client and is retryable', async () => {
    const { failure } = await failureFor({ rateHang: 1 }, { timeoutMs: 300 });
    expect(failure.type).toBe('Inference.timeout');
    expect(failure.nonRetryable).toBe(false);
  });

  it('a connection reset is a retryable connection failure', async () => {
    const { failure } = await failureFor({ rateReset: 1 });
    expect(failure.type).toBe('Inference.connection');
    expect(failure.nonRetryable).toBe(false);
  });

  it('a 200 whose body is not JSON is a retryable malformed response', async () => {
    const { failure } = await failureFor({ rateMalformed: 1 });
    expect(failure.type).toBe('Inference.malformed-response');
    expect(failure.nonRetryable).toBe(false);
  });

  it('an unknown model (404) is not retryable and names the server', async () => {
    const { failure } = await failureFor({}, { model: 'no-such-model' });
    expect(failure.type).toBe('Inference.not-found');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(sim.url);
  });

  it('an invalid request (400) is not retryable', async () => {
    const { failure } = await failureFor({}, { n: 0 });
    expect(failure.type).toBe('Inference.bad-request');
    expect(failure.nonRetryable).toBe(true);
  });

  it('truncated samples are not stored and fail retryably; the good ones of the same request are kept', async () => {
    sim.setConfig({ faults: { ...noFaults, rateTruncated: 1 } });
    const client = new InferenceClient({ baseURL: sim.url, supportsN: true, timeoutMs: 10_000 });
    const req = { client, model: 'sim-policy', messages, sampling: { ...sampling, seed: 901 }, indices: [0, 1, 2, 3] };
    const err = await sampleWithCache(store, req).then(() => null, (e: unknown) => e);
    sim.setConfig({ faults: noFaults });
    const failure = toApplicationFailure(err) as ApplicationFailure;
    expect(failure.type).toBe('Inference.truncated');
    expect(failure.nonRetryable).toBe(false);
    // The retry asks the same request again whole, with its own seed, and then succeeds.
    const retried = await sampleWithCache(store, req);
    expect(retried.samples).toHaveLength(4);
    expect(retried.samples.every((s) => s.finishReason !== 'length')).toBe(true);
    const [cut, whole] = sim.log.entries.filter((e) => e.status === 200).slice(-2);
    expect(whole!.key).toBe(cut!.key);
    expect(whole!.n).toBe(4);
    expect(retried.samples.every((s) => s.request.seed === 901 && s.responseId === whole!.responseId)).toBe(true);
  });

  it('samples that all ran to max_tokens are the model\'s own answers: kept cut, paid once, read back', async () => {
    const client = new InferenceClient({ baseURL: sim.url, supportsN: true, timeoutMs: 10_000 });
    // Every sim-policy solution is longer than 6 tokens, as a base model's answer outruns any limit.
    const req = { client, model: 'sim-policy', messages, sampling: { ...sampling, maxTokens: 6, seed: 902 }, indices: [0, 1, 2] };
    const first = await sampleWithCache(store, req);
    expect(first.callsMade).toBe(1);
    expect(first.samples.map((s) => s.finishReason)).toEqual(['length', 'length', 'length']);
    expect(first.samples.every((s) => s.text.length === 24)).toBe(true);
    const again = await sampleWithCache(store, req);
    expect(again.callsMade).toBe(0);
    expect(again.samples.map((s) => s.text)).toEqual(first.samples.map((s) => s.text));
  });
});

describe('sampleWithCache', () => {
  it('asks once with n=K, stores every sample, and a second call makes no request at all', async () => {
    const client = new InferenceClient({ baseURL: sim.url, supportsN: true, timeoutMs: 10_000 });
    const req = { client, model: 'sim-policy', messages, sampling: { ...sampling, seed: 1234 }, indices: [0, 1, 2, 3, 4, 5] };
    const first = await sampleWithCache(store, req);
    expect(first.callsMade).toBe(1);
    expect(first.samplesReused).toBe(0);
    const second = await sampleWithCache(store, req);
    expect(second.callsMade).toBe(0);
    expect(second.samplesReused).toBe(6);
    expect(second.samples.map((s) => s.text)).toEqual(first.samples.map((s) => s.text));
    // One object holds the request's six samples.
    const prompt = promptHash('sim-policy', messages, req.sampling);
    const key = requestKey(new SampleGroup(prompt), prompt, 0, 6);
    expect(new Set(first.samples.map((s) => s.key.split('#')[0]))).toEqual(new Set([key]));
    expect((await store.getJson<StoredRequest>(key)).samples.map((s) => s?.text)).toEqual(first.samples.map((s) => s.text));
  });

  it('reads samples a larger request stored, whichever run of indices is asked', async () => {
    const client = new InferenceClient({ baseURL: sim.url, supportsN: true, timeoutMs: 10_000 });
    const base = { client, model: 'sim-policy', messages, sampling: { ...sampling, seed: 2468 } };
    const all = await sampleWithCache(store, { ...base, indices: [0, 1, 2, 3, 4, 5, 6, 7] });
    const some = await sampleWithCache(store, { ...base, indices: [3, 4, 5] });
    expect(some.callsMade).toBe(0);
    expect(some.samples.map((s) => s.text)).toEqual(all.samples.slice(3, 6).map((s) => s.text));
  });

  it('identical requests in flight in one process are made once', async () => {
    const client = new InferenceClient({ baseURL: sim.url, supportsN: true, timeoutMs: 10_000 });
    const req = { client, model: 'sim-policy', messages, sampling: { ...sampling, seed: 4321 }, indices: [0, 1, 2, 3] };
    const before = sim.log.entries.length;
    const [a, b] = await Promise.all([sampleWithCache(store, req), sampleWithCache(store, req)]);
    expect(sim.log.entries.length - before).toBe(1);
    expect(a.callsMade + b.callsMade).toBe(1);
    expect(b.samples.map((s) => s.text)).toEqual(a.samples.map((s) => s.text));
  });

  it('without n support, asks one request per sample with distinct seeds', async () => {
    const client = new InferenceClient({ baseURL: sim.url, supportsN: false, timeoutMs: 10_000 });
    const out = await sampleWithCache(store, { client, model: 'sim-policy', messages, sampling: { ...sampling, seed: 77 }, indices: [0, 1, 2] });
    expect(out.callsMade).toBe(3);
    expect(new Set(out.samples.map((s) => s.request.seed)).size).toBe(3);
  });
});

describe('completion bodies: lenient where vendors differ, strict where it matters', () => {
  /** A server that answers every chat completion with `body`, over real HTTP. */
  async function answering(body: unknown): Promise<{ url: string; close: () => Promise<void> }> {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    return { url: `http://127.0.0.1:${port}/v1`, close: () => new Promise((r) => server.close(() => r())) };
  }

  async function chatWith(body: unknown, n = 2) {
    const server = await answering(body);
    try {
      return await new InferenceClient({ baseURL: server.url, supportsN: true, timeoutMs: 5_000 })
        .chat({ model: 'm', messages, sampling, n })
        .then((r) => r, (e: unknown) => e as InferenceError);
    } finally {
      await server.close();
    }
  }

  it('takes null ids, null content, no finish reason and no usage, and orders choices by index', async () => {
    const result = await chatWith({ id: null, choices: [{ index: 1, message: { content: 'b' } }, { index: 0, message: { content: null }, finish_reason: 'length' }] });
    expect(result).toEqual({ id: '', model: '', choices: [{ index: 0, text: '', finishReason: 'length' }, { index: 1, text: 'b', finishReason: 'stop' }], usage: { promptTokens: 0, completionTokens: 0 } });
  });

  it.each([
    [{ choices: [] }, 'choices: expected a non-empty array'],
    [{ choices: [{ index: 0, message: { content: 5 } }, { index: 1, message: { content: 'x' } }] }, 'choices[0].message.content: expected a string or null'],
    [{ choices: [{ index: -1, message: { content: 'a' } }, { index: 1, message: { content: 'x' } }] }, 'choices[0].index: expected a non-negative integer'],
    [{ choices: [{ index: 0 }, { index: 1, message: { content: 'x' } }] }, 'choices[0].message: expected an object'],
    [{ choices: [{ index: 0, message: { content: 'a' } }] }, 'asked for n=2 choices, got 1'],
  ])('names what is wrong in %j as a retryable malformed response', async (body, detail) => {
    const err = await chatWith(body);
    expect(err).toBeInstanceOf(InferenceError);
    expect((err as InferenceError).kind).toBe('malformed-response');
    expect((err as InferenceError).message).toContain(detail);
  });
});
