import { describe, expect, it } from 'vitest';
import { hashParts, rngFrom } from '../../src/core/random.js';

describe('hashParts', () => {
  it('is stable hex and distinguishes how parts are split and typed', () => {
    expect(hashParts('a', 1)).toMatch(/^[0-9a-f]{32}$/);
    expect(hashParts('a', 1)).toBe(hashParts('a', 1));
    expect(hashParts('ab', 'c')).not.toBe(hashParts('a', 'bc'));
    expect(hashParts('1')).not.toBe(hashParts(1));
  });
});

describe('rngFrom', () => {
  it('gives the same stream for the same parts and a different one otherwise', () => {
    const a = rngFrom('seed', 1);
    const b = rngFrom('seed', 1);
    const c = rngFrom('seed', 2);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
  });

  it('draws integers in range, normals with mean 0 and sd 1, and Bernoulli at the stated rate', () => {
    const rng = rngFrom('stats');
    const ints = Array.from({ length: 2000 }, () => rng.int(3, 7));
    expect(Math.min(...ints)).toBe(3);
    expect(Math.max(...ints)).toBe(7);
    const normals = Array.from({ length: 20000 }, () => rng.normal());
    const mean = normals.reduce((s, x) => s + x, 0) / normals.length;
    const sd = Math.sqrt(normals.reduce((s, x) => s + (x - mean) ** 2, 0) / normals.length);
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sd - 1)).toBeLessThan(0.03);
    const hits = Array.from({ length: 20000 }, () => rng.bernoulli(0.3)).filter(Boolean).length;
    expect(Math.abs(hits / 20000 - 0.3)).toBeLessThan(0.02);
    expect(['x', 'y']).toContain(rng.pick(['x', 'y']));
    expect(() => rng.pick([])).toThrow(RangeError);
  });
});
