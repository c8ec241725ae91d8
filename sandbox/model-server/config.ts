/**
 * Server knobs for tests and benchmarks: seed, latency, concurrency and fault injection.
 * All can be set at start and changed at runtime (`POST /sim/config`).
 */
import { z } from 'zod';

const rate = z.number().min(0).max(1);

export const latencyConfigSchema = z.strictObject({
  /** Median latency of a request, in milliseconds (lognormal). */
  medianMs: z.number().min(0),
  /** Lognormal shape: the standard deviation of log(latency). */
  sigma: z.number().min(0).max(5),
  /** Extra milliseconds per choice, so one request with n = K is cheaper than K requests. */
  perSampleMs: z.number().min(0),
});

/** Fault probabilities per request attempt; they sum to at most 1. */
export const faultConfigSchema = z.strictObject({
  /** 429 with a `retry-after` header. */
  rate429: rate,
  /** Seconds announced in `retry-after`. */
  retryAfterSeconds: z.number().min(0),
  /** 500 with an OpenAI-shaped error body. */
  rate500: rate,
  /** Never answers, until the client gives up or the server closes. */
  rateHang: rate,
  /** 200 with the content cut mid-way and finish_reason 'length'. */
  rateTruncated: rate,
  /** 200 with a body that is not valid JSON. */
  rateMalformed: rate,
  /** The socket is destroyed without an answer. */
  rateReset: rate,
});

export const simServerConfigSchema = z.strictObject({
  /** Seed of every random choice the server makes. */
  seed: z.number().int(),
  latency: latencyConfigSchema,
  /** Requests served at once; more wait in FIFO order. */
  maxConcurrent: z.number().int().min(1),
  /** Requests allowed to wait; beyond it the server answers 429. null = unbounded. */
  maxQueue: z.number().int().min(0).nullable(),
  faults: faultConfigSchema,
}).refine(
  (c) => c.faults.rate429 + c.faults.rate500 + c.faults.rateHang + c.faults.rateTruncated + c.faults.rateMalformed + c.faults.rateReset <= 1,
  { message: 'fault rates must sum to at most 1', path: ['faults'] },
);

/** The server's knobs. */
export type SimServerConfig = z.infer<typeof simServerConfigSchema>;
export type FaultConfig = z.infer<typeof faultConfigSchema>;
export type LatencyConfig = z.infer<typeof latencyConfigSchema>;

/** Partial knobs, as accepted by options, `setConfig` and `POST /sim/config`. */
export const simServerConfigPatchSchema = z.strictObject({
  seed: z.number().int().optional(),
  latency: latencyConfigSchema.partial().optional(),
  maxConcurrent: z.number().int().min(1).optional(),
  maxQueue: z.number().int().min(0).nullable().optional(),
  faults: faultConfigSchema.partial().optional(),
});
export type SimServerConfigPatch = z.infer<typeof simServerConfigPatchSchema>;

/** Defaults: fast, unlimited enough for tests, no faults. */
export const DEFAULT_SIM_SERVER_CONFIG: SimServerConfig = {
  seed: 0,
  latency: { medianMs: 2, sigma: 0.5, perSampleMs: 0.2 },
  maxConcurrent: 64,
  maxQueue: null,
  faults: { rate429: 0, retryAfterSeconds: 1, rate500: 0, rateHang: 0, rateTruncated: 0, rateMalformed: 0, rateReset: 0 },
};
