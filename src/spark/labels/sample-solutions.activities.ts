import type { InferenceEndpoint } from '../../core/inference/endpoints.js';
import type { FieldMap, Problem } from '../../core/store/dataset.js';
import type { ObjectRef } from '../../core/store/refs.js';
import type { SamplingParams } from '../../core/inference/chat.js';
import { buildGeneratorMessages } from '../common/prompts.js';
import { parsePolicyResponse } from '../common/formats.js';
import { sha256Hex } from '../../core/store/s3-store.js';
import type { ActivityDeps } from '../../core/deps.js';
import { sampleWithCache } from '../../core/inference/sample-store.js';
import { readProblems } from '../../core/store/load-dataset.js';
import { mapFailures } from '../../core/temporal/failures.js';
import { activityCancellation, withHeartbeat } from '../../core/temporal/heartbeat.js';

export interface ProblemEntry {
  id: string;
  ref: ObjectRef;
}

export interface StoredSolution {
  index: number;
  text: string;
  steps: string[];
  boxed: string[];
  sampleKey: string;
}

export interface SolutionsDoc {
  problemId: string;
  question: string;
  model: string;
  solutions: StoredSolution[];
}

/** Activities of the stack-proving `sampleSolutions` workflow. */
export function createSolutionActivities({ store, inference }: ActivityDeps) {
  return {
    /**
     * Reads rows [offset, offset+limit) of a JSONL dataset and stores each problem
     * content-addressed, so the workflow carries small references instead of texts.
     */
    async loadProblems(input: { datasetUri: string; fields: FieldMap; offset: number; limit: number }): Promise<{
      datasetSha256: string;
      problems: ProblemEntry[];
    }> {
      return mapFailures(async () => {
        const { problems, sha256 } = await readProblems(store, input.datasetUri, input);
        const entries = await Promise.all(
          problems.map(async (p) => {
            const body = JSON.stringify(p);
            const { ref } = await store.putIfAbsent(`problems/${sha256Hex(body)}.json`, body, 'application/json');
            return { id: p.id, ref };
          }),
        );
        return { datasetSha256: sha256, problems: entries };
      });
    },

    /**
     * Draws `count` solutions for one problem (reusing stored samples), parses them into steps
     * and stores the result at a key fixed by the run, so a retry overwrites with the same bytes.
     */
    async sampleProblemSolutions(input: {
      problem: ProblemEntry;
      endpoint: InferenceEndpoint;
      model: string;
      count: number;
      sampling: SamplingParams;
      outputPrefix: string;
    }): Promise<{ ref: ObjectRef; callsMade: number; samplesReused: number }> {
      return mapFailures(async () => {
        const problem = await store.getJson<Problem>(input.problem.ref.uri);
        const messages = buildGeneratorMessages(problem.question);
        let stored = 0;
        const { samples, callsMade, samplesReused } = await withHeartbeat(
          () =>
            sampleWithCache(store, {
              client: inference(input.endpoint),
              model: input.model,
              messages,
              sampling: input.sampling,
              indices: Array.from({ length: input.count }, (_, i) => i),
              signal: activityCancellation(),
              onStored: (n) => (stored = n),
            }),
          () => ({ stored }),
        );
        const doc: SolutionsDoc = {
          problemId: problem.id,
          question: problem.question,
          model: input.model,
          solutions: samples.map((s) => {
            const parsed = parsePolicyResponse(s.text);
            return { index: s.index, text: s.text, steps: parsed.steps, boxed: parsed.boxed, sampleKey: s.key };
          }),
        };
        const ref = await store.putJson(`${input.outputPrefix}/solutions/${safeKeyPart(problem.id)}.json`, doc);
        return { ref, callsMade, samplesReused };
      });
    },

    /** Writes a small JSON document (a manifest) at a run-scoped key. */
    async writeJson(input: { key: string; value: unknown }): Promise<ObjectRef> {
      return mapFailures(() => store.putJson(input.key, input.value));
    },
  };
}

export type SolutionActivities = ReturnType<typeof createSolutionActivities>;

function safeKeyPart(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}
