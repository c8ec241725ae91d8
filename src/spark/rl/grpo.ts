/**
 * Pure pieces of the RL loop: which prompts a step trains on, the learning-rate schedule, the
 * names of a step's objects, and the per-step metrics row. No I/O, so workflows use them too.
 */
import { rngFrom } from '../../core/random.js';

/** `step-000012`: zero-padded so keys sort by step. */
export function stepName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/**
 * The prompt indices of `step`: the prompts are visited epoch by epoch, each epoch a seeded
 * permutation, `batchSize` per step. Depends only on (count, batchSize, seed, step), so a
 * resumed run draws exactly what an uninterrupted one would.
 */
export function batchIndices(promptCount: number, batchSize: number, seed: number, step: number): number[] {
  const out: number[] = [];
  const permutations = new Map<number, number[]>();
  const permutation = (epoch: number): number[] => {
    let p = permutations.get(epoch);
    if (!p) {
      p = Array.from({ length: promptCount }, (_, i) => i);
      const rng = rngFrom(seed, 'rl-epoch', epoch);
      for (let i = p.length - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [p[i], p[j]] = [p[j]!, p[i]!];
      }
      permutations.set(epoch, p);
    }
    return p;
  };
  for (let k = 0; k < batchSize; k++) {
    const position = step * batchSize + k;
    out.push(permutation(Math.floor(position / promptCount))[position % promptCount]!);
  }
  return out;
}

/** Linear warm-up over `warmupFraction` of the run (at least one step when > 0), then constant. */
export function rlLearningRate(base: number, warmupFraction: number, totalSteps: number, step: number): number {
  const warmup = warmupFraction > 0 ? Math.max(1, Math.round(warmupFraction * totalSteps)) : 0;
  return warmup > 0 ? base * Math.min(1, (step + 1) / warmup) : base;
}

/** What one step's rollouts were like: the rollout half of a metrics row. */
export interface RolloutSummary {
  prompts: number;
  rollouts: number;
  rewardMean: number;
  rewardStd: number;
  /** Share of rollouts whose answer matches the reference (null without references). */
  accuracy: number | null;
  /** Rollouts rejected by the format gate, and by each guard. */
  gateRejections: number;
  guardStepCount: number;
  guardJudgedCount: number;
  /** Rollouts whose PRM answer could not be read (scored as a No). */
  prmUnreadable: number;
  meanSteps: number;
  /** Rollouts whose step count is outside the guards' range, whether or not the guards are on (the step-count hack). */
  outsideStepRange: number;
  meanResponseChars: number;
  callsMade: number;
  samplesReused: number;
  /** Filled by a rollouts hook or an extra step (co-evolution): what this step's rollouts became, by kind. */
  recycledItems?: Record<string, number>;
  /** Filled by an extra step (co-evolution): per kind of item, how many and the share answered right. */
  judging?: Record<string, { items: number; accuracy: number }>;
}

/** One row of `metrics/step-NNNNNN.json`: written once per step, whatever crashed in between. */
export interface RlMetricsRow extends RolloutSummary {
  step: number;
  /** The model the rollouts came from. */
  servedModel: string;
  learningRate: number;
  klCoefficient: number;
  loss: number;
  kl: number | null;
  gradNorm: number | null;
  /** With extra steps: a rollout step or an extra step's kind (co-evolution: 'recycled'), and the rollout steps done before it. */
  kind?: string;
  rlStep?: number;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Population standard deviation (0 for fewer than two values). */
export function std(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
}
