import { describe, expect, it } from 'vitest';
import type { EvaluationRow } from '../../src/spark/prm/evaluation.js';
import {
  evaluationMessages, evaluationReport, formatEvaluationReport, orderSplits, parsePrediction, predictionLine, rowSeed, votePrediction,
} from '../../src/spark/prm/evaluation.js';
import { renderPrmLabels, renderVerification } from '../../src/spark/common/formats.js';
import { EvaluatePrmInputSchema } from '../../src/spark/prm/evaluate-prm.input.js';
import { processBenchReport } from '../../src/spark/prm/processbench.js';
import { detectRole } from '../../sandbox/world/roles.js';

const row: EvaluationRow = {
  split: 'gsm8k',
  index: 0,
  id: 'gsm8k-0',
  problem: 'Start with 17. Add 25. Multiply by 3.',
  steps: ['17 + 25 = 42.', '42 * 3 = 126.', 'The answer is 126.'],
  label: 1,
};

const verification = (labels: boolean[]) => renderVerification({
  steps: labels.map((correct, i) => ({ title: `step ${i + 1}`, analysis: 'Checked.', correct })),
  outcome: labels.every(Boolean),
});

describe('evaluation prompts', () => {
  it('asks in ProcessBench critic style or in the SPARK PRM style (one prompt for prm and prm-cot)', () => {
    expect(detectRole(evaluationMessages('processbench', row))).toBe('processbench');
    expect(evaluationMessages('processbench', row)[0]?.content).toContain('<paragraph_2>\nThe answer is 126.\n</paragraph_2>');
    expect(detectRole(evaluationMessages('prm', row))).toBe('prm');
    expect(evaluationMessages('prm-cot', row)).toEqual(evaluationMessages('prm', row));
    expect(evaluationMessages('prm', row)[0]?.content).toContain('Step 2: 42 * 3 = 126.');
  });
});

describe('parsePrediction', () => {
  it('reads the ProcessBench critic answer from the last \\boxed{}', () => {
    expect(parsePrediction('processbench', 'Paragraph 1 is wrong.\n\\boxed{1}')).toBe(1);
    expect(parsePrediction('processbench', 'All fine. \\boxed{-1}')).toBe(-1);
    expect(parsePrediction('processbench', 'first \\boxed{0} then \\boxed{\\text{2}}')).toBe(2);
    expect(parsePrediction('processbench', '<think>\\boxed{0}</think> no final box')).toBeNull();
    expect(parsePrediction('processbench', '\\boxed{-3}')).toBeNull();
    expect(parsePrediction('processbench', '\\boxed{paragraph 2}')).toBeNull();
  });

  it('takes the first step a PRM labels incorrect, -1 when every step is correct', () => {
    expect(parsePrediction('prm', renderPrmLabels([true, false, false], false))).toBe(1);
    expect(parsePrediction('prm', renderPrmLabels([true, true, true], true))).toBe(-1);
    expect(parsePrediction('prm-cot', verification([true, true, false]))).toBe(2);
    expect(parsePrediction('prm-cot', verification([true, true, true]))).toBe(-1);
  });

  it('gives null for answers that cannot be read in the style asked for', () => {
    expect(parsePrediction('prm', 'Step 1: Correct\nStep 2: Incorrect')).toBeNull(); // no verdict line
    expect(parsePrediction('prm', verification([true, false]))).toBeNull(); // a CoT answer read as plain PRM
    expect(parsePrediction('prm-cot', renderPrmLabels([true, false], false))).toBeNull();
    expect(parsePrediction('prm-cot', 'I think it is fine.')).toBeNull();
  });
});

describe('votePrediction', () => {
  it('takes the majority, the earliest error on ties, and ignores unreadable samples', () => {
    expect(votePrediction([2])).toBe(2);
    expect(votePrediction([null])).toBeNull();
    expect(votePrediction([1, 1, -1, null, null])).toBe(1);
    expect(votePrediction([-1, -1, 0])).toBe(-1);
    expect(votePrediction([-1, 3, null])).toBe(3);
    expect(votePrediction([null, -1, null])).toBe(-1);
    expect(votePrediction([null, null, null])).toBeNull();
  });
});

describe('predictionLine', () => {
  it('records every sample, the vote, whether it matches the label, and unreadable samples', () => {
    const samples = ['\\boxed{1}', 'no answer', '\\boxed{1}', '\\boxed{-1}'].map((text, i) => ({ key: `k${i}`, text }));
    expect(predictionLine('processbench', row, samples)).toEqual({
      split: 'gsm8k', index: 0, id: 'gsm8k-0', label: 1, prediction: 1, correct: true, votes: [1, null, 1, -1], unparseable: 1, samples: ['k0', 'k1', 'k2', 'k3'],
    });
    const none = predictionLine('processbench', { ...row, label: -1 }, [{ key: 'k', text: '?' }]);
    expect(none).toMatchObject({ prediction: null, correct: false, unparseable: 1 });
  });
});

