/** Every workflow the workers run; the bundle entry point. */
export { sampleSolutions, sampleSolutionsProgress } from './sample-solutions.js';
export { synthesizeLabels, synthesizeLabelsProgress } from './synthesize-labels.js';
export { labelShard, labelShardProgress, shardProgressSignal } from './label-shard.js';
export { evaluatePrm, evaluatePrmProgress } from './evaluate-prm.js';
export { trainPrm, trainPrmProgress } from './train-prm.js';
export { rlTrain, rlTrainProgress, rlLatestCheckpoint, rlRecentMetrics, pauseSignal, resumeSignal, stopSignal, setHyperparametersUpdate } from './rl-train.js';
export { coEvolve, coEvolveProgress } from './co-evolve.js';
export { sparkPipeline, sparkPipelineProgress } from './spark-pipeline.js';
export { evaluateJudging, evaluateJudgingProgress, evaluateSelfReflection, evaluateSelfReflectionProgress } from './evaluate-co-evolution.js';
