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
  GrpoWorkflowName, HyperparametersApplied, InputIssue, SparkClientOptions, SparkConfig, SparkHandle, SparkInput, SparkListFilter, SparkProgress, SparkResult,
  SparkRunSummary, SparkStartOptions, SparkWorkflowName,
} from './spark-client.js';
export type { TemporalSettings } from '../workers/temporal-connection.js';

export { workflowInputSchemas, inputJsonSchema } from '../domain/inputs/schemas.js';
export { SampleSolutionsInputSchema } from '../domain/inputs/sample-solutions.js';
export type { SampleSolutionsInput, SampleSolutionsConfig } from '../domain/inputs/sample-solutions.js';
export { SynthesizeLabelsInputSchema } from '../domain/inputs/synthesize-labels.js';
export type { SynthesizeLabelsInput, SynthesizeLabelsConfig } from '../domain/inputs/synthesize-labels.js';
export { TrainPrmInputSchema } from '../domain/inputs/train-prm.js';
export type { TrainPrmInput, TrainPrmConfig } from '../domain/inputs/train-prm.js';
export { EvaluatePrmInputSchema } from '../domain/inputs/evaluate-prm.js';
export type { EvaluatePrmInput, EvaluatePrmConfig } from '../domain/inputs/evaluate-prm.js';
export { RlTrainInputSchema, HyperparameterUpdateSchema } from '../domain/inputs/rl-train.js';
export type { RlTrainInput, RlTrainConfig, HyperparameterUpdate } from '../domain/inputs/rl-train.js';
export { CoEvolveInputSchema } from '../domain/inputs/co-evolve.js';
export type { CoEvolveInput, CoEvolveConfig } from '../domain/inputs/co-evolve.js';
export { EvaluateJudgingInputSchema, EvaluateSelfReflectionInputSchema } from '../domain/inputs/co-evolve-eval.js';
export type { EvaluateJudgingInput, EvaluateSelfReflectionInput } from '../domain/inputs/co-evolve-eval.js';

export type { SampleSolutionsProgress, SampleSolutionsResult } from '../workflows/sample-solutions.js';
export type { SynthesizeLabelsProgress, SynthesizeLabelsResult } from '../workflows/synthesize-labels.js';
export type { TrainPrmProgress, TrainPrmResult } from '../workflows/train-prm.js';
export type { EvaluatePrmProgress, EvaluatePrmResult } from '../workflows/evaluate-prm.js';
export type { RlTrainProgress, RlTrainResult, AuditEntry } from '../workflows/rl-train.js';
export type { JudgingReport, SelfReflectionReport } from '../activities/co-evolve.js';
export type { RlMetricsRow } from '../domain/rl.js';
export type { ObjectRef } from '../domain/refs.js';

export { readLabelsDataset, LabelsDatasetError } from './labels-dataset.js';
export type { LabelsManifest } from './labels-dataset.js';
export { ObjectStore, s3ConfigFromEnv } from '../backends/s3-store.js';
