import { readFile } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import type { ObjectStore } from '../../core/store/s3-store.js';
import { ObjectNotFoundError, sha256Hex } from '../../core/store/s3-store.js';
import { mapWithConcurrency } from '../../core/concurrency.js';
import type { EvaluationCost, EvaluationReport, EvaluationRow, PredictionLine } from './evaluation.js';
import { addCost, evaluationMessages, evaluationReport, formatEvaluationReport, orderSplits, predictionLine, rowSeed, ZERO_COST } from './evaluation.js';
import type { EvaluatePrmConfig } from './evaluate-prm.input.js';
import { parseProcessBenchJsonl } from './processbench.js';
import type { ObjectRef } from '../../core/store/refs.js';
import { joinKey } from '../../core/store/refs.js';
import { sampleWithRetry } from '../../core/inference/sample-store.js';
import type { ActivityDeps } from '../../core/deps.js';
import { DatasetError, mapFailures } from '../../core/temporal/failures.js';
import { activityCancellation, withHeartbeat } from '../../core/temporal/heartbeat.js';
import { codeVersion } from '../labels/activities.js';

/** Where the evaluation's files go; every key is fixed by the run, so a retry writes the same bytes. */
export const evaluationKeys = {
  benchmark: (prefix: string) => joinKey(prefix, 'benchmark.json'),
  chunk: (prefix: string, chunk: number) => joinKey(prefix, 'input', `chunk-${chunkName(chunk)}.jsonl`),
  part: (prefix: string, chunk: number) => joinKey(prefix, 'predictions', `part-${chunkName(chunk)}.jsonl`),
  predictions: (prefix: string) => joinKey(prefix, 'predictions.jsonl'),
  reportJson: (prefix: string) => joinKey(prefix, 'report.json'),
  reportMarkdown: (prefix: string) => joinKey(prefix, 'report.md'),
};

function chunkName(chunk: number): string {
  return String(chunk).padStart(5, '0');
}

/** Chunks per run at most: one activity each keeps the workflow's history far below Temporal's limit. */
export const MAX_CHUNKS = 5000;

/** One split file as read: lineage for the report. */
export interface BenchmarkSource {
  split: string;
  uri: string;
  sha256: string;
  /** Rows in the file, and rows evaluated (after `limit`). */
  rowsInFile: number;
  rows: number;
}

/** What `prepareBenchmark` found and wrote: small enough for workflow history. */
export interface PreparedBenchmark {
  /** Split names in report order. */
  splits: string[];
  sources: BenchmarkSource[];
  rows: number;
  chunks: number;
  chunkSize: number;
}

/** Per-split counts of one chunk. */
export interface ChunkSplitCounts {
  rows: number;
  correct: number;
  unparseableRows: number;
  unparseableSamples: number;
}

/** What `evaluateChunk` returns: counts only; the predictions are in `part`. */
export interface ChunkSummary {
  chunk: number;
  rows: number;
  part: ObjectRef;
  bySplit: Record<string, ChunkSplitCounts>;
  cost: EvaluationCost;
}

/** What `writeEvaluationReport` wrote. */
export interface EvaluationOutputs {
  report: EvaluationReport;
  markdown: string;
  reportJson: ObjectRef;
  reportMarkdown: ObjectRef;
  predictions: ObjectRef;
}

/** A split file from S3 or a path on this worker; a file that is not there names its split. */
async function readSplitFile(store: ObjectStore, split: string, uri: string): Promise<string> {
  if (uri.startsWith('s3://')) {
    try {
      return await store.getText(uri);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new DatasetError(`benchmark.splits.${split}: no object at ${uri}`);
      throw err;
    }
  }
  try {
    return await readFile(uri, 'utf8');
  } catch (err) {
    throw new DatasetError(`benchmark.splits.${split}: ${uri} cannot be read on this worker: ${(err as Error).message}`);
  }
}

/** A file this workflow wrote: one JSON object per line. */
function parseLines<T>(text: string): T[] {
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as T);
}

