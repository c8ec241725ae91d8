/**
 * Activities of the co-evolving SPARK: the extra GRPO step on a batch of recycled items, and the
 * two evaluations (test-time self-reflection, judging accuracy on held-out items). Every model
 * call goes through the sample store, so a retry or a re-run pays for nothing twice.
 */
import type { ChatMessage, SamplingParams } from '../../core/inference/chat.js';
import type { RecycledItem, RecycleOptions, ReflectionRound, RolloutGroup } from './recycling.js';
import { recycleBatch, shouldReflectAgain, SPARK_RECYCLING } from './recycling.js';
import { buildPointwiseJudgeMessages, buildResolveMessages, readVerdict, recycledItemMessages } from './prompts.js';
import { recycledReward } from './rewards.js';
import type { JudgingCounts, ScoredRounds, SelfReflectionCounts, SelfReflectionTally } from './tally.js';
import { countJudgedItem, countSelfReflection, EMPTY_JUDGING_COUNTS } from './tally.js';
import type { InferenceEndpoint } from '../../core/inference/endpoints.js';
import type { CoEvolveEvalSet } from './evaluate-co-evolution.input.js';
import type { RlTrainConfig } from '../rl/input.js';
import { answersEquivalent } from '../common/math-answer.js';
import { buildGeneratorMessages } from '../common/prompts.js';
import { rngFrom, samplingSeed } from '../../core/random.js';
import type { ObjectRef } from '../../core/store/refs.js';
import { joinKey } from '../../core/store/refs.js';
import { formatGate, groupAdvantages } from '../rl/rewards.js';
import type { RolloutSummary } from '../rl/grpo.js';
import type { CachePart, RecycledKind } from './cache.js';
import { mean, std, stepName } from '../rl/grpo.js';
import type { GrpoExample } from '../../core/trainer/protocol.js';
import { grpoFinishReason } from '../../core/trainer/protocol.js';
import { sampleWithRetry } from '../../core/inference/sample-store.js';
import { readProblems } from '../../core/store/load-dataset.js';
import type { ActivityDeps } from '../../core/deps.js';
import { DatasetError, mapFailures } from '../../core/temporal/failures.js';
import { activityCancellation, withHeartbeat } from '../../core/temporal/heartbeat.js';
import type { RlRolloutsResult, RolloutsHook } from '../rl/activities.js';
import { readLines, referenceAnswer, storeGrpoBatch } from '../rl/activities.js';

/** Rows of an evaluation set, with the reference answer read out of each. */
interface EvalRow {
  id: string;
  question: string;
  reference: string;
}

export interface JudgingBenchmarkChunk {
  items: ObjectRef;
  count: number;
  callsMade: number;
}

/** The benchmark's items: the training rules for judging items, without caps or reflection items. */
const BENCHMARK_RULES: RecycleOptions = { ...SPARK_RECYCLING, reflection: false, maxJudging: Number.MAX_SAFE_INTEGER, maxReflection: 0 };

/**
 * Judging accuracy on a benchmark: the share of right verdicts per item type, for pointwise also per
 * label (a judge that always says Yes gets 1 and 0), and for pairwise how often the judge answered A
 * next to how often A was right (equal for a perfect judge; a position bias shows as the gap).
 */
export interface JudgingReport extends JudgingCounts {
  judgeModel: string;
  items: number;
  callsMade: number;
  benchmark: string;
}

export interface SelfReflectionReport extends SelfReflectionTally {
  model: string;
  rows: number;
  samples: number;
  maxRounds: number;
  callsMade: number;
}

/**
 * The rollouts hook of co-evolution (see `RolloutsHook` in ../rl/activities.ts): a rollout step's
 * groups, recycled into pointwise, pairwise and reflection items and written to
 * `recycled/step-N.jsonl` (N the rollout step) for the cache. Steps without `recycle` (plain
 * `rlTrain`) pass through untouched.
 */
