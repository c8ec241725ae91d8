import { describe, expect, it } from 'vitest';
import { formatValue, generateProblems } from '../../sandbox/arith.js';
import type { ChatMessage } from '../../src/core/inference/chat.js';
import {
  buildPairwiseJudgeMessages, buildPointwiseJudgeMessages, buildReflectionMessages, buildResolveMessages, readVerdict,
} from '../../src/spark/co-evolve/prompts.js';
import { parsePolicyResponse } from '../../src/spark/common/formats.js';
import { buildGeneratorMessages } from '../../src/spark/common/prompts.js';
import { detectRole } from '../../sandbox/world/roles.js';
import type { Rng } from '../../src/core/random.js';
import { rngFrom } from '../../src/core/random.js';
import { groupAdvantages } from '../../src/spark/rl/rewards.js';
import type { GrpoExample, Optimizer } from '../../src/core/trainer/protocol.js';
import type { SimModelOverrides, SimModelParams } from '../../sandbox/model-server/params.js';
import type { GrpoParameters, GrpoSettings, PolicyObservation } from '../../sandbox/trainer/policy-fit.js';
import {
  combinedVector, grpoLoss, grpoUpdate, observePolicy, policyVector, readSelfJudgeDecisions, SELF_JUDGE_OFFSET, SELF_JUDGE_VECTOR_NAMES, selfJudgeOverridesOf, selfJudgeVector,
} from '../../sandbox/trainer/policy-fit.js';
import { zeroOptimizerState } from '../../sandbox/trainer/prm-fit.js';
import { sigmoid } from '../../sandbox/world/sampling.js';
import type { SelfJudgeRole } from '../../sandbox/world/selfJudge.js';
import { writeSelfJudgeResponse } from '../../sandbox/world/selfJudge.js';
import { ask, modelParams, RecordingSampler } from '../sandbox/worldHelpers.js';

const problems = generateProblems({ seed: 'self-judge', count: 600 });
const base = modelParams('sim-policy');

/** The item difficulty the world uses, recomputed from its definition (spread 1 for both default models). */
const difficulty = (question: string, ...shown: string[]) => rngFrom('self-judge-difficulty', question, ...shown).normal();
/** The relative error size f = ln(1 + |given − truth| / max(1, |truth|)). */
const errorSize = (given: number, truth: number) => Math.log1p(Math.abs(given - truth) / Math.max(1, Math.abs(truth)));

