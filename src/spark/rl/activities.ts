/**
 * Activities of SPARK stage 3 (`rlTrain`): prepare the prompts, roll out and score one step,
 * apply it on the trainer (replaying stored steps a restarted trainer lost), evaluate, and keep
 * the audit log. Every output is keyed by step, so a retry rewrites the same object and the
 * metrics have exactly one row per step.
 */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { TrainerClient } from '../../core/trainer/client.js';
import type { SamplingParams } from '../../core/inference/chat.js';
import type { Problem } from '../../core/store/dataset.js';
import { parseRewardModelOutput } from '../common/formats.js';
import type { RlTrainConfig } from './input.js';
import { answersEquivalent, extractBoxedAnswer, normalizeAnswer } from '../common/math-answer.js';
import { buildGeneratorMessages, buildPrmMessages } from '../common/prompts.js';
import { rngFrom, samplingSeed } from '../../core/random.js';
import type { ObjectRef } from '../../core/store/refs.js';
import { joinKey } from '../../core/store/refs.js';
import type { RolloutForReward, RolloutReward } from './rewards.js';
import { formatGate, needsPrm, scoreGroup } from './rewards.js';
import type { RlMetricsRow, RolloutSummary } from './grpo.js';
import type { ObjectStore } from '../../core/store/s3-store.js';
import { batchIndices, mean, std, stepName } from './grpo.js';
import type { GrpoExample, Loss, SessionConfig } from '../../core/trainer/protocol.js';
import { grpoFinishReason } from '../../core/trainer/protocol.js';
import { sampleWithRetry } from '../../core/inference/sample-store.js';
import { readProblems } from '../../core/store/load-dataset.js';
import type { ActivityDeps } from '../../core/deps.js';
import { DatasetError, mapFailures } from '../../core/temporal/failures.js';
import { activityCancellation, withHeartbeat } from '../../core/temporal/heartbeat.js';
import { checkpointCommitted, ensureTrainerSession } from '../../core/trainer/activities.js';

/** The prompts and evaluation sets as the run reads them: one JSONL each in the run's outputs. */
export interface PreparedRlData {
  prompts: ObjectRef;
  promptCount: number;
  /** sha256 of the source dataset file: part of what a resumed checkpoint must match. */
  datasetSha256: string;
  evalSets: { name: string; ref: ObjectRef; count: number }[];
}

/** What a step's train request was: stored so a lost step can be applied again exactly. */
const StepRequestSchema = z.object({
  step: z.number().int(),
  batch: z.object({ uri: z.string(), sha256: z.string(), bytes: z.number() }),
  loss: z.object({ kind: z.literal('grpo'), klCoefficient: z.number(), entropyCoefficient: z.number(), clipRatio: z.number().optional(), klEstimator: z.enum(['low-var-kl', 'k1', 'k2']).optional() }),
  learningRate: z.number(),
});
type StepRequest = z.infer<typeof StepRequestSchema>;

/** Written next to each checkpoint: what a later run must match to resume from it. */
export interface RlCheckpointInfo {
  kind: 'spark.rl-checkpoint';
  step: number;
  configHash: string;
  datasetSha256: string;
  baseModel: string;
  servedModel: string;
  /** Hyperparameters changed while the run went on (null: the input's schedule), so a resume keeps them. */
  learningRate: number | null;
  klCoefficient: number;
  /** With extra steps: the loop after this step (rollout steps done, the extra-step source's state). */
  loop?: RlLoopState;
}

/**
 * Where a run with extra steps stands between steps: rollout steps done, and the state of the
 * source of the extra steps (co-evolution: its recycled-item cache), which the loop carries as is.
 */
export type RlLoopState = { rlStep: number } & Record<string, unknown>;

export interface RlStepInput {
  config: RlTrainConfig;
  outputPrefix: string;
  prepared: PreparedRlData;
  step: number;
  /** The model the rollouts come from (the last published policy, or the base). */
  servedModel: string;
  learningRate: number;
  klCoefficient: number;
  /** With extra steps: the trainer step this is (default `step`: every step is a rollout step). */
  trainerStep?: number;
  /** Options for the rollouts hook, added by the loop's extra-step source (co-evolution: `recycle`), passed on as they are. */
  [hookOption: string]: unknown;
}

export interface RlRolloutsResult {
  request: ObjectRef;
  summary: RolloutSummary;
  /** What the rollouts hook returned (co-evolution: `recycled`, the items written from these rollouts). */
  [hookResult: string]: unknown;
}

/** One prompt's scored rollouts, as a {@link RolloutsHook} sees them. */
export interface ScoredGroup {
  promptId: string;
  question: string;
  reference: string | null;
  rollouts: { text: string; answer: string | null; correct: boolean | null }[];
}

