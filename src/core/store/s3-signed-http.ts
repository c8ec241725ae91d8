import { createHash, createHmac } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** What the signed-HTTP path needs: where the bucket is and static credentials. */
export interface SignedS3Target {
  endpoint?: string;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** An S3 answer: status, headers and the whole body. */
export interface S3Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

const EMPTY_SHA256 = createHash('sha256').digest('hex');
/** Kept-alive sockets per store: enough for a worker's writes as its model requests finish. */
const MAX_SOCKETS = 64;

/**
 * GET, HEAD and PUT of single objects as plain SigV4-signed HTTP requests on kept-alive
 * sockets. The AWS SDK spends about 2 ms of CPU per request in its middleware; the sample
 * store makes two requests per model request, so on a busy worker the SDK was the largest
 * cost. This path signs the payload's SHA-256 (so S3 checks the bytes it receives, and the
 * same hash is the object's `sha256` metadata) and nothing else; everything else (listing,
 * buckets, credentials from the default chain) stays with the SDK.
 */
export class SignedS3Http {
  private readonly base: URL;
  private readonly pathStyle: boolean;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly send: typeof httpRequest;
  private signingKey: { date: string; key: Buffer } | null = null;

  constructor(private readonly target: SignedS3Target) {
    this.base = new URL(target.endpoint ?? `https://s3.${target.region}.amazonaws.com`);
    this.pathStyle = target.forcePathStyle;
    const https = this.base.protocol === 'https:';
    this.agent = https ? new HttpsAgent({ keepAlive: true, maxSockets: MAX_SOCKETS }) : new HttpAgent({ keepAlive: true, maxSockets: MAX_SOCKETS });
    this.send = https ? httpsRequest : httpRequest;
  }

  get(key: string): Promise<S3Answer> {
    return this.request('GET', key, undefined, EMPTY_SHA256, {});
  }

  head(key: string): Promise<S3Answer> {
    return this.request('HEAD', key, undefined, EMPTY_SHA256, {});
  }

  put(key: string, body: Buffer, sha256: string, headers: Record<string, string>): Promise<S3Answer> {
    return this.request('PUT', key, body, sha256, { 'content-length': String(body.length), ...headers });
  }

  delete(key: string): Promise<S3Answer> {
    return this.request('DELETE', key, undefined, EMPTY_SHA256, {});
  }

  /** Keys under `prefix` (ListObjectsV2, every page). */
  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix, ...(token ? { 'continuation-token': token } : {}) };
      const answer = await this.request('GET', null, undefined, EMPTY_SHA256, {}, query);
      if (answer.status !== 200) throw new S3AnswerError(`S3 LIST ${prefix}`, answer);
      const xml = answer.body.toString('utf8');
      for (const m of xml.matchAll(/<Key>([^<]*)<\/Key>/g)) keys.push(unescapeXml(m[1]!));
      token = /<IsTruncated>true<\/IsTruncated>/.test(xml) ? unescapeXml(/<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1] ?? '') : undefined;
    } while (token);
    return keys;
  }

  destroy(): void {
    this.agent.destroy();
  }

  /** One signed request for an object (`key`) or for the bucket (`key` null, with a query). */
  private request(method: string, key: string | null, body: Buffer | undefined, payloadSha256: string, extra: Record<string, string>, query: Record<string, string> = {}): Promise<S3Answer> {
    const objectPath = key === null ? '' : encodePath(key);
    const path = this.pathStyle ? `/${encodePath(this.target.bucket)}${key === null ? '' : `/${objectPath}`}` : `/${objectPath}`;
    const canonicalQuery = Object.keys(query).sort().map((k) => `${encodeQuery(k)}=${encodeQuery(query[k]!)}`).join('&');
    const host = this.pathStyle ? this.base.host : `${this.target.bucket}.${this.base.host}`;
    const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    // SigV4 signs the host and every x-amz-* header (metadata included).
    const signed: Record<string, string> = {
      host,
      'x-amz-content-sha256': payloadSha256,
      'x-amz-date': amzDate,
      ...(this.target.sessionToken ? { 'x-amz-security-token': this.target.sessionToken } : {}),
    };
    for (const [name, value] of Object.entries(extra)) if (name.startsWith('x-amz-')) signed[name] = value.trim();
    const names = Object.keys(signed).sort();
    const canonical = [method, path, canonicalQuery, ...names.map((n) => `${n}:${signed[n]}`), '', names.join(';'), payloadSha256].join('\n');
    const date = amzDate.slice(0, 8);
    const scope = `${date}/${this.target.region}/s3/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    const signature = createHmac('sha256', this.key(date)).update(toSign).digest('hex');
    const headers = {
      ...signed,
      ...extra,
      authorization: `AWS4-HMAC-SHA256 Credential=${this.target.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
    };
    const options = {
      protocol: this.base.protocol, hostname: this.pathStyle ? this.base.hostname : `${this.target.bucket}.${this.base.hostname}`,
      port: this.base.port, path: canonicalQuery ? `${path}?${canonicalQuery}` : path, method, headers, agent: this.agent,
    };
    const attempt = (staleSockets: number): Promise<S3Answer> => new Promise<S3Answer>((resolve, reject) => {
      const req = this.send(options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive socket the server dropped (it restarted, or timed the socket out) fails the
        // first request sent on it before any answer. Every request here is safe to send again
        // (GET, HEAD, LIST, and a PUT of fixed bytes under a fixed key): again on the next socket,
        // as long as the failures are of reused sockets (after a restart every pooled one is dead).
        const staleSocket = req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.message === 'socket hang up');
        if (staleSocket && staleSockets < MAX_SOCKETS) attempt(staleSockets + 1).then(resolve, reject);
        else reject(err);
      });
      req.end(body);
    });
    return attempt(0);
  }

  /** The day's signing key, derived once a day. */
  private key(date: string): Buffer {
    if (this.signingKey?.date !== date) {
      const hmac = (k: string | Buffer, v: string) => createHmac('sha256', k).update(v).digest();
      const key = hmac(hmac(hmac(hmac(`AWS4${this.target.secretAccessKey}`, date), this.target.region), 's3'), 'aws4_request');
      this.signingKey = { date, key };
    }
    return this.signingKey.key;
  }
}

/** URI-encodes an object key as S3 signs it: every byte but unreserved characters and '/'. */
function encodePath(key: string): string {
  return encodeURIComponent(key).replace(/%2F/g, '/').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** URI-encodes a query name or value as SigV4 wants it (everything but unreserved characters). */
function encodeQuery(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp|#(\d+)|#x([0-9a-fA-F]+));/g, (_, name: string, dec?: string, hex?: string) =>
    dec ? String.fromCodePoint(Number(dec)) : hex ? String.fromCodePoint(parseInt(hex, 16)) : ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' } as Record<string, string>)[name]!);
}

/** An S3 answer that is not success, with its status and error code for callers to tell why. */
export class S3AnswerError extends Error {
  override readonly name = 'S3AnswerError';
  readonly status: number;
  readonly code: string | null;
  constructor(what: string, answer: S3Answer) {
    const code = s3ErrorCode(answer.body);
    super(`${what} answered ${answer.status}${code ? ` (${code})` : ''}`);
    this.status = answer.status;
    this.code = code;
  }
}

/** The error code in an S3 XML error body, if any. */
export function s3ErrorCode(body: Buffer): string | null {
  return /<Code>([^<]+)<\/Code>/.exec(body.toString('utf8'))?.[1] ?? null;
}
