import { z } from 'zod';
import { SampleSolutionsInputSchema } from './sample-solutions.js';
import { SynthesizeLabelsInputSchema } from './synthesize-labels.js';

/** Every workflow's input schema by workflow type, for JSON Schema export and clients. */
export const workflowInputSchemas = {
  sampleSolutions: SampleSolutionsInputSchema,
  synthesizeLabels: SynthesizeLabelsInputSchema,
} as const;

/** JSON Schema of a workflow's input as people write it by hand (defaults optional). */
export function inputJsonSchema(workflow: keyof typeof workflowInputSchemas): unknown {
  return z.toJSONSchema(workflowInputSchemas[workflow], { io: 'input' });
}
