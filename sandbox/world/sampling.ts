/**
 * Turns probabilities into decisions the way a sampled language model does.
 *
 * At temperature T > 0 a probability p is tempered to sigmoid(logit(p) / T) and sampled;
 * at T = 0 the model is greedy and takes the more likely outcome (p > 0.5).
 */
import type { Rng } from '../../src/core/random.js';

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export function logit(p: number): number {
  const q = Math.min(Math.max(p, 1e-9), 1 - 1e-9);
  return Math.log(q / (1 - q));
}

/** One sample's source of decisions. */
export class Sampler {
  constructor(readonly rng: Rng, readonly temperature: number) {}

  get greedy(): boolean {
    return this.temperature <= 0;
  }

  /** The probability after tempering (0 or 1 when greedy). */
  tempered(p: number): number {
    if (this.greedy) return p > 0.5 ? 1 : 0;
    if (p <= 0 || p >= 1) return p;
    return sigmoid(logit(p) / this.temperature);
  }

  /** A decision that happens with probability p (tempered). */
  chance(p: number): boolean {
    const q = this.tempered(p);
    // Always draw, so later decisions do not shift when one probability changes.
    const u = this.rng.next();
    return u < q;
  }

  /** A decision from log-odds. */
  chanceLogit(x: number): boolean {
    return this.chance(sigmoid(x));
  }

  /** A free choice (phrasing, the size of a slip) that is not a likelihood decision. */
  pick<T>(items: readonly T[]): T {
    return this.rng.pick(items);
  }

  int(lo: number, hi: number): number {
    return this.rng.int(lo, hi);
  }
}
