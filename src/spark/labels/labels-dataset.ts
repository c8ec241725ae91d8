/**
 * Reads a labels dataset (the manifest of `synthesizeLabels` and every part it lists), checking
 * each part's sha256 and line count, so nothing downstream is computed from a half-written or
 * replaced part. Errors say which object and what is wrong.
 */
import { z } from 'zod';
import type { ObjectStore } from '../../core/store/s3-store.js';
import { ObjectNotFoundError, sha256Hex } from '../../core/store/s3-store.js';
import { AGGREGATION_METHODS } from './input.js';
import type { LabelLine } from './labels.js';

/** A labels dataset that cannot be read as one; the message names the object. */
export class LabelsDatasetError extends Error {
  override readonly name = 'LabelsDatasetError';
}

const count = z.number().int().nonnegative();

/** The parts of a labels manifest this command relies on; other fields are ignored. */
const LabelsManifestSchema = z.looseObject({
  kind: z.literal('spark.labels'),
  version: z.literal(1),
  workflowId: z.string(),
  runName: z.string(),
  configHash: z.string(),
  codeVersion: z.string(),
  dataset: z.looseObject({ uri: z.string(), sha256: z.string() }),
  methods: z.array(z.enum(AGGREGATION_METHODS)).min(1),
  config: z.unknown(),
  counts: z.object({
    problems: count,
    solutions: count,
    callsMade: count,
    samplesDrawn: count,
    samplesReused: count,
    verificationsValid: count,
    parseFailures: count,
    stoppedEarly: count,
    unlabelled: count,
  }),
  lines: count,
  parts: z.array(z.object({ uri: z.string(), sha256: z.string(), bytes: count, lines: count })),
});
export type LabelsManifest = z.infer<typeof LabelsManifestSchema>;

/** Enough of a labels line to score it; the rest of `LabelLine` is carried along unchecked. */
const LabelLineSchema = z.looseObject({
  question: z.string(),
  steps: z.array(z.string()),
  labels: z.record(z.string(), z.looseObject({ ok: z.boolean() })),
});

async function readManifest(store: ObjectStore, uri: string): Promise<LabelsManifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(await store.getText(uri));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new LabelsDatasetError(`no manifest at ${uri}`);
    if (err instanceof SyntaxError) throw new LabelsDatasetError(`${uri} is not JSON: ${err.message}`);
    throw err;
  }
  // Check the kind first: pointing at a solutions manifest is the likely mistake, and says more than a schema error.
  const kind = (raw as { kind?: unknown } | null)?.kind;
  if (kind !== 'spark.labels') {
    throw new LabelsDatasetError(`${uri} is not a labels manifest: kind is ${JSON.stringify(kind ?? null)}, expected "spark.labels"`);
  }
  const parsed = LabelsManifestSchema.safeParse(raw);
  if (!parsed.success) throw new LabelsDatasetError(`${uri} is not a valid labels manifest: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Reads one part, refusing it unless it is byte for byte what the manifest recorded. */
async function readPart(store: ObjectStore, part: LabelsManifest['parts'][number]): Promise<LabelLine[]> {
  let bytes: Uint8Array;
  try {
    bytes = await store.getBytes(part.uri);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new LabelsDatasetError(`part ${part.uri} listed in the manifest is missing`);
    throw err;
  }
  const sha256 = sha256Hex(bytes);
  if (sha256 !== part.sha256) {
    throw new LabelsDatasetError(`part ${part.uri} does not match the manifest: sha256 ${sha256}, manifest says ${part.sha256}`);
  }
  const texts = Buffer.from(bytes).toString('utf8').split('\n').filter((l) => l.trim() !== '');
  if (texts.length !== part.lines) throw new LabelsDatasetError(`part ${part.uri} holds ${texts.length} lines, the manifest says ${part.lines}`);
  return texts.map((text, i) => parseLine(text, `${part.uri} line ${i + 1}`));
}

function parseLine(text: string, where: string): LabelLine {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new LabelsDatasetError(`${where} is not JSON: ${(err as Error).message}`);
  }
  const line = LabelLineSchema.safeParse(raw);
  if (!line.success) throw new LabelsDatasetError(`${where} is not a labels line: ${z.prettifyError(line.error)}`);
  return line.data as unknown as LabelLine;
}


/** The manifest and every line of a labels dataset, verified against each other. */
export async function readLabelsDataset(store: ObjectStore, uri: string): Promise<{ manifest: LabelsManifest; lines: LabelLine[] }> {
  const manifest = await readManifest(store, uri);
  const lines: LabelLine[] = [];
  for (const part of manifest.parts) lines.push(...(await readPart(store, part)));
  if (lines.length !== manifest.lines) throw new LabelsDatasetError(`${uri} counts ${manifest.lines} lines but its parts hold ${lines.length}`);
  return { manifest, lines };
}
