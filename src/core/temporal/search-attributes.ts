import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes that make runs findable in the Web UI and `temporal workflow list`.
 * The dev server registers them at start (temporal/start.sh); production clusters need
 * `temporal operator search-attribute create` once (infra/README.md).
 * The dev server's SQL visibility allows only a few Int/Double attributes, so counters stay few.
 */
export const SparkRun = defineSearchAttributeKey('SparkRun', SearchAttributeType.KEYWORD);
export const SparkStage = defineSearchAttributeKey('SparkStage', SearchAttributeType.KEYWORD);
export const SparkStatus = defineSearchAttributeKey('SparkStatus', SearchAttributeType.KEYWORD);
export const SparkConfigHash = defineSearchAttributeKey('SparkConfigHash', SearchAttributeType.KEYWORD);
export const SparkStep = defineSearchAttributeKey('SparkStep', SearchAttributeType.INT);
export const SparkItemsDone = defineSearchAttributeKey('SparkItemsDone', SearchAttributeType.INT);
export const SparkCallsMade = defineSearchAttributeKey('SparkCallsMade', SearchAttributeType.INT);
/** RL: mean reward of the latest step, and the latest held-out accuracy (first evaluation set). */
export const SparkReward = defineSearchAttributeKey('SparkReward', SearchAttributeType.DOUBLE);
export const SparkAccuracy = defineSearchAttributeKey('SparkAccuracy', SearchAttributeType.DOUBLE);

export const sparkSearchAttributes = [
  SparkRun,
  SparkStage,
  SparkStatus,
  SparkConfigHash,
  SparkStep,
  SparkItemsDone,
  SparkCallsMade,
  SparkReward,
  SparkAccuracy,
] as const;
