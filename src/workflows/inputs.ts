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

/**
 * The version of the published input schemas: the package version that wrote them (kept equal to
 * package.json's by test/unit/input-schemas.test.ts). Inputs only grow by optional fields with
 * defaults (docs/cli-and-client.md, "How inputs evolve"), so workers of this version or later
 * accept every input valid under a schema of this version.
 */
export const INPUT_SCHEMA_VERSION = '0.1.0';

/** The `$id` of a workflow's published input schema. */
export function inputSchemaId(workflow: keyof typeof workflowInputSchemas): string {
  return `urn:spark-temporal:schema:${workflow}.input:${INPUT_SCHEMA_VERSION}`;
}

/**
 * JSON Schema of a workflow's input as people write it by hand (defaults optional), as published in
 * docs/schemas/ and the package's `spark-temporal/schemas/<workflow>.input.json`: with its `$id`
 * and `version`, and unknown fields refused in every object, as SparkClient and the CLI refuse
 * them (a misspelt optional field would otherwise run with its default without a word).
 */
export function inputJsonSchema(workflow: keyof typeof workflowInputSchemas): Record<string, unknown> {
  const { $schema, ...schema } = z.toJSONSchema(workflowInputSchemas[workflow], {
    io: 'input',
    override: ({ jsonSchema }) => {
      if (jsonSchema.type === 'object' && jsonSchema.properties && jsonSchema.additionalProperties === undefined) jsonSchema.additionalProperties = false;
    },
  });
  return {
    $schema,
    $id: inputSchemaId(workflow),
    title: `${workflow} input`,
    description: `The one input object of the ${workflow} workflow (spark-temporal ${INPUT_SCHEMA_VERSION}); fields with a default may be left out.`,
    version: INPUT_SCHEMA_VERSION,
    ...schema,
  };
}
