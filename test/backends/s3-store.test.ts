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
