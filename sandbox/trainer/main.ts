/**
 * Runs the sandbox trainer:
 *   tsx sandbox/trainer/main.ts --port 8400 [--host 127.0.0.1] [--events-file events.jsonl] [--step-ms 0]
 *
 * Reads batches and writes checkpoints in the S3 bucket the environment configures (SPARK_S3_*).
 * Prints one JSON line `{"url": ...}` once listening; exits cleanly on SIGTERM or SIGINT.
 */
import { parseArgs } from 'node:util';
import { ObjectStore, s3ConfigFromEnv } from '../../src/core/store/s3-store.js';
import { serveUntilSignalled } from '../model-server/http.js';
import { startTrainerServer } from './server.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      'events-file': { type: 'string' },
      'step-ms': { type: 'string', default: '0' },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0) throw new Error(`--port must be a port number, got '${values.port}'`);
  const stepLatencyMs = Number(values['step-ms']);
  if (!(stepLatencyMs >= 0)) throw new Error(`--step-ms must be a number of milliseconds ≥ 0, got '${values['step-ms']}'`);
  const store = new ObjectStore(s3ConfigFromEnv());
  const server = await startTrainerServer({ store, port, host: values.host, stepLatencyMs, ...(values['events-file'] ? { eventsFile: values['events-file'] } : {}) });
  serveUntilSignalled(server);
}

main().catch((err: unknown) => {
  process.stderr.write(`sim-trainer: ${(err as Error).message}\n`);
  process.exit(1);
});
