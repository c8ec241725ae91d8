import { z } from 'zod';
import { CoEvolveInputSchema } from '../spark/co-evolve/input.js';
import { EvaluateJudgingInputSchema, EvaluateSelfReflectionInputSchema } from '../spark/co-evolve/evaluate-co-evolution.input.js';
import { EvaluatePrmInputSchema } from '../spark/prm/evaluate-prm.input.js';
import { SampleSolutionsInputSchema } from '../spark/labels/sample-solutions.input.js';
import { SparkPipelineInputSchema } from '../spark/pipeline/input.js';
import { SynthesizeLabelsInputSchema } from '../spark/labels/input.js';
import { RlTrainInputSchema } from '../spark/rl/input.js';
import { TrainPrmInputSchema } from '../spark/prm/train-prm.input.js';

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
