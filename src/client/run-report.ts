/**
 * Builds a run's HTML report from what the pipeline stored: its manifest
 * (`runs/<run>/pipeline/manifest.json`), the labels dataset it points at (scored by `scoreLabels`
 * where the caller knows the truth, as the sandbox does), both ProcessBench `report.json`s, and the RL `metrics/` and `evals/`
 * rows. Writes `report.html` and `curves.svg` under `runs/<run>/report/` and to a local folder.
 * Every read is a get of a known key or of a key listed under one of the run's own prefixes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ObjectStore } from '../core/store/s3-store.js';
import { mapWithConcurrency } from '../core/concurrency.js';
import type { EvaluationReport } from '../spark/prm/evaluation.js';
import type { AggregationMethod } from '../spark/labels/aggregation.js';
import type { LabelLine } from '../spark/labels/labels.js';
import type { ReportEvalPoint, ReportProcessBenchRow, ReportStageCalls, RunReportData } from './report-html.js';
import { renderCurvesSvg, renderRunReport } from './report-html.js';
import type { RlMetricsRow } from '../spark/rl/grpo.js';
import { readLabelsDataset } from '../spark/labels/labels-dataset.js';

/** The parts of `spark.pipeline` the report shows; other fields are ignored. */
interface PipelineManifest {
  kind: string;
  runName: string;
  workflowId: string;
  runId: string;
  configHash: string;
  codeVersion: string;
  stages: Record<string, { status: string }>;
  lineage: {
    dataset: { uri: string; sha256: string } | null;
    labels: { manifest: { uri: string }; lines: number | null; methods: string[] | null } | null;
    prmData: { manifest: { uri: string }; examples: number } | null;
    prmCheckpoint: { uri: string; steps: number; finalLoss: number | null } | null;
    prm: { servedModel: string; baseModel: string };
    processBench: { prm: { model: string; reportJson: { uri: string } } | null; base: { model: string; reportJson: { uri: string } } | null };
    policy: { baseModel: string | null; prompts: { uri: string | null }; checkpoint: string | null; steps: number; servedModel: string; metricsPrefix: string } | null;
  };
}

type ProcessBenchReportJson = Pick<EvaluationReport, 'scores'> & { cost?: { callsMade: number; samplesReused: number } };
type EvalRow = { set: string; step: number; accuracy: number; callsMade?: number };

export interface RunReportFiles {
  html: { uri: string; path: string };
  curvesSvg: { uri: string; path: string };
  data: RunReportData;
}

/** Concurrent gets per listing: enough to be quick, few enough not to flood the store. */
const READ_CONCURRENCY = 16;

async function getAll<T>(store: ObjectStore, prefix: string): Promise<{ key: string; value: T }[]> {
  const keys = (await store.list(prefix)).filter((k) => k.endsWith('.json')).sort();
  return mapWithConcurrency(keys, READ_CONCURRENCY, async (key) => ({ key, value: await store.getJson<T>(key) }));
}

/** Scores a labels dataset's methods against a known truth (the sandbox's); without one the report has no quality table. */
export type LabelScorer = (lines: readonly LabelLine[], methods: readonly AggregationMethod[]) => RunReportData['labelQuality'];

export interface RunReportOptions {
  runName: string;
  scoreLabels?: LabelScorer;
}

