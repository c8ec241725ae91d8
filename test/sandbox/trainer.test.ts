/**
 * The sandbox trainer over real HTTP and real S3, through the project's trainer client: every
 * promise of trainer protocol v1 (docs/trainer-protocol.md) that a control plane relies on.
 */
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrainerClient, TrainerError } from '../../src/core/trainer/client.js';
import { generateProblems } from '../../sandbox/arith.js';
import type { ChatMessage } from '../../src/core/inference/chat.js';
import { buildPairwiseJudgeMessages, buildPointwiseJudgeMessages, readVerdict } from '../../src/spark/co-evolve/prompts.js';
import { parsePolicyResponse, parseRewardModelOutput, renderPrmLabels } from '../../src/spark/common/formats.js';
import { formatGate, groupAdvantages } from '../../src/spark/rl/rewards.js';
import { buildGeneratorMessages, buildPrmMessages } from '../../src/spark/common/prompts.js';
import type { ObjectRef } from '../../src/core/store/refs.js';
import type { GrpoExample, Loss, SessionConfig } from '../../src/core/trainer/protocol.js';
import { objectStoreAdapterReader } from '../../sandbox/model-server/models.js';
import { adapterDocumentSchema, DEFAULT_SIM_MODELS } from '../../sandbox/model-server/params.js';
import type { SimServer } from '../../sandbox/model-server/server.js';
import { startSimServer } from '../../sandbox/model-server/server.js';
import type { TrainerServer } from '../../sandbox/trainer/server.js';
import { startTrainerServer } from '../../sandbox/trainer/server.js';
import { policyVector, selfJudgeVector } from '../../sandbox/trainer/policy-fit.js';
import { readLog } from './httpHelpers.js';
import { ask } from './worldHelpers.js';
import { makeStore } from '../support/harness.js';

const store = makeStore();
const prefix = `trainer-test/${randomUUID().slice(0, 8)}`;
let trainer: TrainerServer;
let sim: SimServer;
let client: TrainerClient;
const batches: ObjectRef[] = [];
const grpoBatches: ObjectRef[] = [];
const grpo: Loss = { kind: 'grpo', klCoefficient: 0.001, entropyCoefficient: 0 };

const config: Omit<SessionConfig, 'resumeFrom'> = {
  baseModel: 'sim-policy',
  adapter: { kind: 'lora', rank: 8, alpha: 16, targetModules: ['all-linear'] },
  optimizer: { name: 'adamw', learningRate: 1e-5, betas: [0.9, 0.999], weightDecay: 0, warmupSteps: 2 },
  seed: 7,
};

/** PRM examples labelled with the true step labels: what a perfect stage 1 would give. */
function truthExamples(count: number, seed: number): string {
  return generateProblems({ seed: `trainer-${seed}`, count }).map((p, i) => {
    const parsed = parsePolicyResponse(ask('sim-policy', buildGeneratorMessages(p.question), { temperature: 1, seed: seed * 1000 + i }));
    const prompt: ChatMessage[] = buildPrmMessages({ question: p.question, steps: parsed.steps, answer: parsed.answerBlock, style: 'prm' });
    // The verifier at temperature 0 with no false alarms and certain detection is the ground truth.
    const labels = parseRewardModelOutput('prm', ask('sim-verifier', prompt, { temperature: 0, overrides: { prm: { style: 'prm', falseAlarm: 0, detectBias: 50, difficultySpread: 0, outcomeNoise: 0, appendixFollow: 0 } } }));
    if (!labels.ok || !labels.steps) throw new Error('truth labels did not parse');
    return JSON.stringify({ prompt, completion: renderPrmLabels(labels.steps.map((s) => s.correct), labels.outcome) });
  }).join('\n') + '\n';
}

/** 1 when the response passes SPARK's format gate with the right answer. */
function solved(completion: string, answer: number): number {
  const gate = formatGate(completion);
  return gate.ok && Number(gate.answer) === answer ? 1 : 0;
}

