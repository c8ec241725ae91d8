import { describe, expect, it } from 'vitest';
import { generateProblems } from '../../sandbox/arith.js';
import { buildGeneratorMessages } from '../../src/spark/common/prompts.js';
import { rngFrom } from '../../src/core/random.js';
import { formatGate, groupAdvantages } from '../../src/spark/rl/rewards.js';
import type { GrpoExample, Optimizer } from '../../src/core/trainer/protocol.js';
import type { PolicyParams, SimModelOverrides } from '../../sandbox/model-server/params.js';
import type { Decision, GrpoSettings, PolicyObservation, PolicyParameter, PolicyVector } from '../../sandbox/trainer/policy-fit.js';
import {
  advantageAt, grpoLoss, observePolicy, POLICY_SPACE, POLICY_VECTOR_NAMES, policyOverridesOf, policyVector, readDecisions,
} from '../../sandbox/trainer/policy-fit.js';
import type { OptimizerState } from '../../sandbox/trainer/prm-fit.js';
import { optimizerStep, zeroOptimizerState } from '../../sandbox/trainer/prm-fit.js';
import { MAX_FILLERS_PER_STEP, writePolicyResponse } from '../../sandbox/world/policy.js';
import { ask, modelParams, RecordingSampler } from '../sandbox/worldHelpers.js';

const problems = generateProblems({ seed: 'policy-fit', count: 400 });
const base = modelParams('sim-policy').policy;
const baseVector = policyVector(base);

/** Decisions counted by parameter and outcome, e.g. `splitStepsLogit:true`. */
function tally(decisions: readonly { parameter: PolicyParameter; outcome: boolean }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of decisions) out[`${d.parameter}:${d.outcome}`] = (out[`${d.parameter}:${d.outcome}`] ?? 0) + 1;
  return out;
}

function decisionsOf(question: string, completion: string): Decision[] {
  const read = readDecisions(buildGeneratorMessages(question), completion);
  if ('reason' in read) throw new Error(`unreadable: ${read.detail}\n${completion}`);
  return read.decisions;
}