/** Reads the run and returns the plain rows the report is rendered from. */
export async function readRunReportData(store: ObjectStore, { runName, scoreLabels }: RunReportOptions): Promise<RunReportData> {
  const manifestKey = `runs/${runName}/pipeline/manifest.json`;
  const manifest = await store.getJsonIfExists<PipelineManifest>(manifestKey);
  if (!manifest || manifest.kind !== 'spark.pipeline') {
    throw new Error(`no pipeline manifest at ${store.uri(manifestKey)}: run the pipeline for ${runName} first`);
  }
  const { lineage } = manifest;
  const callsPerStage: ReportStageCalls[] = [];

  let quality: RunReportData['labelQuality'] = [];
  if (lineage.labels) {
    const { manifest: labels, lines } = await readLabelsDataset(store, lineage.labels.manifest.uri);
    quality = scoreLabels ? scoreLabels(lines, labels.methods) : [];
    callsPerStage.push({ stage: 'labels', callsMade: labels.counts.callsMade, samplesReused: labels.counts.samplesReused });
  }

  const [prmReport, baseReport] = await Promise.all([lineage.processBench.prm, lineage.processBench.base]
    .map((e) => (e ? store.getJsonIfExists<ProcessBenchReportJson>(e.reportJson.uri) : Promise.resolve(null))));
  const splitNames = [...new Set([...(prmReport?.scores.splits ?? []), ...(baseReport?.scores.splits ?? [])].map((s) => s.split))];
  const f1Of = (r: ProcessBenchReportJson | null | undefined, split: string) => r?.scores.splits.find((s) => s.split === split)?.f1 ?? null;
  const processBench: ReportProcessBenchRow[] = splitNames.map((split) => ({ split, prm: f1Of(prmReport, split), base: f1Of(baseReport, split) }));
  if (prmReport || baseReport) processBench.push({ split: 'average', prm: prmReport?.scores.average.f1 ?? null, base: baseReport?.scores.average.f1 ?? null });
  for (const [stage, r] of [['evaluate-prm', prmReport], ['evaluate-prm-base', baseReport]] as const) {
    if (r?.cost) callsPerStage.push({ stage, callsMade: r.cost.callsMade, samplesReused: r.cost.samplesReused });
  }

  // `metricsPrefix` is `s3://<bucket>/runs/<run>/rl/metrics/`; the evaluations sit next to it.
  const metricsKey = lineage.policy ? store.keyOf(lineage.policy.metricsPrefix).replace(/\/?$/, '/') : null;
  const rlPrefix = metricsKey ? metricsKey.replace(/metrics\/$/, '') : `runs/${runName}/rl/`;
  const [metrics, evals] = await Promise.all([
    getAll<RlMetricsRow>(store, `${rlPrefix}metrics/`),
    getAll<EvalRow>(store, `${rlPrefix}evals/`),
  ]);
  const rlMetrics = metrics.map(({ value: r }) => ({ step: r.step, rewardMean: r.rewardMean, accuracy: r.accuracy, meanSteps: r.meanSteps, callsMade: r.callsMade }));
  // The set is the folder under `evals/`, whatever the row says.
  const heldOutEvals: ReportEvalPoint[] = evals.map(({ key, value }) => ({ set: key.slice(`${rlPrefix}evals/`.length).split('/')[0] ?? value.set, step: value.step, accuracy: value.accuracy }));
  if (metrics.length) callsPerStage.push({ stage: 'rl-train rollouts', callsMade: rlMetrics.reduce((a, r) => a + r.callsMade, 0), samplesReused: metrics.reduce((a, m) => a + m.value.samplesReused, 0) });
  if (evals.length) callsPerStage.push({ stage: 'rl-train evaluations', callsMade: evals.reduce((a, e) => a + (e.value.callsMade ?? 0), 0), samplesReused: null });

  const show = (label: string, value: string | number | null | undefined) => (value === null || value === undefined ? [] : [{ label, value: String(value) }]);
  const lineageRows = [
    ...show('pipeline workflow', `${manifest.workflowId} (run ${manifest.runId})`),
    ...show('config hash', manifest.configHash),
    ...show('code version', manifest.codeVersion),
    ...show('stages', Object.entries(manifest.stages).map(([s, r]) => `${s}: ${r.status}`).join(', ')),
    ...show('dataset', lineage.dataset && `${lineage.dataset.uri} (sha256 ${lineage.dataset.sha256.slice(0, 12)}…)`),
    ...show('labels manifest', lineage.labels && `${lineage.labels.manifest.uri} (${lineage.labels.lines ?? '?'} lines)`),
    ...show('PRM data', lineage.prmData && `${lineage.prmData.manifest.uri} (${lineage.prmData.examples} examples)`),
    ...show('PRM checkpoint', lineage.prmCheckpoint && `${lineage.prmCheckpoint.uri} (${lineage.prmCheckpoint.steps} steps, final loss ${lineage.prmCheckpoint.finalLoss?.toFixed(4) ?? '—'})`),
    ...show('served PRM', `${lineage.prm.servedModel} (from ${lineage.prm.baseModel})`),
    ...show('ProcessBench report (PRM)', lineage.processBench.prm?.reportJson.uri),
    ...show('ProcessBench report (base)', lineage.processBench.base?.reportJson.uri),
    ...show('RL prompts', lineage.policy?.prompts.uri),
    ...show('policy checkpoint', lineage.policy && `${lineage.policy.checkpoint ?? '—'} (${lineage.policy.steps} steps, served as ${lineage.policy.servedModel})`),
    ...show('RL metrics', lineage.policy?.metricsPrefix),
    ...show('manifest', store.uri(manifestKey)),
  ];
  return { runName, lineage: lineageRows, labelQuality: quality, processBench, rlMetrics, heldOutEvals, callsPerStage };
}

/**
 * Renders the run's report and writes it to `runs/<run>/report/` in the store and to `localDir`
 * (default `.data/reports/<run>/`).
 */
export async function buildRunReport(store: ObjectStore, opts: RunReportOptions & { localDir?: string }): Promise<RunReportFiles> {
  const data = await readRunReportData(store, opts);
  const localDir = resolve(opts.localDir ?? join('.data', 'reports', opts.runName));
  await mkdir(localDir, { recursive: true });
  const html = renderRunReport(data);
  const svg = renderCurvesSvg(data);
  const prefix = `runs/${opts.runName}/report`;
  const htmlPath = join(localDir, 'report.html');
  const svgPath = join(localDir, 'curves.svg');
  const [htmlRef, svgRef] = await Promise.all([
    store.put(`${prefix}/report.html`, html, 'text/html; charset=utf-8'),
    store.put(`${prefix}/curves.svg`, svg, 'image/svg+xml'),
    writeFile(htmlPath, html),
    writeFile(svgPath, svg),
  ]);
  return { html: { uri: htmlRef.uri, path: htmlPath }, curvesSvg: { uri: svgRef.uri, path: svgPath }, data };
}