/**
 * A GRPO batch as the control plane writes it: 8 prompts × 8 rollouts of the base policy at
 * temperature 1, verifiable rewards, group z-score advantages; and one line the world cannot read.
 */
function grpoExamples(seed: number): string {
  const lines = generateProblems({ seed: `trainer-grpo-${seed}`, count: 8 }).flatMap((p) => {
    const prompt = buildGeneratorMessages(p.question);
    const group = Array.from({ length: 8 }, (_, k) => ask('sim-policy', prompt, { temperature: 1, seed, choiceIndex: k }));
    const advantages = groupAdvantages(group.map((c) => solved(c, p.answer)));
    return group.map((completion, k): GrpoExample => ({ prompt, completion, advantage: advantages[k]! }));
  });
  const foreign: GrpoExample = { prompt: buildGeneratorMessages('How many clips did Natalia sell in April and May?'), completion: '<step>48 + 24 = 72</step>\n<answer>\\boxed{72}</answer>', advantage: 1 };
  return [...lines, foreign].map((l) => JSON.stringify(l)).join('\n') + '\n';
}

/** Recycled judging items (co-evolving SPARK) answered by the base model, rewarded for the right verdict. */
function judgingExamples(seed: number): string {
  return generateProblems({ seed: `trainer-judging-${seed}`, count: 8 }).flatMap((p, i) => {
    const wrong = String(p.answer + 7 + i);
    const [prompt, label]: [ChatMessage[], string] = i % 2 === 0
      ? [buildPointwiseJudgeMessages(p.question, i % 4 === 0 ? String(p.answer) : wrong, i), i % 4 === 0 ? 'Yes' : 'No']
      : [buildPairwiseJudgeMessages(p.question, i % 4 === 1 ? String(p.answer) : wrong, i % 4 === 1 ? wrong : String(p.answer), i), i % 4 === 1 ? 'A' : 'B'];
    const kind = i % 2 === 0 ? 'pointwise' : 'pairwise';
    const group = Array.from({ length: 8 }, (_, k) => ask('sim-policy', prompt, { temperature: 1, seed, choiceIndex: k }));
    const advantages = groupAdvantages(group.map((c) => ((kind === 'pointwise' ? readVerdict('pointwise', c) : readVerdict('pairwise', c)) === label ? 1 : 0)));
    return group.map((completion, k): GrpoExample => ({ prompt, completion, advantage: advantages[k]! }));
  }).map((l) => JSON.stringify(l)).join('\n') + '\n';
}

beforeAll(async () => {
  trainer = await startTrainerServer({ store });
  sim = await startSimServer({ seed: 3, readAdapter: objectStoreAdapterReader(() => store) });
  client = new TrainerClient(trainer.url);
  for (let i = 0; i < 6; i++) batches.push(await store.put(`${prefix}/batches/step-${i}.jsonl`, truthExamples(24, i)));
  for (let i = 0; i < 6; i++) grpoBatches.push(await store.put(`${prefix}/grpo-batches/step-${i}.jsonl`, grpoExamples(i)));
});
afterAll(async () => {
  await trainer.close();
  await sim.close();
  store.destroy();
});

const ckpt = (name: string) => store.uri(`${prefix}/checkpoints/${name}`);
const sessionId = () => `t-${randomUUID().slice(0, 8)}`;

async function failure(p: Promise<unknown>): Promise<TrainerError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(TrainerError);
  return err as TrainerError;
}