describe('evaluationReport', () => {
  const lines = [
    { split: 'math', label: -1, prediction: -1, unparseable: 0 },
    { split: 'math', label: 2, prediction: null, unparseable: 3 },
    { split: 'gsm8k', label: 0, prediction: 0, unparseable: 1 },
    { split: 'gsm8k', label: -1, prediction: 1, unparseable: 0 },
    { split: 'gsm8k', label: 3, prediction: 2, unparseable: 0 },
  ];

  it('scores with the ProcessBench metric, null predictions wrong, and counts unreadable answers per split', () => {
    const report = evaluationReport(lines, ['gsm8k', 'math']);
    expect(report.scores).toEqual(processBenchReport(lines, ['gsm8k', 'math']));
    const [gsm8k, math] = report.scores.splits;
    expect(gsm8k).toMatchObject({ split: 'gsm8k', n: 3, errorAcc: 0.5, correctAcc: 0, f1: 0 });
    expect(math).toMatchObject({ split: 'math', n: 2, errorAcc: 0, correctAcc: 1, f1: 0 });
    expect(report.unparseable).toEqual({ gsm8k: { rows: 0, samples: 1 }, math: { rows: 1, samples: 3 } });
  });

  it('formats a heading, the table and a note on unreadable answers', () => {
    const md = formatEvaluationReport(evaluationReport(lines, ['gsm8k', 'math']), { model: 'sim-verifier', style: 'processbench', samples: 5 });
    expect(md).toContain('# ProcessBench: sim-verifier (processbench style, majority of 5 samples)');
    expect(md).toContain('| gsm8k | 50.0 | 0.0 | 0.0 |');
    expect(md).toContain('| average |');
    expect(md).toContain('Unreadable answers (scored as wrong): gsm8k 1 sample(s), 0 row(s) without an answer; math 3 sample(s), 1 row(s) without an answer.');
  });

  it('orders ProcessBench splits as the paper does, then other names as given', () => {
    expect(orderSplits(['omnimath', 'custom', 'gsm8k', 'math'])).toEqual(['gsm8k', 'math', 'omnimath', 'custom']);
  });
});

describe('rowSeed', () => {
  it('is a stable non-negative 31-bit seed that differs by run seed, split and id', () => {
    const s = rowSeed(7, 'gsm8k', 'gsm8k-0');
    expect(s).toBe(rowSeed(7, 'gsm8k', 'gsm8k-0'));
    expect(Number.isInteger(s) && s >= 0 && s < 2 ** 31 - 1).toBe(true);
    expect(new Set([s, rowSeed(8, 'gsm8k', 'gsm8k-0'), rowSeed(7, 'math', 'gsm8k-0'), rowSeed(7, 'gsm8k', 'gsm8k-1')]).size).toBe(4);
  });
});

describe('EvaluatePrmInputSchema', () => {
  const base = {
    runName: 'eval-1',
    benchmark: { splits: { gsm8k: 's3://spark/pb/gsm8k.jsonl', math: '/data/processbench/math.jsonl' } },
    model: { endpoint: { baseURL: 'http://127.0.0.1:8300/v1' }, model: 'sim-verifier' },
    style: 'processbench',
  };
  const issues = (input: unknown) => {
    const r = EvaluatePrmInputSchema.safeParse(input);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('fills greedy defaults', () => {
    expect(EvaluatePrmInputSchema.parse(base)).toMatchObject({
      samples: 1, seed: 0, chunkSize: 100, concurrency: 4, model: { sampling: { temperature: 0, topP: 1, maxTokens: 8192 }, maxInFlight: 64 },
    });
  });

  it('rejects the ORM style, naming the field and why', () => {
    expect(issues({ ...base, style: 'orm' })).toEqual([
      "style: 'orm' judges only the final answer and cannot point at the first wrong step; use 'prm', 'prm-cot' or 'processbench'",
    ]);
    expect(issues({ ...base, style: 'critic' })).toEqual(["style: expected one of 'processbench', 'prm', 'prm-cot'"]);
  });

  it('names each bad field: split names and files, voting at temperature 0, unknown keys', () => {
    expect(issues({ ...base, benchmark: { splits: {} } })).toEqual(['benchmark.splits: name at least one split and its file']);
    expect(issues({ ...base, benchmark: { splits: { 'bad name': 'x.jsonl', math: 'http://x/y' } } }).join('\n')).toMatch(/benchmark\.splits\.bad name: [\s\S]*benchmark\.splits\.math: an S3 URI/);
    expect(issues({ ...base, samples: 5 })).toEqual(['samples: majority voting needs model.sampling.temperature > 0 (at 0 every sample is the same)']);
    expect(issues({ ...base, samples: 5, model: { ...base.model, sampling: { temperature: 0.8 } } })).toEqual([]);
    expect(issues({ ...base, sample: 5 })).toEqual([': Unrecognized key: "sample"']);
  });
});