export const recycleRollouts: RolloutsHook = async ({ store, input, groups }) => {
  const options = input.recycle as RecycleOptions | undefined;
  if (!options) return null;
  const rolloutGroups: RolloutGroup[] = groups.map((g) => ({
    promptId: g.promptId,
    question: g.question,
    reference: g.reference ?? '',
    rollouts: g.rollouts.map((r) => ({ text: r.text, answer: r.answer, correct: r.correct === true })),
  }));
  const items = recycleBatch(rolloutGroups, options, rngFrom(input.config.seed, 'recycle', input.step));
  await store.put(joinKey(input.outputPrefix, 'recycled', `${stepName(input.step)}.jsonl`), items.map((i) => JSON.stringify(i)).join('\n') + (items.length > 0 ? '\n' : ''), 'application/x-ndjson');
  const recycledItems: Record<RecycledKind, number> = { pointwise: 0, pairwise: 0, reflection: 0 };
  for (const item of items) recycledItems[item.kind]++;
  return { summary: { recycledItems }, result: { recycled: { count: items.length } } };
};

export function createCoEvolveActivities({ store, inference }: ActivityDeps) {
  const readRows = async (set: CoEvolveEvalSet): Promise<EvalRow[]> => {
    const { problems } = await readProblems(store, set.uri, set);
    if (problems.length === 0) throw new DatasetError(`${set.uri}: no problems at offset ${set.offset}`);
    return problems.map((p) => {
      const reference = referenceAnswer(p.reference);
      if (reference === null) throw new DatasetError(`${set.uri}: row ${p.id} has no reference answer in field '${set.fields.answer ?? ''}'`);
      return { id: p.id, question: p.question, reference };
    });
  };

  return {
    /**
     * The extra GRPO step of co-evolution: the batch of recycled items `parts` names, `groupSize`
     * rollouts each from the served policy, each scored 1 when it gives the item's label, with group
     * z-score advantages. Writes the trainer step's batch and request like `rlRollouts`.
     */
    async recycledRollouts(input: { config: RlTrainConfig; outputPrefix: string; step: number; parts: CachePart[]; servedModel: string; learningRate: number; klCoefficient: number }): Promise<RlRolloutsResult> {
      return mapFailures(async () => {
        const { config, step } = input;
        const signal = activityCancellation();
        const items: RecycledItem[] = [];
        for (const part of input.parts) {
          const ref = { uri: store.uri(joinKey(input.outputPrefix, 'recycled', `${stepName(part.rlStep)}.jsonl`)) };
          const all = await readLines<RecycledItem>(store, ref);
          if (all.length < part.to) throw new DatasetError(`${ref.uri} holds ${all.length} recycled items, the cache expects ${part.to}`);
          items.push(...all.slice(part.from, part.to));
        }
        const policy = inference(config.policy.endpoint, { maxInFlight: config.policy.maxInFlight });
        let callsMade = 0;
        let samplesReused = 0;
        let done = 0;
        const groups = await withHeartbeat(() => Promise.all(items.map(async (item, k) => {
          const messages = recycledItemMessages(item);
          const sampling: SamplingParams = { ...config.policy.sampling, seed: samplingSeed(config.seed, 'recycled', step, k) };
          const out = await sampleWithRetry(store, { client: policy, model: input.servedModel, messages, sampling, indices: Array.from({ length: config.grpo.groupSize }, (_, i) => i), signal });
          callsMade += out.callsMade;
          samplesReused += out.samplesReused;
          const rewards = out.samples.map((s) => recycledReward(item, s.text));
          done++;
          return { item, messages, texts: out.samples.map((s) => s.text), finishReasons: out.samples.map((s) => s.finishReason), rewards, advantages: groupAdvantages(rewards) };
        })), () => ({ step, itemsDone: done }));

        const lines = groups.flatMap((g) => g.texts.map((completion, i) => JSON.stringify({ prompt: g.messages, completion, advantage: g.advantages[i]!, ...grpoFinishReason(g.finishReasons[i]!) } satisfies GrpoExample)));
        const request = await storeGrpoBatch(store, input, step, lines);
        const rewards = groups.flatMap((g) => g.rewards);
        const judging: NonNullable<RolloutSummary['judging']> = {};
        for (const kind of ['pointwise', 'pairwise', 'reflection'] as RecycledKind[]) {
          const of = groups.filter((g) => g.item.kind === kind);
          if (of.length > 0) judging[kind] = { items: of.length, accuracy: mean(of.flatMap((g) => g.rewards)) };
        }
        return {
          request,
          summary: {
            prompts: groups.length, rollouts: rewards.length, rewardMean: mean(rewards), rewardStd: std(rewards), accuracy: mean(rewards),
            gateRejections: 0, guardStepCount: 0, guardJudgedCount: 0, prmUnreadable: 0, meanSteps: 0, outsideStepRange: 0,
            meanResponseChars: mean(groups.flatMap((g) => g.texts.map((t) => t.length))), callsMade, samplesReused, judging,
          },
        };
      });
    },

    /** The held-out rows with their reference answers, read and checked once into one JSONL (chunks read slices of it). */
    async prepareEvalRows(input: { set: CoEvolveEvalSet; outputKey: string }): Promise<{ rows: ObjectRef; count: number }> {
      return mapFailures(async () => {
        const rows = await readRows(input.set);
        const ref = await store.put(input.outputKey, rows.map((r) => JSON.stringify(r)).join('\n') + '\n', 'application/x-ndjson');
        return { rows: ref, count: rows.length };
      });
    },

    /**
     * Held-out judging items for rows [from, to): `samplesPerQuestion` answers per question from the
     * generator, recycled by the training rules (pointwise and pairwise, no caps; each question's draws
     * seeded by its id, so the items do not depend on how the rows are cut), stored at `outputKey`.
     */
    async judgingBenchmarkChunk(input: { rows: ObjectRef; from: number; to: number; generator: { endpoint: InferenceEndpoint; model: string; maxInFlight: number }; samplesPerQuestion: number; temperature: number; seed: number; outputKey: string }): Promise<JudgingBenchmarkChunk> {
      return mapFailures(async () => {
        const signal = activityCancellation();
        const rows = (await readLines<EvalRow>(store, input.rows)).slice(input.from, input.to);
        const client = inference(input.generator.endpoint, { maxInFlight: input.generator.maxInFlight });
        let callsMade = 0;
        let done = 0;
        const items = await withHeartbeat(() => Promise.all(rows.map(async (row): Promise<RecycledItem[]> => {
          const out = await sampleWithRetry(store, {
            client, model: input.generator.model, messages: buildGeneratorMessages(row.question),
            sampling: { temperature: input.temperature, maxTokens: 2048, seed: samplingSeed(input.seed, 'judging-benchmark', row.id) },
            indices: Array.from({ length: input.samplesPerQuestion }, (_, i) => i), signal,
          });
          callsMade += out.callsMade;
          done++;
          const group: RolloutGroup = {
            promptId: row.id, question: row.question, reference: row.reference,
            rollouts: out.samples.map((s) => {
              const gate = formatGate(s.text);
              return { text: s.text, answer: gate.ok ? gate.answer : null, correct: gate.ok && answersEquivalent(gate.answer, row.reference) };
            }),
          };
          return recycleBatch([group], BENCHMARK_RULES, rngFrom(input.seed, 'judging-benchmark', row.id));
        })), () => ({ questionsDone: done }));
        const flat = items.flat();
        const ref = await store.put(input.outputKey, flat.map((i) => JSON.stringify(i)).join('\n') + (flat.length > 0 ? '\n' : ''), 'application/x-ndjson');
        return { items: ref, count: flat.length, callsMade };
      });
    },

    /** Judging accuracy of `judge` on one chunk of benchmark items (each in its own template), `samples` verdicts per item, as counts. */
    async judgingChunk(input: { items: ObjectRef; judge: { endpoint: InferenceEndpoint; model: string; maxInFlight: number }; temperature: number; samples: number; seed: number }): Promise<{ counts: JudgingCounts; callsMade: number }> {
      return mapFailures(async () => {
        const signal = activityCancellation();
        const items = await readLines<RecycledItem>(store, input.items);
        const client = inference(input.judge.endpoint, { maxInFlight: input.judge.maxInFlight });
        let callsMade = 0;
        let done = 0;
        const scored = await withHeartbeat(() => Promise.all(items.map(async (item) => {
          const out = await sampleWithRetry(store, {
            client, model: input.judge.model, messages: recycledItemMessages(item),
            sampling: { temperature: input.temperature, maxTokens: 1024, ...(input.temperature > 0 ? { seed: samplingSeed(input.seed, 'judging', item.promptId, item.kind) } : {}) },
            indices: Array.from({ length: input.samples }, (_, i) => i), signal,
          });
          callsMade += out.callsMade;
          done++;
          return {
            item,
            accuracy: mean(out.samples.map((s) => recycledReward(item, s.text))),
            choseA: mean(out.samples.map((s) => (readVerdict('pairwise', s.text) === 'A' ? 1 : 0))),
          };
        })), () => ({ itemsDone: done }));
        return { counts: scored.reduce((c, x) => countJudgedItem(c, x.item, x.accuracy, x.choseA), EMPTY_JUDGING_COUNTS), callsMade };
      });
    },

    /**
     * Test-time self-reflection on rows [from, to): the model answers, judges its own answer
     * (Yes/No), and after anything but Yes solves again from "here is a question and an incorrect
     * answer", at most `maxRounds` times; `samples` episodes per question, returned as counts.
     */
    async selfReflectionChunk(input: { rows: ObjectRef; from: number; to: number; policy: { endpoint: InferenceEndpoint; model: string; maxInFlight: number }; maxRounds: number; temperature: number; samples: number; seed: number }): Promise<{ counts: SelfReflectionCounts; callsMade: number }> {
      return mapFailures(async () => {
        const signal = activityCancellation();
        const rows = (await readLines<EvalRow>(store, input.rows)).slice(input.from, input.to);
        const client = inference(input.policy.endpoint, { maxInFlight: input.policy.maxInFlight });
        let callsMade = 0;
        let done = 0;
        const sampleOne = async (messages: ChatMessage[], seed: number, maxTokens: number): Promise<string> => {
          const out = await sampleWithRetry(store, {
            client, model: input.policy.model, messages,
            sampling: { temperature: input.temperature, maxTokens, ...(input.temperature > 0 ? { seed } : {}) }, indices: [0], signal,
          });
          callsMade += out.callsMade;
          return out.samples[0]!.text;
        };
        const episode = async (row: EvalRow, e: number): Promise<ScoredRounds> => {
          const rounds: (ReflectionRound & { correct: boolean })[] = [];
          let incorrect: string | null = null;
          while (shouldReflectAgain(rounds, input.maxRounds)) {
            const r = rounds.length;
            const messages = incorrect === null ? buildGeneratorMessages(row.question) : buildResolveMessages(row.question, incorrect);
            const gate = formatGate(await sampleOne(messages, samplingSeed(input.seed, 'self-reflection', row.id, e, r, 'solve'), 2048));
            const answer = gate.ok ? gate.answer : null;
            const verdictText = await sampleOne(buildPointwiseJudgeMessages(row.question, answer ?? '(no answer)', 0), samplingSeed(input.seed, 'self-reflection', row.id, e, r, 'judge'), 1024);
            rounds.push({ answer, verdict: readVerdict('pointwise', verdictText), correct: answer !== null && answersEquivalent(answer, row.reference) });
            incorrect = answer ?? '(no answer)';
          }
          done++;
          return rounds;
        };
        const episodes = await withHeartbeat(() => Promise.all(rows.flatMap((row) => Array.from({ length: input.samples }, (_, e) => episode(row, e)))), () => ({ episodesDone: done }));
        return { counts: countSelfReflection(episodes, input.maxRounds), callsMade };
      });
    },

    /** Writes an evaluation's report (the workflow adds the chunks' counts up). */
    async writeCoEvolveReport(input: { key: string; report: unknown }): Promise<ObjectRef> {
      return mapFailures(() => store.putJson(input.key, input.report));
    },
  };
}

export type CoEvolveActivities = ReturnType<typeof createCoEvolveActivities>;
