import { afterAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { ObjectAccessError, ObjectNotFoundError, ObjectStore, sha256Hex } from '../../src/core/store/s3-store.js';
import { makeStore } from '../support/harness.js';

const store = makeStore();
afterAll(() => store.destroy());

describe('ObjectStore on a real S3 server (versitygw)', () => {
  it('returns references with the content hash and size, and reads back the same bytes', async () => {
    const key = `test/${randomUUID()}.json`;
    const ref = await store.putJson(key, { hello: 'world' });
    expect(ref).toEqual({ uri: `s3://spark/${key}`, sha256: sha256Hex('{"hello":"world"}'), bytes: 17 });
    expect(await store.getJson(ref.uri)).toEqual({ hello: 'world' });
    expect((await store.head(key))?.sha256).toBe(ref.sha256);
  });

  it('putIfAbsent writes once and reports the existing object afterwards', async () => {
    const key = `test/${randomUUID()}.txt`;
    const first = await store.putIfAbsent(key, 'one');
    const second = await store.putIfAbsent(key, 'two');
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(await store.getText(key)).toBe('one');
  });

  it('a missing object is an ObjectNotFoundError naming the URI, and getJsonIfExists gives null', async () => {
    const key = `test/${randomUUID()}-missing.json`;
    await expect(store.getText(key)).rejects.toThrow(ObjectNotFoundError);
    await expect(store.getText(key)).rejects.toThrow(`s3://spark/${key}`);
    expect(await store.getJsonIfExists(key)).toBeNull();
  });

  it('lists keys under a prefix across pages', async () => {
    const prefix = `test/list-${randomUUID()}/`;
    await Promise.all(Array.from({ length: 5 }, (_, i) => store.put(`${prefix}${i}`, String(i))));
    expect((await store.list(prefix)).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `${prefix}${i}`));
  });

  it('signs keys with spaces, plus signs, brackets and non-ASCII characters, and reads them back', async () => {
    const key = `test/${randomUUID()}/a b+c(1)*é 試.txt`;
    const ref = await store.put(key, 'odd key');
    expect(await store.getText(ref.uri)).toBe('odd key');
    expect(await store.list(key)).toEqual([key]);
    expect((await store.head(key))?.bytes).toBe(7);
  });

  it('wrong credentials are an ObjectAccessError, not a missing object', async () => {
    const wrong = new ObjectStore({ ...store.config, secretAccessKey: 'not-the-secret' });
    try {
      await expect(wrong.getJsonIfExists(`test/${randomUUID()}.json`)).rejects.toThrow(ObjectAccessError);
      await expect(wrong.put(`test/${randomUUID()}.json`, '{}')).rejects.toThrow(/denied/);
    } finally {
      wrong.destroy();
    }
  });

  it('refuses URIs of another bucket instead of silently reading the wrong place', () => {
    expect(() => store.keyOf('s3://other-bucket/x')).toThrow(/outside the configured bucket spark/);
  });
});

describe('signed S3 requests on kept-alive sockets', () => {
  it('send again on a new socket when the server dropped a kept-alive one (as after an S3 restart)', async () => {
    const { createServer } = await import('node:http');
    const { SignedS3Http } = await import('../../src/core/store/s3-signed-http.js');
    // An HTTP server that answers the first request of each connection and drops the connection
    // at the second, unanswered: what a client sees when it reuses a socket the server lost.
    const served = new WeakMap<object, number>();
    let dropped = 0;
    const server = createServer((req, res) => {
      const n = (served.get(req.socket) ?? 0) + 1;
      served.set(req.socket, n);
      req.resume();
      req.on('end', () => {
        if (n > 1) {
          dropped++;
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`answer to ${req.method} ${req.url}`);
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const s3 = new SignedS3Http({ endpoint: `http://127.0.0.1:${port}`, bucket: 'b', region: 'us-east-1', forcePathStyle: true, accessKeyId: 'k', secretAccessKey: 's' });
    try {
      expect((await s3.get('one')).status).toBe(200);
      // The second request goes out on the kept-alive socket, which the server drops.
      const second = await s3.get('two');
      expect(second.status).toBe(200);
      expect(second.body.toString()).toBe('answer to GET /b/two');
      const body = Buffer.from('fixed bytes');
      expect((await s3.put('three', body, sha256Hex(body), {})).status).toBe(200);
      expect(dropped).toBe(2);
    } finally {
      s3.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
