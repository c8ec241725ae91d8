/**
 * Runs the sandbox model server:
 *   tsx sandbox/model-server/main.ts --port 8300 --seed 1 [--host 127.0.0.1] [--config file.json] [--log-file requests.jsonl]
 *
 * The config file holds server knobs (seed, latency, maxConcurrent, maxQueue, faults) and
 * optionally `models` (extra base models as parameter overrides) and `logFile`.
 * Prints one JSON line `{"url": ...}` once listening; exits cleanly on SIGTERM or SIGINT.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { simServerConfigPatchSchema } from './config.js';
import { describeZodError, serveUntilSignalled } from './http.js';
import { simModelOverridesSchema } from './params.js';
import { startSimServer } from './server.js';
import { objectStoreAdapterReader } from './models.js';
import { ObjectStore, s3ConfigFromEnv } from '../../src/core/store/s3-store.js';

const configFileSchema = simServerConfigPatchSchema.extend({
  models: z.record(z.string(), simModelOverridesSchema.extend({ base: z.string().optional() })).optional(),
  logFile: z.string().optional(),
});

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      seed: { type: 'string' },
      config: { type: 'string' },
      'log-file': { type: 'string' },
    },
  });
  const file = values.config ? configFileSchema.safeParse(JSON.parse(await readFile(values.config, 'utf8'))) : null;
  if (file && !file.success) throw new Error(`${values.config}: ${describeZodError(file.error)}`);
  const { models, logFile, ...knobs } = file?.data ?? {};
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0) throw new Error(`--port must be a port number, got '${values.port}'`);
  const seed = values.seed !== undefined ? Number(values.seed) : undefined;
  if (seed !== undefined && !Number.isInteger(seed)) throw new Error(`--seed must be an integer, got '${values.seed}'`);

  // Adapters published by trainers live in S3 (s3://…), like LoRA weights a vLLM server loads.
  let store: ObjectStore | undefined;
  const readAdapter = objectStoreAdapterReader(() => (store ??= new ObjectStore(s3ConfigFromEnv())));
  const server = await startSimServer({
    port,
    readAdapter,
    host: values.host,
    ...knobs,
    ...(seed !== undefined ? { seed } : {}),
    ...(models ? { models } : {}),
    ...(values['log-file'] ?? logFile ? { logFile: values['log-file'] ?? logFile } : {}),
  });
  serveUntilSignalled(server);
}

main().catch((err: unknown) => {
  process.stderr.write(`sim: ${(err as Error).message}\n`);
  process.exit(1);
});
