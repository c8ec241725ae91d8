import { afterEach, describe, expect, it } from 'vitest';
import { buildGeneratorMessages } from '../../src/spark/common/prompts.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { readLog, startServer } from './httpHelpers.js';

const messages = buildGeneratorMessages('Start with 9. Add 3. Multiply by 2. Subtract 4. Divide by 4. What is the result?');
let server: SimServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('concurrency limits', () => {
  it('serves at most maxConcurrent requests at once and queues the rest in order', async () => {
    const started = await startServer({ maxConcurrent: 2, latency: { medianMs: 40, sigma: 0, perSampleMs: 0 } });
    server = started.server;
    const results = await Promise.all(Array.from({ length: 8 }, (_, seed) =>
      started.client.chat.completions.create({ model: 'sim-policy', messages, seed })));
    expect(results).toHaveLength(8);
    const log = await readLog(started.server);
    expect(log.counts.byStatus).toEqual({ 200: 8 });
    expect(log.maxInFlight).toBe(2);
    expect(log.inFlight).toBe(0);
  });

  it('answers 429 once the queue is full', async () => {
    const started = await startServer({ maxConcurrent: 1, maxQueue: 1, latency: { medianMs: 300, sigma: 0, perSampleMs: 0 } });
    server = started.server;
    const settled = await Promise.allSettled(Array.from({ length: 4 }, (_, seed) =>
      started.client.chat.completions.create({ model: 'sim-policy', messages, seed })));
    const rejected = settled.filter((s) => s.status === 'rejected');
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(2);
    expect(rejected).toHaveLength(2);
    for (const r of rejected) expect((r as PromiseRejectedResult).reason).toMatchObject({ status: 429 });
    const log = await readLog(started.server);
    expect(log.counts.byFault).toEqual({ queue_full: 2 });
  });

  it('one request with n = K costs less simulated time than K requests', async () => {
    const started = await startServer({ maxConcurrent: 1, latency: { medianMs: 1, sigma: 0, perSampleMs: 5 } });
    server = started.server;
    await started.client.chat.completions.create({ model: 'sim-policy', messages, n: 8, seed: 1 });
    const log = await readLog(started.server);
    expect(log.entries[0]?.durationMs).toBeGreaterThanOrEqual(40);
  });
});
