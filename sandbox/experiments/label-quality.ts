/**
 * Scores a labels dataset against the sandbox's ground truth:
 *
 *   tsx sandbox/experiments/label-quality.ts s3://spark/<prefix>/manifest.json [--json]
 *
 * Reads the manifest and every part it lists (checking each part's sha256, so a score never
 * comes from a half-written or replaced part), then prints per method the first-error F1,
 * the accuracies and the outcome accuracy, and what the run cost. Without SPARK_S3_ENDPOINT
 * it reads from the local stack.
 */
import { ObjectStore, s3ConfigFromEnv } from '../../src/core/store/s3-store.js';
import { LabelsDatasetError, readLabelsDataset } from '../../src/spark/labels/labels-dataset.js';
import type { LabelsManifest } from '../../src/spark/labels/labels-dataset.js';
import { formatQualityTable, labelQuality } from '../label-quality.js';
import type { LabelQuality } from '../label-quality.js';
import { parseS3Uri } from '../../src/core/store/refs.js';
import { localStackEnv } from '../../src/cli/local-stack.js';

const USAGE = 'usage: tsx sandbox/experiments/label-quality.ts <manifest s3 uri> [--json]';

/** The manifest counters worth showing next to the scores (what the labels cost). */
const COST_KEYS = ['callsMade', 'samplesDrawn', 'samplesReused', 'parseFailures', 'stoppedEarly'] as const;

/** A problem with the arguments or the dataset, told to the user without a stack trace. */
class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

function parseArgs(argv: readonly string[]): { uri: string; json: boolean } {
  const json = argv.includes('--json');
  const rest = argv.filter((a) => a !== '--json');
  const unknown = rest.find((a) => a.startsWith('-'));
  if (unknown !== undefined) throw new CliError(`unknown option ${unknown}\n${USAGE}`, 2);
  const uri = rest[0];
  if (rest.length !== 1 || uri === undefined) throw new CliError(USAGE, 2);
  if (!/^s3:\/\/[^/]+\/.+/.test(uri)) throw new CliError(`expected an S3 URI like s3://spark/labels/<run>/manifest.json, got ${uri}\n${USAGE}`, 2);
  return { uri, json };
}

/**
 * A store for the manifest's bucket. Outside the local stack SPARK_S3_ENDPOINT says where S3 is;
 * without it, the local stack's endpoint and keys. The bucket is the one the URI names.
 */
function storeFor(uri: string): ObjectStore {
  const { bucket } = parseS3Uri(uri);
  const env = process.env.SPARK_S3_ENDPOINT ? process.env : { ...process.env, ...localStackEnv() };
  return new ObjectStore({ ...s3ConfigFromEnv(env), bucket });
}

function report(uri: string, manifest: LabelsManifest, quality: LabelQuality): string {
  const first = quality.rows[0];
  const scored = first
    ? `${first.solutions} solutions scored (${first.nErroneous} with an error, ${first.nCorrect} without), ${quality.skipped} skipped (no ground truth)`
    : `no methods; ${quality.skipped} skipped`;
  const cost = COST_KEYS.map((k) => `${k} ${manifest.counts[k]}`).join(', ');
  return [`labels ${uri}`, scored, '', formatQualityTable(quality.rows), '', cost].join('\n');
}

async function main(): Promise<void> {
  const { uri, json } = parseArgs(process.argv.slice(2));
  const store = storeFor(uri);
  try {
    const { manifest, lines } = await readLabelsDataset(store, uri).catch((err: unknown) => {
      throw err instanceof LabelsDatasetError ? new CliError(err.message) : err;
    });
    const quality = labelQuality(lines, manifest.methods);
    const counts = Object.fromEntries(COST_KEYS.map((k) => [k, manifest.counts[k]]));
    console.log(json ? JSON.stringify({ manifest: uri, lines: lines.length, skipped: quality.skipped, counts, rows: quality.rows }, null, 2) : report(uri, manifest, quality));
  } finally {
    store.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof CliError ? `label-quality: ${err.message}` : err);
  process.exit(err instanceof CliError ? err.exitCode : 1);
});