function wrongAnswer(truth: number, rng: Rng, sizes: readonly number[] = [1, 2, 3, 10, 40, 200]): number {
  const size = rng.pick(sizes);
  return truth + (rng.bernoulli(0.5) ? size : -size);
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('the self-judge in the world', () => {
  it('says Yes to correct answers at the rate its acceptLogit and the item difficulties give', () => {
    const said: number[] = [];
    const expected: number[] = [];
    for (const [i, p] of problems.slice(0, 400).entries()) {
      const answer = formatValue(p.answer);
      const messages = buildPointwiseJudgeMessages(p.question, answer, i);
      expect(detectRole(messages)).toBe('pointwise-judge');
      for (let k = 0; k < 10; k++) {
        said.push(readVerdict('pointwise', ask('sim-policy', messages, { temperature: 1, choiceIndex: k })) === 'Yes' ? 1 : 0);
        expected.push(sigmoid(base.selfJudge.acceptLogit + difficulty(p.question, answer)));
      }
    }
    expect(said).toHaveLength(4000);
    expect(Math.abs(mean(said) - mean(expected))).toBeLessThan(0.025);
  });

  it('rejects wrong answers more often the further off they are', () => {
    const rate = (sizes: readonly number[]) => {
      const rng = rngFrom('self-judge-wrong', sizes.join());
      const said: number[] = [];
      const expected: number[] = [];
      for (const [i, p] of problems.slice(0, 200).entries()) {
        const given = wrongAnswer(p.answer, rng, sizes);
        const messages = buildPointwiseJudgeMessages(p.question, formatValue(given), i);
        const { rejectBias, rejectSlope } = base.selfJudge;
        for (let k = 0; k < 5; k++) {
          said.push(readVerdict('pointwise', ask('sim-policy', messages, { temperature: 1, choiceIndex: k })) === 'No' ? 1 : 0);
          expected.push(sigmoid(rejectBias + rejectSlope * errorSize(given, p.answer) + difficulty(p.question, formatValue(given))));
        }
      }
      expect(Math.abs(mean(said) - mean(expected))).toBeLessThan(0.04);
      return mean(said);
    };
    const small = rate([1, 2]);
    const large = rate([500, 900]);
    expect(large).toBeGreaterThan(small + 0.2);
  });

  it('prefers answer A whichever is correct, as the base model’s positionBias says', () => {
    const rng = rngFrom('self-judge-pairs');
    const right = { A: [] as number[], B: [] as number[] };
    let bothRightSaidA = 0;
    let bothRight = 0;
    for (const [i, p] of problems.slice(0, 300).entries()) {
      const good = formatValue(p.answer);
      const bad = formatValue(wrongAnswer(p.answer, rng));
      for (const correctIs of ['A', 'B'] as const) {
        const messages = correctIs === 'A' ? buildPairwiseJudgeMessages(p.question, good, bad, i) : buildPairwiseJudgeMessages(p.question, bad, good, i);
        for (let k = 0; k < 4; k++) right[correctIs].push(readVerdict('pairwise', ask('sim-policy', messages, { temperature: 1, choiceIndex: k })) === correctIs ? 1 : 0);
      }
      // Two correct answers: nothing to tell them apart but the position.
      const same = buildPairwiseJudgeMessages(p.question, good, `\\boxed{${good}}`, i);
      for (let k = 0; k < 2; k++) {
        bothRight++;
        if (readVerdict('pairwise', ask('sim-policy', same, { temperature: 1, choiceIndex: k })) === 'A') bothRightSaidA++;
      }
    }
    expect(mean(right.A)).toBeGreaterThan(mean(right.B) + 0.15);
    expect(bothRightSaidA / bothRight).toBeCloseTo(sigmoid(base.selfJudge.positionBias), 1);
    // The strong verifier barely cares about position.
    const strong = { A: [] as number[], B: [] as number[] };
    for (const [i, p] of problems.slice(0, 150).entries()) {
      const good = formatValue(p.answer);
      const bad = formatValue(wrongAnswer(p.answer, rng));
      strong.A.push(readVerdict('pairwise', ask('sim-verifier', buildPairwiseJudgeMessages(p.question, good, bad, i), { temperature: 1 })) === 'A' ? 1 : 0);
      strong.B.push(readVerdict('pairwise', ask('sim-verifier', buildPairwiseJudgeMessages(p.question, bad, good, i), { temperature: 1 })) === 'B' ? 1 : 0);
    }
    expect(Math.abs(mean(strong.A) - mean(strong.B))).toBeLessThan(0.1);
  });

  it('is deterministic when greedy: every choice agrees and the verdict is the more likely one', () => {
    const rng = rngFrom('self-judge-greedy');
    for (const [i, p] of problems.slice(0, 60).entries()) {
      const correct = i % 2 === 0;
      const given = correct ? p.answer : wrongAnswer(p.answer, rng);
      const messages = buildPointwiseJudgeMessages(p.question, formatValue(given), i);
      const first = ask('sim-policy', messages, { temperature: 0, choiceIndex: 0 });
      expect(ask('sim-policy', messages, { temperature: 0, choiceIndex: 3 })).toBe(first);
      expect(readVerdict('pointwise', ask('sim-policy', messages, { temperature: 0, seed: 9 }))).toBe(readVerdict('pointwise', first));
      const { acceptLogit, rejectBias, rejectSlope } = base.selfJudge;
      const d = difficulty(p.question, formatValue(given));
      const z = correct ? acceptLogit + d : rejectBias + rejectSlope * errorSize(given, p.answer) + d;
      const truthful = correct ? 'Yes' : 'No';
      expect(readVerdict('pointwise', first)).toBe(z > 0 ? truthful : truthful === 'Yes' ? 'No' : 'Yes');
    }
  });

  it('answers a question it cannot read at the base rate, and re-solves in the policy format', () => {
    const foreign = 'How many clips did Natalia sell in April and May?';
    const yes = Array.from({ length: 400 }, (_, k) => readVerdict('pointwise', ask('sim-policy', buildPointwiseJudgeMessages(foreign, '72', 0), { temperature: 1, choiceIndex: k })) === 'Yes');
    expect(yes.filter(Boolean).length / yes.length).toBeCloseTo(0.5, 1);
    const p = problems[0]!;
    const resolved = parsePolicyResponse(ask('sim-policy', buildResolveMessages(p.question, '12'), { temperature: 1 }));
    expect(resolved.steps.length).toBeGreaterThanOrEqual(p.ops.length);
    expect(resolved.boxed).toHaveLength(1);
  });
});

/** Parameters whose decisions come out both ways often: a sloppy re-solver that resolveShift makes more careful. */
const readBackOverrides: SimModelOverrides = {
  policy: { errorLogits: { add: -1.2, subtract: -1.1, multiply: -0.9, divide: -0.8 }, mergeStepsLogit: -1, splitStepsLogit: -1, appendAfterAnswerLogit: -2, formatViolationLogit: -2 },
  selfJudge: { acceptLogit: 0.3, rejectBias: 0.2, rejectSlope: 0.7, pairBias: 0.4, pairSlope: 0.9, positionBias: 0.6, resolveShift: -0.4 },
};
const readBackParams: SimModelParams = modelParams('sim-policy', readBackOverrides);
const readBackTheta = combinedVector(policyVector(readBackParams.policy), selfJudgeVector(readBackParams.selfJudge));

interface Sampled {
  role: SelfJudgeRole | 'generator';
  messages: ChatMessage[];
  completion: string;
  drawn: { logit: number; outcome: boolean }[];
  /** The judging decision's log-odds by the model's definition, computed here from the item. */
  direct: number | null;
}

/** Sampled completions of every co-evolution role (and some generator responses), with what their samplers drew. */
function sampleAllRoles(count: number): Sampled[] {
  const rng = rngFrom('self-judge-read-back');
  const sj = readBackParams.selfJudge;
  const out: Sampled[] = [];
  for (const [i, p] of problems.slice(0, count).entries()) {
    const rollout = ask('sim-policy', buildGeneratorMessages(p.question), { temperature: 1, seed: i, overrides: readBackOverrides });
    // The shown work's final answer: its last boxed one, else its answer block as written.
    const parsedRollout = parsePolicyResponse(rollout);
    const rolloutAnswer = parsedRollout.boxed.at(-1) ?? parsedRollout.answerBlock ?? '';
    const rolloutValue = Number(rolloutAnswer);
    const correct = formatValue(p.answer);
    const wrong = formatValue(wrongAnswer(p.answer, rng));
    const given = rng.pick([correct, wrong, wrong, 'no idea']);
    const sizeOf = (text: string) => (text === correct ? 0 : text === 'no idea' ? Math.LN2 : errorSize(Number(text), p.answer));
    const judged = (text: string, d: number, boost = 0) => (text === correct ? sj.acceptLogit + d : sj.rejectBias + sj.rejectSlope * sizeOf(text) + d + boost);
    const [a, b] = rng.bernoulli(0.5) ? [correct, wrong] : [wrong, rng.pick([correct, wrong])];
    const s = a === correct ? (b === correct ? 0 : 1) : b === correct ? -1 : 0;
    const pairD = difficulty(p.question, ...[a, b].sort());
    const showChain = rng.bernoulli(0.5);
    const shown = showChain ? rollout.trim() : `\\boxed{${rolloutAnswer}}`;
    const shownCorrect = Number.isFinite(rolloutValue) && rolloutAnswer !== '' && Math.abs(rolloutValue - p.answer) < 0.006;
    const reflectionD = difficulty(p.question, shown);
    const reflectionZ = shownCorrect
      ? sj.acceptLogit + reflectionD
      : sj.rejectBias + sj.rejectSlope * (rolloutAnswer === '' ? Math.LN2 : errorSize(rolloutValue, p.answer)) + reflectionD + (showChain ? sj.chainBoost : 0);
    const items: { role: SelfJudgeRole; messages: ChatMessage[]; direct: number | null }[] = [
      { role: 'pointwise-judge', messages: buildPointwiseJudgeMessages(p.question, given, i), direct: judged(given, difficulty(p.question, given)) },
      { role: 'pairwise-judge', messages: buildPairwiseJudgeMessages(p.question, a, b, i), direct: s === 0 ? sj.positionBias : s * (sj.pairBias + sj.pairSlope * sizeOf(s > 0 ? b : a) + pairD) + sj.positionBias },
      { role: 'reflection', messages: buildReflectionMessages(p.question, shown, showChain ? 'chain' : 'answer', i), direct: reflectionZ },
      { role: 'resolve', messages: buildResolveMessages(p.question, wrong), direct: null },
    ];
    for (const item of items) {
      expect(detectRole(item.messages)).toBe(item.role);
      const sampler = new RecordingSampler(rngFrom('self-judge-read-back', item.role, i), 1);
      const completion = writeSelfJudgeResponse(item.role, item.messages, readBackParams, sampler);
      out.push({ ...item, completion, drawn: sampler.drawn });
    }
    out.push({ role: 'generator', messages: buildGeneratorMessages(p.question), completion: rollout, drawn: [], direct: null });
  }
  return out;
}

const sampled = sampleAllRoles(150);
const logLikelihood = (decisions: readonly { logit: number; outcome: boolean }[]) =>
  decisions.reduce((sum, d) => sum + Math.log(sigmoid(d.outcome ? d.logit : -d.logit)), 0);

describe('reading self-judge decisions back', () => {
  it('recovers every decision the world drew, with its log-odds and outcome', () => {
    const byRole = new Map<string, number>();
    let rejectedReflections = 0;
    for (const s of sampled.filter((x) => x.role !== 'generator')) {
      const role = s.role as SelfJudgeRole;
      const read = readSelfJudgeDecisions(role, s.messages, s.completion, readBackParams.selfJudge);
      if ('reason' in read) throw new Error(`${role} unreadable: ${read.detail}\n${s.completion}`);
      const got = read.decisions.map((d) => ({ logit: d.terms.reduce((z, t) => z + t.coef * readBackTheta[t.index]!, d.offset), outcome: d.outcome }));
      const key = (d: { logit: number; outcome: boolean }) => `${d.logit.toFixed(9)}:${d.outcome}`;
      expect(got.map(key).sort()).toEqual(s.drawn.map(key).sort());
      expect(logLikelihood(got)).toBeCloseTo(logLikelihood(s.drawn), 9);
      // The judging decision is drawn first; its log-odds are the model's definition.
      if (s.direct !== null) expect(s.drawn[0]!.logit).toBeCloseTo(s.direct, 9);
      if (role === 'reflection' && s.drawn.length > 1) rejectedReflections++;
      byRole.set(role, (byRole.get(role) ?? 0) + 1);
    }
    expect([...byRole.values()]).toEqual([150, 150, 150, 150]);
    expect(rejectedReflections).toBeGreaterThan(30);
  });

  it('ties a re-solve’s error decisions to resolveShift, and skips what it cannot read', () => {
    const resolve = sampled.find((s) => s.role === 'resolve')!;
    const read = readSelfJudgeDecisions('resolve', resolve.messages, resolve.completion, readBackParams.selfJudge);
    if ('reason' in read) throw new Error(read.detail);
    const shiftIndex = SELF_JUDGE_OFFSET + SELF_JUDGE_VECTOR_NAMES.indexOf('resolveShift');
    expect(read.decisions.filter((d) => d.terms.some((t) => t.index === shiftIndex))).toHaveLength(problems[0]!.ops.length);
    const pointwise = sampled.find((s) => s.role === 'pointwise-judge')!;
    const example = (prompt: ChatMessage[], completion: string): GrpoExample => ({ prompt, completion, advantage: 1 });
    expect(observePolicy(example(pointwise.messages, 'I am not sure.'))).toMatchObject({ reason: 'unreadable-completion' });
    expect(observePolicy(example(buildPointwiseJudgeMessages('How many clips did Natalia sell?', '72', 0), 'It adds up.\n\\boxed{Yes}'))).toMatchObject({ reason: 'unreadable-prompt' });
    const reflection = sampled.find((s) => s.role === 'reflection')!;
    expect(observePolicy(example(reflection.messages, 'The proposed solution is wrong. A corrected solution:\nNo idea.'))).toMatchObject({ reason: 'unreadable-completion' });
    expect(observePolicy(example(reflection.messages, 'Looks fine to me.'))).toMatchObject({ reason: 'unreadable-completion' });
  });
});

describe('the GRPO loss on policy and self-judge decisions together', () => {
  const settings: GrpoSettings = { klCoefficient: 0.3, entropyCoefficient: 0.05, klEstimator: 'low-var-kl' };
  const reference = combinedVector(policyVector(base.policy), selfJudgeVector(base.selfJudge));
  const observations: PolicyObservation[] = (() => {
    const rng = rngFrom('self-judge-gradient');
    return sampled.slice(0, 60).flatMap((s) => {
      const seen = observePolicy({ prompt: s.messages, completion: s.completion, advantage: rng.normal() }, readBackParams.selfJudge);
      return 'reason' in seen ? [] : [seen.observation];
    });
  })();

  it('has the exact gradient in every parameter of a mixed batch', () => {
    expect(observations.length).toBeGreaterThan(50);
    const theta = readBackTheta.map((x, i) => x + 0.1 * Math.sin(i + 1));
    const { grad } = grpoLoss(theta, reference, observations, settings);
    for (let i = 0; i < theta.length; i++) {
      const h = 1e-6;
      const up = theta.map((x, j) => (j === i ? x + h : x));
      const down = theta.map((x, j) => (j === i ? x - h : x));
      const numeric = (grpoLoss(up, reference, observations, settings).loss - grpoLoss(down, reference, observations, settings).loss) / (2 * h);
      expect(grad[i]).toBeCloseTo(numeric, 6);
    }
    // Every self-judge parameter is reached by some decision of the batch.
    for (let i = SELF_JUDGE_OFFSET; i < theta.length; i++) expect(grad[i]).not.toBe(0);
  });

  it('gives plain generator responses exactly the policy-only loss and leaves the self-judge untouched', () => {
    const policyOnly = sampled.filter((s) => s.role === 'generator').map((s, i) => observePolicy({ prompt: s.messages, completion: s.completion, advantage: Math.cos(i) }))
      .flatMap((seen) => ('reason' in seen ? [] : [seen.observation]));
    expect(policyOnly.length).toBeGreaterThan(100);
    const combined = grpoLoss(readBackTheta, reference, policyOnly, settings);
    const alone = grpoLoss(policyVector(readBackParams.policy), policyVector(base.policy), policyOnly, settings);
    expect(combined.grad.slice(0, SELF_JUDGE_OFFSET)).toEqual(alone.grad);
    expect(combined.grad.slice(SELF_JUDGE_OFFSET).every((g) => g === 0)).toBe(true);
    expect([combined.loss, combined.kl, combined.entropy, combined.decisions]).toEqual([alone.loss, alone.kl, alone.entropy, alone.decisions]);
    const start: GrpoParameters = { policy: policyVector(base.policy), policyOptimizer: zeroOptimizerState(8), selfJudge: selfJudgeVector(base.selfJudge), selfJudgeOptimizer: zeroOptimizerState(7) };
    const update = grpoUpdate(start, { policy: start.policy, selfJudge: start.selfJudge }, policyOnly, settings, adamw);
    expect(update.selfJudge).toBeNull();
    expect(update.next.selfJudge).toBe(start.selfJudge);
    expect(update.next.selfJudgeOptimizer).toBe(start.selfJudgeOptimizer);
    expect(update.next.policyOptimizer.t).toBe(1);
  });
});

const adamw: Optimizer = { name: 'adamw', learningRate: 1e-5, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 0 };

interface JudgingItem {
  kind: 'pointwise' | 'pairwise';
  messages: ChatMessage[];
  label: 'Yes' | 'No' | 'A' | 'B';
}

/** Recycled-style judging items: half pointwise (right or wrong answer), half pairwise (one right, one wrong, random order). */
function judgingItems(seed: string, count: number, from: number, to: number): JudgingItem[] {
  const rng = rngFrom('self-judge-items', seed);
  return Array.from({ length: count }, (_, i): JudgingItem => {
    const p = problems[rng.int(from, to - 1)]!;
    const good = formatValue(p.answer);
    const bad = formatValue(wrongAnswer(p.answer, rng));
    if (i % 2 === 0) {
      const right = rng.bernoulli(0.5);
      return { kind: 'pointwise', messages: buildPointwiseJudgeMessages(p.question, right ? good : bad, i), label: right ? 'Yes' : 'No' };
    }
    const correctIsA = rng.bernoulli(0.5);
    return {
      kind: 'pairwise',
      messages: buildPairwiseJudgeMessages(p.question, correctIsA ? good : bad, correctIsA ? bad : good, i),
      label: correctIsA ? 'A' : 'B',
    };
  });
}

const judgedRight = (item: JudgingItem, completion: string) =>
  (item.kind === 'pointwise' ? readVerdict('pointwise', completion) : readVerdict('pairwise', completion)) === item.label ? 1 : 0;

function accuracy(selfJudge: GrpoParameters['selfJudge'], items: readonly JudgingItem[]): number {
  const overrides: SimModelOverrides = { selfJudge: selfJudgeOverridesOf(selfJudge) };
  const scores = items.flatMap((item) => Array.from({ length: 4 }, (_, k) => judgedRight(item, ask('sim-policy', item.messages, { temperature: 1, seed: 777, choiceIndex: k, overrides }))));
  return mean(scores);
}

describe('GRPO on recycled judging items', () => {
  it('makes the weak self-judge more accurate and less biased toward A', () => {
    const anchors = { policy: policyVector(base.policy), selfJudge: selfJudgeVector(base.selfJudge) };
    let current: GrpoParameters = { policy: anchors.policy, policyOptimizer: zeroOptimizerState(8), selfJudge: anchors.selfJudge, selfJudgeOptimizer: zeroOptimizerState(7) };
    const settings: GrpoSettings = { klCoefficient: 0.001, entropyCoefficient: 0, klEstimator: 'low-var-kl' };
    for (let step = 0; step < 30; step++) {
      const overrides: SimModelOverrides = { selfJudge: selfJudgeOverridesOf(current.selfJudge) };
      const observations: PolicyObservation[] = [];
      for (const item of judgingItems(`train-${step}`, 16, 0, 400)) {
        const group = Array.from({ length: 8 }, (_, k) => ask('sim-policy', item.messages, { temperature: 1, seed: step, choiceIndex: k, overrides }));
        const advantages = groupAdvantages(group.map((c) => judgedRight(item, c)));
        for (const [k, completion] of group.entries()) {
          const seen = observePolicy({ prompt: item.messages, completion, advantage: advantages[k]! }, base.selfJudge);
          if ('reason' in seen) throw new Error(seen.detail);
          observations.push(seen.observation);
        }
      }
      current = grpoUpdate(current, anchors, observations, settings, adamw).next;
    }
    const [acceptLogit, rejectBias, , pairBias, , positionBias] = current.selfJudge;
    const [baseAccept, baseReject, , basePair, , basePosition] = anchors.selfJudge;
    expect(acceptLogit).toBeGreaterThan(baseAccept + 0.5);
    expect(rejectBias).toBeGreaterThan(baseReject + 0.5);
    expect(pairBias).toBeGreaterThan(basePair + 0.5);
    expect(Math.abs(positionBias)).toBeLessThan(basePosition - 0.5);
    // Judging items carry no policy decision: the policy and its optimiser did not move.
    expect(current.policy).toBe(anchors.policy);
    expect(current.policyOptimizer.t).toBe(0);
    expect(current.selfJudgeOptimizer.t).toBe(30);

    const heldOut = judgingItems('held-out', 200, 400, 600);
    expect(accuracy(current.selfJudge, heldOut)).toBeGreaterThan(accuracy(anchors.selfJudge, heldOut) + 0.2);
  });
});
