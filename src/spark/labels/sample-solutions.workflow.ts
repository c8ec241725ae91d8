import { defineQuery, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SolutionActivities } from './sample-solutions.activities.js';
import { mapWithConcurrency } from '../../core/concurrency.js';
import type { ObjectRef } from '../../core/store/refs.js';
import { joinKey } from '../../core/store/refs.js';
import { hashParts } from '../../core/random.js';
import type { SampleSolutionsInput } from './sample-solutions.input.js';
import { SampleSolutionsInputSchema } from './sample-solutions.input.js';
import { llmCall, storeIo } from '../../core/temporal/activity-presets.js';
import { SparkCallsMade, SparkConfigHash, SparkItemsDone, SparkRun, SparkStage, SparkStatus } from '../../core/temporal/search-attributes.js';
import { claimRunOutputs } from '../../core/temporal/run-outputs.workflow.js';
import { parseWorkflowInput } from '../../core/temporal/validate.js';

const io = proxyActivities<SolutionActivities>(storeIo);
const llm = proxyActivities<SolutionActivities>(llmCall);

export interface SampleSolutionsProgress {
  problemsTotal: number;
  problemsDone: number;
  callsMade: number;
  samplesReused: number;
}

export interface SampleSolutionsResult {
  manifest: ObjectRef;
  solutions: ObjectRef[];
  callsMade: number;
  samplesReused: number;
}

export const sampleSolutionsProgress = defineQuery<SampleSolutionsProgress>('progress');

/**
 * The smallest end-to-end run: problems from S3 → generator → solutions in S3, returning
 * references. Proves the stack (Temporal, S3, inference, cache) that the SPARK stages build on.
 */
export async function sampleSolutions(rawInput: SampleSolutionsInput): Promise<SampleSolutionsResult> {
  const input = parseWorkflowInput(SampleSolutionsInputSchema, rawInput, 'sampleSolutions');
  const prefix = input.outputPrefix ?? joinKey('runs', input.runName, 'sample-solutions');
  const configHash = hashParts(JSON.stringify(input));
  const progress: SampleSolutionsProgress = { problemsTotal: 0, problemsDone: 0, callsMade: 0, samplesReused: 0 };
  setHandler(sampleSolutionsProgress, () => progress);
  upsertSearchAttributes([
    { key: SparkRun, value: input.runName },
    { key: SparkStage, value: 'sample-solutions' },
    { key: SparkStatus, value: 'running' },
    { key: SparkConfigHash, value: configHash },
  ]);

  // Another configuration's solutions under this prefix are refused, not replaced (where the server is and how many run at once are not settings of the outputs).
  const decisive = { ...input, runName: null, outputPrefix: null, concurrency: null, generator: { ...input.generator, endpoint: null } };
  await claimRunOutputs({ prefix, workflow: 'sampleSolutions', runName: input.runName, workflowId: workflowInfo().workflowId, configHash: hashParts(JSON.stringify(decisive)), decisive });
  const { problems, datasetSha256 } = await io.loadProblems({
    datasetUri: input.dataset.uri,
    fields: input.dataset.fields,
    offset: input.dataset.offset,
    limit: input.dataset.limit,
  });
  progress.problemsTotal = problems.length;

  const outputs = await mapWithConcurrency(problems, input.concurrency, async (problem) => {
    const out = await llm.sampleProblemSolutions.executeWithOptions({ ...llmCall, summary: `solutions for ${problem.id}` }, [
      {
        problem,
        endpoint: input.generator.endpoint,
        model: input.generator.model,
        count: input.samplesPerProblem,
        sampling: input.sampling,
        outputPrefix: prefix,
      },
    ]);
    progress.problemsDone += 1;
    progress.callsMade += out.callsMade;
    progress.samplesReused += out.samplesReused;
    // Counters in search attributes let people sort and filter runs in the Web UI; updated
    // every few problems to keep history small.
    if (progress.problemsDone % 10 === 0) {
      upsertSearchAttributes([
        { key: SparkItemsDone, value: progress.problemsDone },
        { key: SparkCallsMade, value: progress.callsMade },
      ]);
    }
    return out.ref;
  });

  const manifest = await io.writeJson({
    key: joinKey(prefix, 'manifest.json'),
    value: {
      kind: 'sample-solutions',
      workflowId: workflowInfo().workflowId,
      runName: input.runName,
      configHash,
      config: input,
      dataset: { uri: input.dataset.uri, sha256: datasetSha256 },
      counts: { problems: problems.length, samplesPerProblem: input.samplesPerProblem, ...progress },
      solutions: outputs,
    },
  });
  upsertSearchAttributes([
    { key: SparkStatus, value: 'completed' },
    { key: SparkItemsDone, value: progress.problemsDone },
    { key: SparkCallsMade, value: progress.callsMade },
  ]);
  return { manifest, solutions: outputs, callsMade: progress.callsMade, samplesReused: progress.samplesReused };
}
