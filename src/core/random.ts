/**
 * Deterministic seeded randomness in pure JavaScript.
 *
 * No Node built-ins here: workflow code imports src/domain, and Temporal's workflow
 * sandbox has no Node APIs. Same parts in, same stream out, on every machine.
 */

/** A small seeded pseudo-random generator. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number;
  /** Standard normal sample (Box–Muller). */
  normal(): number;
  /** True with probability p. */
  bernoulli(p: number): boolean;
  /** One element of a non-empty array, uniformly. */
  pick<T>(items: readonly T[]): T;
}

/** cyrb128: a fast 128-bit string hash, returned as four 32-bit words. */
function cyrb128(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** Joins parts unambiguously: the length prefix keeps ('ab','c') apart from ('a','bc'). */
function joinParts(parts: readonly (string | number)[]): string {
  return parts.map((p) => {
    const s = typeof p === 'number' ? `#${p}` : `$${p}`;
    return `${s.length}:${s}`;
  }).join('|');
}

/** Stable 32-hex-digit hash of a list of parts (strings and numbers are kept distinct). */
export function hashParts(...parts: (string | number)[]): string {
  return cyrb128(joinParts(parts)).map((w) => w.toString(16).padStart(8, '0')).join('');
}

/** sfc32: a small, fast generator with a 128-bit state. */
function sfc32(a: number, b: number, c: number, d: number): () => number {
  return () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** A request's sampling `seed` (a 32-bit integer) from the hash of the given parts: one per purpose, so each call is its own stored request. */
export function samplingSeed(...parts: (string | number)[]): number {
  return Number.parseInt(hashParts(...parts).slice(0, 8), 16);
}

/** A generator seeded from the hash of the given parts. */
export function rngFrom(...parts: (string | number)[]): Rng {
  const [a, b, c, d] = cyrb128(joinParts(parts));
  const raw = sfc32(a, b, c, d);
  // Discard the first outputs: sfc32 mixes its seed words over a few rounds.
  for (let i = 0; i < 12; i++) raw();
  const rng: Rng = {
    next: raw,
    int(lo, hi) {
      if (hi < lo) throw new RangeError(`int(${lo}, ${hi}): empty range`);
      return lo + Math.floor(raw() * (hi - lo + 1));
    },
    normal() {
      const u = 1 - raw(); // (0, 1]: log(0) never happens
      const v = raw();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    bernoulli(p) {
      return raw() < p;
    },
    pick(items) {
      if (items.length === 0) throw new RangeError('pick() from an empty array');
      return items[Math.floor(raw() * items.length)] as (typeof items)[number];
    },
  };
  return rng;
}
