import { describe, expect, it } from 'vitest';
import { RlTrainInputSchema } from '../../src/spark/rl/input.js';
import { CoEvolveInputSchema } from '../../src/spark/co-evolve/input.js';
import { GrpoExampleSchema, grpoFinishReason } from '../../src/core/trainer/protocol.js';

const endpoint = { baseURL: 'http://127.0.0.1:8000/v1' };
const base = {
  runName: 'grpo-sampling',
  policy: { baseModel: 'tiny', endpoint, model: 'tiny' },
  trainer: { baseURL: 'http://127.0.0.1:8400' },
  dataset: { uri: 's3://spark/datasets/problems.jsonl', fields: { question: 'question', answer: 'answer' } },
  totalSteps: 3,
};
const rlTrain = { ...base, reward: { formulation: 'verifiable' } };

function issues(schema: typeof RlTrainInputSchema | typeof CoEvolveInputSchema, input: unknown): string[] {
  const parsed = schema.safeParse(input);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe.each([
  ['rlTrain', RlTrainInputSchema, rlTrain],
  ['coEvolve', CoEvolveInputSchema, base],
] as const)('%s: GRPO rollouts are sampled as the trainer scores them', (_name, schema, input) => {
  it('samples at temperature 1 without top-p by default', () => {
    expect(issues(schema, input)).toEqual([]);
    expect(schema.parse(input).policy.sampling).toEqual({ temperature: 1, topP: 1, maxTokens: 2048 });
  });

  it('refuses another temperature or top-p, naming the field, until the trainer protocol carries them', () => {
    const at = (sampling: object) => issues(schema, { ...input, policy: { ...input.policy, sampling } });
    expect(at({ temperature: 0.7 })).toEqual([
      'policy.sampling.temperature: must be 1 for GRPO rollouts (trainer protocol v1 scores rollouts with raw logits, so another value would train on another distribution than the one sampled)',
    ]);
    expect(at({ topP: 0.95 })).toEqual([expect.stringMatching(/^policy\.sampling\.topP: must be 1 for GRPO rollouts/)]);
    expect(at({ temperature: 1, topP: 1, maxTokens: 64 })).toEqual([]);
  });
});

describe('GRPO lines say why the sampler stopped', () => {
  const line = { prompt: [{ role: 'user' as const, content: 'q' }], completion: 'a', advantage: 1 };

  it('carries a known finish reason and leaves an unknown one out', () => {
    expect(grpoFinishReason('length')).toEqual({ finishReason: 'length' });
    expect(grpoFinishReason('stop')).toEqual({ finishReason: 'stop' });
    expect(grpoFinishReason('eos')).toEqual({});
  });

  it('accepts lines with and without finishReason (v1 lines before it still parse)', () => {
    expect(GrpoExampleSchema.safeParse(line).success).toBe(true);
    expect(GrpoExampleSchema.safeParse({ ...line, finishReason: 'length' }).success).toBe(true);
    expect(GrpoExampleSchema.safeParse({ ...line, finishReason: 'cut' }).success).toBe(false);
  });
});
