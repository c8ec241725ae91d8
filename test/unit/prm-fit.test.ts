import { describe, expect, it } from 'vitest';
import { generateProblems } from '../../sandbox/arith.js';
import type { ChatMessage } from '../../src/core/inference/chat.js';
import { parsePolicyResponse, renderOrmAnswer } from '../../src/spark/common/formats.js';
import { buildGeneratorMessages, buildPrmMessages } from '../../src/spark/common/prompts.js';
import type { Optimizer } from '../../src/core/trainer/protocol.js';
import { planBatches, sessionIdFor, toSftExample } from '../../src/core/trainer/plan.js';
import type { JudgeParams } from '../../sandbox/model-server/params.js';
import type { JudgeVector, Observation, OptimizerState } from '../../sandbox/trainer/prm-fit.js';
import {
  batchGradient, completionStyle, judgeParamsOf, judgeVector, negLogLikelihood, observe, optimizerStep, ZERO_OPTIMIZER_STATE,
} from '../../sandbox/trainer/prm-fit.js';
import { ask, modelParams } from '../sandbox/worldHelpers.js';

/** Solutions of the error-prone policy, rendered into the PRM prompt of `style`. */
function solutions(count: number, style: 'orm' | 'prm' | 'prm-cot'): ChatMessage[][] {
  return generateProblems({ seed: 'prm-fit', count }).map((p, i) => {
    const parsed = parsePolicyResponse(ask('sim-policy', buildGeneratorMessages(p.question), { temperature: 1, seed: i }));
    return buildPrmMessages({ question: p.question, steps: parsed.steps, answer: parsed.answerBlock, style });
  });
}

/** A teacher judge with no per-step difficulty, so the marginal rates the trainer fits are its own. */
function teacher(over: Partial<JudgeParams>) {
  return { prm: { ...modelParams('sim-verifier').prm, difficultySpread: 0, appendixFollow: 0, ...over, style: 'prm' as const } };
}

function labelled(prompts: ChatMessage[][], judge: ReturnType<typeof teacher>): Observation[] {
  return prompts.flatMap((prompt, i) => {
    const seen = observe(prompt, ask('sim-policy', prompt, { temperature: 1, seed: 1000 + i, overrides: judge }));
    return 'reason' in seen ? [] : [seen.observation];
  });
}

const adam: Optimizer = { name: 'adamw', learningRate: 5e-6, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0 };

function fit(observations: Observation[], steps: number, start: JudgeVector, opt = adam): JudgeVector {
  let theta = start;
  let state: OptimizerState = ZERO_OPTIMIZER_STATE;
  for (let i = 0; i < steps; i++) {
    const { grad } = batchGradient(theta, observations);
    ({ theta, state } = optimizerStep(theta, start, grad, state, opt, opt.learningRate));
  }
  return theta;
}