/**
 * Runs after a rollout step's batch is stored, for a stage built on this loop (co-evolution
 * recycles the rollouts into judging items). It gets the step's input with the options the loop's
 * extra-step source added; what it returns is added to the step's summary and result.
 */
export type RolloutsHook = (ctx: { store: ObjectStore; input: RlStepInput; groups: ScoredGroup[] }) => Promise<{ summary?: Partial<RolloutSummary>; result?: Record<string, unknown> } | null>;

export interface RlHooks {
  onRollouts?: RolloutsHook;
}

export interface RlTrainStepInput {
  trainerURL: string;
  sessionId: string;
  session: Omit<SessionConfig, 'resumeFrom'>;
  outputPrefix: string;
  step: number;
  /** Checkpoints to resume a lost session from, newest first. */
  resumeCandidates: (string | null)[];
  /** Save a checkpoint here after the step (and its run info next to it). */
  checkpoint: { uri: string; info: Omit<RlCheckpointInfo, 'kind' | 'step'> } | null;
  /** Serve the checkpoint under this name (needs `checkpoint`). */
  publish: { inferenceBaseURL: string; modelName: string } | null;
  metrics: Omit<RlMetricsRow, 'loss' | 'kl' | 'gradNorm'>;
}

export interface RlTrainStepResult {
  metrics: RlMetricsRow;
  checkpoint: string | null;
  servedModel: string | null;
  /** Steps applied again because the trainer had lost them. */
  replayed: number;
}

const problemLine = (p: Problem): string => JSON.stringify({ id: p.id, question: p.question, ...(p.reference !== undefined ? { reference: p.reference } : {}) });

/** Writes a trainer step's GRPO batch and its train request (`batches/step-N.*`), from which a lost step is applied again. */
export async function storeGrpoBatch(
  store: ActivityDeps['store'],
  input: { config: RlTrainConfig; outputPrefix: string; learningRate: number; klCoefficient: number },
  trainerStep: number,
  lines: readonly string[],
): Promise<ObjectRef> {
  const name = stepName(trainerStep);
  const batch = await store.put(joinKey(input.outputPrefix, 'batches', `${name}.jsonl`), lines.join('\n') + '\n', 'application/x-ndjson');
  const { grpo } = input.config;
  const loss: Loss = { kind: 'grpo', klCoefficient: input.klCoefficient, entropyCoefficient: grpo.entropyCoefficient, clipRatio: grpo.clipRatio, klEstimator: grpo.klEstimator };
  return store.putJson(joinKey(input.outputPrefix, 'batches', `${name}.request.json`), { step: trainerStep, batch, loss, learningRate: input.learningRate } satisfies StepRequest);
}

export async function readLines<T>(store: ActivityDeps['store'], ref: Pick<ObjectRef, 'uri'>): Promise<T[]> {
  return (await store.getText(ref.uri)).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as T);
}

/** The reference answer of a row: a bare answer, a GSM8K `#### x` tail, or a worked solution's last `\boxed{}`. */
export function referenceAnswer(reference: string | undefined): string | null {
  if (reference === undefined) return null;
  const gsm = /####\s*(.+)\s*$/.exec(reference);
  if (gsm) return gsm[1]!.replace(/,/g, '').trim();
  return extractBoxedAnswer(reference) ?? reference.trim();
}