describe('sessions', () => {
  it('are idempotent by sessionId with the same config, and a conflict with another', async () => {
    const id = sessionId();
    const first = await client.createSession({ sessionId: id, ...config });
    expect(first).toMatchObject({ created: true, session: { sessionId: id, status: 'ready', nextStep: 0, lastAppliedStep: null, lastCheckpoint: null } });
    expect((await client.createSession({ sessionId: id, ...config })).created).toBe(false);
    const conflict = await failure(client.createSession({ sessionId: id, ...config, seed: 8 }));
    expect(conflict).toMatchObject({ code: 'conflict', status: 409, retryable: false });
  });

  it('name what is wrong: unknown sessions, unknown base models, and other protocol versions', async () => {
    expect(await failure(client.getSession('nobody'))).toMatchObject({ code: 'unknown-session', status: 404 });
    const bad = await failure(client.createSession({ ...config, baseModel: 'gpt-5' }));
    expect(bad.code).toBe('invalid-request');
    expect(bad.message).toContain('baseModel');
    const v2 = await fetch(`${trainer.url}/v1/sessions`, { method: 'POST', body: JSON.stringify({ protocolVersion: 2, ...config }) });
    expect(v2.status).toBe(400);
    expect(await v2.json()).toMatchObject({ error: { code: 'version-mismatch', details: { serverVersion: 1, requestVersion: 2 } } });
    const path = await fetch(`${trainer.url}/v2/sessions/x`);
    expect(await path.json()).toMatchObject({ error: { code: 'version-mismatch' } });
    const typo = await fetch(`${trainer.url}/v1/sessions`, { method: 'POST', body: JSON.stringify({ protocolVersion: 1, ...config, optimiser: {} }) });
    expect((await typo.json()) as unknown).toMatchObject({ error: { code: 'invalid-request', message: expect.stringContaining('optimiser: unknown field') } });
  });
});

describe('train steps', () => {
  it('apply once per number, in order, and refuse another batch under a used number', async () => {
    const id = sessionId();
    await client.createSession({ sessionId: id, ...config });
    const first = await client.trainStep(id, { step: 0, batch: batches[0]!, loss: { kind: 'sft' } });
    expect(first).toMatchObject({ step: 0, applied: true, metrics: { examples: 24, skipped: 0 } });
    expect(first.metrics.learningRate).toBeCloseTo(5e-6, 12);
    const again = await client.trainStep(id, { step: 0, batch: batches[0]!, loss: { kind: 'sft' } });
    expect(again).toEqual({ ...first, applied: false });
    expect(await failure(client.trainStep(id, { step: 0, batch: batches[1]!, loss: { kind: 'sft' } }))).toMatchObject({ code: 'conflict' });
    expect(await failure(client.trainStep(id, { step: 2, batch: batches[2]!, loss: { kind: 'sft' } }))).toMatchObject({ code: 'step-out-of-order', details: { expectedStep: 1, receivedStep: 2 } });
    expect(await failure(client.trainStep(id, { step: 1, batch: { ...batches[1]!, sha256: '0'.repeat(64) }, loss: { kind: 'sft' } }))).toMatchObject({ code: 'invalid-request' });
    expect((await client.getSession(id))).toMatchObject({ lastAppliedStep: 0, nextStep: 1 });
  });

  it('lower the loss on data the judge can learn', async () => {
    const id = sessionId();
    await client.createSession({ sessionId: id, ...config });
    const losses: number[] = [];
    for (let step = 0; step < 6; step++) losses.push((await client.trainStep(id, { step, batch: batches[step]!, loss: { kind: 'sft' } })).metrics.loss!);
    expect(losses.at(-1)).toBeLessThan(losses[0]! * 0.9);
  });
});