describe('reading the policy’s decisions back', () => {
  it('recovers exactly the decisions the policy drew, with every behaviour frequent', () => {
    // Distinct logits, so each drawn decision names its parameter.
    const vector: PolicyVector = [-1.1, -1.2, -1.3, -1.4, 0.1, 0.7, 0.3, -1.9];
    const params: PolicyParams = { ...base, ...policyOverridesOf(vector) };
    const want: { parameter: PolicyParameter; outcome: boolean }[] = [];
    const got: Decision[] = [];
    for (const [i, p] of problems.slice(0, 300).entries()) {
      const sampler = new RecordingSampler(rngFrom('policy-fit-recording', i), 1);
      const completion = writePolicyResponse(p.question, params, sampler);
      want.push(...sampler.drawn.map((d) => ({ parameter: POLICY_VECTOR_NAMES[vector.indexOf(d.logit)]!, outcome: d.outcome })));
      got.push(...decisionsOf(p.question, completion));
    }
    expect(tally(got)).toEqual(tally(want));
    const counts = tally(got);
    for (const name of ['mergeStepsLogit', 'splitStepsLogit', 'appendAfterAnswerLogit', 'formatViolationLogit'] as const) {
      expect(counts[`${name}:true`]).toBeGreaterThan(20);
      expect(counts[`${name}:false`]).toBeGreaterThan(20);
    }
  });

  it('reads served responses: counts follow the parameters and the structure of each answer', () => {
    const overrides: SimModelOverrides = { policy: { mergeStepsLogit: 2, splitStepsLogit: 1, appendAfterAnswerLogit: 3, formatViolationLogit: -3 } };
    let ops = 0;
    let responses = 0;
    const all: Decision[] = [];
    for (const [i, p] of problems.slice(0, 150).entries()) {
      const completion = ask('sim-policy', buildGeneratorMessages(p.question), { temperature: 1, seed: i, overrides });
      const decisions = decisionsOf(p.question, completion);
      all.push(...decisions);
      ops += p.ops.length;
      responses++;
      // Every filler run is closed by a failed split unless it reached the cap.
      const splits = decisions.filter((d) => d.parameter === 'splitStepsLogit');
      const groups = decisions.filter((d) => d.parameter === 'mergeStepsLogit' && !d.outcome).length + 1;
      expect(splits.filter((d) => !d.outcome).length).toBeLessThanOrEqual(groups);
      expect(splits.filter((d) => !d.outcome).length).toBeGreaterThanOrEqual(groups - Math.floor(splits.length / MAX_FILLERS_PER_STEP));
    }
    const counts = tally(all);
    const total = (name: PolicyParameter) => (counts[`${name}:true`] ?? 0) + (counts[`${name}:false`] ?? 0);
    const rate = (name: PolicyParameter) => (counts[`${name}:true`] ?? 0) / total(name);
    expect(['addErrorLogit', 'subtractErrorLogit', 'multiplyErrorLogit', 'divideErrorLogit'].reduce((n, k) => n + total(k as PolicyParameter), 0)).toBe(ops);
    expect(total('mergeStepsLogit')).toBe(ops - responses);
    expect(total('formatViolationLogit')).toBe(responses);
    expect(total('appendAfterAnswerLogit')).toBe(counts['formatViolationLogit:false']);
    expect(rate('mergeStepsLogit')).toBeCloseTo(1 / (1 + Math.exp(-2)), 1);
    expect(rate('splitStepsLogit')).toBeCloseTo(1 / (1 + Math.exp(-1)), 1);
    expect(rate('appendAfterAnswerLogit')).toBeGreaterThan(0.9);
  });

  it('places each decision where the text shows it, so step advantages reach it', () => {
    const question = problems[3]!.question;
    const completion = ask('sim-policy', buildGeneratorMessages(question), { temperature: 1, seed: 5, overrides: { policy: { splitStepsLogit: 0, errorLogits: { add: 0, subtract: 0, multiply: 0, divide: 0 } } } });
    const gate = formatGate(completion);
    expect(gate.ok).toBe(true);
    if (!gate.ok) return;
    const stepOf = (at: number) => gate.stepEnds.findIndex((end) => at < end);
    for (const d of decisionsOf(question, completion)) {
      if (d.parameter.endsWith('ErrorLogit')) {
        // At the stated result, inside the step that states it.
        expect(completion.slice(d.at)).toMatch(/^-?\d/);
        expect(gate.steps[stepOf(d.at)]).toContain(`= ${completion.slice(d.at).match(/^-?\d+(\.\d+)?/)![0]}`);
      }
      if (d.parameter === 'formatViolationLogit' || d.parameter === 'appendAfterAnswerLogit') expect(stepOf(d.at)).toBe(-1);
      if (d.parameter === 'splitStepsLogit' && d.outcome) expect(gate.steps[stepOf(d.at)]).not.toMatch(/=/);
      // Not merging and not adding another filler are both shown by closing the step.
      if (!d.outcome && (d.parameter === 'mergeStepsLogit' || d.parameter === 'splitStepsLogit')) expect(completion.slice(d.at)).toMatch(/^<\/step>/);
      if (d.parameter === 'mergeStepsLogit' && !d.outcome) expect(gate.steps[stepOf(d.at)]).toMatch(/=/);
    }
    // Each step's span carries its own advantage; the answer part carries the response's.
    const example = { advantage: 0.5, stepAdvantages: gate.stepEnds.map((end, j) => ({ end, advantage: j + 10 })) };
    expect(advantageAt(example, 0)).toBe(10);
    expect(advantageAt(example, gate.stepEnds[0]!)).toBe(11);
    expect(advantageAt(example, gate.stepEnds.at(-1)!)).toBe(0.5);
    expect(advantageAt({ advantage: -1 }, 3)).toBe(-1);
  });

  it('skips what the sandbox policy could not have written to a question it could read', () => {
    const prompt = buildGeneratorMessages(problems[0]!.question);
    expect(readDecisions(buildGeneratorMessages('How many clips did Natalia sell?'), '<step>48 / 2 = 24</step>\n<answer>\\boxed{72}</answer>')).toMatchObject({ reason: 'unreadable-prompt' });
    expect(readDecisions(prompt, 'I do not know.')).toMatchObject({ reason: 'unreadable-completion' });
    expect(readDecisions(prompt, '<step>1 + 1 = 2</step>\n<answer>\\boxed{2}</answer>')).toMatchObject({ reason: 'unreadable-completion' });
  });
});

/** Policy observations of random decisions with step-varying advantages. */
function syntheticObservations(): PolicyObservation[] {
  const rng = rngFrom('grpo-gradient');
  return Array.from({ length: 5 }, () => ({
    advantage: rng.normal(),
    decisions: Array.from({ length: 12 }, () => ({ index: rng.int(0, 7), outcome: rng.bernoulli(0.4), advantage: rng.normal() })),
  }));
}

