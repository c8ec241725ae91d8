import type { ChildWorkflowHandle, Workflow, WorkflowResultType } from '@temporalio/workflow';
import { defineQuery, proxyActivities, setHandler, startChild, upsertSearchAttributes, workflowInfo, WorkflowIdReusePolicy } from '@temporalio/workflow';
import type { PipelineActivities, PipelineArtefacts, PipelineEvaluation, PipelineStageRecord } from './activities.js';
import type { PipelineStage, SparkPipelineConfig, SparkPipelineInput } from './input.js';
import { PIPELINE_STAGES, prmModelName, SparkPipelineInputSchema, stageInputs } from './input.js';
import { hashParts } from '../../core/random.js';
import { joinKey } from '../../core/store/refs.js';
import { storeIo } from '../../core/temporal/activity-presets.js';
import type { EvaluatePrmResult } from '../prm/evaluate-prm.workflow.js';
import { evaluatePrm } from '../prm/evaluate-prm.workflow.js';
import { rlTrain } from '../rl/rl-train.workflow.js';
import { SparkConfigHash, SparkRun, SparkStage, SparkStatus } from '../../core/temporal/search-attributes.js';
import { synthesizeLabels } from '../labels/synthesize-labels.workflow.js';
import { trainPrm } from '../prm/train-prm.workflow.js';
import { parseWorkflowInput } from '../../core/temporal/validate.js';

const io = proxyActivities<PipelineActivities>(storeIo);

export interface PipelineStageProgress extends PipelineStageRecord {
  name: PipelineStage;
  /** What the stage made, in one line, once it is completed. */
  summary: string | null;
}

export interface SparkPipelineProgress {
  stage: PipelineStage | 'starting' | 'writing-manifest' | 'completed' | 'failed';
  /**
   * Every stage in order. A running stage lists its child workflows: each answers its own
   * `progress` query with the detail (step, rows, calls), which this query does not copy.
   */
  stages: PipelineStageProgress[];
  /** The lineage manifest, once written. */
  manifest: string | null;
}

export interface SparkPipelineResult extends PipelineArtefacts {
  manifest: { uri: string; sha256: string; bytes: number };
  stages: Record<PipelineStage, PipelineStageRecord>;
}

export const sparkPipelineProgress = defineQuery<SparkPipelineProgress>('progress');

/** Child workflow ID suffixes; the IDs are `<pipeline ID>/<suffix>`, so a re-run under the same ID finds the same children. */
const CHILD = { labels: 'labels', trainPrm: 'train-prm', evaluatePrm: 'evaluate-prm', evaluateBase: 'evaluate-prm-base', rlTrain: 'rl-train' } as const;

/**
 * SPARK end to end: stage 1 labels → PRM data and training (published) → ProcessBench of the PRM
 * (and of its base, when named) → GRPO with the PRM as reward, whose last-step evaluation is the
 * final evaluation. Each stage is a child workflow; only references pass between them (the labels
 * manifest URI, the served PRM's name). Ends by writing a lineage manifest to
 * `runs/<runName>/pipeline/manifest.json`.
 *
 * Re-running with the same input starts each child again (a completed child ID may be reused), and
 * each stage's own reuse makes that free: samples come from the content-addressed store, trainPrm
 * reads its committed checkpoints back, rlTrain picks up at its newest checkpoint.
 */