describe('the sandbox SFT loss', () => {
  const steps: Observation = {
    kind: 'steps',
    steps: [{ wrong: false, u: 0, markedWrong: false }, { wrong: true, u: Math.log1p(0.2), markedWrong: false }, { wrong: true, u: Math.log1p(3), markedWrong: true }],
    outcome: true,
    consistentOutcome: false,
  };
  const outcome: Observation = { kind: 'outcome', steps: [{ wrong: false, u: 0 }, { wrong: true, u: Math.log1p(0.5) }], outcome: true };

  it.each([['step labels', steps], ['an ORM verdict', outcome]] as const)('has the exact gradient of its negative log-likelihood for %s', (_name, obs) => {
    const v: JudgeVector = [0.3, 2.1, -2.2, -3.1];
    const { grad } = negLogLikelihood(v, obs);
    for (let i = 0; i < 4; i++) {
      const h = 1e-6;
      const up = [...v] as JudgeVector;
      const down = [...v] as JudgeVector;
      up[i]! += h;
      down[i]! -= h;
      const numeric = (negLogLikelihood(up, obs).loss - negLogLikelihood(down, obs).loss) / (2 * h);
      expect(grad[i]).toBeCloseTo(numeric, 5);
    }
  });

  it('recovers the judgement of the judge that wrote the labels', () => {
    const truth = { detectBias: 1.2, detectSlope: 3, falseAlarm: 0.05, outcomeNoise: 0.03 };
    const observations = labelled(solutions(400, 'prm'), teacher(truth));
    expect(observations.length).toBeGreaterThan(380);
    const base = judgeVector(modelParams('sim-policy').prm);
    const fitted = judgeParamsOf(fit(observations, 600, base));
    expect(fitted.falseAlarm).toBeGreaterThan(0.03);
    expect(fitted.falseAlarm).toBeLessThan(0.08);
    expect(fitted.outcomeNoise).toBeLessThan(0.07);
    // Detection of a typical slip (relative error 0.1) within 0.1 of the truth.
    const detect = (p: { detectBias: number; detectSlope: number }) => 1 / (1 + Math.exp(-(p.detectBias + p.detectSlope * Math.log1p(0.1))));
    expect(Math.abs(detect(fitted) - detect(truth))).toBeLessThan(0.1);
  });

  it('learns a worse judge from noisier labels: more false alarms and fewer detections', () => {
    const prompts = solutions(300, 'prm');
    const base = judgeVector(modelParams('sim-policy').prm);
    const clean = judgeParamsOf(fit(labelled(prompts, teacher({ detectBias: 1.5, falseAlarm: 0.03 })), 400, base));
    const noisy = judgeParamsOf(fit(labelled(prompts, teacher({ detectBias: -0.5, falseAlarm: 0.2 })), 400, base));
    expect(noisy.falseAlarm).toBeGreaterThan(clean.falseAlarm + 0.08);
    expect(noisy.detectBias).toBeLessThan(clean.detectBias - 0.8);
  });

  it('weight decay pulls toward the base model, and clipping bounds the step', () => {
    const obs = labelled(solutions(60, 'prm'), teacher({ falseAlarm: 0.4 }));
    const base = judgeVector(modelParams('sim-policy').prm);
    const free = fit(obs, 200, base);
    const decayed = fit(obs, 200, base, { ...adam, weightDecay: 5e-1 });
    expect(Math.abs(decayed[2] - base[2])).toBeLessThan(Math.abs(free[2] - base[2]));
    const { grad } = batchGradient(base, obs);
    const sgd = optimizerStep(base, base, grad, ZERO_OPTIMIZER_STATE, { ...adam, name: 'sgd', maxGradNorm: 1e-3 }, 1e-5);
    const moved = Math.hypot(...sgd.theta.map((x, i) => x - base[i]!));
    expect(moved).toBeCloseTo(1e-3 * 1e-5 * 1e4, 8);
  });
});

describe('reading SFT examples', () => {
  const [prm] = solutions(1, 'prm');
  const [orm] = solutions(1, 'orm');

  it('tells the three output styles apart and rejects other answers', () => {
    expect(completionStyle(prm!, 'Step 1: Correct\nStep 2: Incorrect\nVerification: Is the answer correct (Yes/No)? No')).toBe('prm');
    expect(completionStyle(prm!, '## Step 1: Add\n17 + 25 = 42\n**This step is correct.**\n\nVerification: Is the answer correct (Yes/No)? Yes')).toBe('prm-cot');
    expect(completionStyle(orm!, renderOrmAnswer(true))).toBe('orm');
    expect(completionStyle(prm!, 'I think it is fine.')).toBeNull();
    expect(observe(prm!, 'I think it is fine.')).toEqual({ reason: 'unparseable-completion' });
    expect(observe([{ role: 'user', content: 'Hello' }], 'Yes')).toEqual({ reason: 'unreadable-prompt' });
  });

  it('refuses labels whose step count is not the solution’s', () => {
    expect(observe(prm!, 'Step 1: Correct\nVerification: Is the answer correct (Yes/No)? Yes')).toEqual({ reason: 'step-count-mismatch' });
  });

  it('turns a chat example into a protocol SFT line and refuses one without an answer', () => {
    expect(toSftExample([...prm!, { role: 'assistant', content: 'Yes' }])).toEqual({ prompt: prm, completion: 'Yes' });
    expect(() => toSftExample(prm!)).toThrow('assistant');
  });
});

describe('planning batches', () => {
  it('visits every example once per epoch, in a seeded order that differs per epoch', () => {
    const plan = planBatches(10, { epochs: 2, batchSize: 4, seed: 3 });
    expect(plan.map((s) => s.indices.length)).toEqual([4, 4, 2, 4, 4, 2]);
    for (const epoch of [0, 1]) {
      expect(plan.filter((s) => s.epoch === epoch).flatMap((s) => s.indices).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    expect(plan.slice(0, 3).flatMap((s) => s.indices)).not.toEqual(plan.slice(3).flatMap((s) => s.indices));
    expect(planBatches(10, { epochs: 2, batchSize: 4, seed: 3 })).toEqual(plan);
    expect(planBatches(10, { epochs: 2, batchSize: 4, seed: 4 })).not.toEqual(plan);
  });

  it('derives session IDs the protocol accepts from any workflow ID', () => {
    expect(sessionIdFor('spark/run 1/train-prm', '0f3e2a1b-aaaa-bbbb')).toBe('spark-run-1-train-prm-0f3e2a1baaaa');
    expect(sessionIdFor('///', 'r')).toBe('session-r');
  });
});
