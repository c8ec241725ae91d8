import {
  allHandlersFinished, condition, continueAsNew, defineQuery, proxyActivities, setHandler, startChild, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { LabelActivities, LabelPart, PreparedLabelInput } from './activities.js';
import type { SynthesizeLabelsConfig, SynthesizeLabelsInput } from './input.js';
import { SynthesizeLabelsInputSchema } from './input.js';
import type { LabelCounts } from './labels.js';
import { addCounts, shardName, ZERO_COUNTS } from './labels.js';
import { hashParts } from '../../core/random.js';
import type { ObjectRef } from '../../core/store/refs.js';
import { joinKey } from '../../core/store/refs.js';
import { bulkIoHeartbeat, storeIo } from '../../core/temporal/activity-presets.js';
import type { ShardProgress } from './label-shard.workflow.js';
import { labelShard, shardProgressSignal } from './label-shard.workflow.js';
import { SparkCallsMade, SparkConfigHash, SparkItemsDone, SparkRun, SparkStage, SparkStatus } from '../../core/temporal/search-attributes.js';
import { parseWorkflowInput } from '../../core/temporal/validate.js';
import { claimRunOutputs } from '../../core/temporal/run-outputs.workflow.js';

const io = proxyActivities<LabelActivities>(storeIo);
const prep = proxyActivities<LabelActivities>(bulkIoHeartbeat);

/** What a run of the parent hands to the next after continue-as-new. */
export interface SynthesizeLabelsState {
  prepared: PreparedLabelInput;
  /** Shards [0, nextShard) are finished. */
  nextShard: number;
  /** Counters of the finished shards. */
  done: LabelCounts;
  /** Runs of this workflow so far (1 = the first). */
  runs: number;
}

export interface SynthesizeLabelsProgress {
  stage: 'preparing' | 'labelling' | 'writing-manifest' | 'completed';
  problemsTotal: number;
  shardsTotal: number;
  shardsDone: number;
  shardsRunning: number;
  /** Finished shards plus what running shards reported. */
  counts: LabelCounts;
  /** Runs of this workflow so far (continue-as-new starts a new one). */
  runs: number;
}

export interface SynthesizeLabelsResult {
  manifest: ObjectRef;
  lines: number;
  counts: LabelCounts;
}

export const synthesizeLabelsProgress = defineQuery<SynthesizeLabelsProgress>('progress');

/**
 * SPARK stage 1: a generator writes M solutions per problem, a verifier grades each K times,
 * and the votes become step labels by each chosen method, with no reference answers.
 *
 * The problems are cut into shards; each shard is a child workflow (`labelShard`) and at most
 * `shards.concurrency` run at once. After `shards.perRun` shards (or when Temporal suggests it)
 * the workflow waits for its running shards and continues as new, carrying only counters, so
 * its history stays short whatever the dataset size. Outputs: one JSONL part per shard and a
 * manifest, all in S3; only references come back.
 */
export async function synthesizeLabels(rawInput: SynthesizeLabelsInput, state?: SynthesizeLabelsState): Promise<SynthesizeLabelsResult> {
  const config: SynthesizeLabelsConfig = parseWorkflowInput(SynthesizeLabelsInputSchema, rawInput, 'synthesizeLabels');
  const prefix = config.outputPrefix ?? joinKey('runs', config.runName, 'labels');
  const decisive = { ...config, runName: null, outputPrefix: null, shards: null };
  const configHash = hashParts(JSON.stringify(decisive));
  const info = workflowInfo();
  const running = new Map<number, LabelCounts>();
  const progress: SynthesizeLabelsProgress = {
    stage: state ? 'labelling' : 'preparing',
    problemsTotal: state?.prepared.problems ?? 0,
    shardsTotal: state?.prepared.shards ?? 0,
    shardsDone: state?.nextShard ?? 0,
    shardsRunning: 0,
    counts: state?.done ?? ZERO_COUNTS,
    runs: state?.runs ?? 1,
  };
  let done = state?.done ?? ZERO_COUNTS;
  const refresh = (): void => {
    progress.counts = [...running.values()].reduce(addCounts, done);
    progress.shardsRunning = running.size;
  };
  setHandler(synthesizeLabelsProgress, () => progress);
  setHandler(shardProgressSignal, (p: ShardProgress) => {
    // A report that arrives after its shard finished must not count it twice.
    if (running.has(p.shard)) {
      running.set(p.shard, p.counts);
      refresh();
    }
  });
  upsertSearchAttributes([
    { key: SparkRun, value: config.runName },
    { key: SparkStage, value: 'synthesize-labels' },
    { key: SparkStatus, value: 'running' },
    { key: SparkConfigHash, value: configHash },
  ]);

  // Another configuration's labels under this prefix are refused, not replaced (runs before claims: by their manifest).
  if (!state) {
    await claimRunOutputs({
      prefix, workflow: 'synthesizeLabels', runName: config.runName, workflowId: info.workflowId, configHash, decisive,
      legacyManifest: { key: 'manifest.json', ignoredFields: ['runName', 'outputPrefix', 'shards'] },
    });
  }
  const prepared = state?.prepared ?? (await prep.prepareLabelInput({ config, outputPrefix: prefix }));
  progress.stage = 'labelling';
  progress.problemsTotal = prepared.problems;
  progress.shardsTotal = prepared.shards;

  let next = state?.nextShard ?? 0;
  let startedThisRun = 0;
  let lastUpsert = progress.counts.problems;
  const upsertEvery = Math.max(config.shards.size, Math.ceil(prepared.problems / 50));
  const runShard = async (shard: number): Promise<void> => {
    running.set(shard, ZERO_COUNTS);
    refresh();
    const firstProblem = shard * prepared.shardSize;
    const child = await startChild(labelShard, {
      workflowId: `${info.workflowId}/shard-${shardName(shard)}`,
      args: [{
        config,
        outputPrefix: prefix,
        shard,
        firstProblem,
        problems: Math.min(prepared.shardSize, prepared.problems - firstProblem),
        parentWorkflowId: info.workflowId,
      }],
      staticSummary: `shard ${shard} of ${prepared.shards}`,
      typedSearchAttributes: [
        { key: SparkRun, value: config.runName },
        { key: SparkStage, value: 'synthesize-labels/shard' },
        { key: SparkConfigHash, value: configHash },
      ],
    });
    const part: LabelPart = await child.result();
    running.delete(shard);
    done = addCounts(done, part.counts);
    progress.shardsDone += 1;
    refresh();
    if (progress.counts.problems - lastUpsert >= upsertEvery || progress.shardsDone === prepared.shards) {
      lastUpsert = progress.counts.problems;
      upsertSearchAttributes([
        { key: SparkItemsDone, value: progress.counts.problems },
        { key: SparkCallsMade, value: progress.counts.callsMade },
      ]);
    }
  };

  // Each lane takes the next shard until all are started or this run has started its share;
  // every started shard is awaited, so [0, next) are all finished when the lanes return.
  const lanes = Array.from({ length: config.shards.concurrency }, async () => {
    for (;;) {
      const shouldRoll = startedThisRun >= config.shards.perRun || workflowInfo().continueAsNewSuggested;
      if (next >= prepared.shards || shouldRoll) return;
      const shard = next++;
      startedThisRun += 1;
      await runShard(shard);
    }
  });
  await Promise.all(lanes);

  if (next < prepared.shards) {
    await condition(allHandlersFinished);
    return continueAsNew<typeof synthesizeLabels>(rawInput, { prepared, nextShard: next, done, runs: progress.runs + 1 });
  }

  progress.stage = 'writing-manifest';
  const out = await io.writeLabelsManifest({
    outputPrefix: prefix,
    shards: prepared.shards,
    workflowId: info.workflowId,
    runName: config.runName,
    configHash,
    config,
    datasetSha256: prepared.datasetSha256,
    methods: config.methods,
  });
  progress.stage = 'completed';
  progress.counts = out.counts;
  upsertSearchAttributes([
    { key: SparkStatus, value: 'completed' },
    { key: SparkItemsDone, value: out.counts.problems },
    { key: SparkCallsMade, value: out.counts.callsMade },
  ]);
  return { manifest: out.manifest, lines: out.lines, counts: out.counts };
}