describe('the sandbox GRPO loss', () => {
  const theta: PolicyVector = [-2.1, -1.5, 0.4, -3, 1.2, -0.7, 2.2, -4];
  const settings: GrpoSettings = { klCoefficient: 0.3, entropyCoefficient: 0.05, klEstimator: 'low-var-kl' };

  it('has the exact gradient of its policy-gradient, KL and entropy terms', () => {
    const observations = syntheticObservations();
    const { grad } = grpoLoss(theta, baseVector, observations, settings);
    for (let i = 0; i < 8; i++) {
      const h = 1e-6;
      const up = [...theta] as PolicyVector;
      const down = [...theta] as PolicyVector;
      up[i]! += h;
      down[i]! -= h;
      const numeric = (grpoLoss(up, baseVector, observations, settings).loss - grpoLoss(down, baseVector, observations, settings).loss) / (2 * h);
      expect(grad[i]).toBeCloseTo(numeric, 6);
    }
  });

  it('reports the named KL estimator but takes the same exact KL gradient for each', () => {
    const observations = syntheticObservations();
    const results = (['low-var-kl', 'k1', 'k2'] as const).map((klEstimator) => grpoLoss(theta, baseVector, observations, { ...settings, klEstimator }));
    expect(results[1]!.grad).toEqual(results[0]!.grad);
    expect(results[2]!.grad).toEqual(results[0]!.grad);
    expect(new Set(results.map((r) => r.kl)).size).toBe(3);
    expect(results[0]!.kl).toBeGreaterThan(0);
    expect(results[2]!.kl).toBeGreaterThan(0);
    expect(grpoLoss(baseVector, baseVector, observations, settings).kl).toBe(0);
  });
});

const adamw: Optimizer = { name: 'adamw', learningRate: 1e-5, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0 };

/**
 * On-policy GRPO in miniature: each step samples 8 prompts × 8 rollouts from the current policy
 * at temperature 1, scores them, and applies one update with the group z-scores.
 */
function train(reward: (completion: string, answer: number) => number, options: { steps: number; start?: PolicyVector; settings?: Partial<GrpoSettings> }): PolicyVector {
  let theta = options.start ?? baseVector;
  let state: OptimizerState<PolicyVector> = zeroOptimizerState(8);
  const settings: GrpoSettings = { klCoefficient: 0.001, entropyCoefficient: 0, klEstimator: 'low-var-kl', ...options.settings };
  for (let step = 0; step < options.steps; step++) {
    const observations: PolicyObservation[] = [];
    for (let j = 0; j < 8; j++) {
      const problem = problems[(step * 8 + j) % problems.length]!;
      const prompt = buildGeneratorMessages(problem.question);
      const group = Array.from({ length: 8 }, (_, k) => ask('sim-policy', prompt, { temperature: 1, seed: step, choiceIndex: k, overrides: { policy: policyOverridesOf(theta) } }));
      const advantages = groupAdvantages(group.map((c) => reward(c, problem.answer)));
      for (const [k, completion] of group.entries()) {
        const example: GrpoExample = { prompt, completion, advantage: advantages[k]! };
        const seen = observePolicy(example);
        if (!('reason' in seen)) observations.push(seen.observation);
      }
    }
    const { grad } = grpoLoss(theta, baseVector, observations, settings);
    ({ theta, state } = optimizerStep(theta, baseVector, grad, state, adamw, adamw.learningRate, POLICY_SPACE));
  }
  return theta;
}

const solved = (completion: string, answer: number) => {
  const gate = formatGate(completion);
  return gate.ok && Number(gate.answer) === answer ? 1 : 0;
};
const stepCount = (completion: string) => {
  const gate = formatGate(completion);
  return gate.ok ? gate.steps.length : 0;
};

describe('GRPO on the sandbox policy', () => {
  it('lowers the error logits when correct answers are rewarded', () => {
    const trained = train(solved, { steps: 25 });
    for (let i = 0; i < 4; i++) expect(trained[i]).toBeLessThan(baseVector[i]! - 0.5);
    // Broken formats fail the gate, so they are unlearnt too.
    expect(trained[7]).toBeLessThan(baseVector[7]!);
  });

  it('learns step inflation when more steps are rewarded', () => {
    const trained = train(stepCount, { steps: 25 });
    expect(trained[5]).toBeGreaterThan(baseVector[5]! + 1);
    expect(trained[4]).toBeLessThan(baseVector[4]!);
  });

  it('is pulled back toward the base model by the KL term when advantages say nothing', () => {
    const start = baseVector.map((x, i) => (i < 4 ? x + 2 : x)) as PolicyVector;
    const flat = () => 0;
    const kept = train(flat, { steps: 15, start, settings: { klCoefficient: 0 } });
    const pulled = train(flat, { steps: 15, start, settings: { klCoefficient: 1 } });
    for (let i = 0; i < 4; i++) {
      expect(kept[i]).toBeCloseTo(start[i]!, 6);
      expect(pulled[i]).toBeLessThan(start[i]! - 0.5);
      expect(pulled[i]).toBeGreaterThan(baseVector[i]! - 0.1);
    }
  });
});