export function createRlActivities({ store, inference }: ActivityDeps, hooks: RlHooks = {}) {
  return {
    /** Reads the prompt dataset and evaluation sets once (rows checked) into the run's outputs. */
    async prepareRlData(input: { config: RlTrainConfig; outputPrefix: string }): Promise<PreparedRlData> {
      return mapFailures(async () => {
        const { dataset, evaluation } = input.config;
        const { problems, sha256 } = await readProblems(store, dataset.uri, dataset);
        if (problems.length === 0) throw new DatasetError(`${dataset.uri}: no problems at offset ${dataset.offset}`);
        const prompts = await store.put(joinKey(input.outputPrefix, 'data', 'prompts.jsonl'), problems.map(problemLine).join('\n') + '\n', 'application/x-ndjson');
        const evalSets = [];
        for (const set of evaluation.sets) {
          const rows = (await readProblems(store, set.uri, set)).problems;
          const ref = await store.put(joinKey(input.outputPrefix, 'data', `eval-${set.name}.jsonl`), rows.map(problemLine).join('\n') + '\n', 'application/x-ndjson');
          evalSets.push({ name: set.name, ref, count: rows.length });
        }
        return { prompts, promptCount: problems.length, datasetSha256: sha256, evalSets };
      });
    },

    /**
     * The newest committed checkpoint (with its run info) under `prefix`: where a re-run of the same
     * settings and data picks up, so finished steps are not trained again.
     */
    async findRlCheckpoint(input: { prefix: string }): Promise<{ uri: string; info: RlCheckpointInfo } | null> {
      return mapFailures(async () => {
        const infos = (await store.list(`${input.prefix}/`)).filter((k) => k.endsWith('.run.json')).sort().reverse();
        for (const key of infos) {
          const uri = store.uri(key.slice(0, -'.run.json'.length));
          if (await checkpointCommitted(store, uri)) return { uri, info: await store.getJson<RlCheckpointInfo>(key) };
        }
        return null;
      });
    },

    /** Refuses a checkpoint of a run with other settings or data, naming what differs. */
    async verifyRlResume(input: { resumeFrom: string; configHash: string; datasetSha256: string; baseModel: string }): Promise<RlCheckpointInfo> {
      return mapFailures(async () => {
        const info = await store.getJsonIfExists<RlCheckpointInfo>(`${input.resumeFrom}.run.json`);
        if (!info) throw new DatasetError(`resumeFrom: ${input.resumeFrom} is not an rlTrain checkpoint (${input.resumeFrom}.run.json does not exist)`);
        const differing = [
          info.baseModel !== input.baseModel ? `model (checkpoint: ${info.baseModel}, this run: ${input.baseModel})` : null,
          info.configHash !== input.configHash ? `config (checkpoint: ${info.configHash.slice(0, 12)}, this run: ${input.configHash.slice(0, 12)}; compare the runs' inputs)` : null,
          info.datasetSha256 !== input.datasetSha256 ? `data (checkpoint's dataset sha256 ${info.datasetSha256.slice(0, 12)}, this run's ${input.datasetSha256.slice(0, 12)})` : null,
        ].filter((x): x is string => x !== null);
        if (differing.length > 0) throw new DatasetError(`resumeFrom: ${input.resumeFrom} does not match this run: ${differing.join('; ')}`);
        return info;
      });
    },

    /**
     * Rolls out one step: `groupSize` responses per prompt in one request each, the format gate,
     * the PRM (greedy) on what passed it, rewards and advantages by the formulation; writes the
     * GRPO batch and the step's train request. Every model call goes through the sample store.
     */
    async rlRollouts(input: RlStepInput): Promise<RlRolloutsResult> {
      return mapFailures(async () => {
        const { config, step } = input;
        const signal = activityCancellation();
        const prompts = await readLines<{ id: string; question: string; reference?: string }>(store, input.prepared.prompts);
        const batch = batchIndices(prompts.length, config.grpo.batchSize, config.seed, step).map((i) => prompts[i]!);
        const policy = inference(config.policy.endpoint, { maxInFlight: config.policy.maxInFlight });
        const prm = config.reward.prm && needsPrm(config.reward.formulation) ? config.reward.prm : null;
        const prmClient = prm ? inference(prm.endpoint, { maxInFlight: prm.maxInFlight }) : null;
        let callsMade = 0;
        let samplesReused = 0;
        let done = 0;

        const groups = await withHeartbeat(() => Promise.all(batch.map(async (prompt) => {
          const messages = buildGeneratorMessages(prompt.question);
          const sampling: SamplingParams = { ...config.policy.sampling, seed: samplingSeed(config.seed, step, prompt.id) };
          const indices = Array.from({ length: config.grpo.groupSize }, (_, i) => i);
          const out = await sampleWithRetry(store, { client: policy, model: input.servedModel, messages, sampling, indices, signal });
          callsMade += out.callsMade;
          samplesReused += out.samplesReused;
          const reference = referenceAnswer(prompt.reference);
          const rollouts = await Promise.all(out.samples.map(async (sample): Promise<RolloutForReward & { text: string; finishReason: string; prmUnreadable: boolean }> => {
            const gate = formatGate(sample.text);
            let judged: RolloutForReward['prm'] = null;
            let prmUnreadable = false;
            if (gate.ok && prm && prmClient) {
              const r = await sampleWithRetry(store, {
                client: prmClient,
                model: prm.model,
                messages: buildPrmMessages({ question: prompt.question, steps: gate.steps, answer: `\\boxed{${gate.answer}}`, style: prm.style }),
                sampling: { temperature: 0, maxTokens: prm.maxTokens },
                indices: [0],
                signal,
              });
              callsMade += r.callsMade;
              samplesReused += r.samplesReused;
              const parsed = parseRewardModelOutput(prm.style, r.samples[0]!.text);
              if (parsed.ok) judged = { outcome: parsed.outcome, stepLabels: parsed.steps?.map((s) => s.correct) ?? [] };
              else prmUnreadable = true;
            }
            return {
              text: sample.text,
              finishReason: sample.finishReason,
              gate,
              prm: judged,
              prmUnreadable,
              correct: gate.ok && reference !== null ? answersEquivalent(gate.answer, reference) : reference !== null ? false : null,
              answerKey: gate.ok ? normalizeAnswer(gate.answer) : null,
            };
          }));
          const rewards = scoreGroup(config.reward.formulation, rollouts, config.reward.guards, rngFrom(config.seed, 'random-reward', step, prompt.id));
          done++;
          return { prompt, messages, rollouts, rewards };
        })), () => ({ step, promptsDone: done }));

        // The GRPO batch: every rollout as the policy wrote it (gated ones too, with their 0 reward).
        const lines: string[] = [];
        const all: { r: RolloutForReward & { text: string; finishReason: string; prmUnreadable: boolean }; w: RolloutReward }[] = [];
        for (const g of groups) {
          g.rollouts.forEach((r, i) => {
            const w = g.rewards[i]!;
            all.push({ r, w });
            // finishReason: a rollout cut at maxTokens trains no end-of-turn token it never sampled.
            const example: GrpoExample = { prompt: g.messages, completion: r.text, advantage: w.advantage, ...(w.stepAdvantages ? { stepAdvantages: w.stepAdvantages } : {}), ...grpoFinishReason(r.finishReason) };
            lines.push(JSON.stringify(example));
          });
        }
        const trainerStep = input.trainerStep ?? step;
        const request = await storeGrpoBatch(store, input, trainerStep, lines);
        const hooked = hooks.onRollouts
          ? await hooks.onRollouts({
            store,
            input,
            groups: groups.map((g) => ({
              promptId: g.prompt.id,
              question: g.prompt.question,
              reference: referenceAnswer(g.prompt.reference),
              rollouts: g.rollouts.map((r) => ({ text: r.text, answer: r.gate.ok ? r.gate.answer : null, correct: r.correct })),
            })),
          })
          : null;
        const rewards = all.map((x) => x.w.reward);
        const withReference = all.filter((x) => x.r.correct !== null);
        const passed = all.filter((x) => x.r.gate.ok);
        return {
          request,
          summary: {
            prompts: groups.length,
            rollouts: all.length,
            rewardMean: mean(rewards),
            rewardStd: std(rewards),
            accuracy: withReference.length > 0 ? withReference.filter((x) => x.r.correct).length / withReference.length : null,
            gateRejections: all.length - passed.length,
            guardStepCount: all.filter((x) => x.w.guard === 'step-count').length,
            guardJudgedCount: all.filter((x) => x.w.guard === 'judged-count').length,
            prmUnreadable: all.filter((x) => x.r.prmUnreadable).length,
            meanSteps: mean(passed.map((x) => (x.r.gate.ok ? x.r.gate.steps.length : 0))),
            outsideStepRange: passed.filter((x) => x.r.gate.ok && (x.r.gate.steps.length < config.reward.guards.minSteps || x.r.gate.steps.length > config.reward.guards.maxSteps)).length,
            meanResponseChars: mean(all.map((x) => x.r.text.length)),
            callsMade,
            samplesReused,
            ...hooked?.summary,
          },
          ...hooked?.result,
        };
      });
    },

    /**
     * Applies step `step` on the trainer. A session the trainer lost is recreated from the newest
     * committed checkpoint, and the steps after it are applied again from their stored requests,
     * so the run continues on the same trajectory. Then, as asked: checkpoint, publish, and the
     * step's metrics row.
     */
    async rlTrainStep(input: RlTrainStepInput): Promise<RlTrainStepResult> {
      return mapFailures(async () => {
        const client = new TrainerClient(input.trainerURL, { signal: activityCancellation() });
        const progress = { step: input.step, replaying: null as number | null };
        return withHeartbeat(async () => {
          const { session } = await ensureTrainerSession(store, client, input.sessionId, input.session, input.resumeCandidates);
          let replayed = 0;
          const requestOf = async (step: number): Promise<StepRequest> => {
            const raw = await store.getJsonIfExists(joinKey(input.outputPrefix, 'batches', `${stepName(step)}.request.json`));
            if (raw === null) throw new DatasetError(`step ${step} must be applied again but its stored request is missing under ${input.outputPrefix}/batches`);
            return StepRequestSchema.parse(raw);
          };
          for (let s = session.nextStep; s < input.step; s++) {
            progress.replaying = s;
            const req = await requestOf(s);
            const res = await client.trainStep(input.sessionId, { step: s, batch: req.batch, loss: req.loss, learningRate: req.learningRate });
            if (res.applied) replayed++;
          }
          progress.replaying = null;
          const req = await requestOf(input.step);
          const res = await client.trainStep(input.sessionId, { step: input.step, batch: req.batch, loss: req.loss, learningRate: req.learningRate });
          const metrics: RlMetricsRow = { ...input.metrics, loss: res.metrics.loss!, kl: res.metrics.kl ?? null, gradNorm: res.metrics.gradNorm ?? null };
          let checkpoint: string | null = null;
          let servedModel: string | null = null;
          if (input.checkpoint) {
            const saved = await client.saveCheckpoint(input.sessionId, { uri: input.checkpoint.uri, step: input.step });
            checkpoint = saved.uri;
            await store.putJson(store.keyOf(`${saved.uri}.run.json`), { kind: 'spark.rl-checkpoint', step: input.step, ...input.checkpoint.info } satisfies RlCheckpointInfo);
            if (input.publish) {
              const published = await client.publish(input.sessionId, { ...input.publish, checkpointUri: saved.uri });
              servedModel = published.modelName;
            }
          } else if (input.publish) {
            throw ApplicationFailure.nonRetryable('publishing needs a checkpoint of the step', 'InvalidInput');
          }
          await store.putJson(joinKey(input.outputPrefix, 'metrics', `${stepName(input.step)}.json`), metrics);
          return { metrics, checkpoint, servedModel, replayed };
        }, () => progress);
      });
    },

    /** Serves a committed checkpoint again (the inference server restarted and forgot it). */
    async republishPolicy(input: { trainerURL: string; sessionId: string; session: Omit<SessionConfig, 'resumeFrom'>; checkpoint: string; inferenceBaseURL: string; modelName: string }): Promise<string> {
      return mapFailures(async () => {
        const client = new TrainerClient(input.trainerURL, { signal: activityCancellation() });
        await ensureTrainerSession(store, client, input.sessionId, input.session, [input.checkpoint]);
        return (await client.publish(input.sessionId, { inferenceBaseURL: input.inferenceBaseURL, modelName: input.modelName, checkpointUri: input.checkpoint })).modelName;
      });
    },

    /** Greedy accuracy of the served policy on one evaluation set; written as `evals/<set>/step-N.json`. */
    async evaluatePolicy(input: { config: RlTrainConfig; outputPrefix: string; set: { name: string; ref: ObjectRef }; servedModel: string; step: number }) {
      return mapFailures(async () => {
        const signal = activityCancellation();
        const rows = await readLines<{ id: string; question: string; reference?: string }>(store, input.set.ref);
        const client = inference(input.config.policy.endpoint, { maxInFlight: input.config.policy.maxInFlight });
        let correct = 0;
        let gated = 0;
        let callsMade = 0;
        let done = 0;
        await withHeartbeat(() => Promise.all(rows.map(async (row) => {
          const { temperature, samples, maxTokens } = input.config.evaluation;
          const out = await sampleWithRetry(store, {
            client,
            model: input.servedModel,
            messages: buildGeneratorMessages(row.question),
            sampling: { temperature, maxTokens, ...(temperature > 0 ? { seed: input.config.seed } : {}) },
            indices: Array.from({ length: samples }, (_, i) => i),
            signal,
          });
          callsMade += out.callsMade;
          const reference = referenceAnswer(row.reference);
          for (const sample of out.samples) {
            const gate = formatGate(sample.text);
            if (!gate.ok) gated += 1 / samples;
            else if (reference !== null && answersEquivalent(gate.answer, reference)) correct += 1 / samples;
          }
          done++;
        })), () => ({ evaluated: done }));
        const result = { set: input.set.name, step: input.step, servedModel: input.servedModel, rows: rows.length, accuracy: rows.length ? correct / rows.length : 0, gateRejections: gated, callsMade };
        await store.putJson(joinKey(input.outputPrefix, 'evals', input.set.name, `${stepName(input.step)}.json`), result);
        return result;
      });
    },

    /** One audit entry per object under `outputPrefix`, keyed by its sequence number (a retry writes the same entry). */
    async recordAudit(input: { outputPrefix: string; entries: readonly { seq: number }[] }): Promise<void> {
      return mapFailures(async () => {
        for (const e of input.entries) await store.putJson(joinKey(input.outputPrefix, `${String(e.seq).padStart(6, '0')}.json`), e);
      });
    },
  };
}

export type RlActivities = ReturnType<typeof createRlActivities>;
