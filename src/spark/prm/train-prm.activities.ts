import { LabelsDatasetError, readLabelsDataset } from '../labels/labels-dataset.js';
import type { PrmDataCounts, PrmDataOptions } from './prm-data.js';
import { buildPrmExamples } from './prm-data.js';
import type { ObjectRef } from '../../core/store/refs.js';
import { joinKey } from '../../core/store/refs.js';
import type { ActivityDeps } from '../../core/deps.js';
import { DatasetError, mapFailures } from '../../core/temporal/failures.js';

/** What `buildPrmData` wrote: the SFT data, its manifest, and the counts. */
export interface PrmDataResult {
  data: ObjectRef;
  manifest: ObjectRef;
  lines: number;
  counts: PrmDataCounts;
}

/** Activities of SPARK stage 2 that prepare data. */
export function createPrmDataActivities({ store }: Pick<ActivityDeps, 'store'>) {
  return {
    /**
     * Turns a stage-1 labels dataset into chat-format SFT JSONL for one method and style, with a
     * manifest recording its lineage (labels manifest and its hash, method, style, options, counts).
     * Keys are fixed by `outputPrefix`, so a retry writes the same bytes again.
     */
    async buildPrmData(input: { labelsManifestUri: string; options: PrmDataOptions; outputPrefix: string }): Promise<PrmDataResult> {
      return mapFailures(async () => {
        const labelsManifest = await store.head(store.keyOf(input.labelsManifestUri));
        const { manifest: labels, lines } = await readLabelsDataset(store, input.labelsManifestUri).catch((err: unknown) => {
          throw err instanceof LabelsDatasetError ? new DatasetError(err.message) : err;
        });
        if (!labels.methods.includes(input.options.method)) {
          throw new DatasetError(`${input.labelsManifestUri} has no labels by method "${input.options.method}" (it has ${labels.methods.join(', ')})`);
        }
        const { examples, counts } = buildPrmExamples(lines, input.options);
        const body = examples.map((e) => JSON.stringify(e)).join('\n') + (examples.length > 0 ? '\n' : '');
        const data = await store.put(joinKey(input.outputPrefix, 'data.jsonl'), body, 'application/x-ndjson');
        const manifest = await store.putJson(joinKey(input.outputPrefix, 'manifest.json'), {
          kind: 'spark.prm-data',
          version: 1,
          labels: { uri: input.labelsManifestUri, sha256: labelsManifest?.sha256 ?? null },
          method: input.options.method,
          style: input.options.style,
          options: input.options,
          counts,
          data: { ...data, lines: examples.length },
        });
        return { data, manifest, lines: examples.length, counts };
      });
    },
  };
}

export type PrmDataActivities = ReturnType<typeof createPrmDataActivities>;
