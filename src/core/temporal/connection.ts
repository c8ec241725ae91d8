import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * How to reach Temporal, from the environment (or flags mapped onto it), so the same worker and
 * CLI talk to the local dev server, a self-hosted cluster or Temporal Cloud.
 */
export const TemporalSettingsSchema = z.object({
  /** Env TEMPORAL_ADDRESS; default 127.0.0.1:7233 (the local dev server). */
  address: z.string().min(1),
  /** Env TEMPORAL_NAMESPACE; default `default`. */
  namespace: z.string().min(1),
  /** Env TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY: client certificate and key files (mTLS). */
  tlsCertPath: z.string().optional(),
  tlsKeyPath: z.string().optional(),
  /** Env TEMPORAL_TLS=true: TLS without client certificates (e.g. API-key auth). */
  tls: z.boolean(),
  /** Env TEMPORAL_API_KEY. */
  apiKey: z.string().optional(),
});
export type TemporalSettings = z.infer<typeof TemporalSettingsSchema>;

export function temporalSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  return TemporalSettingsSchema.parse({
    address: env.TEMPORAL_ADDRESS || '127.0.0.1:7233',
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    tlsCertPath: env.TEMPORAL_TLS_CERT || undefined,
    tlsKeyPath: env.TEMPORAL_TLS_KEY || undefined,
    tls: env.TEMPORAL_TLS === 'true' || Boolean(env.TEMPORAL_TLS_CERT) || Boolean(env.TEMPORAL_API_KEY),
    apiKey: env.TEMPORAL_API_KEY || undefined,
  });
}

/** Connection options shared by the client's Connection and the worker's NativeConnection. */
export function connectionOptions(s: TemporalSettings) {
  const clientCertPair =
    s.tlsCertPath && s.tlsKeyPath ? { crt: readFileSync(s.tlsCertPath), key: readFileSync(s.tlsKeyPath) } : undefined;
  return {
    address: s.address,
    tls: s.tls ? (clientCertPair ? { clientCertPair } : true) : undefined,
    apiKey: s.apiKey,
  };
}
