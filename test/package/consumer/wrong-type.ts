// Each line marked `expect error` must fail to compile: the package's types are real, not `any`.
import { SparkClient } from 'spark-temporal';

export async function wrong(spark: SparkClient): Promise<void> {
  await spark.start('synthesizeLabels', {
    runName: 'r',
    dataset: { uri: 's3://spark/problems.jsonl' },
    generator: { endpoint: { baseURL: 'http://127.0.0.1:8300/v1' }, model: 'sim-policy' },
    verifier: { endpoint: { baseURL: 'http://127.0.0.1:8300/v1' }, model: 'sim-verifier' },
    solutionsPerProblem: 'two', // expect error: a number
  });
  const run = spark.getHandle('synthesizeLabels', 'spark/r/synthesize-labels');
  const lines: string = (await run.result()).lines; // expect error: a number
  await spark.getHandle('rlTrain', 'spark/r/rl-train').pause(1); // expect error: no arguments
  console.log(lines);
}
