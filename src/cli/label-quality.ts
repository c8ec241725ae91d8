/**
 * Scores a labels dataset against the sandbox's ground truth:
 *
 *   tsx src/cli/label-quality.ts s3://spark/<prefix>/manifest.json [--json]
 *
 * Reads the manifest and every part it lists (checking each part's sha256, so a score never
 * comes from a half-written or replaced part), then prints per method the first-error F1,
 * the accuracies and the outcome accuracy, and what the run cost. Without SPARK_S3_ENDPOINT
 * it reads from the local stack.
 */
import { z } from 'zod';
import { ObjectNotFoundError, ObjectStore, s3ConfigFromEnv, sha256Hex } from '../backends/s3-store.js';
import type { AggregationMethod } from '../domain/aggregation.js';
import { formatQualityTable, labelQuality } from '../domain/label-quality.js';
import type { LabelQuality } from '../domain/label-quality.js';
import type { LabelLine } from '../domain/labels.js';
import { parseS3Uri } from '../domain/refs.js';
import { localStackEnv } from './local-stack.js';

const USAGE = 'usage: tsx src/cli/label-quality.ts <manifest s3 uri> [--json]';

/** The manifest counters worth showing next to the scores (what the labels cost). */
const COST_KEYS = ['callsMade', 'samplesDrawn', 'samplesReused', 'parseFailures', 'stoppedEarly'] as const;

const METHODS = ['single', 'outcome-majority', 'step-majority', 'critique-single', 'critique-outcome-consensus', 'hybrid'] as const satisfies readonly AggregationMethod[];

const count = z.number().int().nonnegative();

/** The parts of a labels manifest this command relies on; other fields are ignored. */
const LabelsManifestSchema = z.object({
  kind: z.literal('spark.labels'),
  methods: z.array(z.enum(METHODS)).min(1),
  counts: z.object({ callsMade: count, samplesDrawn: count, samplesReused: count, parseFailures: count, stoppedEarly: count }),
  lines: count,
  parts: z.array(z.object({ uri: z.string(), sha256: z.string(), bytes: count, lines: count })),
});
type LabelsManifest = z.infer<typeof LabelsManifestSchema>;

/** Enough of a labels line to score it; the rest of `LabelLine` is carried along unchecked. */
const LabelLineSchema = z.looseObject({
  question: z.string(),
  steps: z.array(z.string()),
  labels: z.record(z.string(), z.looseObject({ ok: z.boolean() })),
});

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

async function readManifest(store: ObjectStore, uri: string): Promise<LabelsManifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(await store.getText(uri));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new CliError(`no manifest at ${uri}`);
    if (err instanceof SyntaxError) throw new CliError(`${uri} is not JSON: ${err.message}`);
    throw err;
  }
  // Check the kind first: pointing at a solutions manifest is the likely mistake, and says more than a schema error.
  const kind = (raw as { kind?: unknown } | null)?.kind;
  if (kind !== 'spark.labels') {
    throw new CliError(`${uri} is not a labels manifest: kind is ${JSON.stringify(kind ?? null)}, expected "spark.labels"`);
  }
  const parsed = LabelsManifestSchema.safeParse(raw);
  if (!parsed.success) throw new CliError(`${uri} is not a valid labels manifest: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Reads one part, refusing it unless it is byte for byte what the manifest recorded. */
async function readPart(store: ObjectStore, part: LabelsManifest['parts'][number]): Promise<LabelLine[]> {
  let bytes: Uint8Array;
  try {
    bytes = await store.getBytes(part.uri);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new CliError(`part ${part.uri} listed in the manifest is missing`);
    throw err;
  }
  const sha256 = sha256Hex(bytes);
  if (sha256 !== part.sha256) {
    throw new CliError(`part ${part.uri} does not match the manifest: sha256 ${sha256}, manifest says ${part.sha256}`);
  }
  const texts = Buffer.from(bytes).toString('utf8').split('\n').filter((l) => l.trim() !== '');
  if (texts.length !== part.lines) throw new CliError(`part ${part.uri} holds ${texts.length} lines, the manifest says ${part.lines}`);
  return texts.map((text, i) => parseLine(text, `${part.uri} line ${i + 1}`));
}

function parseLine(text: string, where: string): LabelLine {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${where} is not JSON: ${(err as Error).message}`);
  }
  const line = LabelLineSchema.safeParse(raw);
  if (!line.success) throw new CliError(`${where} is not a labels line: ${z.prettifyError(line.error)}`);
  return line.data as unknown as LabelLine;
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
    const manifest = await readManifest(store, uri);
    const lines: LabelLine[] = [];
    for (const part of manifest.parts) lines.push(...(await readPart(store, part)));
    if (lines.length !== manifest.lines) throw new CliError(`${uri} counts ${manifest.lines} lines but its parts hold ${lines.length}`);
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
