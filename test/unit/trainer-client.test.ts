import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrainerClient, TrainerError } from '../../src/core/trainer/client.js';

/** A trainer stand-in whose session reads and deletes answer after `delayMs`. */
let delayMs = 0;
const server = createServer((req, res) => {
  setTimeout(() => {
    res.setHeader('content-type', 'application/json');
    if (req.method === 'DELETE') res.end(JSON.stringify({ protocolVersion: 1, sessionId: 'run-1', deleted: true }));
    else res.end(JSON.stringify({ protocolVersion: 1, sessionId: 'run-1', config: { baseModel: 'tiny', adapter: { kind: 'full' }, optimizer: { name: 'sgd', learningRate: 0.1, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0 }, seed: 0 }, status: 'ready', lastAppliedStep: null, nextStep: 0, lastCheckpoint: null }));
  }, delayMs);
});
let url = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('TrainerClient waits on the operation, not on a fixed clock', () => {
  it('waits as long as the operation takes when no timeout is given', async () => {
    delayMs = 1500;
    const state = await new TrainerClient(url).getSession('run-1');
    expect(state.status).toBe('ready');
  });

  it('ends the wait when the activity is cancelled', async () => {
    delayMs = 5000;
    const cancelled = new AbortController();
    const started = Date.now();
    const pending = new TrainerClient(url, { signal: cancelled.signal }).getSession('run-1');
    setTimeout(() => cancelled.abort(), 100);
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainerError);
    expect((err as TrainerError).code).toBe('unavailable');
    expect((err as TrainerError).message).toMatch(/abort/i);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('deletes a session', async () => {
    delayMs = 0;
    expect(await new TrainerClient(url).deleteSession('run-1')).toEqual({ protocolVersion: 1, sessionId: 'run-1', deleted: true });
  });
});
