import { z } from 'zod';
import { CoEvolveInputSchema } from './co-evolve.js';
import { EvaluateJudgingInputSchema, EvaluateSelfReflectionInputSchema } from './co-evolve-eval.js';
import { EvaluatePrmInputSchema } from './evaluate-prm.js';
import { SampleSolutionsInputSchema } from './sample-solutions.js';
import { SparkPipelineInputSchema } from './spark-pipeline.js';
import { SynthesizeLabelsInputSchema } from './synthesize-labels.js';
import { RlTrainInputSchema } from './rl-train.js';
import { TrainPrmInputSchema } from './train-prm.js';

/** Every workflow's input schema by workflow type, for JSON Schema export and clients. */
export const workflowInputSchemas = {
  sampleSolutions: SampleSolutionsInputSchema,
  synthesizeLabels: SynthesizeLabelsInputSchema,
  evaluatePrm: EvaluatePrmInputSchema,
  trainPrm: TrainPrmInputSchema,
  rlTrain: RlTrainInputSchema,
  sparkPipeline: SparkPipelineInputSchema,
  coEvolve: CoEvolveInputSchema,
  evaluateSelfReflection: EvaluateSelfReflectionInputSchema,
  evaluateJudging: EvaluateJudgingInputSchema,
} as const;

/** JSON Schema of a workflow's input as people write it by hand (defaults optional). */
export function inputJsonSchema(workflow: keyof typeof workflowInputSchemas): unknown {
  return z.toJSONSchema(workflowInputSchemas[workflow], { io: 'input' });
}
