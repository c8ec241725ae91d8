/** Starting a sandbox server and talking to it the way the project does. */
import OpenAI from 'openai';
import type { SimServer, SimServerOptions } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import type { RequestLogCounts, RequestLogEntry } from '../../sandbox/model-server/requestLog.js';

export async function startServer(options: SimServerOptions = {}): Promise<{ server: SimServer; client: OpenAI }> {
  const server = await startSimServer({ seed: 1, ...options });
  // Retries belong to the caller (Temporal in the project), never to the client.
  const client = new OpenAI({ baseURL: server.url, apiKey: 'sim', maxRetries: 0, timeout: 10_000 });
  return { server, client };
}

export interface LogSnapshot {
  entries: RequestLogEntry[];
  counts: RequestLogCounts;
  inFlight: number;
  maxInFlight: number;
  queued: number;
}

/** The admin view of the request log, read over HTTP. */
export async function readLog(server: SimServer): Promise<LogSnapshot> {
  const res = await fetch(server.url.replace(/\/v1$/, '/sim/log'));
  return (await res.json()) as LogSnapshot;
}

/** Polls until `check` holds (for events that complete after the client has moved on). */
export async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, attempts = 100): Promise<T> {
  for (let i = 0; ; i++) {
    const value = await read();
    if (check(value) || i >= attempts) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
}
