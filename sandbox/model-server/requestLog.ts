/**
 * The server's record of every completion request, with counts, so a test can prove that
 * nothing was paid twice. Optionally mirrored to a JSONL file for another process to read.
 */
import { appendFileSync } from 'node:fs';
import type { Role } from '../world/roles.js';
import type { FaultKind } from './faults.js';

/** One completion request, recorded when it ends. */
export interface RequestLogEntry {
  seq: number;
  /** ISO time the request arrived. */
  at: string;
  model: string;
  role: Role;
  /** Stable hash of (model, messages, temperature, top_p, seed, max_tokens, n). */
  key: string;
  n: number;
  /** HTTP status sent; 0 when no response was sent (hang, reset, client gone). */
  status: number;
  fault?: FaultKind | 'queue_full';
  /** The `id` of the chat.completion sent, when one was sent. */
  responseId?: string;
  durationMs: number;
}

/** Counts over the log. */
export interface RequestLogCounts {
  total: number;
  byRole: Record<string, number>;
  byStatus: Record<string, number>;
  byFault: Record<string, number>;
  /** Per key, the responses that delivered a usable completion (status 200, no fault). */
  successesByKey: Record<string, number>;
}

function bump(counts: Record<string, number>, name: string): void {
  counts[name] = (counts[name] ?? 0) + 1;
}

export class RequestLog {
  private items: RequestLogEntry[] = [];
  private nextSeq = 1;

  constructor(private readonly file?: string) {}

  record(entry: Omit<RequestLogEntry, 'seq'>): RequestLogEntry {
    const full: RequestLogEntry = { seq: this.nextSeq++, ...entry };
    this.items.push(full);
    if (this.file) appendFileSync(this.file, `${JSON.stringify(full)}\n`);
    return full;
  }

  get entries(): readonly RequestLogEntry[] {
    return this.items;
  }

  counts(): RequestLogCounts {
    const counts: RequestLogCounts = { total: this.items.length, byRole: {}, byStatus: {}, byFault: {}, successesByKey: {} };
    for (const e of this.items) {
      bump(counts.byRole, e.role);
      bump(counts.byStatus, String(e.status));
      if (e.fault) bump(counts.byFault, e.fault);
      if (e.status === 200 && !e.fault) bump(counts.successesByKey, e.key);
    }
    return counts;
  }

  /** Forgets the entries; sequence numbers keep counting so entries stay unique. */
  reset(): void {
    this.items = [];
  }
}

/** The most requests in progress at once (arrival to end), from log entries: what a limit let through. */
export function peakConcurrency(entries: readonly Pick<RequestLogEntry, 'at' | 'durationMs'>[]): number {
  const events = entries.flatMap((e) => {
    const t = Date.parse(e.at);
    return [[t, 1], [t + e.durationMs, -1]] as const;
  });
  // Ends before starts at the same instant: a slot freed and reused is not an overlap.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, d] of events) peak = Math.max(peak, (now += d));
  return peak;
}
