/** Simulated service time: lognormal around a median, plus a cost per generated choice. */
import { rngFrom } from '../../src/core/random.js';
import type { LatencyConfig } from './config.js';

export function sampleLatencyMs(seed: number, key: string, attempt: number, latency: LatencyConfig, choices: number): number {
  const z = rngFrom(seed, 'latency', key, attempt).normal();
  return latency.medianMs * Math.exp(latency.sigma * z) + latency.perSampleMs * choices;
}

/** Waits `ms`, or rejects early when the signal aborts (the client went away). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('aborted'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
