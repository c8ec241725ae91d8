/** What the `spark` CLI prints, from progress answers of each shape, and its config parsing. */
import { describe, expect, it } from 'vitest';
import { ConfigFileError, parseConfigText } from '../../src/cli/spark-config.js';
import { findBars, formatRlMetrics, progressLine, progressView, renderBar, renderProgress, stageRows } from '../../src/cli/spark-format.js';
import type { RlMetricsRow } from '../../src/spark/rl/grpo.js';

describe('progress views', () => {
  it('finds bars in every workflow progress shape', () => {
    expect(findBars({ problemsTotal: 10, problemsDone: 4, callsMade: 4 })).toEqual([{ label: 'problems', done: 4, total: 10 }]);
    expect(findBars({ stage: 'training', stepsDone: 3, steps: 12 })).toEqual([{ label: 'steps', done: 3, total: 12 }]);
    expect(findBars({ step: 5, totalSteps: 30 })).toEqual([{ label: 'steps', done: 5, total: 30 }]);
    expect(findBars({ rowsDone: 20, rowsTotal: 60, chunksDone: 1, chunksTotal: 3 }).map((b) => b.label)).toEqual(['rows', 'chunks']);
    // Nested progress (a stage per key, or a list of named parts) keeps where each bar sits.
    expect(findBars({ stages: [{ name: 'labels', shardsDone: 1, shardsTotal: 2 }] })).toEqual([{ label: 'stages labels shards', done: 1, total: 2 }]);
  });

  it('shows synthesizeLabels problems and shards, and rlTrain reward and held-out accuracy', () => {
    const labels = progressView('synthesizeLabels', {
      stage: 'labelling', problemsTotal: 50, shardsTotal: 2, shardsDone: 1, shardsRunning: 1, runs: 1,
      counts: { problems: 30, solutions: 120, callsMade: 600, samplesDrawn: 2000, samplesReused: 0, verificationsValid: 1900, parseFailures: 3, stoppedEarly: 0, unlabelled: 1 },
    });
    expect(labels.bars).toEqual([{ label: 'shards', done: 1, total: 2, note: '1 running' }, { label: 'problems', done: 30, total: 50 }]);
    expect(progressLine(labels)).toBe('labelling | shards 1/2 (50%) | problems 30/50 (60%)');

    const rl = progressView('rlTrain', {
      stage: 'paused', step: 12, totalSteps: 30, servedModel: 'p-step-12', lastCheckpoint: null, learningRate: 3e-6, klCoefficient: 0.01, runs: 1,
      latest: { step: 11, rewardMean: 0.5, rewardStd: 0.25, accuracy: 0.75 }, latestEvals: [{ set: 'held-out', step: 10, accuracy: 0.8 }],
    });
    const lines = renderProgress(rl);
    expect(lines[0]).toMatch(/^stage\s+paused$/);
    expect(lines[1]).toMatch(/^steps\s+\[#{12}\.{18}\]\s+12\/30\s+40%$/);
    expect(lines).toContainEqual(expect.stringMatching(/^reward\s+0\.500 ± 0\.250 \(step 11\)$/));
    expect(lines).toContainEqual(expect.stringMatching(/^held-out\s+held-out 80\.0% @ step 10$/));
  });

  it('reads a pipeline\'s stages and the child workflows of each', () => {
    const progress = {
      stage: 'train-prm',
      stages: [
        { name: 'labels', status: 'completed', workflows: [{ workflowId: 'spark/p/pipeline/labels', runId: 'r1' }], summary: '200 lines' },
        { name: 'train-prm', status: 'running', workflows: [{ workflowId: 'spark/p/pipeline/train-prm', runId: 'r2' }], summary: null },
      ],
      manifest: null,
    };
    expect(stageRows(progress)).toEqual([
      { name: 'labels', status: 'completed', summary: '200 lines', workflowIds: ['spark/p/pipeline/labels'] },
      { name: 'train-prm', status: 'running', workflowIds: ['spark/p/pipeline/train-prm'] },
    ]);
    expect(progressView('sparkPipeline', progress).stage).toBe('train-prm');
  });

  it('draws empty and overfull bars within their width', () => {
    expect(renderBar({ label: 'rows', done: 0, total: 0 }, 4, 10)).toBe('rows [..........]         0/0     ');
    expect(renderBar({ label: 'rows', done: 12, total: 10 }, 4, 10)).toBe('rows [##########]       12/10 100%');
  });
});

describe('config files', () => {
  it('reads YAML and JSON, and names the line of a syntax error', () => {
    expect(parseConfigText('runName: a\ngrpo: { batchSize: 4 }\n', 'run.yaml')).toEqual({ runName: 'a', grpo: { batchSize: 4 } });
    expect(parseConfigText('{"runName": "a"}', 'run.json')).toEqual({ runName: 'a' });
    expect(() => parseConfigText('runName: a\n  bad: [1,\n', 'run.yaml')).toThrow(ConfigFileError);
    expect(() => parseConfigText('runName: a\nrunName: b\n', 'run.yml')).toThrow(/run\.yml:2:\d+: not valid YAML: Map keys must be unique/);
    expect(() => parseConfigText('{"runName": }', 'run.json')).toThrow(/run\.json: not valid JSON/);
  });
});

describe('metrics tables', () => {
  const row = (step: number, extra: Partial<RlMetricsRow> = {}): RlMetricsRow => ({
    step, servedModel: 'm', learningRate: 1e-6, klCoefficient: 0.001, loss: 0.1, kl: 0, gradNorm: 1, prompts: 4, rollouts: 16, rewardMean: 0.5, rewardStd: 0.1,
    accuracy: 0.5, gateRejections: 0, guardStepCount: 0, guardJudgedCount: 0, prmUnreadable: 0, meanSteps: 5, outsideStepRange: 0, meanResponseChars: 100,
    callsMade: 4, samplesReused: 0, ...extra,
  });

  it('shows whether each coEvolve step trained on rollouts or on recycled items, and nothing extra for rlTrain', () => {
    const co = formatRlMetrics([row(0, { kind: 'rollout', rlStep: 0 }), row(1, { kind: 'recycled', rlStep: 1 }), row(2, { kind: 'rollout', rlStep: 1 })], 1);
    const lines = co.split('\n');
    expect(lines[0]).toMatch(/step\s+kind\s+reward/);
    expect(lines.filter((l) => /recycled/.test(l))).toHaveLength(1);
    expect(co).toMatch(/rollout 1/);
    expect(formatRlMetrics([row(0), row(1)], 1)).not.toMatch(/kind/);
  });
});
