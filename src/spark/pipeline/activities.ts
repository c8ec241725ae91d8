import type { SparkPipelineConfig } from './input.js';
import type { ObjectRef } from '../../core/store/refs.js';
import type { ActivityDeps } from '../../core/deps.js';
import { mapFailures } from '../../core/temporal/failures.js';
import { codeVersion } from '../labels/activities.js';
import type { RlCheckpointInfo } from '../rl/activities.js';

/** A stage's state and the child workflows that ran it. */
export interface PipelineStageRecord {
  status: 'pending' | 'running' | 'completed' | 'skipped' | 'failed';
  workflows: { workflowId: string; runId: string }[];
}

/** One model's ProcessBench report. */
export interface PipelineEvaluation {
  model: string;
  reportJson: ObjectRef;
  reportMarkdown: ObjectRef;
  predictions: ObjectRef;
  /** Null when no split has both correct and erroneous rows. */
  averageF1: number | null;
}

/** What the stages made, as references; also the pipeline's result. */
export interface PipelineArtefacts {
  /** The labels manifest (made by the labels stage, or given when it was skipped). */
  labels: { manifest: ObjectRef | { uri: string }; lines: number | null } | null;
  prm: {
    dataManifest: ObjectRef;
    data: ObjectRef;
    batchesManifest: ObjectRef;
    checkpoint: string;
    examples: number;
    steps: number;
    finalLoss: number | null;
  } | null;
  /** The served PRM (trained here, or served already when train-prm was skipped). */
  prmModel: { name: string; inferenceBaseURL: string; baseModel: string; method: string; style: string };
  processBench: { prm: PipelineEvaluation | null; base: PipelineEvaluation | null };
  rl: {
    steps: number;
    checkpoint: string | null;
    servedModel: string;
    metricsPrefix: string;
    /** The evaluation of the last step's policy on each held-out set: the pipeline's final evaluation. */
    finalEvals: { set: string; step: number; accuracy: number }[];
  } | null;
}

export interface PipelineManifestInput {
  key: string;
  runName: string;
  workflowId: string;
  runId: string;
  configHash: string;
  config: SparkPipelineConfig;
  stages: Record<string, PipelineStageRecord>;
  artefacts: PipelineArtefacts;
}

interface LabelsManifestHead {
  dataset?: { uri: string; sha256: string };
  methods?: string[];
  workflowId?: string;
}

/** Activities of `sparkPipeline`: its lineage manifest. */
export function createPipelineActivities({ store }: Pick<ActivityDeps, 'store'>) {
  return {
    /**
     * Writes `spark.pipeline`: one object that links every artefact to what it was made from
     * (dataset → labels → PRM data → PRM checkpoint → served PRM → its reports; prompts → policy
     * checkpoint → final evaluations), with the child workflows that made them. The dataset's and
     * the prompts' hashes are read from the stages' own records, so they are what was really used.
     */
    async writePipelineManifest(input: PipelineManifestInput): Promise<ObjectRef> {
      return mapFailures(async () => {
        const { artefacts: a } = input;
        const labelsUri = a.labels?.manifest.uri ?? null;
        const labelsHead = labelsUri ? await store.head(store.keyOf(labelsUri)) : null;
        const labels = labelsUri ? await store.getJsonIfExists<LabelsManifestHead>(labelsUri) : null;
        const rlInfo = a.rl?.checkpoint ? await store.getJsonIfExists<RlCheckpointInfo>(`${a.rl.checkpoint}.run.json`) : null;
        return store.putJson(input.key, {
          kind: 'spark.pipeline',
          version: 1,
          runName: input.runName,
          workflowId: input.workflowId,
          runId: input.runId,
          configHash: input.configHash,
          codeVersion: codeVersion(),
          stages: input.stages,
          lineage: {
            dataset: labels?.dataset ? { uri: labels.dataset.uri, sha256: labels.dataset.sha256 } : null,
            labels: labelsUri ? {
              manifest: { uri: labelsUri, sha256: labelsHead?.sha256 ?? null, bytes: labelsHead?.bytes ?? null },
              lines: a.labels?.lines ?? null,
              methods: labels?.methods ?? null,
              workflowId: labels?.workflowId ?? null,
            } : null,
            prmData: a.prm ? { manifest: a.prm.dataManifest, data: a.prm.data, examples: a.prm.examples, method: a.prmModel.method, style: a.prmModel.style } : null,
            prmCheckpoint: a.prm ? { uri: a.prm.checkpoint, steps: a.prm.steps, batchesManifest: a.prm.batchesManifest, finalLoss: a.prm.finalLoss } : null,
            prm: { servedModel: a.prmModel.name, inferenceBaseURL: a.prmModel.inferenceBaseURL, baseModel: a.prmModel.baseModel },
            processBench: a.processBench,
            policy: a.rl ? {
              baseModel: input.config.rl?.policy.baseModel ?? null,
              prompts: { uri: input.config.rl?.dataset.uri ?? null, sha256: rlInfo?.datasetSha256 ?? null },
              rewardModel: a.prmModel.name,
              checkpoint: a.rl.checkpoint,
              steps: a.rl.steps,
              servedModel: a.rl.servedModel,
              metricsPrefix: `${store.uri(a.rl.metricsPrefix)}/`,
              finalEvals: a.rl.finalEvals,
            } : null,
          },
          config: input.config,
        });
      });
    },
  };
}

export type PipelineActivities = ReturnType<typeof createPipelineActivities>;
