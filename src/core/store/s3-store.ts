import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  CreateBucketCommand,
  HeadBucketCommand,
} from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { ObjectRef } from './refs.js';
import { parseS3Uri } from './refs.js';
import type { S3Answer } from './s3-signed-http.js';
import { S3AnswerError, s3ErrorCode, SignedS3Http } from './s3-signed-http.js';

/**
 * Where objects live. Read from the environment so AWS S3, MinIO, Ceph or the local
 * versitygw work unchanged; credentials come from the standard AWS variables and never
 * enter workflow inputs or histories.
 */
export const S3ConfigSchema = z.object({
  /** Custom endpoint (MinIO, versitygw); unset for AWS S3. Env: SPARK_S3_ENDPOINT. */
  endpoint: z.string().url().optional(),
  /** Env: SPARK_S3_BUCKET. Default `spark`. */
  bucket: z.string().min(3),
  /** Env: SPARK_S3_REGION or AWS_REGION. Default `us-east-1`. */
  region: z.string().min(1),
  /** Env: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; unset uses the SDK's default chain. */
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  /** Path-style addressing (needed by versitygw and MinIO). Env: SPARK_S3_FORCE_PATH_STYLE=true|false; default true when an endpoint is set. */
  forcePathStyle: z.boolean(),
});
export type S3Config = z.infer<typeof S3ConfigSchema>;

export function s3ConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3Config {
  const endpoint = env.SPARK_S3_ENDPOINT || undefined;
  const pathStyle = env.SPARK_S3_FORCE_PATH_STYLE;
  return S3ConfigSchema.parse({
    endpoint,
    bucket: env.SPARK_S3_BUCKET || 'spark',
    region: env.SPARK_S3_REGION || env.AWS_REGION || 'us-east-1',
    accessKeyId: env.AWS_ACCESS_KEY_ID || undefined,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY || undefined,
    forcePathStyle: pathStyle === undefined || pathStyle === '' ? endpoint !== undefined : pathStyle === 'true',
  });
}

/** The object is not there (distinct from transport trouble, which is worth retrying). */
export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  constructor(readonly uri: string) {
    super(`no object at ${uri}`);
  }
}

/** Credentials or permissions are wrong: retrying will not help. */
export class ObjectAccessError extends Error {
  override readonly name: string = 'ObjectAccessError';
}

/**
 * S3 settings that cannot work: no credentials, a bucket that does not exist, an endpoint host
 * with no DNS address, keys S3 does not know. Retrying will not help, so activities fail at once
 * and workers refuse to start; the message names the setting to fix.
 */
export class S3ConfigError extends ObjectAccessError {
  override readonly name: string = 'S3ConfigError';
}

/** Which S3 endpoint the settings chose, in the words of the setting. */
export function endpointSetting(config: Pick<S3Config, 'endpoint' | 'region'>): string {
  return config.endpoint
    ? `SPARK_S3_ENDPOINT=${config.endpoint}`
    : `SPARK_S3_ENDPOINT is unset, so the AWS default endpoint was used (https://s3.${config.region}.amazonaws.com)`;
}

/**
 * The configuration mistake behind an S3 error, or null when it may pass (a refused connection,
 * a 5xx, a timeout: S3 restarting is retried). A DNS failure of the endpoint's host counts as
 * configuration: a name that does not resolve is a wrong setting far more often than a blip.
 */
