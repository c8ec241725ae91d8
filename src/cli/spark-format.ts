/**
 * Text the `spark` CLI prints: progress bars per stage/shard/step from any workflow's `progress`
 * answer, tables, and the per-workflow summaries of `report`. Plain text, so it reads the same in a
 * terminal, a log file or CI.
 */
import type { RlMetricsRow } from '../spark/rl/grpo.js';
import type { RetryingActivity } from '../client/spark-client.js';

export interface ProgressBar {
  label: string;
  done: number;
  total: number;
  note?: string;
}

export interface ProgressView {
  /** The workflow's own stage (`training`, `paused`, …) when it reports one. */
  stage?: string;
  bars: ProgressBar[];
  facts: [string, string][];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const words = (camel: string): string => camel.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
const fixed = (v: unknown, digits = 3): string => (num(v) ? v.toFixed(digits) : '—');
const pct = (v: unknown): string => (num(v) ? `${(100 * v).toFixed(1)}%` : '—');

/**
 * Bars found in a progress object of any shape, so new workflows (and pipelines that nest their
 * stages' progress) get bars without code here: `step`/`totalSteps`, `xDone` with `xTotal` or `x`,
 * and `done`/`total`, labelled by where they sit.
 */
export function findBars(progress: unknown, path: string[] = []): ProgressBar[] {
  if (Array.isArray(progress)) {
    return progress.flatMap((item, i) => {
      const name = isObject(item) ? [item.name, item.stage, item.workflow, item.workflowId].find((v) => typeof v === 'string') : undefined;
      return findBars(item, [...path, typeof name === 'string' ? name : String(i)]);
    });
  }
  if (!isObject(progress)) return [];
  const at = (label: string): string => [...path, label].filter(Boolean).join(' ');
  const bars: ProgressBar[] = [];
  if (num(progress.step) && num(progress.totalSteps)) bars.push({ label: at('steps'), done: progress.step, total: progress.totalSteps });
  if (num(progress.done) && num(progress.total)) bars.push({ label: at(''), done: progress.done, total: progress.total });
  for (const [key, value] of Object.entries(progress)) {
    if (!key.endsWith('Done') || !num(value)) continue;
    const base = key.slice(0, -'Done'.length);
    const total = [progress[`${base}Total`], progress[base], progress[`total${base[0]?.toUpperCase()}${base.slice(1)}`]].find(num);
    if (total !== undefined) bars.push({ label: at(words(base)), done: value, total });
  }
  for (const [key, value] of Object.entries(progress)) {
    if (isObject(value) || Array.isArray(value)) bars.push(...findBars(value, [...path, words(key)]));
  }
  return bars;
}

/** Scalars of a progress object that are not part of a bar, for workflows without their own view. */
function scalarFacts(progress: Json, used: Set<string>): [string, string][] {
  return Object.entries(progress)
    .filter(([k, v]) => !used.has(k) && (num(v) || typeof v === 'string' || typeof v === 'boolean'))
    .map(([k, v]) => [words(k), num(v) && !Number.isInteger(v) ? fixed(v, 4) : String(v)]);
}

/** What to show of one run's progress: its stage, bars and the numbers worth reading. */
export function progressView(workflowType: string, progress: unknown): ProgressView {
  if (!isObject(progress)) return { bars: [], facts: [['progress', JSON.stringify(progress)]] };
  const p = progress;
  const stage = typeof p.stage === 'string' ? p.stage : undefined;
  const bars = findBars(p);
  const counts = isObject(p.counts) ? p.counts : {};
  switch (workflowType) {
    case 'sampleSolutions':
      return { stage, bars, facts: [['calls made', String(p.callsMade)], ['samples reused', String(p.samplesReused)]] };
    case 'synthesizeLabels':
      return {
        stage,
        bars: [
          ...bars.map((b) => (b.label === 'shards' ? { ...b, note: `${String(p.shardsRunning)} running` } : b)),
          ...(num(counts.problems) && num(p.problemsTotal) ? [{ label: 'problems', done: counts.problems, total: p.problemsTotal }] : []),
        ],
        facts: [
          ['solutions', String(counts.solutions)], ['calls made', String(counts.callsMade)], ['samples drawn', String(counts.samplesDrawn)],
          ['samples reused', String(counts.samplesReused)], ['parse failures', String(counts.parseFailures)], ['stopped early', String(counts.stoppedEarly)],
          ['unlabelled', String(counts.unlabelled)], ['workflow runs', String(p.runs)],
        ],
      };
    case 'labelShard':
      return { stage, bars, facts: scalarFacts(p, new Set()) };
    case 'evaluatePrm': {
      const cost = isObject(p.cost) ? p.cost : {};
      return {
        stage,
        bars,
        facts: [
          ['rows correct', `${String(p.rowsCorrect)}${num(p.rowsDone) && p.rowsDone > 0 && num(p.rowsCorrect) ? ` (${pct(p.rowsCorrect / p.rowsDone)})` : ''}`],
          ['unreadable answers', String(p.rowsUnparseable)], ['calls made', String(cost.callsMade)], ['samples reused', String(cost.samplesReused)],
        ],
      };
    }
    case 'trainPrm':
      return {
        stage,
        bars,
        facts: [
          ['examples', String(p.examples)], ['last loss', fixed(p.lastLoss, 4)], ['checkpoint', String(p.checkpoint ?? 'none yet')],
          ['sessions recreated', String(p.recreatedSessions)], ['workflow runs', String(p.runs)],
        ],
      };
    case 'rlTrain':
    case 'coEvolve': {
      const latest = isObject(p.latest) ? p.latest : undefined;
      const evals = Array.isArray(p.latestEvals) ? (p.latestEvals as { set: string; step: number; accuracy: number }[]) : [];
      return {
        stage,
        bars: bars.filter((b) => b.label === 'steps'),
        facts: [
          ['reward', latest ? `${fixed(latest.rewardMean)} ± ${fixed(latest.rewardStd)} (step ${String(latest.step)})` : '—'],
          ['train accuracy', pct(latest?.accuracy)],
          ['held-out', evals.length ? evals.map((e) => `${e.set} ${pct(e.accuracy)} @ step ${e.step}`).join(', ') : '—'],
          ['learning rate', String(p.learningRate)], ['KL coefficient', String(p.klCoefficient)],
          ['checkpoint', String(p.lastCheckpoint ?? 'none yet')], ['served model', String(p.servedModel)], ['workflow runs', String(p.runs)],
          ...(num(p.recycledSteps) ? [['recycled-item steps', `${String(p.recycledSteps)} (${String(p.cachedItems ?? 0)} items waiting)`] as [string, string]] : []),
        ],
      };
    }
    default:
      return { stage, bars, facts: scalarFacts(p, new Set(['stage', 'step', 'totalSteps', 'done', 'total', ...Object.keys(p).filter((k) => k.endsWith('Done') || k.endsWith('Total'))])) };
  }
}

/** One stage of a run that runs its stages as child workflows (the pipeline's `stages` list). */
export interface StageRow {
  name: string;
  status: string;
  summary?: string;
  workflowIds: string[];
}

/** The `stages` list of a progress answer, when it has one of `{ name, status, workflows? }` entries. */
export function stageRows(progress: unknown): StageRow[] {
  if (!isObject(progress) || !Array.isArray(progress.stages)) return [];
  return progress.stages.filter(isObject).filter((s) => typeof s.name === 'string' && typeof s.status === 'string').map((s) => ({
    name: s.name as string,
    status: s.status as string,
    ...(typeof s.summary === 'string' ? { summary: s.summary } : {}),
    workflowIds: (Array.isArray(s.workflows) ? s.workflows : [])
      .map((w) => (typeof w === 'string' ? w : isObject(w) && typeof w.workflowId === 'string' ? w.workflowId : undefined))
      .filter((w): w is string => w !== undefined),
  }));
}

/** `label [#########.........]  12/40  30%  note` */
export function renderBar(bar: ProgressBar, labelWidth: number, width = 30): string {
  const fraction = bar.total > 0 ? Math.min(1, Math.max(0, bar.done / bar.total)) : 0;
  const filled = Math.round(fraction * width);
  const share = bar.total > 0 ? `${Math.floor(100 * fraction)}%` : '';
  return `${bar.label.padEnd(labelWidth)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${`${bar.done}/${bar.total}`.padStart(11)} ${share.padStart(4)}${bar.note ? `  ${bar.note}` : ''}`;
}

/** The multi-line view `status` and `watch` (on a terminal) print. */
export function renderProgress(view: ProgressView): string[] {
  const labelWidth = Math.max(8, ...view.bars.map((b) => b.label.length), ...view.facts.map(([k]) => k.length));
  return [
    ...(view.stage ? [`${'stage'.padEnd(labelWidth)} ${view.stage}`] : []),
    ...view.bars.map((b) => renderBar(b, labelWidth)),
    ...view.facts.map(([k, v]) => `${k.padEnd(labelWidth)} ${v}`),
  ];
}

/** One line per update for logs (watch without a terminal): stage and each bar's count. */
export function progressLine(view: ProgressView): string {
  const bars = view.bars.map((b) => `${b.label} ${b.done}/${b.total}${b.total > 0 ? ` (${Math.floor((100 * b.done) / b.total)}%)` : ''}`);
  return [view.stage, ...bars].filter(Boolean).join(' | ');
}

/** A plain table, columns padded to their widest cell. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatKeyValues(pairs: [string, string][]): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Why a run waits, one line per retrying activity: what failed, attempt n of m, when the next try is
 * (`labelProblems in spark/r/labels/shard-0000 retrying: connection to … failed; attempt 7 of 30, next try in 12s`).
 * `now` null leaves the timing out (for logs, which print a line only when it changes).
 */
export function retryLine(r: RetryingActivity, now: number | null = Date.now()): string {
  const of = r.maximumAttempts === null ? ' (no limit)' : ` of ${r.maximumAttempts}`;
  const when = now === null
    ? ''
    : r.state === 'started'
      ? ', running now'
      : r.nextAttemptAt && r.nextAttemptAt.getTime() > now ? `, next try in ${formatDuration(r.nextAttemptAt.getTime() - now)}` : ', next try as soon as a worker takes it';
  return `${r.activityType} in ${r.workflowId} retrying: ${r.lastFailure}; attempt ${r.attempt}${of}${when}`;
}

/** The stage-3 metrics rows as a table; long runs show every `every`-th step and the last. */
export function formatRlMetrics(rows: RlMetricsRow[], every = Math.max(1, Math.ceil(rows.length / 50))): string {
  const sorted = [...rows].sort((a, b) => a.step - b.step);
  const shown = sorted.filter((r, i) => r.step % every === 0 || i === sorted.length - 1);
  // coEvolve rows say whether a step trained on rollouts or on recycled items.
  const kinds = sorted.some((r) => r.kind !== undefined);
  const table = formatTable(
    ['step', ...(kinds ? ['kind'] : []), 'reward', '± std', 'train acc', 'loss', 'KL', 'lr', 'KL coef', 'gate rej', 'outside steps', 'steps/resp', 'served model'],
    shown.map((r) => [
      String(r.step), ...(kinds ? [r.kind === 'recycled' ? 'recycled' : `rollout ${String(r.rlStep ?? r.step)}`] : []),
      fixed(r.rewardMean), fixed(r.rewardStd), pct(r.accuracy), fixed(r.loss, 4), r.kl === null ? '—' : fixed(r.kl, 4),
      r.learningRate.toExponential(1), String(r.klCoefficient), `${r.gateRejections}/${r.rollouts}`, `${r.outsideStepRange}/${r.rollouts}`,
      fixed(r.meanSteps, 1), r.servedModel,
    ]),
  );
  return table;
}

/** What a finished run returned, per workflow; anything else as JSON. */
export function formatResult(workflowType: string, result: unknown): string {
  if (!isObject(result)) return JSON.stringify(result, null, 2);
  const r = result;
  const uri = (ref: unknown): string => (isObject(ref) && typeof ref.uri === 'string' ? ref.uri : '—');
  switch (workflowType) {
    case 'sampleSolutions':
      return formatKeyValues([
        ['manifest', uri(r.manifest)], ['solution files', String(Array.isArray(r.solutions) ? r.solutions.length : '—')],
        ['calls made', String(r.callsMade)], ['samples reused', String(r.samplesReused)],
      ]);
    case 'synthesizeLabels': {
      const counts = isObject(r.counts) ? r.counts : {};
      return formatKeyValues([['manifest', uri(r.manifest)], ['label lines', String(r.lines)], ...Object.entries(counts).map(([k, v]): [string, string] => [words(k), String(v)])]);
    }
    case 'trainPrm': {
      const curve = Array.isArray(r.lossCurve) ? (r.lossCurve as { step: number; loss: number }[]) : [];
      const model = isObject(r.model) ? r.model : undefined;
      return [
        formatKeyValues([
          ['examples', String(r.examples)], ['steps', String(r.steps)], ['checkpoint', String(r.checkpoint)],
          ['served model', model ? String(model.modelName ?? model.model ?? JSON.stringify(model)) : '— (not published)'], ['data', uri(r.data)],
        ]),
        '',
        formatTable(['step', 'loss'], curve.map((p) => [String(p.step), fixed(p.loss, 4)])),
      ].join('\n');
    }
    case 'evaluatePrm':
      return [
        String(r.markdown ?? ''),
        '',
        formatKeyValues([['rows', String(r.rows)], ['report', uri(r.reportJson)], ['markdown', uri(r.reportMarkdown)], ['predictions', uri(r.predictions)]]),
      ].join('\n');
    case 'rlTrain':
    case 'coEvolve': {
      const evals = Array.isArray(r.evals) ? (r.evals as { set: string; step: number; accuracy: number }[]) : [];
      return [
        formatKeyValues([
          ['steps', String(r.steps)], ['stopped early', String(r.stopped)], ['checkpoint', String(r.checkpoint ?? '—')],
          ['served model', String(r.servedModel)], ['metrics', String(r.metricsPrefix)],
          ...(r.trainerSteps !== undefined ? [['trainer steps (recycled included)', String(r.trainerSteps)] as [string, string]] : []),
        ]),
        ...(evals.length ? ['', 'held-out evaluations:', formatTable(['set', 'step', 'accuracy'], evals.map((e) => [e.set, String(e.step), pct(e.accuracy)]))] : []),
      ].join('\n');
    }
    default:
      return JSON.stringify(result, null, 2);
  }
}