describe('checkpoints', () => {
  it('commit data then a marker, resume bit for bit, and are idempotent by content', async () => {
    // Straight through: six steps, one checkpoint.
    const straight = sessionId();
    await client.createSession({ sessionId: straight, ...config });
    for (let step = 0; step < 6; step++) await client.trainStep(straight, { step, batch: batches[step]!, loss: { kind: 'sft' } });
    const whole = await client.saveCheckpoint(straight, { uri: ckpt(`${straight}-6`), step: 5 });
    expect(whole).toMatchObject({ created: true, step: 5, markerUri: `${ckpt(`${straight}-6`)}/COMMITTED` });
    expect((await store.getJson<{ objects: { name: string }[] }>(whole.markerUri)).objects.map((o) => o.name)).toEqual(['state.json', 'adapter.json']);

    // Interrupted: three steps, a checkpoint, a new session resumed from it, three more.
    const a = sessionId();
    await client.createSession({ sessionId: a, ...config });
    for (let step = 0; step < 3; step++) await client.trainStep(a, { step, batch: batches[step]!, loss: { kind: 'sft' } });
    const half = await client.saveCheckpoint(a, { uri: ckpt(`${a}-3`) });
    expect(await failure(client.saveCheckpoint(a, { uri: ckpt(`${a}-x`), step: 1 }))).toMatchObject({ code: 'step-out-of-order' });
    const b = sessionId();
    const resumed = await client.createSession({ sessionId: b, ...config, resumeFrom: half.uri });
    expect(resumed.session).toMatchObject({ lastAppliedStep: 2, nextStep: 3, lastCheckpoint: { uri: half.uri, step: 2 } });
    // A step the checkpoint holds is not applied again.
    expect((await client.trainStep(b, { step: 1, batch: batches[1]!, loss: { kind: 'sft' } })).applied).toBe(false);
    for (let step = 3; step < 6; step++) await client.trainStep(b, { step, batch: batches[step]!, loss: { kind: 'sft' } });
    const end = await client.saveCheckpoint(b, { uri: ckpt(`${b}-6`) });
    const bytes = async (uri: string) => store.getText(`${uri}/state.json`);
    expect(await bytes(end.uri)).toBe(await bytes(whole.uri));
    expect(await store.getText(`${end.uri}/adapter.json`)).toBe(await store.getText(`${whole.uri}/adapter.json`));

    // Saving the same state at the same URI again is the same checkpoint; another state there is a conflict.
    expect((await client.saveCheckpoint(b, { uri: whole.uri })).created).toBe(false);
    expect(await failure(client.saveCheckpoint(a, { uri: whole.uri }))).toMatchObject({ code: 'conflict' });
  });

  it('refuse to resume from data without a marker, or saved with other settings', async () => {
    const id = sessionId();
    await client.createSession({ sessionId: id, ...config });
    await client.trainStep(id, { step: 0, batch: batches[0]!, loss: { kind: 'sft' } });
    const saved = await client.saveCheckpoint(id, { uri: ckpt(`${id}-1`) });
    await store.put(`${prefix}/checkpoints/${id}-torn/state.json`, await store.getText(`${saved.uri}/state.json`));
    expect(await failure(client.createSession({ ...config, resumeFrom: ckpt(`${id}-torn`) }))).toMatchObject({ code: 'checkpoint-not-found' });
    const other = await failure(client.createSession({ ...config, optimizer: { ...config.optimizer, learningRate: 2e-5 }, resumeFrom: saved.uri }));
    expect(other.code).toBe('checkpoint-mismatch');
    expect(other.message).toContain('optimizer');
    await store.put(`${prefix}/checkpoints/${id}-1/adapter.json`, '{}');
    expect(await failure(client.createSession({ ...config, resumeFrom: saved.uri }))).toMatchObject({ code: 'checkpoint-mismatch' });
  });
});