export function s3ConfigError(err: unknown, config: S3Config): S3ConfigError | null {
  if (err instanceof S3ConfigError) return err;
  if (err === null || typeof err !== 'object') return null;
  const e = err as { name?: string; message?: string; code?: string; hostname?: string; cause?: { code?: string; hostname?: string } };
  const keys = config.accessKeyId ? `AWS_ACCESS_KEY_ID=${config.accessKeyId}` : 'AWS_ACCESS_KEY_ID unset (the AWS default chain was used)';
  if (e.name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) {
    return new S3ConfigError(`no S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are unset and the AWS default chain found none (${e.message})`);
  }
  if ((e.code ?? e.cause?.code) === 'ENOTFOUND') {
    const host = e.hostname ?? e.cause?.hostname ?? '';
    return new S3ConfigError(`${endpointSetting(config)}, and its host ${host ? `${host} ` : ''}has no DNS address (${e.message}); set SPARK_S3_ENDPOINT to your S3 server`);
  }
  const code = err instanceof S3AnswerError ? err.code : err instanceof S3ServiceException ? err.name : null;
  const status = err instanceof S3AnswerError ? err.status : err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
  if (code === 'NoSuchBucket') return new S3ConfigError(`SPARK_S3_BUCKET=${config.bucket} does not exist at ${endpointSetting(config)}`);
  if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || code === 'IllegalLocationConstraintException') {
    return new S3ConfigError(`SPARK_S3_BUCKET=${config.bucket} is not in SPARK_S3_REGION=${config.region} (${code}) at ${endpointSetting(config)}; set SPARK_S3_REGION to the bucket's region`);
  }
  if (code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || code === 'InvalidClientTokenId' || code === 'XAdminUserNotFound') {
    return new S3ConfigError(`access denied: S3 refused the credentials (${code}); check ${keys} and AWS_SECRET_ACCESS_KEY for ${endpointSetting(config)}`);
  }
  if (status === 401 || status === 403) {
    return new S3ConfigError(`access to SPARK_S3_BUCKET=${config.bucket} denied (${code ?? status}) for ${keys}; the key needs GetObject, PutObject and ListBucket on it`);
  }
  return null;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The one client for object storage. Keys are relative to the configured bucket. */
export class ObjectStore {
  readonly bucket: string;
  private readonly s3: S3Client;
  /** Object GET/HEAD/PUT without the SDK's per-request cost, where credentials are given (else the SDK's default chain). */
  private readonly signed: SignedS3Http | null;

