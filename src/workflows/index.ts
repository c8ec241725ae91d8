/** Every workflow the workers run; the bundle entry point. */
export { sampleSolutions, sampleSolutionsProgress } from '../spark/labels/sample-solutions.workflow.js';
export { synthesizeLabels, synthesizeLabelsProgress } from '../spark/labels/synthesize-labels.workflow.js';
export { labelShard, labelShardProgress, shardProgressSignal } from '../spark/labels/label-shard.workflow.js';
export { evaluatePrm, evaluatePrmProgress } from '../spark/prm/evaluate-prm.workflow.js';
export { trainPrm, trainPrmProgress } from '../spark/prm/train-prm.workflow.js';
export { rlTrain, rlTrainProgress, rlLatestCheckpoint, rlRecentMetrics, pauseSignal, resumeSignal, stopSignal, setHyperparametersUpdate } from '../spark/rl/rl-train.workflow.js';
export { coEvolve, coEvolveProgress } from '../spark/co-evolve/co-evolve.workflow.js';
export { sparkPipeline, sparkPipelineProgress } from '../spark/pipeline/spark-pipeline.workflow.js';
export { evaluateJudging, evaluateJudgingProgress, evaluateSelfReflection, evaluateSelfReflectionProgress } from '../spark/co-evolve/evaluate-co-evolution.workflow.js';
