import type { InferenceEndpoint } from '../backends/inference.js';
import { InferenceClient } from '../backends/inference.js';
import type { ObjectStore } from '../backends/s3-store.js';

/** What activities need from the outside world; workers build it, tests may build their own. */
export interface ActivityDeps {
  store: ObjectStore;
  inference: (endpoint: InferenceEndpoint) => InferenceClient;
}

/** One InferenceClient per distinct endpoint, reused across activity calls. */
export function inferenceClientPool(env: NodeJS.ProcessEnv = process.env): (endpoint: InferenceEndpoint) => InferenceClient {
  const clients = new Map<string, InferenceClient>();
  return (endpoint) => {
    const id = JSON.stringify(endpoint);
    let client = clients.get(id);
    if (!client) {
      client = new InferenceClient(endpoint, env);
      clients.set(id, client);
    }
    return client;
  };
}