  constructor(readonly config: S3Config) {
    this.bucket = config.bucket;
    this.signed = config.accessKeyId && config.secretAccessKey
      ? new SignedS3Http({ ...config, accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey })
      : null;
    this.s3 = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      credentials:
        config.accessKeyId && config.secretAccessKey
          ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey }
          : undefined,
      // Temporal retries activities; a short SDK retry only smooths over a dropped connection.
      maxAttempts: 2,
      // A stage-1 problem looks up hundreds of samples at once; more sockets than the SDK's 50,
      // and queueing behind them is expected, not worth a warning.
      requestHandler: {
        httpAgent: { keepAlive: true, maxSockets: 128 },
        httpsAgent: { keepAlive: true, maxSockets: 128 },
        socketAcquisitionWarningTimeout: 120_000,
      },
    });
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  /** Key inside this store's bucket for a URI; rejects URIs of other buckets. */
  keyOf(uriOrKey: string): string {
    if (!uriOrKey.startsWith('s3://')) return uriOrKey;
    const { bucket, key } = parseS3Uri(uriOrKey);
    if (bucket !== this.bucket) throw new ObjectAccessError(`${uriOrKey} is outside the configured bucket ${this.bucket}`);
    return key;
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.s3.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch {
      try {
        await this.s3.send(new CreateBucketCommand({ Bucket: this.bucket }));
      } catch (err) {
        // Two processes may race to create it; only fail if it still is not there.
        await this.s3.send(new HeadBucketCommand({ Bucket: this.bucket })).catch(() => {
          throw err;
        });
      }
    }
  }

  /**
   * Writes an object and returns its reference. The body is hashed once: the hash is the
   * reference's `sha256`, the object's `sha256` metadata and (on the signed path) the payload
   * hash S3 checks the bytes against. `bare: true` stores neither metadata nor a content type
   * (on the SDK path it also skips the hash; the reference's sha256 is then empty): for the
   * sample store's many small content-addressed objects, whose keys already name them and
   * whose readers check their shape, as each metadata item is more work per object on some
   * S3 servers (a file each on versitygw).
   */
  async put(key: string, body: string | Uint8Array, contentType = 'application/octet-stream', options: { bare?: boolean } = {}): Promise<ObjectRef> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    return this.io(key, async () => {
      if (this.signed) {
        const sha256 = sha256Hex(bytes);
        const headers: Record<string, string> = options.bare ? {} : { 'content-type': contentType, 'x-amz-meta-sha256': sha256 };
        const answer = await this.signed.put(key, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes), sha256, headers);
        if (answer.status !== 200) throw answerError('PUT', answer, this.uri(key));
        return { uri: this.uri(key), sha256, bytes: bytes.length };
      }
      const sha256 = options.bare ? '' : sha256Hex(bytes);
      await this.s3.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ...(options.bare ? {} : { ContentType: contentType, Metadata: { sha256 } }) }),
      );
      return { uri: this.uri(key), sha256, bytes: bytes.length };
    });
  }

  putJson(key: string, value: unknown): Promise<ObjectRef> {
    return this.put(key, JSON.stringify(value), 'application/json');
  }

  /**
   * Writes only if nothing is at `key` yet, and returns the reference of what is there.
   * Used for content-addressed and step-keyed objects, where an existing object is by
   * construction the same result: a retried activity then writes nothing new.
   */
  async putIfAbsent(key: string, body: string | Uint8Array, contentType = 'application/octet-stream'): Promise<{ ref: ObjectRef; created: boolean }> {
    const existing = await this.head(key);
    if (existing) return { ref: existing, created: false };
    return { ref: await this.put(key, body, contentType), created: true };
  }

  /**
   * Writes only if no object is at `key`, decided by S3 itself (`If-None-Match: *`), so two writers
   * racing for the same key cannot both win: the reference, or null when something was there.
   */
  async putIfNoneMatch(key: string, body: string, contentType = 'application/json'): Promise<ObjectRef | null> {
    const bytes = Buffer.from(body);
    const sha256 = sha256Hex(bytes);
    return this.io(key, async () => {
      if (this.signed) {
        const answer = await this.signed.put(key, bytes, sha256, { 'content-type': contentType, 'x-amz-meta-sha256': sha256, 'if-none-match': '*' });
        // 409: a conditional write raced another one for the key; either way the key is taken.
        if (answer.status === 412 || answer.status === 409) return null;
        if (answer.status !== 200) throw answerError('PUT', answer, this.uri(key));
        return { uri: this.uri(key), sha256, bytes: bytes.length };
      }
      try {
        await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ContentType: contentType, Metadata: { sha256 }, IfNoneMatch: '*' }));
      } catch (err) {
        const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
        if (status === 412 || status === 409) return null;
        throw err;
      }
      return { uri: this.uri(key), sha256, bytes: bytes.length };
    });
  }

  /** Size and recorded hash of an object, or null if absent. */
  async head(key: string): Promise<ObjectRef | null> {
    return this.io(key, async () => {
      if (this.signed) {
        const answer = await this.signed.head(key);
        if (answer.status === 404) return null;
        if (answer.status !== 200) throw answerError('HEAD', answer, this.uri(key));
        const sha256 = answer.headers['x-amz-meta-sha256'];
        return { uri: this.uri(key), sha256: typeof sha256 === 'string' ? sha256 : '', bytes: Number(answer.headers['content-length'] ?? 0) };
      }
      try {
        const out = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
        return { uri: this.uri(key), sha256: out.Metadata?.sha256 ?? '', bytes: out.ContentLength ?? 0 };
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    });
  }

  async getBytes(uriOrKey: string): Promise<Uint8Array> {
    const bytes = await this.getBytesIfExists(uriOrKey);
    if (!bytes) throw new ObjectNotFoundError(this.uri(this.keyOf(uriOrKey)));
    return bytes;
  }

  /** The object's bytes, or null when there is none (no exception on the miss: the sample store misses often). */
  async getBytesIfExists(uriOrKey: string): Promise<Uint8Array | null> {
    const key = this.keyOf(uriOrKey);
    return this.io(key, async () => {
      if (this.signed) {
        const answer = await this.signed.get(key);
        if (isMissingObject(answer)) return null;
        if (answer.status !== 200) throw answerError('GET', answer, this.uri(key));
        // Objects written here carry their hash: a damaged read is an error, not data.
        const sha256 = answer.headers['x-amz-meta-sha256'];
        if (typeof sha256 === 'string' && sha256 !== '' && sha256Hex(answer.body) !== sha256) {
          throw new Error(`checksum mismatch reading ${this.uri(key)}: the bytes do not hash to the recorded sha256`);
        }
        return answer.body;
      }
      try {
        const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
        if (!out.Body) return null;
        return await out.Body.transformToByteArray();
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    });
  }

  async getText(uriOrKey: string): Promise<string> {
    return Buffer.from(await this.getBytes(uriOrKey)).toString('utf8');
  }

  async getJson<T = unknown>(uriOrKey: string): Promise<T> {
    return JSON.parse(await this.getText(uriOrKey)) as T;
  }

  /** Reads a JSON object if present; null if absent. */
  async getJsonIfExists<T = unknown>(uriOrKey: string): Promise<T | null> {
    const bytes = await this.getBytesIfExists(uriOrKey);
    return bytes ? (JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as T) : null;
  }

  /** Removes an object (no error if it is not there). */
  async delete(key: string): Promise<void> {
    await this.io(key, async () => {
      if (this.signed) {
        const answer = await this.signed.delete(key);
        if (answer.status !== 204 && answer.status !== 200 && !isMissingObject(answer)) throw answerError('DELETE', answer, this.uri(key));
        return;
      }
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    });
  }

  async list(prefix: string): Promise<string[]> {
    return this.io(prefix, async () => {
      if (this.signed) return this.signed.list(prefix);
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await this.s3.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      return keys;
    });
  }

  /** Whether any object's key starts with `prefix` (one LIST of at most one key). */
  async hasAny(prefix: string): Promise<boolean> {
    const out = await this.io(prefix, () => this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: 1 })));
    return (out.KeyCount ?? out.Contents?.length ?? 0) > 0;
  }

  destroy(): void {
    this.s3.destroy();
    this.signed?.destroy();
  }

  /** Every request leaves through here: configuration mistakes become S3ConfigError, the rest as before. */
  private async io<T>(key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ObjectNotFoundError || (err instanceof ObjectAccessError && !(err.cause instanceof S3AnswerError))) throw err;
      throw s3ConfigError(err instanceof ObjectAccessError ? err.cause : err, this.config) ?? mapS3Error(err, this.uri(key));
    }
  }
}

