// A TypeScript service's use of the package's types: compiles clean.
import { SparkClient } from 'spark-temporal';
import type { RlTrainProgress, SparkResult, SynthesizeLabelsInput } from 'spark-temporal';

export async function label(spark: SparkClient, runName: string): Promise<number> {
  const input: SynthesizeLabelsInput = {
    runName,
    dataset: { uri: 's3://spark/problems.jsonl' },
    generator: { endpoint: { baseURL: 'http://127.0.0.1:8300/v1' }, model: 'sim-policy' },
    verifier: { endpoint: { baseURL: 'http://127.0.0.1:8300/v1' }, model: 'sim-verifier' },
    solutionsPerProblem: 2,
  };
  const run = await spark.start('synthesizeLabels', input);
  const result: SparkResult<'synthesizeLabels'> = await run.result();
  return result.lines;
}

export async function pauseAt(spark: SparkClient, workflowId: string, step: number): Promise<RlTrainProgress> {
  const run = spark.getHandle('rlTrain', workflowId);
  const progress = await run.progress();
  if (progress.step >= step) await run.pause();
  return progress;
}
