import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildGeneratorMessages } from '../../src/spark/common/prompts.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { eventually, readLog, startServer } from './httpHelpers.js';

const NO_FAULTS = { rate429: 0, rate500: 0, rateHang: 0, rateTruncated: 0, rateMalformed: 0, rateReset: 0 };
const messages = buildGeneratorMessages('Start with 8. Add 4. Multiply by 5. Subtract 10. Divide by 5. What is the result?');

let server: SimServer;
let client: OpenAI;

beforeAll(async () => {
  ({ server, client } = await startServer());
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.setConfig({ faults: NO_FAULTS });
});

const ask = (c: OpenAI = client, seed = 1) => c.chat.completions.create({ model: 'sim-policy', messages, temperature: 1, seed });

describe('fault injection, as the openai client sees it', () => {
  it('429 carries a retry-after header', async () => {
    server.setConfig({ faults: { rate429: 1, retryAfterSeconds: 7 } });
    const error = await ask().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toBe('7');
  });

  it('500 is an internal server error', async () => {
    server.setConfig({ faults: { rate500: 1 } });
    await expect(ask()).rejects.toBeInstanceOf(OpenAI.InternalServerError);
  });

  it('a hang never answers: the client times out and the log records the hang', async () => {
    server.setConfig({ faults: { rateHang: 1 } });
    const impatient = new OpenAI({ baseURL: server.url, apiKey: 'sim', maxRetries: 0, timeout: 300 });
    await expect(ask(impatient, 2)).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    const log = await eventually(() => readLog(server), (l) => (l.counts.byFault.hang ?? 0) > 0);
    expect(log.entries.find((e) => e.fault === 'hang')?.status).toBe(0);
  });

  it('a truncated answer is a 200 with finish_reason "length" and a shorter content', async () => {
    const full = await ask(client, 3);
    server.setConfig({ faults: { rateTruncated: 1 } });
    const cut = await ask(client, 3);
    expect(cut.choices[0]?.finish_reason).toBe('length');
    expect(cut.choices[0]?.message.content?.length).toBeLessThan(full.choices[0]?.message.content?.length ?? 0);
  });

  it('a malformed body fails to parse in the client', async () => {
    server.setConfig({ faults: { rateMalformed: 1 } });
    await expect(ask(client, 4)).rejects.toThrow();
    const raw = await fetch(`${server.url}/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'sim-policy', messages, seed: 44 }) });
    expect(raw.status).toBe(200);
    await expect(raw.json()).rejects.toThrow();
  });

  it('a reset drops the connection', async () => {
    server.setConfig({ faults: { rateReset: 1 } });
    const error = await ask(client, 5).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(error).not.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
  });

  it('faults are decided per attempt, so retries get through, and the answer is the one a clean server gives', async () => {
    const clean = await ask(client, 6);
    server.setConfig({ faults: { rate429: 0.45, rate500: 0.45 } });
    const outcomes: string[] = [];
    let answer: string | null = null;
    for (let attempt = 0; attempt < 30 && answer === null; attempt++) {
      try {
        answer = (await ask(client, 6)).choices[0]?.message.content ?? null;
      } catch (e) {
        outcomes.push((e as { status?: number }).status === 429 ? '429' : '500');
      }
    }
    expect(outcomes.length).toBeGreaterThan(0);
    expect(answer).toBe(clean.choices[0]?.message.content);
    // The decision is a pure function of (seed, request, attempt): a second server agrees.
    const { server: twin, client: twinClient } = await startServer();
    try {
      await ask(twinClient, 6); // attempt 0, clean, as on the first server
      twin.setConfig({ faults: { rate429: 0.45, rate500: 0.45 } });
      const twinOutcomes: string[] = [];
      for (let attempt = 0; attempt < 30; attempt++) {
        try {
          await ask(twinClient, 6);
          break;
        } catch (e) {
          twinOutcomes.push((e as { status?: number }).status === 429 ? '429' : '500');
        }
      }
      expect(twinOutcomes).toEqual(outcomes);
    } finally {
      await twin.close();
    }
  });
});