/** An S3 answer that is not success, as the errors the SDK path throws. */
function answerError(method: string, answer: S3Answer, uri: string): Error {
  const code = s3ErrorCode(answer.body);
  const error = new S3AnswerError(`S3 ${method} ${uri}`, answer);
  if (isMissingObject(answer)) return new ObjectNotFoundError(uri);
  if (answer.status === 401 || answer.status === 403) return new ObjectAccessError(`access to ${uri} denied (${code ?? answer.status}): check the S3 credentials`, { cause: error });
  return error;
}

/** A 404 about the object, not about the bucket or the caller (versitygw answers unknown keys with 404 XAdminUserNotFound). */
function isMissingObject(answer: S3Answer): boolean {
  if (answer.status !== 404) return false;
  const code = s3ErrorCode(answer.body);
  return code === null || code === 'NoSuchKey' || code === 'NotFound';
}

function isNotFound(err: unknown): boolean {
  if (err instanceof S3ServiceException) {
    // A missing bucket is a setting to fix, not a missing object.
    return err.name !== 'NoSuchBucket' && (err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404);
  }
  return false;
}

function mapS3Error(err: unknown, uri: string): Error {
  if (err instanceof ObjectAccessError || err instanceof ObjectNotFoundError) return err;
  if (isNotFound(err)) return new ObjectNotFoundError(uri);
  if (err instanceof S3ServiceException) {
    const status = err.$metadata.httpStatusCode ?? 0;
    if (status === 401 || status === 403) return new ObjectAccessError(`access to ${uri} denied (${err.name}): check the S3 credentials`);
  }
  return err instanceof Error ? err : new Error(String(err));
}
