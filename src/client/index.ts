/**
 * The package's programmatic entry (`import { SparkClient } from 'spark-temporal'`): the typed
 * client, every workflow's input schema and types, result and progress types, and readers of
 * what runs write.
 */
export {
  SparkClient, SparkRunHandle, RlTrainHandle, SparkInputError, SparkUpdateRefusedError,
  defaultWorkflowId, isSparkWorkflowName, listQuery, resolveTemporalSettings, sparkWorkflowNames, stageOf, temporalWebUrl, validateInput,
} from './spark-client.js';
export type {
  GrpoWorkflowName, HyperparametersApplied, InputIssue, RetryingActivity, SparkClientOptions, SparkConfig, SparkHandle, SparkInput, SparkListFilter, SparkProgress, SparkResult,
  SparkRunSummary, SparkStartOptions, SparkWorkflowName,
} from './spark-client.js';
export type { TemporalSettings } from '../core/temporal/connection.js';

export { workflowInputSchemas, inputJsonSchema, inputSchemaId, INPUT_SCHEMA_VERSION } from '../workflows/inputs.js';
export { SampleSolutionsInputSchema } from '../spark/labels/sample-solutions.input.js';
export type { SampleSolutionsInput, SampleSolutionsConfig } from '../spark/labels/sample-solutions.input.js';
export { SynthesizeLabelsInputSchema } from '../spark/labels/input.js';
export type { SynthesizeLabelsInput, SynthesizeLabelsConfig } from '../spark/labels/input.js';
export { TrainPrmInputSchema } from '../spark/prm/train-prm.input.js';
export type { TrainPrmInput, TrainPrmConfig } from '../spark/prm/train-prm.input.js';
export { EvaluatePrmInputSchema } from '../spark/prm/evaluate-prm.input.js';
export type { EvaluatePrmInput, EvaluatePrmConfig } from '../spark/prm/evaluate-prm.input.js';
export { RlTrainInputSchema, HyperparameterUpdateSchema } from '../spark/rl/input.js';
export type { RlTrainInput, RlTrainConfig, HyperparameterUpdate } from '../spark/rl/input.js';
export { CoEvolveInputSchema } from '../spark/co-evolve/input.js';
export type { CoEvolveInput, CoEvolveConfig } from '../spark/co-evolve/input.js';
export { EvaluateJudgingInputSchema, EvaluateSelfReflectionInputSchema } from '../spark/co-evolve/evaluate-co-evolution.input.js';
export type { EvaluateJudgingInput, EvaluateSelfReflectionInput } from '../spark/co-evolve/evaluate-co-evolution.input.js';

export type { SampleSolutionsProgress, SampleSolutionsResult } from '../spark/labels/sample-solutions.workflow.js';
export type { SynthesizeLabelsProgress, SynthesizeLabelsResult } from '../spark/labels/synthesize-labels.workflow.js';
export type { TrainPrmProgress, TrainPrmResult } from '../spark/prm/train-prm.workflow.js';
export type { EvaluatePrmProgress, EvaluatePrmResult } from '../spark/prm/evaluate-prm.workflow.js';
export type { RlTrainProgress, RlTrainResult, AuditEntry } from '../spark/rl/rl-train.workflow.js';
export type { JudgingReport, SelfReflectionReport } from '../spark/co-evolve/activities.js';
export type { RlMetricsRow } from '../spark/rl/grpo.js';
export type { ObjectRef } from '../core/store/refs.js';

export { readLabelsDataset, LabelsDatasetError } from '../spark/labels/labels-dataset.js';
export type { LabelsManifest } from '../spark/labels/labels-dataset.js';
export { ObjectStore, s3ConfigFromEnv } from '../core/store/s3-store.js';