describe('publish', () => {
  it('loads the checkpoint into the model server under a name, replacing what was served there', async () => {
    const id = sessionId();
    await client.createSession({ sessionId: id, ...config });
    expect(await failure(client.publish(id, { inferenceBaseURL: sim.url, modelName: 'nothing-yet' }))).toMatchObject({ code: 'checkpoint-not-found' });
    for (let step = 0; step < 6; step++) await client.trainStep(id, { step, batch: batches[step]!, loss: { kind: 'sft' } });
    const saved = await client.saveCheckpoint(id, { uri: ckpt(`${id}-6`) });
    const name = `prm-${id}`;
    const published = await client.publish(id, { inferenceBaseURL: sim.url, modelName: name });
    expect(published).toMatchObject({ modelName: name, checkpointUri: saved.uri, step: 5 });
    expect((await client.publish(id, { inferenceBaseURL: sim.url, modelName: name })).modelName).toBe(name);
    const openai = new OpenAI({ baseURL: sim.url, apiKey: 'sim', maxRetries: 0 });
    expect((await openai.models.list()).data.find((m) => m.id === name)).toMatchObject({ parent: 'sim-policy' });
    // Trained on label lines, the published PRM answers in that style.
    const [problem] = generateProblems({ seed: 'publish', count: 1 });
    const parsed = parsePolicyResponse(ask('sim-policy', buildGeneratorMessages(problem!.question), { seed: 1 }));
    const reply = await openai.chat.completions.create({ model: name, messages: buildPrmMessages({ question: problem!.question, steps: parsed.steps, answer: parsed.answerBlock, style: 'prm' }), temperature: 0 });
    expect(parseRewardModelOutput('prm', reply.choices[0]!.message.content ?? '').ok).toBe(true);
    expect((await readLog(sim)).entries.some((e) => e.model === name)).toBe(true);
    const down = await failure(client.publish(id, { inferenceBaseURL: 'http://127.0.0.1:9/v1', modelName: name }));
    expect(down).toMatchObject({ code: 'publish-failed', retryable: true });
  });
});

