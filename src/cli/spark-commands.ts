/** The `spark` CLI's commands; `spark.ts` parses the command line and maps errors to exit codes. */
import { existsSync } from 'node:fs';
import { WorkflowFailedError } from '@temporalio/client';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import type { RetryingActivity, RlTrainHandle, SparkClient, SparkRunHandle, SparkWorkflowName } from '../client/spark-client.js';
import { isSparkWorkflowName, listQuery, sparkWorkflowNames, temporalWebUrl, validateInput } from '../client/spark-client.js';
import type { RlMetricsRow } from '../spark/rl/grpo.js';
import type { TemporalSettings } from '../core/temporal/connection.js';
import type { RlTrainProgress, RlTrainResult } from '../spark/rl/rl-train.workflow.js';
import { SparkRun, SparkStatus } from '../core/temporal/search-attributes.js';
import { readConfigFile } from './spark-config.js';
import {
  formatDuration, formatKeyValues, formatResult, formatRlMetrics, formatTable, progressLine, progressView, renderProgress, retryLine, stageRows,
} from './spark-format.js';
import type { ProgressView, StageRow } from './spark-format.js';

/** A mistake on the command line; printed with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A control the run cannot take (wrong workflow, already closed) or refused; exit code 1. */
export class RefusedError extends Error {
  override readonly name = 'RefusedError';
}

export interface CommandContext {
  command: string;
  args: string[];
  flags: Record<string, string | boolean | undefined>;
  /** The process environment with the global flags mapped onto TEMPORAL_* (flags win). */
  env: NodeJS.ProcessEnv;
  settings: TemporalSettings & { uiUrl?: string };
  connect(): Promise<SparkClient>;
  /** Results, to stdout. */
  out(text: string): void;
  /** Progress and hints, to stderr (stdout stays clean for `--json`). */
  note(text: string): void;
  isTTY: boolean;
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string };

export interface CommandSpec {
  usage: string;
  summary: string;
  details?: string;
  options: Record<string, OptionSpec>;
  /** Positionals the command takes, named for the usage error. */
  positionals: string[];
  run(ctx: CommandContext): Promise<number>;
}

const RUNNING = new Set(['RUNNING', 'CONTINUED_AS_NEW']);
const CONTROLLABLE: ReadonlySet<string> = new Set<SparkWorkflowName>(['rlTrain', 'coEvolve']);

function stringFlag(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.flags[name];
  return typeof v === 'string' ? v : undefined;
}

