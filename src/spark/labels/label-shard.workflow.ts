import { defineQuery, defineSignal, getExternalWorkflowHandle, patched, proxyActivities, setHandler } from '@temporalio/workflow';
import type { LabelActivities, LabelPart } from './activities.js';
import { mapWithConcurrency } from '../../core/concurrency.js';
import type { SynthesizeLabelsConfig } from './input.js';
import type { LabelCounts } from './labels.js';
import { addCounts, ZERO_COUNTS } from './labels.js';
import { modelBatch, storeIo } from '../../core/temporal/activity-presets.js';

const io = proxyActivities<LabelActivities>(storeIo);
const models = proxyActivities<LabelActivities>(modelBatch);

export interface LabelShardInput {
  config: SynthesizeLabelsConfig;
  outputPrefix: string;
  shard: number;
  /** Global index of the shard's first problem. */
  firstProblem: number;
  problems: number;
  /** The parent run to report progress to; none when the shard runs on its own. */
  parentWorkflowId?: string;
}

/** A shard's counters so far, sent to the parent so its progress query covers running shards. */
export interface ShardProgress {
  shard: number;
  counts: LabelCounts;
}

export const shardProgressSignal = defineSignal<[ShardProgress]>('shardProgress');
export const labelShardProgress = defineQuery<LabelCounts>('progress');

/** How often (in finished problems) a shard reports to its parent: often enough to watch, rarely enough to keep history small. */
const REPORT_EVERY = 10;

/**
 * One shard of stage 1: labels its problems with a bounded window of `labelProblems` activities
 * (`shards.problemsPerActivity` problems each), then joins their lines into one part of the
 * labels dataset. History: about 6 events per activity, so a shard of at most 1,000 problems
 * stays far below Temporal's limits even at one problem per activity.
 */
export async function labelShard(input: LabelShardInput): Promise<LabelPart> {
  let counts: LabelCounts = ZERO_COUNTS;
  setHandler(labelShardProgress, () => counts);
  const parent = input.parentWorkflowId ? getExternalWorkflowHandle(input.parentWorkflowId) : null;
  let reported = 0;
  const report = async (): Promise<void> => {
    if (!parent) return;
    reported = counts.problems;
    await parent.signal(shardProgressSignal, { shard: input.shard, counts });
  };

  // Shards started before problems were labelled in groups keep one activity per problem.
  // An activity never holds more than `problemsInFlight` problems, so that stays the shard's bound.
  const perActivity = patched('label-problems-per-activity')
    ? Math.min(input.config.shards.problemsPerActivity ?? 1, input.config.shards.problemsInFlight)
    : null;
  if (perActivity === null) {
    const rows = Array.from({ length: input.problems }, (_, i) => i);
    await mapWithConcurrency(rows, input.config.shards.problemsInFlight, async (row) => {
      const problemIndex = input.firstProblem + row;
      const done = await models.labelProblem.executeWithOptions({ ...modelBatch, summary: `label problem ${problemIndex}` }, [
        { config: input.config, outputPrefix: input.outputPrefix, shard: input.shard, row, problemIndex },
      ]);
      counts = addCounts(counts, done.counts);
      if (counts.problems - reported >= REPORT_EVERY) await report();
    });
  } else {
    const groups = Array.from({ length: Math.ceil(input.problems / perActivity) }, (_, g) => g * perActivity);
    const activitiesInFlight = Math.max(1, Math.ceil(input.config.shards.problemsInFlight / perActivity));
    await mapWithConcurrency(groups, activitiesInFlight, async (firstRow) => {
      const count = Math.min(perActivity, input.problems - firstRow);
      const firstProblem = input.firstProblem + firstRow;
      const done = await models.labelProblems.executeWithOptions(
        { ...modelBatch, summary: count === 1 ? `label problem ${firstProblem}` : `label problems ${firstProblem}-${firstProblem + count - 1}` },
        [{ config: input.config, outputPrefix: input.outputPrefix, shard: input.shard, firstRow, firstProblem, count }],
      );
      counts = addCounts(counts, done.counts);
      if (counts.problems - reported >= REPORT_EVERY) await report();
    });
  }

  const part = await io.writeLabelPart({
    outputPrefix: input.outputPrefix,
    shard: input.shard,
    firstProblem: input.firstProblem,
    problems: input.problems,
    counts,
    ...(perActivity === null ? {} : { problemsPerActivity: perActivity }),
  });
  if (counts.problems !== reported) await report();
  return part;
}
