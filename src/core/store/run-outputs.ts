/**
 * One configuration per output prefix. Each stage writes under fixed keys (`runs/<runName>/<stage>/...`),
 * so a second run under the same name with other settings would silently replace the first one's
 * outputs. At its start a stage claims its prefix with `<prefix>/run.json` (the config hash and the
 * settings it was computed over, written with `If-None-Match: *`); a run of another configuration is
 * refused naming both hashes and the fields that differ, and a run of the same one goes on and reuses
 * everything.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityDeps } from '../deps.js';
import { mapFailures } from '../temporal/failures.js';
import type { ObjectRef } from './refs.js';
import { joinKey } from './refs.js';

export const RUN_CLAIM_NAME = 'run.json';

/** Failure type of a run refused because its prefix holds outputs of another configuration. */
export const OUTPUTS_OF_ANOTHER_CONFIG = 'OutputsOfAnotherConfig';

export interface ClaimRunOutputsInput {
  /** Where the stage writes, e.g. `runs/<runName>/labels`. */
  prefix: string;
  /** The workflow type, for the message. */
  workflow: string;
  runName: string;
  workflowId: string;
  /** The stage's config hash (its `SparkConfigHash`). */
  configHash: string;
  /** What the hash was computed over: the settings that decide the outputs. */
  decisive: unknown;
  /**
   * A manifest that runs from before claims wrote (it must carry `configHash`, and `config` for the
   * field list), so their outputs are protected too; `ignoredFields` are the top-level fields the
   * hash leaves out (nulled before comparing).
   */
  legacyManifest?: { key: string; ignoredFields: string[] };
}

/** What `run.json` holds. */
export interface RunClaim {
  kind: 'spark.run-outputs';
  version: 1;
  workflow: string;
  runName: string;
  workflowId: string;
  configHash: string;
  decisive: unknown;
}

export interface FieldDifference {
  field: string;
  before: unknown;
  after: unknown;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Dotted paths where `before` and `after` differ, leaves first (an absent field is `undefined`). */
export function differingFields(before: unknown, after: unknown, path: string[] = []): FieldDifference[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => differingFields(before[k], after[k], [...path, k]));
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    return before.flatMap((v, i) => differingFields(v, after[i], [...path, String(i)]));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ field: path.join('.') || '(config)', before, after }];
}

function shown(v: unknown): string {
  if (v === undefined) return '(absent)';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** The refusal: both hashes, who wrote the outputs, the fields that differ and what to do. */
export function refusal(input: ClaimRunOutputsInput, theirs: { configHash: string; workflowId?: string; decisive?: unknown }): ApplicationFailure {
  const diffs = theirs.decisive === undefined ? null : differingFields(theirs.decisive, input.decisive);
  const fields = diffs === null
    ? 'the earlier run did not record its settings, so the differing fields are unknown'
    : diffs.length === 0
      ? 'no field differs in the recorded settings (the hash was computed by another code version)'
      : `fields that differ: ${diffs.slice(0, 8).map((d) => `${d.field} (${shown(d.before)} → ${shown(d.after)})`).join(', ')}${diffs.length > 8 ? ` and ${diffs.length - 8} more` : ''}`;
  return ApplicationFailure.create({
    type: OUTPUTS_OF_ANOTHER_CONFIG,
    nonRetryable: true,
    message: `${input.prefix}/ already holds outputs of another ${input.workflow} configuration: config hash ${theirs.configHash}` +
      `${theirs.workflowId ? ` (written by ${theirs.workflowId})` : ''}, this run's config hash ${input.configHash}; ${fields}. ` +
      `Use another runName (or outputPrefix), or delete ${input.prefix}/ to replace those outputs.`,
    details: [{ prefix: input.prefix, theirs: theirs.configHash, ours: input.configHash, fields: diffs?.map((d) => d.field) ?? null }],
  });
}

/** Whether recorded settings equal these, field by field (null and absent differ: a default was added). */
function sameSettings(recorded: unknown, current: unknown): boolean {
  return recorded !== undefined && differingFields(recorded, current).length === 0;
}

function nulled(config: unknown, fields: string[]): unknown {
  return isPlainObject(config) ? { ...config, ...Object.fromEntries(fields.map((f) => [f, null])) } : config;
}

export function createRunOutputActivities(deps: Pick<ActivityDeps, 'store'>) {
  const { store } = deps;
  return {
    /**
     * Claims `prefix` for this configuration: writes `run.json` if there is none; goes on if it
     * names the same config hash; otherwise fails (non-retryable) naming both hashes and the fields.
     */
    async claimRunOutputs(input: ClaimRunOutputsInput): Promise<{ claim: ObjectRef | null; created: boolean }> {
      return mapFailures(async () => {
        const key = joinKey(input.prefix, RUN_CLAIM_NAME);
        // Twice at most: a claim that lost the race for the key reads the winner's.
        for (let attempt = 0; attempt < 2; attempt += 1) {
          const existing = await store.getJsonIfExists<RunClaim>(key);
          // The same settings are the same run even when the hashes differ by key order (an optional field
          // given in one input and defaulted in the other is hashed at another place).
          if (existing) {
            if (existing.configHash === input.configHash || sameSettings(existing.decisive, input.decisive)) return { claim: null, created: false };
            throw refusal(input, existing);
          }
          if (input.legacyManifest) {
            const manifest = await store.getJsonIfExists<{ configHash?: string; workflowId?: string; config?: unknown }>(joinKey(input.prefix, input.legacyManifest.key));
            const decisive = manifest?.config === undefined ? undefined : nulled(manifest.config, input.legacyManifest.ignoredFields);
            if (manifest?.configHash && manifest.configHash !== input.configHash && !sameSettings(decisive, input.decisive)) {
              throw refusal(input, { configHash: manifest.configHash, workflowId: manifest.workflowId, decisive });
            }
          }
          const claim: RunClaim = {
            kind: 'spark.run-outputs', version: 1, workflow: input.workflow, runName: input.runName, workflowId: input.workflowId,
            // No timestamp (the object's own date says when): a re-run from scratch writes the same bytes.
            configHash: input.configHash, decisive: input.decisive,
          };
          const ref = await store.putIfNoneMatch(key, JSON.stringify(claim, null, 2));
          if (ref) return { claim: ref, created: true };
        }
        throw new Error(`${key} changed twice while claiming it; retrying`);
      });
    },
  };
}

export type RunOutputActivities = ReturnType<typeof createRunOutputActivities>;