function numberFlag(ctx: CommandContext, name: string, check: (n: number) => boolean, expected: string): number | undefined {
  const raw = stringFlag(ctx, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${name}: expected ${expected}, got '${raw}'`);
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const statusWord = (status: string): string => status.toLowerCase().replace(/_/g, '-');

/** Progress with a deadline: a closed run is answered by replay, which needs a worker on its queue. */
async function tryProgress(handle: SparkRunHandle, timeoutMs: number): Promise<{ progress?: unknown; error?: string }> {
  try {
    return { progress: await handle.progress({ timeoutMs }) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function progressHint(description: WorkflowExecutionDescription, error: string): string {
  return `progress not answered (${error.split('\n')[0]}); is a worker polling task queue '${description.taskQueue}'? (spark worker --task-queue ${description.taskQueue})`;
}

/** Why a closed run did not complete, from its result. */
async function failureOf(handle: SparkRunHandle): Promise<string | undefined> {
  try {
    await handle.result();
    return undefined;
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const chain: string[] = [];
      for (let e: Error | undefined = err.cause; e; e = (e as Error & { cause?: Error }).cause) chain.push(e.message);
      return chain.join(' ← ') || err.message;
    }
    return (err as Error).message;
  }
}

function header(description: WorkflowExecutionDescription): [string, string][] {
  const sa = description.typedSearchAttributes;
  const started = description.startTime;
  const closed = description.closeTime;
  const run = sa.get(SparkRun);
  const sparkStatus = sa.get(SparkStatus);
  return [
    ['workflow', description.workflowId],
    ['type', description.type],
    // The run's own status (paused, stopped, …) when it says more than Temporal's.
    ['status', `${statusWord(description.status.name)}${sparkStatus !== undefined && sparkStatus !== statusWord(description.status.name) ? ` (${sparkStatus})` : ''}`],
    ...(run !== undefined ? [['run name', run] as [string, string]] : []),
    ['task queue', description.taskQueue],
    ['started', `${started.toISOString()} (${closed ? `ran ${formatDuration(closed.getTime() - started.getTime())}` : `${formatDuration(Date.now() - started.getTime())} ago`})`],
    ...(closed ? [['closed', closed.toISOString()] as [string, string]] : []),
  ];
}

interface ChildSnapshot {
  workflowId: string;
  type: string;
  view?: ProgressView;
}

/** One look at a run: its progress and, for runs made of stages (the pipeline), each running stage's child workflows. */
interface RunSnapshot {
  view?: ProgressView;
  error?: string;
  stages: { row: StageRow; children: ChildSnapshot[] }[];
  /** Activities of the run and its running children that failed and are being retried: why it waits. */
  retrying: RetryingActivity[];
}

/** Retrying activities of a running run; none (not an error) when describe fails. */
async function retryingOf(client: SparkClient, workflowId: string, running: boolean): Promise<RetryingActivity[]> {
  return running ? client.retrying(workflowId).catch(() => []) : [];
}

async function snapshot(client: SparkClient, handle: SparkRunHandle, running: boolean): Promise<RunSnapshot> {
  const [{ progress, error }, retrying] = await Promise.all([tryProgress(handle, running ? 5_000 : 2_000), retryingOf(client, handle.workflowId, running)]);
  if (progress === undefined) return { error, stages: [], retrying };
  const stages = await Promise.all(stageRows(progress).map(async (row) => ({
    row,
    children: row.status !== 'running' ? [] : await Promise.all(row.workflowIds.map(async (workflowId): Promise<ChildSnapshot> => {
      try {
        const child = await client.open(workflowId);
        const answer = await tryProgress(child.handle, 3_000);
        return { workflowId, type: child.description.type, view: answer.progress === undefined ? undefined : progressView(child.description.type, answer.progress) };
      } catch {
        return { workflowId, type: '?' };
      }
    })),
  })));
  return { view: progressView(handle.workflow, progress), stages, retrying };
}

/** The multi-line picture: the run's bars, then per stage its status and its running children's bars. */
function snapshotLines(snap: RunSnapshot, description: WorkflowExecutionDescription): string[] {
  const retries = snap.retrying.map((r) => retryLine(r));
  if (!snap.view) {
    const why = (snap.error ?? 'no answer').split('\n')[0]!;
    // A closed run answers queries by replaying its history on a worker.
    return [RUNNING.has(description.status.name) ? progressHint(description, why) : `progress not available (${why}): a finished run answers by replay on a worker polling task queue '${description.taskQueue}'`, ...retries];
  }
  const width = Math.max(0, ...snap.stages.map((s) => s.row.name.length));
  return [
    ...renderProgress(snap.view),
    ...snap.stages.flatMap(({ row, children }) => [
      `  ${row.name.padEnd(width)}  ${row.status}${row.summary ? `  ${row.summary}` : ''}`,
      ...children.flatMap((c) => [`    ${c.workflowId} (${c.type})`, ...(c.view ? renderProgress(c.view).map((l) => `      ${l}`) : [])]),
    ]),
    ...retries,
  ];
}

/** The one-line form for logs: the run's stage and bars, and each running child's. */
function snapshotLine(snap: RunSnapshot): string {
  // The next-try countdown is left out, so a line is printed when something changes, not every tick.
  const retries = snap.retrying.map((r) => retryLine(r, null));
  if (!snap.view) return retries.join(' | ');
  const children = snap.stages.flatMap(({ row, children: cs }) => cs.map((c) => `${row.name}: ${c.view ? progressLine(c.view) : 'no progress yet'}`));
  const stages = snap.stages.length ? [snap.stages.map((st) => `${st.row.name} ${st.row.status}`).join(', ')] : [];
  return [progressLine(snap.view), ...stages, ...children, ...retries].filter(Boolean).join(' | ');
}

/**
 * Follows a run until it closes: on a terminal the bars are redrawn in place; otherwise (logs, CI,
 * pipes) one line is printed whenever the progress changes.
 */
async function watchRun(ctx: CommandContext, client: SparkClient, workflowId: string, intervalMs: number): Promise<{ description: WorkflowExecutionDescription; handle: SparkRunHandle }> {
  const write = (text: string) => (ctx.flags.json ? ctx.note(text) : ctx.out(text));
  const redraw = ctx.isTTY && !ctx.flags.json;
  let drawn = 0;
  let lastLine = '';
  for (;;) {
    const { handle, description } = await client.open(workflowId);
    const running = RUNNING.has(description.status.name);
    const snap = await snapshot(client, handle, running);
    if (redraw) {
      const elapsed = formatDuration((description.closeTime?.getTime() ?? Date.now()) - description.startTime.getTime());
      const lines = [`${workflowId} (${description.type}) ${statusWord(description.status.name)}, ${elapsed}`, ...snapshotLines(snap, description)];
      process.stdout.write(`${drawn ? `\x1b[${drawn}A` : ''}\x1b[0J${lines.join('\n')}\n`);
      drawn = lines.length;
    } else {
      const line = snapshotLine(snap) || (running && snap.error ? progressHint(description, snap.error) : '');
      if (line && line !== lastLine) write(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
      lastLine = line || lastLine;
    }
    if (!running) return { description, handle };
    await sleep(intervalMs);
  }
}

/** Prints how a closed run ended and, when it completed, its result; the exit code. */
async function finish(ctx: CommandContext, description: WorkflowExecutionDescription, handle: SparkRunHandle, extra: Record<string, unknown> = {}): Promise<number> {
  if (description.status.name === 'COMPLETED') {
    const result = await handle.result();
    if (ctx.flags.json) ctx.out(JSON.stringify({ workflowId: description.workflowId, type: description.type, status: 'completed', result, ...extra }, null, 2));
    else ctx.out(`\n${description.workflowId} completed\n${formatResult(description.type, result)}`);
    return 0;
  }
  const reason = await failureOf(handle);
  const status = statusWord(description.status.name);
  if (ctx.flags.json) ctx.out(JSON.stringify({ workflowId: description.workflowId, type: description.type, status, error: reason, ...extra }, null, 2));
  else ctx.out(`\n${description.workflowId} ${status}${reason ? `: ${reason}` : ''}`);
  return 1;
}

const start: CommandSpec = {
  usage: 'spark start <workflow> --config <file.yaml|file.json|-> [--run-name NAME] [--workflow-id ID] [--task-queue Q] [--attach] [--wait [--interval S]] [--json]',
  summary: 'start a workflow from a YAML or JSON config (validated first)',
  details: [
    `Workflows: ${sparkWorkflowNames.join(', ')}. The config is the workflow's one input object (schemas in docs/schemas/).`,
    'It is checked before anything starts; each problem is printed as `field: expected …` and the exit code is 2.',
    'The workflow ID defaults to spark/<runName>/<stage>. --attach returns the run already going under that ID',
    'instead of failing; --wait follows the run with progress bars and prints its result (exit 1 if it fails).',
  ].join('\n'),
  options: {
    config: { type: 'string', short: 'c' }, 'run-name': { type: 'string' }, 'workflow-id': { type: 'string' }, 'task-queue': { type: 'string' },
    attach: { type: 'boolean' }, wait: { type: 'boolean' }, interval: { type: 'string' }, json: { type: 'boolean' },
  },
  positionals: ['workflow'],
  async run(ctx) {
    const workflow = ctx.args[0]!;
    if (!isSparkWorkflowName(workflow)) throw new UsageError(`unknown workflow '${workflow}'; expected one of: ${sparkWorkflowNames.join(', ')}`);
    const file = stringFlag(ctx, 'config');
    if (!file) throw new UsageError('--config <file> is required: the workflow input as YAML or JSON');
    const interval = numberFlag(ctx, 'interval', (n) => n > 0, 'seconds > 0') ?? 2;
    const input = readConfigFile(file) as Record<string, unknown>;
    const runName = stringFlag(ctx, 'run-name');
    if (runName) input.runName = runName;
    // Checked before connecting, so a bad config fails the same with or without a server.
    validateInput(workflow, input);
    const client = await ctx.connect();
    const handle = await client.start(workflow, input as never, {
      workflowId: stringFlag(ctx, 'workflow-id'),
      taskQueue: stringFlag(ctx, 'task-queue'),
      ifRunning: ctx.flags.attach ? 'attach' : 'fail',
    });
    const description = await handle.describe();
    const webUrl = temporalWebUrl(ctx.settings, handle.workflowId, ctx.env);
    const started = { workflowId: handle.workflowId, runId: description.runId, type: workflow, taskQueue: description.taskQueue, webUrl };
    if (!ctx.flags.wait) {
      if (ctx.flags.json) ctx.out(JSON.stringify(started, null, 2));
      else ctx.out(formatKeyValues([['started', `${workflow} on task queue ${description.taskQueue}`], ['workflow ID', handle.workflowId], ['run ID', description.runId], ['web UI', webUrl]]));
      return 0;
    }
    ctx.note(`started ${workflow} ${handle.workflowId} on task queue ${description.taskQueue}\nweb UI: ${webUrl}`);
    const end = await watchRun(ctx, client, handle.workflowId, interval * 1000);
    return finish(ctx, end.description, end.handle, { runId: description.runId, webUrl });
  },
};

const list: CommandSpec = {
  usage: 'spark list [--run NAME] [--stage STAGE] [--status S] [--execution-status S] [--limit N] [--all] [--json]',
  summary: 'list runs by run name, stage and status (visibility query on the Spark* search attributes)',
  details: [
    '--stage takes rl-train or rlTrain; --status is the SparkStatus the run sets (running, completed, stopped);',
    '--execution-status is Temporal\'s (Running, Completed, Failed, Canceled, Terminated, TimedOut). Newest first.',
    'Label shards (child workflows of synthesizeLabels) are left out unless --all.',
  ].join('\n'),
  options: {
    run: { type: 'string' }, stage: { type: 'string' }, status: { type: 'string' }, 'execution-status': { type: 'string' },
    limit: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' },
  },
  positionals: [],
  async run(ctx) {
    const filter = {
      runName: stringFlag(ctx, 'run'), stage: stringFlag(ctx, 'stage'), status: stringFlag(ctx, 'status'), executionStatus: stringFlag(ctx, 'execution-status'),
    };
    const limit = numberFlag(ctx, 'limit', (n) => Number.isInteger(n) && n > 0, 'a positive integer') ?? 50;
    const query = listQuery(filter);
    const client = await ctx.connect();
    // Shards are fetched and dropped here, so ask for more than the limit.
    const runs = (await client.list({ ...filter, limit: ctx.flags.all ? limit : limit * 20 }))
      .filter((r) => ctx.flags.all || !r.stage?.endsWith('/shard'))
      .slice(0, limit);
    if (ctx.flags.json) {
      ctx.out(JSON.stringify(runs, null, 2));
      return 0;
    }
    const now = Date.now();
    ctx.out(formatTable(
      ['WORKFLOW ID', 'TYPE', 'STATUS', 'RUN STATUS', 'STEP', 'REWARD', 'ACCURACY', 'STARTED', 'DURATION'],
      runs.map((r) => [
        r.workflowId, r.type, statusWord(r.status), r.sparkStatus ?? '—', r.step === undefined ? (r.itemsDone === undefined ? '—' : `${r.itemsDone} items`) : String(r.step),
        r.reward === undefined ? '—' : r.reward.toFixed(3), r.accuracy === undefined ? '—' : `${(100 * r.accuracy).toFixed(1)}%`,
        r.startTime.toISOString().replace('T', ' ').slice(0, 19), formatDuration((r.closeTime?.getTime() ?? now) - r.startTime.getTime()),
      ]),
    ));
    ctx.note(`${runs.length} run${runs.length === 1 ? '' : 's'} (query: ${query})`);
    return 0;
  },
};

const status: CommandSpec = {
  usage: 'spark status <workflow-id> [--json]',
  summary: 'status and progress of one run (the progress query, formatted)',
  options: { json: { type: 'boolean' } },
  positionals: ['workflow-id'],
  async run(ctx) {
    const client = await ctx.connect();
    const { handle, description } = await client.open(ctx.args[0]!);
    const running = RUNNING.has(description.status.name);
    const failure = !running && description.status.name !== 'COMPLETED' ? await failureOf(handle) : undefined;
    if (ctx.flags.json) {
      const [{ progress, error }, retrying] = await Promise.all([tryProgress(handle, running ? 10_000 : 5_000), retryingOf(client, description.workflowId, running)]);
      ctx.out(JSON.stringify({ ...Object.fromEntries(header(description)), status: statusWord(description.status.name), progress, progressError: error, retrying, failure, webUrl: temporalWebUrl(ctx.settings, description.workflowId, ctx.env) }, null, 2));
      return 0;
    }
    ctx.out(formatKeyValues([...header(description), ['web UI', temporalWebUrl(ctx.settings, description.workflowId, ctx.env)], ...(failure ? [['failure', failure] as [string, string]] : [])]));
    ctx.out('');
    ctx.out(snapshotLines(await snapshot(client, handle, running), description).join('\n'));
    return 0;
  },
};

const watch: CommandSpec = {
  usage: 'spark watch <workflow-id> [--interval S] [--json]',
  summary: 'follow a run with progress bars until it closes, then print its result',
  details: 'On a terminal the bars are redrawn in place; otherwise one line is printed per change. Ctrl-C stops watching, not the run.\nExit code 0 when the run completed, 1 otherwise.',
  options: { interval: { type: 'string' }, json: { type: 'boolean' } },
  positionals: ['workflow-id'],
  async run(ctx) {
    const interval = numberFlag(ctx, 'interval', (n) => n > 0, 'seconds > 0') ?? 2;
    const client = await ctx.connect();
    const end = await watchRun(ctx, client, ctx.args[0]!, interval * 1000);
    return finish(ctx, end.description, end.handle);
  },
};

/** The rlTrain or coEvolve run behind an ID, refusing other workflows and closed runs with a clear reason. */
async function controllable(ctx: CommandContext, action: string): Promise<RlTrainHandle> {
  const client = await ctx.connect();
  const { handle, description } = await client.open(ctx.args[0]!);
  if (!CONTROLLABLE.has(description.type)) throw new RefusedError(`${action} works on ${[...CONTROLLABLE].join(' and ')} runs; ${description.workflowId} is a ${description.type} run`);
  if (!RUNNING.has(description.status.name)) throw new RefusedError(`${description.workflowId} is ${statusWord(description.status.name)}; there is nothing to ${action}`);
  return handle as RlTrainHandle;
}

async function rlProgress(handle: RlTrainHandle): Promise<RlTrainProgress | undefined> {
  return (await tryProgress(handle, 5_000)).progress as RlTrainProgress | undefined;
}

function control(action: 'pause' | 'resume' | 'stop', summary: string, reached: (p: RlTrainProgress | undefined, running: boolean) => boolean, sent: string): CommandSpec {
  return {
    usage: `spark ${action} <workflow-id> [--wait]`,
    summary,
    details: '--wait waits until the run shows the change (progress stage, or closed for stop).',
    options: { wait: { type: 'boolean' } },
    positionals: ['workflow-id'],
    async run(ctx) {
      const handle = await controllable(ctx, action);
      if (action === 'pause') await handle.pause();
      else if (action === 'resume') await handle.resume();
      else await handle.stopAfterCheckpoint();
      const before = await rlProgress(handle);
      ctx.out(`${action} sent to ${handle.workflowId}: ${sent}${before ? ` (now ${before.stage}, step ${before.step}/${before.totalSteps})` : ''}`);
      if (!ctx.flags.wait) return 0;
      for (;;) {
        const running = RUNNING.has((await handle.describe()).status.name);
        const p = running ? await rlProgress(handle) : undefined;
        if (reached(p, running)) {
          ctx.out(running ? `${handle.workflowId} is ${p!.stage} at step ${p!.step}/${p!.totalSteps}` : `${handle.workflowId} closed`);
          if (!running) {
            const result = (await handle.result()) as RlTrainResult;
            ctx.out(formatResult('rlTrain', result));
          }
          return 0;
        }
        await sleep(500);
      }
    },
  };
}

const pause = control('pause', 'pause an rlTrain run before its next step', (p) => p?.stage === 'paused', 'it pauses before its next step');
const resume = control('resume', 'resume a paused rlTrain run', (p, running) => !running || (p !== undefined && p.stage !== 'paused'), 'it goes on with its next step');
const stop = control('stop', 'stop an rlTrain run after its next checkpoint', (_p, running) => !running, 'it stops after the next checkpoint (saved at once if needed)');

const set: CommandSpec = {
  usage: 'spark set <workflow-id> [--lr X] [--kl Y] [--reason TEXT]',
  summary: 'change an rlTrain run\'s learning rate and/or KL coefficient from its next step (audited)',
  details: 'The change is checked here and by the run; a refusal names the field and the exit code is 1 (2 for values refused here).',
  options: { lr: { type: 'string' }, kl: { type: 'string' }, reason: { type: 'string' } },
  positionals: ['workflow-id'],
  async run(ctx) {
    const learningRate = numberFlag(ctx, 'lr', () => true, 'a number like 5e-7');
    const klCoefficient = numberFlag(ctx, 'kl', () => true, 'a number like 0.002');
    if (learningRate === undefined && klCoefficient === undefined) throw new UsageError('give --lr and/or --kl');
    const handle = await controllable(ctx, 'set');
    const reason = stringFlag(ctx, 'reason');
    const applied = await handle.setHyperparameters({ learningRate, klCoefficient, ...(reason ? { reason } : {}) });
    ctx.out(`${handle.workflowId}: learning rate ${applied.learningRate}, KL coefficient ${applied.klCoefficient} from step ${applied.fromStep}`);
    return 0;
  },
};

/** Every metrics row of an rlTrain run from S3; null (and a note) when S3 cannot be read from here. */
async function rlMetricsRows(ctx: CommandContext, metricsPrefix: string): Promise<RlMetricsRow[] | null> {
  // Loaded here: the S3 SDK is slow to import and only this command needs it.
  const { ObjectStore, s3ConfigFromEnv } = await import('../core/store/s3-store.js');
  const store = new ObjectStore(s3ConfigFromEnv(ctx.env));
  try {
    const keys = (await store.list(`${metricsPrefix}/`)).filter((k) => k.endsWith('.json')).sort();
    return await Promise.all(keys.map((k) => store.getJson<RlMetricsRow>(k)));
  } catch (err) {
    ctx.note(`cannot read ${metricsPrefix}/ from S3 (${(err as Error).message}); set SPARK_S3_* and AWS_* for the full table`);
    return null;
  } finally {
    store.destroy();
  }
}

/** Writes a finished pipeline's HTML report (its run name is in its manifest's key: `runs/<run>/pipeline/manifest.json`). */
async function htmlReport(ctx: CommandContext, result: { manifest: { uri: string } }): Promise<number> {
  const runName = /\/runs\/([^/]+)\/pipeline\/manifest\.json$/.exec(result.manifest.uri)?.[1];
  if (!runName) throw new Error(`cannot tell the run name from ${result.manifest.uri}`);
  // Loaded here: the S3 SDK is slow to import and only this option needs it.
  const [{ ObjectStore, s3ConfigFromEnv }, { buildRunReport }] = await Promise.all([import('../core/store/s3-store.js'), import('../client/run-report.js')]);
  const store = new ObjectStore(s3ConfigFromEnv(ctx.env));
  try {
    const files = await buildRunReport(store, { runName });
    ctx.out(`report: ${files.html.path} (${files.html.uri})\ncurves: ${files.curvesSvg.path} (${files.curvesSvg.uri})`);
    return 0;
  } finally {
    store.destroy();
  }
}

const report: CommandSpec = {
  usage: 'spark report <workflow-id> [--every N] [--json] [--html]',
  summary: 'the result of a finished run: tables per workflow (rlTrain: metrics rows from S3)',
  details: 'rlTrain reads metrics/ rows from S3 (SPARK_S3_*, AWS_* as for workers; without them the run\'s last 50 rows);\nevaluatePrm prints the ProcessBench table. --every N shows every N-th rlTrain step.\n--html (sparkPipeline) writes the run\'s HTML report to S3 and .data/reports/<run>/ and prints where.',
  options: { every: { type: 'string' }, json: { type: 'boolean' }, html: { type: 'boolean' } },
  positionals: ['workflow-id'],
  async run(ctx) {
    const every = numberFlag(ctx, 'every', (n) => Number.isInteger(n) && n > 0, 'a positive integer');
    const client = await ctx.connect();
    const { handle, description } = await client.open(ctx.args[0]!);
    if (RUNNING.has(description.status.name)) {
      ctx.out(`${description.workflowId} is still running; its result comes when it finishes (spark watch ${description.workflowId})\n`);
      ctx.out(snapshotLines(await snapshot(client, handle, true), description).join('\n'));
      return 0;
    }
    if (description.status.name !== 'COMPLETED') return finish(ctx, description, handle);
    if (ctx.flags.html && description.type === 'sparkPipeline') return htmlReport(ctx, (await handle.result()) as { manifest: { uri: string } });
    if (!CONTROLLABLE.has(description.type)) return finish(ctx, description, handle);
    const result = (await handle.result()) as RlTrainResult;
    const rows = (await rlMetricsRows(ctx, result.metricsPrefix)) ?? (await (handle as RlTrainHandle).recentMetrics(50, { timeoutMs: 10_000 }).catch(() => []));
    if (ctx.flags.json) {
      ctx.out(JSON.stringify({ workflowId: description.workflowId, type: description.type, status: 'completed', result, metrics: rows }, null, 2));
      return 0;
    }
    ctx.out(`${description.workflowId} completed\n${formatResult(description.type, result)}\n\nmetrics per step (${rows.length} rows):\n${formatRlMetrics(rows, every)}`);
    return 0;
  },
};

/**
 * The URL of `path` (relative to this file; a module is given without its extension) for the commands
 * that need the repository: the npm package ships the client and the commands that start and steer
 * runs, not the worker or the local stack. The specifier is computed, so the package build does not
 * compile the worker in.
 */
function repoOnly(command: string, path: string): string {
  // Under tsx in a checkout this file is spark-commands.ts and its modules are .ts too.
  const url = new URL(/\.\w+$/.test(path) ? path : `${path}${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  if (!existsSync(url)) {
    throw new RefusedError(`spark ${command} runs from a checkout of spark-temporal (npm run spark -- ${command}) or the worker image (infra/k8s/Dockerfile.worker); the npm package holds the client and the commands that start, follow and steer runs`);
  }
  return url.href;
}

const worker: CommandSpec = {
  usage: 'spark worker [--task-queue Q] [--bundle PATH] [--max-activities N]',
  summary: 'run a worker (src/workers/main.ts) in this process on one task queue until Ctrl-C',
  details: [
    'One worker serves one task queue with every workflow and activity; run one process per queue (e.g. a queue',
    'per GPU host or model server) and start runs there with `spark start --task-queue`. Uses TEMPORAL_* (or the',
    'global flags), SPARK_S3_* and AWS_*, and the model servers\' API key variables named in inputs.',
  ].join('\n'),
  options: { 'task-queue': { type: 'string' }, bundle: { type: 'string' }, 'max-activities': { type: 'string' } },
  positionals: [],
  async run(ctx) {
    const maxActivities = numberFlag(ctx, 'max-activities', (n) => Number.isInteger(n) && n > 0, 'a positive integer');
    // The worker entry reads its settings from the environment; flags are mapped onto it.
    Object.assign(process.env, ctx.env, {
      ...(stringFlag(ctx, 'task-queue') ? { SPARK_TASK_QUEUE: stringFlag(ctx, 'task-queue') } : {}),
      ...(stringFlag(ctx, 'bundle') ? { SPARK_WORKFLOW_BUNDLE: stringFlag(ctx, 'bundle') } : {}),
      ...(maxActivities ? { SPARK_MAX_CONCURRENT_ACTIVITIES: String(maxActivities) } : {}),
    });
    await import(repoOnly('worker', '../workers/main'));
    // The worker runs until SIGINT/SIGTERM and then exits the process itself.
    return new Promise<number>(() => undefined);
  },
};

const stack: CommandSpec = {
  usage: 'spark stack up|down',
  summary: 'start or stop the local stack (Temporal dev server, versitygw, sandbox model server and trainer)',
  details: 'Data stays in .data/ (SPARK_DATA_DIR); ports from TEMPORAL_PORT, TEMPORAL_UI_PORT, SPARK_S3_PORT, SPARK_SIM_PORT, SPARK_TRAINER_PORT.',
  options: {},
  positionals: ['up|down'],
  async run(ctx) {
    const { stackDown, stackUp, localStackEnv } = await import('./local-stack.js');
    const action = ctx.args[0];
    if (action === 'up') {
      repoOnly('stack', '../../temporal/start.sh');
      const up = await stackUp((m) => ctx.note(m));
      ctx.out(JSON.stringify({ ...up, env: localStackEnv() }, null, 2));
      ctx.note(`next: spark worker (with the env above), then spark start <workflow> --config <file>; web UI ${up.webUi}`);
      return 0;
    }
    if (action === 'down') {
      stackDown((m) => ctx.note(m));
      return 0;
    }
    throw new UsageError(`expected 'up' or 'down', got '${action}'`);
  },
};

export const commands: Record<string, CommandSpec> = { start, list, status, watch, pause, resume, stop, set, report, worker, stack };
