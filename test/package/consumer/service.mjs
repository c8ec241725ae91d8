// A service that uses the installed package with plain node (no TypeScript, no tsx): starts a
// labels run from the JSON input named on the command line, waits for it, reads the labels
// manifest and prints one JSON line. Temporal and S3 come from the environment (TEMPORAL_ADDRESS,
// SPARK_TASK_QUEUE, SPARK_S3_*, AWS_*), as for any service.
import { readFileSync } from 'node:fs';
import { ObjectStore, readLabelsDataset, s3ConfigFromEnv, SparkClient, SparkInputError } from 'spark-temporal';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const spark = await SparkClient.connect();
try {
  const run = await spark.start('synthesizeLabels', input);
  const result = await run.result();
  const progress = await run.progress();
  const store = new ObjectStore(s3ConfigFromEnv());
  try {
    const { manifest, lines } = await readLabelsDataset(store, result.manifest.uri);
    console.log(JSON.stringify({ workflowId: run.workflowId, result, progress, manifest, lines: lines.length }));
  } finally {
    store.destroy();
  }
} catch (err) {
  if (!(err instanceof SparkInputError)) throw err;
  console.error(err.message);
  process.exitCode = 2;
} finally {
  await spark.close();
}
