import type { ChatRequest, ChatResult, InferenceEndpoint } from './inference/client.js';
import { InferenceClient } from './inference/client.js';
import type { ObjectStore } from './store/s3-store.js';
import { Semaphore } from './concurrency.js';

/** What activities use of an inference server: its settings and the chat call. */
export type ChatClient = Pick<InferenceClient, 'endpoint' | 'chat'>;

/** What activities need from the outside world; workers build it, tests may build their own. */
export interface ActivityDeps {
  store: ObjectStore;
  /** A client for the endpoint; with `maxInFlight`, requests beyond it wait in this process. */
  inference: (endpoint: InferenceEndpoint, options?: { maxInFlight?: number }) => ChatClient;
}

/**
 * One InferenceClient per distinct endpoint, reused across activity calls, and one in-flight
 * limit per (server, limit) shared by every activity of this worker process.
 */
export function inferenceClientPool(env: NodeJS.ProcessEnv = process.env): ActivityDeps['inference'] {
  const clients = new Map<string, ChatClient>();
  const limits = new Map<string, Semaphore>();
  return (endpoint, options = {}) => {
    const id = JSON.stringify([endpoint, options.maxInFlight ?? null]);
    let client = clients.get(id);
    if (!client) {
      const inner = new InferenceClient(endpoint, env);
      if (options.maxInFlight === undefined) client = inner;
      else {
        const limitId = `${endpoint.baseURL}|${options.maxInFlight}`;
        let limit = limits.get(limitId);
        if (!limit) limits.set(limitId, (limit = new Semaphore(options.maxInFlight)));
        const gate = limit;
        client = {
          endpoint,
          chat: (request: ChatRequest, signal?: AbortSignal): Promise<ChatResult> => gate.run(() => inner.chat(request, signal), signal),
        };
      }
      clients.set(id, client);
    }
    return client;
  };
}