describe('GRPO steps', () => {
  interface SavedState { theta: number[]; policy: number[]; log: unknown[] }
  const base = policyVector(DEFAULT_SIM_MODELS['sim-policy']!.policy);

  it('apply once per number, report the policy-gradient metrics, and leave the reward model alone', async () => {
    const id = sessionId();
    await client.createSession({ sessionId: id, ...config });
    const first = await client.trainStep(id, { step: 0, batch: grpoBatches[0]!, loss: grpo });
    expect(first).toMatchObject({ step: 0, applied: true, metrics: { examples: 64, skipped: 1, clipFraction: 0 } });
    // Still the base model: nothing to diverge from yet.
    expect(first.metrics.kl).toBe(0);
    expect(first.metrics.entropy).toBeGreaterThan(0);
    expect(first.metrics.meanAdvantage).toBeCloseTo(0, 6);
    expect(first.metrics.gradNorm).toBeGreaterThan(0);
    expect(await client.trainStep(id, { step: 0, batch: grpoBatches[0]!, loss: grpo })).toEqual({ ...first, applied: false });
    expect(await failure(client.trainStep(id, { step: 0, batch: grpoBatches[1]!, loss: grpo }))).toMatchObject({ code: 'conflict' });
    const second = await client.trainStep(id, { step: 1, batch: grpoBatches[1]!, loss: { ...grpo, klEstimator: 'k2' } });
    expect(second.metrics.kl).toBeGreaterThan(0);
    // An SFT batch is not a GRPO batch.
    expect(await failure(client.trainStep(id, { step: 2, batch: batches[0]!, loss: grpo }))).toMatchObject({ code: 'invalid-request' });
    await client.trainStep(id, { step: 2, batch: batches[0]!, loss: { kind: 'sft' } });
    const saved = await client.saveCheckpoint(id, { uri: ckpt(`${id}-mixed`) });
    const state = await store.getJson<SavedState>(`${saved.uri}/state.json`);
    expect(state.policy).not.toEqual(base);
    expect(state.log).toHaveLength(3);
  });

  it('checkpoint the policy and resume bit for bit', async () => {
    const straight = sessionId();
    await client.createSession({ sessionId: straight, ...config });
    for (let step = 0; step < 4; step++) await client.trainStep(straight, { step, batch: grpoBatches[step]!, loss: grpo });
    const whole = await client.saveCheckpoint(straight, { uri: ckpt(`${straight}-4`) });

    const a = sessionId();
    await client.createSession({ sessionId: a, ...config });
    for (let step = 0; step < 2; step++) await client.trainStep(a, { step, batch: grpoBatches[step]!, loss: grpo });
    const half = await client.saveCheckpoint(a, { uri: ckpt(`${a}-2`) });
    const b = sessionId();
    await client.createSession({ sessionId: b, ...config, resumeFrom: half.uri });
    for (let step = 2; step < 4; step++) await client.trainStep(b, { step, batch: grpoBatches[step]!, loss: grpo });
    const end = await client.saveCheckpoint(b, { uri: ckpt(`${b}-4`) });
    expect(await store.getText(`${end.uri}/state.json`)).toBe(await store.getText(`${whole.uri}/state.json`));
    expect(await store.getText(`${end.uri}/adapter.json`)).toBe(await store.getText(`${whole.uri}/adapter.json`));
    const state = await store.getJson<SavedState>(`${whole.uri}/state.json`);
    // Rewarded for right answers, the policy slips less on every operation.
    for (let i = 0; i < 4; i++) expect(state.policy[i]).toBeLessThan(base[i]!);
    const adapter = await store.getJson<{ policy: { errorLogits: Record<string, number> } }>(`${whole.uri}/adapter.json`);
    expect(adapter.policy.errorLogits.add).toBe(state.policy[0]);
  });

  it('resume checkpoints saved before GRPO existed, from the base model’s policy', async () => {
    const id = sessionId();
    await client.createSession({ sessionId: id, ...config });
    await client.trainStep(id, { step: 0, batch: batches[0]!, loss: { kind: 'sft' } });
    const saved = await client.saveCheckpoint(id, { uri: ckpt(`${id}-1`) });
    // The same checkpoint as an SFT-only trainer wrote it: no policy in state.json or adapter.json.
    const { policy: _p, policyOptimizer: _o, ...older } = await store.getJson<Record<string, unknown>>(`${saved.uri}/state.json`);
    const { policy: _a, ...olderAdapter } = await store.getJson<Record<string, unknown>>(`${saved.uri}/adapter.json`);
    const oldUri = ckpt(`${id}-1-old`);
    const objects = [];
    for (const [name, body] of [['state.json', older], ['adapter.json', olderAdapter]] as const) {
      const ref = await store.put(`${prefix}/checkpoints/${id}-1-old/${name}`, JSON.stringify(body));
      objects.push({ name, sha256: ref.sha256, bytes: ref.bytes });
    }
    const marker = await store.getJson<Record<string, unknown>>(saved.markerUri);
    await store.put(`${prefix}/checkpoints/${id}-1-old/COMMITTED`, JSON.stringify({ ...marker, objects }));
    const resumed = sessionId();
    await client.createSession({ sessionId: resumed, ...config, resumeFrom: oldUri });
    expect((await client.trainStep(resumed, { step: 1, batch: grpoBatches[0]!, loss: grpo })).metrics.kl).toBe(0);
    const state = await store.getJson<SavedState>(`${(await client.saveCheckpoint(resumed, { uri: ckpt(`${resumed}-2`) })).uri}/state.json`);
    expect(state.theta).toEqual(older.theta);
    expect(state.policy).not.toEqual(base);
  });

  it('train the self-judge on recycled judging items only, carry it in the adapter, and resume older checkpoints from the base', async () => {
    interface JudgeState extends SavedState { selfJudge: number[]; selfJudgeOptimizer: { t: number } }
    const baseJudge = selfJudgeVector(DEFAULT_SIM_MODELS['sim-policy']!.selfJudge);
    const judging = await store.put(`${prefix}/grpo-batches/judging-${randomUUID().slice(0, 8)}.jsonl`, judgingExamples(0));
    const id = sessionId();
    await client.createSession({ sessionId: id, ...config });
    const plain = await client.trainStep(id, { step: 0, batch: grpoBatches[0]!, loss: grpo });
    expect(plain.metrics).not.toHaveProperty('selfJudgeDecisions');
    const afterPlain = await store.getJson<JudgeState>(`${(await client.saveCheckpoint(id, { uri: ckpt(`${id}-1`) })).uri}/state.json`);
    // Plain RLVR never moves the judge.
    expect(afterPlain.selfJudge).toEqual(baseJudge);
    expect(afterPlain.selfJudgeOptimizer.t).toBe(0);
    const judged = await client.trainStep(id, { step: 1, batch: judging, loss: grpo });
    expect(judged.metrics).toMatchObject({ examples: 64, skipped: 0, selfJudgeDecisions: 64 });
    const saved = await client.saveCheckpoint(id, { uri: ckpt(`${id}-2`) });
    const state = await store.getJson<JudgeState>(`${saved.uri}/state.json`);
    // Judging items hold no policy decision: the policy stays where the plain step left it.
    expect(state.policy).toEqual(afterPlain.policy);
    expect(state.selfJudge).not.toEqual(baseJudge);
    expect(state.selfJudgeOptimizer.t).toBe(1);
    const adapter = adapterDocumentSchema.parse(await store.getJson(`${saved.uri}/adapter.json`));
    expect(adapter.selfJudge?.acceptLogit).toBe(state.selfJudge[0]);
    expect(adapter.selfJudge?.positionBias).toBe(state.selfJudge[5]);

    // The same checkpoint as a trainer without the self-judge wrote it.
    const { selfJudge: _j, selfJudgeOptimizer: _o, ...older } = state;
    const { selfJudge: _a, ...olderAdapter } = await store.getJson<Record<string, unknown>>(`${saved.uri}/adapter.json`);
    const objects = [];
    for (const [name, body] of [['state.json', older], ['adapter.json', olderAdapter]] as const) {
      const ref = await store.put(`${prefix}/checkpoints/${id}-2-old/${name}`, JSON.stringify(body));
      objects.push({ name, sha256: ref.sha256, bytes: ref.bytes });
    }
    await store.put(`${prefix}/checkpoints/${id}-2-old/COMMITTED`, JSON.stringify({ ...(await store.getJson<Record<string, unknown>>(saved.markerUri)), objects }));
    const resumed = sessionId();
    await client.createSession({ sessionId: resumed, ...config, resumeFrom: ckpt(`${id}-2-old`) });
    const again = await store.getJson<JudgeState>(`${(await client.saveCheckpoint(resumed, { uri: ckpt(`${resumed}-2`) })).uri}/state.json`);
    expect(again.selfJudge).toEqual(baseJudge);
    expect(again.policy).toEqual(state.policy);
  });

  it('publish a policy the model server serves: it solves more problems than its base', async () => {
    const id = sessionId();
    await client.createSession({ sessionId: id, ...config });
    // A large learning rate, so six steps of rollouts from the base model make a clear difference.
    for (let step = 0; step < 6; step++) await client.trainStep(id, { step, batch: grpoBatches[step]!, loss: grpo, learningRate: 5e-5 });
    await client.saveCheckpoint(id, { uri: ckpt(`${id}-6`) });
    const name = `policy-${id}`;
    await client.publish(id, { inferenceBaseURL: sim.url, modelName: name });
    const openai = new OpenAI({ baseURL: sim.url, apiKey: 'sim', maxRetries: 0 });
    const problems = generateProblems({ seed: 'trainer-grpo-eval', count: 10 });
    const solveRate = async (model: string) => {
      let right = 0;
      for (const p of problems) {
        const reply = await openai.chat.completions.create({ model, messages: buildGeneratorMessages(p.question), temperature: 1, n: 20, seed: 1 });
        right += reply.choices.reduce((n, c) => n + solved(c.message.content ?? '', p.answer), 0);
      }
      return right / (problems.length * 20);
    };
    const trained = await solveRate(name);
    const untrained = await solveRate('sim-policy');
    expect(trained).toBeGreaterThan(untrained + 0.15);
  });
});
