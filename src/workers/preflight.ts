/**
 * What a worker checks before it polls: that it reaches Temporal (and its namespace) and can
 * write, read and delete an object in its S3 bucket. A worker with settings that cannot work
 * would otherwise take tasks and fail each of them only after minutes of retries.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalSettings } from '../core/temporal/connection.js';
import { connectionOptions } from '../core/temporal/connection.js';
import type { ObjectStore } from '../core/store/s3-store.js';
import { endpointSetting, s3ConfigError } from '../core/store/s3-store.js';

/** Where the probe objects go; each worker deletes its own. */
export const PROBE_PREFIX = '.spark/worker-probe';

/** Exit code of a worker that refused its configuration (EX_CONFIG of sysexits.h). */
export const EXIT_CONFIG = 78;

/** One or more settings that cannot work; the message has one line per problem, each naming its setting. */
export class WorkerConfigError extends Error {
  override readonly name = 'WorkerConfigError';
  constructor(readonly problems: string[]) {
    super(`worker refused to start:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

const GRPC_NOT_FOUND = 5;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

/** Connects to Temporal and asks for the namespace; the connection, or the problem in words. */
export async function checkTemporal(settings: TemporalSettings, timeoutMs = 15_000): Promise<{ connection?: NativeConnection; problem?: string; warning?: string }> {
  const where = `TEMPORAL_ADDRESS=${settings.address}`;
  let connection: NativeConnection;
  try {
    connection = await withDeadline(NativeConnection.connect(connectionOptions(settings)), timeoutMs, where);
  } catch (err) {
    return { problem: `${where} unreachable (${firstLine(err)})${settings.tls ? '; TLS is on (TEMPORAL_TLS, TEMPORAL_TLS_CERT or TEMPORAL_API_KEY)' : ''}` };
  }
  try {
    await withDeadline(connection.workflowService.describeNamespace({ namespace: settings.namespace }), timeoutMs, where);
    return { connection };
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code !== GRPC_PERMISSION_DENIED) await connection.close().catch(() => undefined);
    if (code === GRPC_NOT_FOUND) return { problem: `TEMPORAL_NAMESPACE=${settings.namespace} does not exist on ${where}` };
    // A role may poll without being allowed to describe its namespace: not a reason to refuse.
    if (code === GRPC_PERMISSION_DENIED) return { connection, warning: `could not check TEMPORAL_NAMESPACE=${settings.namespace} (${firstLine(err)}); going on` };
    if (code === GRPC_UNAUTHENTICATED) {
      return { problem: `${where} refused this worker's credentials for TEMPORAL_NAMESPACE=${settings.namespace} (${firstLine(err)}); check TEMPORAL_API_KEY or TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY` };
    }
    return { problem: `${where} did not answer for TEMPORAL_NAMESPACE=${settings.namespace} (${firstLine(err)})` };
  }
}

/** Writes, reads back and deletes a small object under {@link PROBE_PREFIX}; the problem in words, or null. */
export async function checkS3(store: ObjectStore, timeoutMs = 20_000): Promise<string | null> {
  const key = `${PROBE_PREFIX}/${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const body = `spark worker probe ${new Date().toISOString()}`;
  try {
    await withDeadline((async () => {
      await store.put(key, body, 'text/plain');
      const read = Buffer.from(await store.getBytes(key)).toString('utf8');
      if (read !== body) throw new Error(`read back ${read.length} bytes that differ from the ${body.length} written`);
      // Workers never delete otherwise, so a policy without DeleteObject is allowed: the probe then stays.
      await store.delete(key).catch((err: unknown) => console.error(`worker preflight: could not delete the probe s3://${store.bucket}/${key} (${firstLine(err)}); it stays`));
    })(), timeoutMs, `S3 at ${store.config.endpoint ?? 'the AWS default endpoint'}`);
    return null;
  } catch (err) {
    const known = s3ConfigError(err, store.config);
    // The usual trap: a worker started without the stack's S3 settings talks to AWS, so the endpoint is always named.
    const message = known?.message ?? `cannot write, read and delete s3://${store.bucket}/${key} (${firstLine(err)})`;
    return message.includes('SPARK_S3_ENDPOINT') ? message : `${message}; ${endpointSetting(store.config)}`;
  }
}

/** Both checks at once; the Temporal connection to poll with, or a WorkerConfigError listing every problem. */
export async function preflight(settings: TemporalSettings, store: ObjectStore): Promise<NativeConnection> {
  const [temporal, s3] = await Promise.all([checkTemporal(settings), checkS3(store)]);
  if (temporal.warning) console.error(`worker preflight: ${temporal.warning}`);
  const problems = [temporal.problem, s3].filter((p): p is string => Boolean(p));
  if (problems.length) {
    await temporal.connection?.close().catch(() => undefined);
    throw new WorkerConfigError(problems);
  }
  return temporal.connection!;
}

function firstLine(err: unknown): string {
  const e = err as { message?: string; code?: string };
  const message = (e?.message ?? String(err)).split('\n')[0]!;
  return e?.code && typeof e.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}
