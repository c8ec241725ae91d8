/**
 * Intervals for the neural world's measurements: percentile bootstrap over the units that vary
 * (problems, ProcessBench rows, seeds), seeded so a report is reproducible.
 */
import { rngFrom } from '../../src/core/random.js';

/** A point estimate with a 95% interval. */
export interface Interval {
  mean: number;
  lo: number;
  hi: number;
}

/** ProcessBench's F1 of one split from per-row outcomes: harmonic mean of the accuracy on erroneous and on correct rows. */
export function processBenchF1(rows: readonly { label: number; correct: boolean }[]): number {
  const acc = (wanted: (label: number) => boolean) => {
    const picked = rows.filter((r) => wanted(r.label));
    return picked.length === 0 ? 0 : picked.filter((r) => r.correct).length / picked.length;
  };
  const errorAcc = acc((l) => l !== -1);
  const correctAcc = acc((l) => l === -1);
  return errorAcc + correctAcc === 0 ? 0 : (2 * errorAcc * correctAcc) / (errorAcc + correctAcc);
}

function percentile(sorted: readonly number[], q: number): number {
  const at = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[at] as number;
}

/**
 * Bootstrap interval of `statistic` over `units`: `draws` resamples with replacement, the 2.5th and
 * 97.5th percentiles. `mean` is the statistic on the units themselves.
 */
export function bootstrap<T>(units: readonly T[], statistic: (sample: readonly T[]) => number, opts: { draws?: number; seed?: string } = {}): Interval {
  const draws = opts.draws ?? 2000;
  const rng = rngFrom('bootstrap', opts.seed ?? 'spark');
  const values: number[] = [];
  for (let d = 0; d < draws; d++) {
    const sample = Array.from({ length: units.length }, () => units[rng.int(0, units.length - 1)] as T);
    values.push(statistic(sample));
  }
  values.sort((a, b) => a - b);
  return { mean: statistic(units), lo: percentile(values, 0.025), hi: percentile(values, 0.975) };
}

/**
 * The F1 gain of `after` over `before` on the same rows (paired: a resample takes a row's outcome
 * under both), with its bootstrap interval. Rows are matched by `split` and `id`.
 */
export function pairedF1Gain(
  before: readonly { split: string; id: string; label: number; correct: boolean }[],
  after: readonly { split: string; id: string; label: number; correct: boolean }[],
  opts: { draws?: number; seed?: string } = {},
): Interval {
  const byKey = new Map(after.map((r) => [`${r.split}/${r.id}`, r]));
  const pairs = before.flatMap((b) => {
    const a = byKey.get(`${b.split}/${b.id}`);
    return a ? [{ label: b.label, before: b.correct, after: a.correct }] : [];
  });
  const gain = (sample: readonly (typeof pairs)[number][]) =>
    processBenchF1(sample.map((p) => ({ label: p.label, correct: p.after }))) - processBenchF1(sample.map((p) => ({ label: p.label, correct: p.before })));
  return bootstrap(pairs, gain, opts);
}

/** Mean and bootstrap interval of a list of numbers (e.g. one result per seed and problem). */
export function meanInterval(values: readonly number[], opts: { draws?: number; seed?: string } = {}): Interval {
  const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
  return bootstrap(values, mean, opts);
}