export async function sparkPipeline(rawInput: SparkPipelineInput): Promise<SparkPipelineResult> {
  const config: SparkPipelineConfig = parseWorkflowInput(SparkPipelineInputSchema, rawInput, 'sparkPipeline');
  const info = workflowInfo();
  const configHash = hashParts(JSON.stringify({ ...config, runName: null }));
  const runs = (s: PipelineStage) => config.stages.includes(s);
  const progress: SparkPipelineProgress = {
    stage: 'starting',
    stages: PIPELINE_STAGES.map((name) => ({ name, status: runs(name) ? 'pending' : 'skipped', workflows: [], summary: null })),
    manifest: null,
  };
  setHandler(sparkPipelineProgress, () => progress);
  upsertSearchAttributes([
    { key: SparkRun, value: config.runName },
    { key: SparkStage, value: 'spark-pipeline' },
    { key: SparkStatus, value: 'running' },
    { key: SparkConfigHash, value: configHash },
  ]);
  const entry = (name: PipelineStage) => progress.stages.find((s) => s.name === name)!;
  const begin = (name: PipelineStage) => {
    progress.stage = name;
    entry(name).status = 'running';
  };
  const finish = (name: PipelineStage, summary: string) => {
    entry(name).status = 'completed';
    entry(name).summary = summary;
  };
  /** Waits for a stage's child; its IDs go into the progress and the manifest. */
  const track = async <W extends Workflow>(stage: PipelineStage, started: Promise<ChildWorkflowHandle<W>>): Promise<WorkflowResultType<W>> => {
    const handle = await started;
    const workflows = entry(stage).workflows;
    workflows.push({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId });
    // Children started together (the PRM's and its base's evaluations) are recorded in whichever
    // order their starts land; by ID, the manifest is the same for the same run. No command, so replay-safe.
    workflows.sort((a, b) => (a.workflowId < b.workflowId ? -1 : a.workflowId > b.workflowId ? 1 : 0));
    return handle.result();
  };
  const childOptions = (suffix: string, summary: string) => ({
    workflowId: `${info.workflowId}/${suffix}`,
    // A finished child under this ID is run again: the stage's own reuse makes that cost nothing.
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    staticSummary: summary,
  });

  const prmModel = prmModelName(config);
  const artefacts: PipelineArtefacts = {
    labels: config.prm.labelsManifestUri ? { manifest: { uri: config.prm.labelsManifestUri }, lines: null } : null,
    prm: null,
    prmModel: { name: prmModel, inferenceBaseURL: config.endpoints.inference.baseURL, baseModel: config.prm.baseModel, method: config.prm.method, style: config.prm.style },
    processBench: { prm: null, base: null },
    rl: null,
  };
  try {
    if (runs('labels')) {
      begin('labels');
      const labels = await track('labels', startChild(synthesizeLabels, { ...childOptions(CHILD.labels, 'SPARK stage 1: synthetic step labels'), args: [stageInputs(config, { labelsManifestUri: '' }).labels!] }));
      artefacts.labels = { manifest: labels.manifest, lines: labels.lines };
      finish('labels', `${labels.lines} labelled solutions, ${labels.counts.callsMade} calls made`);
    }
    const inputs = stageInputs(config, { labelsManifestUri: artefacts.labels?.manifest.uri ?? '' });

    if (runs('train-prm')) {
      begin('train-prm');
      const trained = await track('train-prm', startChild(trainPrm, { ...childOptions(CHILD.trainPrm, 'SPARK stage 2: PRM fine-tuning'), args: [inputs.trainPrm] }));
      const finalLoss = trained.lossCurve.at(-1)?.loss ?? null;
      artefacts.prm = {
        dataManifest: trained.dataManifest, data: trained.data, batchesManifest: trained.batchesManifest, checkpoint: trained.checkpoint,
        examples: trained.examples, steps: trained.steps, finalLoss: finalLoss !== null && Number.isFinite(finalLoss) ? finalLoss : null,
      };
      if (trained.model) artefacts.prmModel.name = trained.model.modelName;
      finish('train-prm', `${trained.examples} examples, ${trained.steps} steps, served as ${artefacts.prmModel.name}`);
    }

    if (runs('evaluate-prm')) {
      begin('evaluate-prm');
      const evaluation = (model: string, r: EvaluatePrmResult): PipelineEvaluation => ({
        model, reportJson: r.reportJson, reportMarkdown: r.reportMarkdown, predictions: r.predictions, averageF1: r.report.scores.average.f1,
      });
      // The base needs nothing from training, so both run at once.
      const [tuned, base] = await Promise.all([
        track('evaluate-prm', startChild(evaluatePrm, { ...childOptions(CHILD.evaluatePrm, `ProcessBench: ${prmModel}`), args: [inputs.evaluatePrm!] })),
        inputs.evaluateBase
          ? track('evaluate-prm', startChild(evaluatePrm, { ...childOptions(CHILD.evaluateBase, `ProcessBench: ${config.processBench!.baseModel!}`), args: [inputs.evaluateBase] }))
          : null,
      ]);
      artefacts.processBench = { prm: evaluation(prmModel, tuned), base: base ? evaluation(config.processBench!.baseModel!, base) : null };
      const f1 = (e: PipelineEvaluation | null) => e?.averageF1?.toFixed(3) ?? '—';
      finish('evaluate-prm', `average F1 ${f1(artefacts.processBench.prm)}${base ? ` (base ${f1(artefacts.processBench.base)})` : ''}`);
    }

    if (runs('rl-train')) {
      begin('rl-train');
      const rl = await track('rl-train', startChild(rlTrain, { ...childOptions(CHILD.rlTrain, 'SPARK stage 3: GRPO with the PRM as reward'), args: [inputs.rlTrain!] }));
      // The final evaluation is rlTrain's own at its last step (also what a re-run reports, from the store).
      const finalEvals = rl.evals.filter((e) => e.step === rl.steps);
      artefacts.rl = { steps: rl.steps, checkpoint: rl.checkpoint, servedModel: rl.servedModel, metricsPrefix: rl.metricsPrefix, finalEvals };
      finish('rl-train', `${rl.steps} steps, policy ${rl.servedModel}${finalEvals.map((e) => `, ${e.set} accuracy ${(100 * e.accuracy).toFixed(1)}%`).join('')}`);
    }

    progress.stage = 'writing-manifest';
    const stages = Object.fromEntries(progress.stages.map((s) => [s.name, { status: s.status, workflows: s.workflows }])) as Record<PipelineStage, PipelineStageRecord>;
    const manifest = await io.writePipelineManifest({
      key: joinKey('runs', config.runName, 'pipeline', 'manifest.json'),
      runName: config.runName,
      workflowId: info.workflowId,
      runId: info.runId,
      configHash,
      config,
      stages,
      artefacts,
    });
    progress.manifest = manifest.uri;
    progress.stage = 'completed';
    upsertSearchAttributes([{ key: SparkStatus, value: 'completed' }]);
    return { ...artefacts, manifest, stages };
  } catch (err) {
    for (const s of progress.stages) if (s.status === 'running') s.status = 'failed';
    progress.stage = 'failed';
    upsertSearchAttributes([{ key: SparkStatus, value: 'failed' }]);
    throw err;
  }
}