/** Activities of `evaluatePrm` (SPARK stage 2: scoring a PRM on ProcessBench). */
export function createEvaluateActivities({ store, inference }: ActivityDeps) {
  return {
    /**
     * Reads and checks every split file (the published ProcessBench schema), keeps the first
     * `limit` rows of each, and writes them in order as chunk files of `chunkSize` rows plus a
     * `benchmark.json` with each file's sha256. A bad row fails at once naming split, line and field.
     */
    async prepareBenchmark(input: { config: EvaluatePrmConfig; outputPrefix: string }): Promise<PreparedBenchmark> {
      return mapFailures(async () => {
        const { benchmark, chunkSize } = input.config;
        const splits = orderSplits(Object.keys(benchmark.splits));
        const sources: BenchmarkSource[] = [];
        const rows: EvaluationRow[] = [];
        for (const split of splits) {
          const uri = benchmark.splits[split]!;
          const text = await readSplitFile(store, split, uri);
          let cases;
          try {
            cases = parseProcessBenchJsonl(text, split);
          } catch (err) {
            throw new DatasetError(`benchmark.splits.${split} (${uri}): ${(err as Error).message}`);
          }
          if (cases.length === 0) throw new DatasetError(`benchmark.splits.${split} (${uri}): no rows`);
          const kept = cases.slice(0, benchmark.limit ?? cases.length);
          kept.forEach((c, index) => rows.push({ split, index, id: c.id, problem: c.problem, steps: c.steps, label: c.label }));
          sources.push({ split, uri, sha256: sha256Hex(text), rowsInFile: cases.length, rows: kept.length });
          Context.current().heartbeat({ splitsRead: sources.length });
        }
        const chunks = Math.ceil(rows.length / chunkSize);
        if (chunks > MAX_CHUNKS) throw new DatasetError(`${rows.length} rows make ${chunks} chunks of chunkSize ${chunkSize}; raise chunkSize (at most ${MAX_CHUNKS} chunks per run)`);
        for (let c = 0; c < chunks; c++) {
          const body = rows.slice(c * chunkSize, (c + 1) * chunkSize).map((r) => JSON.stringify(r)).join('\n') + '\n';
          await store.put(evaluationKeys.chunk(input.outputPrefix, c), body, 'application/x-ndjson');
          Context.current().heartbeat({ chunksWritten: c + 1 });
        }
        await store.putJson(evaluationKeys.benchmark(input.outputPrefix), { kind: 'spark.processbench-input', version: 1, sources, rows: rows.length, chunks, chunkSize });
        return { splits, sources, rows: rows.length, chunks, chunkSize };
      });
    },

    /**
     * Asks the model about every row of one chunk (`samples` samples per row in one request,
     * each row with its own seed), reads each answer as a first-error prediction, votes, and
     * writes the chunk's prediction lines. Every sample is stored as it arrives, so a retry or a
     * re-run pays only for requests that had not finished.
     */
    async evaluateChunk(input: { config: EvaluatePrmConfig; outputPrefix: string; chunk: number }): Promise<ChunkSummary> {
      return mapFailures(async () => {
        const { config } = input;
        const signal = activityCancellation();
        const rows = parseLines<EvaluationRow>(await store.getText(evaluationKeys.chunk(input.outputPrefix, input.chunk)));
        const client = inference(config.model.endpoint, { maxInFlight: config.model.maxInFlight });
        const indices = Array.from({ length: config.samples }, (_, i) => i);
        let cost: EvaluationCost = ZERO_COST;
        let rowsDone = 0;
        const lines = await withHeartbeat(
          // The client's in-flight limit paces the requests; the window only bounds pending promises.
          () => mapWithConcurrency(rows, config.model.maxInFlight, async (row): Promise<PredictionLine> => {
            const r = await sampleWithRetry(store, {
              client,
              model: config.model.model,
              messages: evaluationMessages(config.style, row),
              sampling: { ...config.model.sampling, seed: rowSeed(config.seed, row.split, row.id) },
              indices,
              signal,
            });
            cost = addCost(cost, { callsMade: r.callsMade, samplesDrawn: r.samples.length - r.samplesReused, samplesReused: r.samplesReused });
            rowsDone += 1;
            return predictionLine(config.style, row, r.samples);
          }),
          () => ({ rowsDone, rows: rows.length, calls: cost.callsMade }),
        );
        const bySplit: Record<string, ChunkSplitCounts> = {};
        for (const l of lines) {
          const s = (bySplit[l.split] ??= { rows: 0, correct: 0, unparseableRows: 0, unparseableSamples: 0 });
          s.rows += 1;
          if (l.correct) s.correct += 1;
          if (l.prediction === null) s.unparseableRows += 1;
          s.unparseableSamples += l.unparseable;
        }
        const part = await store.put(evaluationKeys.part(input.outputPrefix, input.chunk), lines.map((l) => JSON.stringify(l)).join('\n') + '\n', 'application/x-ndjson');
        return { chunk: input.chunk, rows: lines.length, part, bySplit, cost };
      });
    },

    /**
     * Joins the chunks' predictions into `predictions.jsonl`, scores them per split exactly as
     * ProcessBench does, and writes `report.json` (scores, lineage, config) and `report.md`.
     */
    async writeEvaluationReport(input: {
      config: EvaluatePrmConfig;
      outputPrefix: string;
      prepared: PreparedBenchmark;
      workflowId: string;
      configHash: string;
      cost: EvaluationCost;
    }): Promise<EvaluationOutputs> {
      return mapFailures(async () => {
        const { config, outputPrefix, prepared } = input;
        const texts: string[] = [];
        for (let c = 0; c < prepared.chunks; c++) {
          texts.push(await store.getText(evaluationKeys.part(outputPrefix, c)));
          Context.current().heartbeat({ partsRead: c + 1 });
        }
        const body = texts.join('');
        const lines = parseLines<PredictionLine>(body);
        if (lines.length !== prepared.rows) throw new DatasetError(`the prediction parts hold ${lines.length} rows, expected ${prepared.rows}`);
        const report = evaluationReport(lines, prepared.splits);
        const markdown = formatEvaluationReport(report, { model: config.model.model, style: config.style, samples: config.samples });
        const predictions = await store.put(evaluationKeys.predictions(outputPrefix), body, 'application/x-ndjson');
        const reportMarkdown = await store.put(evaluationKeys.reportMarkdown(outputPrefix), markdown, 'text/markdown');
        const reportJson = await store.putJson(evaluationKeys.reportJson(outputPrefix), {
          kind: 'spark.processbench-eval',
          version: 1,
          workflowId: input.workflowId,
          runName: config.runName,
          configHash: input.configHash,
          codeVersion: codeVersion(),
          model: { baseURL: config.model.endpoint.baseURL, model: config.model.model, sampling: config.model.sampling },
          style: config.style,
          samples: config.samples,
          seed: config.seed,
          benchmark: prepared.sources,
          ...report,
          cost: input.cost,
          predictions: { ...predictions, lines: lines.length },
        });
        return { report, markdown, reportJson, reportMarkdown, predictions };
      });
    },
  };
}

export type EvaluateActivities = ReturnType<typeof createEvaluateActivities>;
