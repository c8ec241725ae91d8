/**
 * Which fault, if any, a request attempt suffers. The decision is a pure function of
 * (server seed, request key, attempt number for that key): a retry is a new draw and can
 * succeed, and a rerun of the same test sees the same faults.
 */
import { rngFrom } from '../../src/core/random.js';
import type { FaultConfig } from './config.js';

/** The faults the server can inject. */
export type FaultKind = 'rate_limit' | 'server_error' | 'hang' | 'truncated' | 'malformed' | 'reset';

export function decideFault(seed: number, key: string, attempt: number, faults: FaultConfig): FaultKind | null {
  const u = rngFrom(seed, 'fault', key, attempt).next();
  const table: [FaultKind, number][] = [
    ['rate_limit', faults.rate429],
    ['server_error', faults.rate500],
    ['hang', faults.rateHang],
    ['truncated', faults.rateTruncated],
    ['malformed', faults.rateMalformed],
    ['reset', faults.rateReset],
  ];
  let edge = 0;
  for (const [kind, p] of table) {
    edge += p;
    if (u < edge) return kind;
  }
  return null;
}
