import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/**
 * A `fetch` for the `openai` client on node:http with keep-alive agents: one request, one
 * buffered response. The openai client takes any `fetch`; Node's built-in one (undici) spends
 * about twice the CPU per request on its streams, which at hundreds of requests a second is a
 * worker core. Aborts (the activity's cancellation, the client's timeout) end the request with
 * an `AbortError`, as fetch does, so the client reports them the same way.
 */
export function createHttpFetch(options: { maxSockets?: number } = {}): typeof fetch {
  const agents = {
    'http:': new HttpAgent({ keepAlive: true, maxSockets: options.maxSockets ?? 512 }),
    'https:': new HttpsAgent({ keepAlive: true, maxSockets: options.maxSockets ?? 512 }),
  };
  return ((input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = parseUrl(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const protocol = url.protocol === 'https:' ? 'https:' : 'http:';
    const send = protocol === 'https:' ? httpsRequest : httpRequest;
    const headers: Record<string, string> = {};
    (init.headers instanceof Headers ? init.headers : new Headers(init.headers)).forEach((value, name) => (headers[name] = value));
    const body = init.body;
    if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array)) {
      return Promise.reject(new TypeError('this fetch sends string or byte bodies only'));
    }
    return new Promise<Response>((resolve, reject) => {
      const req = send(url.href, { method: init.method ?? 'GET', headers, agent: agents[protocol], signal: init.signal ?? undefined }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => resolve(bufferedResponse(url.href, res.statusCode ?? 0, res.statusMessage ?? '', new ResponseHeaders(res.headers), Buffer.concat(chunks))));
      });
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  }) as typeof fetch;
}

/**
 * What the openai client reads of a response (status, headers, `json()`, `text()`), over a
 * body already in memory. A WHATWG `Response` would wrap the same bytes in a stream only to
 * read them back; `body` is null, as for a response whose stream was consumed.
 */
function bufferedResponse(url: string, status: number, statusText: string, headers: ResponseHeaders, bytes: Buffer): Response {
  let used = false;
  const text = async (): Promise<string> => {
    if (used) throw new TypeError('Body is unusable: Body has already been read');
    used = true;
    return bytes.toString('utf8');
  };
  return {
    url,
    status,
    statusText,
    ok: status >= 200 && status < 300,
    headers,
    redirected: false,
    type: 'basic',
    body: null,
    get bodyUsed() {
      return used;
    },
    text,
    json: async (): Promise<unknown> => JSON.parse(await text()),
  } as unknown as Response;
}

/** The few URLs a client calls, parsed once each. */
const parsedUrls = new Map<string, URL>();
function parseUrl(href: string): URL {
  let url = parsedUrls.get(href);
  if (!url) {
    url = new URL(href);
    if (parsedUrls.size > 256) parsedUrls.clear();
    parsedUrls.set(href, url);
  }
  return url;
}

/**
 * The read side of `Headers` over node's already lower-cased response headers, built only
 * when a header is asked for (the client asks for two or three per response).
 */
class ResponseHeaders {
  constructor(private readonly raw: IncomingHttpHeaders) {}

  get(name: string): string | null {
    const value = this.raw[name.toLowerCase()];
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
  }

  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }

  *entries(): IterableIterator<[string, string]> {
    for (const name of Object.keys(this.raw).sort()) yield [name, this.get(name)!];
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  forEach(fn: (value: string, name: string) => void): void {
    for (const [name, value] of this.entries()) fn(value, name);
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}
