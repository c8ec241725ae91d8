import { describe, expect, it } from 'vitest';
import { batchIndices, mean, rlLearningRate, std, stepName } from '../../src/spark/rl/grpo.js';

describe('the RL loop’s pure pieces', () => {
  it('draws each step’s prompts from the seed and step alone, visiting every prompt once per epoch', () => {
    const steps = Array.from({ length: 5 }, (_, s) => batchIndices(10, 4, 3, s));
    expect(steps[0]).toEqual(batchIndices(10, 4, 3, 0));
    expect(steps.flat().slice(0, 10).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(steps.flat().slice(10, 20).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(steps.flat().slice(0, 10)).not.toEqual(steps.flat().slice(10, 20));
    expect(batchIndices(10, 4, 4, 0)).not.toEqual(steps[0]);
    // A batch larger than the dataset wraps into the next epoch.
    expect(batchIndices(3, 7, 1, 0)).toHaveLength(7);
  });

  it('warms the learning rate up linearly over the given share of the run, then holds it', () => {
    expect(rlLearningRate(1e-6, 0.01, 1000, 0)).toBeCloseTo(1e-7, 15);
    expect(rlLearningRate(1e-6, 0.01, 1000, 9)).toBeCloseTo(1e-6, 15);
    expect(rlLearningRate(1e-6, 0.01, 1000, 500)).toBe(1e-6);
    expect(rlLearningRate(1e-6, 0.01, 50, 0)).toBe(1e-6); // 1% of 50 steps rounds to one step
    expect(rlLearningRate(1e-6, 0, 50, 0)).toBe(1e-6);
  });

  it('names steps so keys sort by step, and summarises', () => {
    expect(stepName(12)).toBe('step-000012');
    expect([stepName(100), stepName(9)].sort()).toEqual([stepName(9), stepName(100)]);
    expect(mean([1, 2, 3])).toBe(2);
    expect(std([1, 1])).toBe(0);
    expect(std([0, 2])).toBe(1);
  });
});
