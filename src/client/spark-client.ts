/**
 * The typed programmatic client: start any SPARK workflow with typed, client-side validated input,
 * get typed handles (result, progress, and for `rlTrain` the pause/resume/stop/set controls), and
 * find runs by their search attributes. Other services use it through the package entry
 * (`src/client/index.ts`); the `spark` CLI is built on it.
 */
import type { WorkflowExecutionDescription, WorkflowExecutionStatusName, WorkflowHandle } from '@temporalio/client';
import { Client, Connection, WorkflowIdConflictPolicy, WorkflowUpdateFailedError } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';
import type { z } from 'zod';
import type { HyperparameterUpdate } from '../spark/rl/input.js';
import { HyperparameterUpdateSchema } from '../spark/rl/input.js';
import { workflowInputSchemas } from '../workflows/inputs.js';
import type { RlMetricsRow } from '../spark/rl/grpo.js';
import type { TemporalSettings } from '../core/temporal/connection.js';
import { connectionOptions, TemporalSettingsSchema, temporalSettingsFromEnv } from '../core/temporal/connection.js';
import type * as Workflows from '../workflows/index.js';
import { pauseSignal, resumeSignal, rlLatestCheckpoint, rlRecentMetrics, setHyperparametersUpdate, stopSignal } from '../spark/rl/rl-train.workflow.js';
import {
  SparkAccuracy, SparkItemsDone, SparkReward, SparkRun, SparkStage, SparkStatus, SparkStep,
} from '../core/temporal/search-attributes.js';

type WorkflowExports = typeof Workflows;
type InputSchemas = typeof workflowInputSchemas;

/** Every workflow a run can be started as (the keys of `workflowInputSchemas`). */
export type SparkWorkflowName = keyof InputSchemas & string;
/** A workflow's input as people write it (defaults optional). */
export type SparkInput<K extends SparkWorkflowName> = z.input<InputSchemas[K]>;
/** A workflow's input after validation, with every default filled in. */
export type SparkConfig<K extends SparkWorkflowName> = z.output<InputSchemas[K]>;
/** What the workflow returns. */
export type SparkResult<K extends SparkWorkflowName> = K extends keyof WorkflowExports
  ? WorkflowExports[K] extends (...args: never[]) => Promise<infer R> ? R : unknown
  : unknown;
/** What its `progress` query answers (each workflow exports it as `<name>Progress`). */
export type SparkProgress<K extends SparkWorkflowName> = `${K}Progress` extends keyof WorkflowExports
  ? WorkflowExports[`${K}Progress`] extends QueryDefinition<infer P, any> ? P : unknown
  : unknown;

export const sparkWorkflowNames = Object.keys(workflowInputSchemas) as SparkWorkflowName[];

export function isSparkWorkflowName(name: string): name is SparkWorkflowName {
  return Object.hasOwn(workflowInputSchemas, name);
}

/** The stage part of workflow IDs and the `SparkStage` value: `rlTrain` → `rl-train`. */
export function stageOf(workflow: string): string {
  return workflow.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `spark/<runName>/<stage>`, the ID every run gets unless told otherwise. */
export function defaultWorkflowId(workflow: string, runName: string): string {
  return `spark/${runName}/${stageOf(workflow)}`;
}

export interface InputIssue {
  /** Dotted path of the field, `(input)` for the whole object. */
  field: string;
  /** What was expected (zod's or the schema's own words). */
  message: string;
}

/** Input refused before it reaches Temporal; the message lists `field: expected …` per problem. */
export class SparkInputError extends Error {
  override readonly name = 'SparkInputError';
  constructor(readonly workflow: string, readonly issues: InputIssue[]) {
    super(`invalid ${workflow} input:\n${issues.map((i) => `  ${i.field}: ${i.message}`).join('\n')}`);
  }
}

/** The workflow refused an update (its validator said no); the message is the workflow's. */
export class SparkUpdateRefusedError extends Error {
  override readonly name = 'SparkUpdateRefusedError';
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function shortJson(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const UNKNOWN_FIELD = 'unknown field (check the spelling against the input schema)';

/** One line per problem: the field, what was expected and, when given, what was there. */
export function inputIssues(error: z.ZodError, raw: unknown): InputIssue[] {
  return error.issues.flatMap((issue): InputIssue[] => {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: [...path, key].join('.'), message: UNKNOWN_FIELD }));
    }
    const field = path.length ? path.join('.') : '(input)';
    const got = valueAt(raw, issue.path);
    if (got === undefined && issue.code === 'invalid_type') return [{ field, message: `required: ${issue.message.replace(/^Invalid input: /, '').replace(/, received undefined$/, '')}` }];
    const message = issue.message.replace(/^Invalid input: /, '');
    // zod's own type messages already say what was received.
    const withValue = got === undefined || /received /.test(message) || typeof got === 'object' ? message : `${message} (got ${shortJson(got)})`;
    return [{ field, message: withValue }];
  });
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Fields of `raw` that parsing dropped: unknown keys of the schemas that are not strict. */
function droppedFields(raw: unknown, parsed: unknown, path: string[] = []): string[] {
  if (Array.isArray(raw) && Array.isArray(parsed)) return raw.flatMap((item, i) => droppedFields(item, parsed[i], [...path, String(i)]));
  if (!isPlainObject(raw) || !isPlainObject(parsed)) return [];
  return Object.entries(raw).flatMap(([key, value]) => {
    if (Object.hasOwn(parsed, key)) return droppedFields(value, parsed[key], [...path, key]);
    return value === undefined ? [] : [[...path, key].join('.')];
  });
}

/**
 * Validates `input` as `workflow`'s input: the parsed config, or a SparkInputError naming each field.
 * Unknown fields are refused too, also where the workflow itself would drop them: a misspelt
 * field would otherwise run with its default without a word.
 */
export function validateInput<K extends SparkWorkflowName>(workflow: K, input: unknown): SparkConfig<K> {
  const schema = workflowInputSchemas[workflow] as z.ZodType;
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new SparkInputError(workflow, inputIssues(parsed.error, input));
  const unknown = droppedFields(input, parsed.data);
  if (unknown.length) throw new SparkInputError(workflow, unknown.map((field) => ({ field, message: UNKNOWN_FIELD })));
  return parsed.data as SparkConfig<K>;
}

/** Temporal settings from the environment with explicit overrides (CLI flags, service config) on top. */
export function resolveTemporalSettings(overrides: Partial<TemporalSettings> = {}, env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const given = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined && v !== '')) as Partial<TemporalSettings>;
  const merged = { ...temporalSettingsFromEnv(env), ...given };
  // A client certificate or an API key only works over TLS.
  if (given.tls === undefined) merged.tls = merged.tls || Boolean(merged.tlsCertPath) || Boolean(merged.apiKey);
  if (Boolean(merged.tlsCertPath) !== Boolean(merged.tlsKeyPath)) throw new Error('TLS client auth needs both a certificate and a key (TEMPORAL_TLS_CERT/--tls-cert and TEMPORAL_TLS_KEY/--tls-key)');
  return TemporalSettingsSchema.parse(merged);
}

/**
 * The Web UI address of a namespace or one workflow: `uiUrl` (env TEMPORAL_UI_URL) when given,
 * Temporal Cloud's UI for `*.tmprl.cloud`, else the dev server's UI port on the same host.
 */
export function temporalWebUrl(settings: Pick<TemporalSettings, 'address' | 'namespace'> & { uiUrl?: string }, workflowId?: string, env: NodeJS.ProcessEnv = process.env): string {
  const host = settings.address.replace(/:\d+$/, '');
  const base = (settings.uiUrl || env.TEMPORAL_UI_URL || (host.endsWith('.tmprl.cloud') ? 'https://cloud.temporal.io' : `http://${host}:${env.TEMPORAL_UI_PORT || 8233}`)).replace(/\/+$/, '');
  const namespace = `${base}/namespaces/${encodeURIComponent(settings.namespace)}/workflows`;
  return workflowId === undefined ? namespace : `${namespace}/${encodeURIComponent(workflowId)}`;
}

/** A handle on one run: typed result and progress. */
export class SparkRunHandle<K extends SparkWorkflowName = SparkWorkflowName> {
  constructor(
    /** The workflow type (for handles opened by ID, whatever the server says it is). */
    readonly workflow: K,
    /** The underlying Temporal handle, for anything not covered here. */
    readonly temporal: WorkflowHandle,
    protected readonly client: Client,
  ) {}

  get workflowId(): string {
    return this.temporal.workflowId;
  }

  /** Waits for the run (following continue-as-new) and returns what it returned; throws WorkflowFailedError if it failed. */
  async result(): Promise<SparkResult<K>> {
    return (await this.temporal.result()) as SparkResult<K>;
  }

  /** The `progress` query. A closed run is answered by replay on a worker, so it needs one polling its task queue. */
  progress(opts: { timeoutMs?: number } = {}): Promise<SparkProgress<K>> {
    return this.query<SparkProgress<K>>('progress', [], opts.timeoutMs);
  }

  describe(): Promise<WorkflowExecutionDescription> {
    return this.temporal.describe();
  }

  /** Asks the run to cancel (workflows that do not handle cancellation stop at their next await). */
  async cancel(): Promise<void> {
    await this.temporal.cancel();
  }

  protected query<R>(name: string, args: unknown[] = [], timeoutMs?: number): Promise<R> {
    const ask = () => this.temporal.query<R, unknown[]>(name, ...args);
    return timeoutMs === undefined ? ask() : this.client.withDeadline(Date.now() + timeoutMs, ask);
  }
}

/** What `setHyperparameters` answers: the values in force and the first step they apply to. */
export interface HyperparametersApplied {
  learningRate: number;
  klCoefficient: number;
  fromStep: number;
}

/** The workflows that run the GRPO loop and take its controls. */
export type GrpoWorkflowName = 'rlTrain' | 'coEvolve';

/** An `rlTrain` or `coEvolve` run: the GRPO loop's controls on top of result and progress. */
export class RlTrainHandle<K extends GrpoWorkflowName = 'rlTrain'> extends SparkRunHandle<K> {
  /** The run pauses before its next step; progress shows `paused`. */
  async pause(): Promise<void> {
    await this.temporal.signal(pauseSignal);
  }

  async resume(): Promise<void> {
    await this.temporal.signal(resumeSignal);
  }

  /** Stops after the next checkpoint (saved at once if the current step is not one); the result says `stopped`. */
  async stopAfterCheckpoint(): Promise<void> {
    await this.temporal.signal(stopSignal);
  }

  /**
   * Changes the learning rate and/or KL coefficient from the next step on, recorded in the audit log.
   * Checked here first (SparkInputError); the run's own refusal throws SparkUpdateRefusedError.
   */
  async setHyperparameters(update: HyperparameterUpdate): Promise<HyperparametersApplied> {
    const parsed = HyperparameterUpdateSchema.safeParse(update);
    if (!parsed.success) throw new SparkInputError('setHyperparameters', inputIssues(parsed.error, update));
    try {
      return await this.temporal.executeUpdate(setHyperparametersUpdate, { args: [parsed.data] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) throw new SparkUpdateRefusedError(err.cause?.message ?? err.message);
      throw err;
    }
  }

  latestCheckpoint(opts: { timeoutMs?: number } = {}): Promise<string | null> {
    return this.query<string | null>(rlLatestCheckpoint.name, [], opts.timeoutMs);
  }

  /** The metrics rows of the last `n` steps the run kept (at most 50). */
  recentMetrics(n = 10, opts: { timeoutMs?: number } = {}): Promise<RlMetricsRow[]> {
    return this.query<RlMetricsRow[]>(rlRecentMetrics.name, [n], opts.timeoutMs);
  }
}

/** The handle type per workflow: `rlTrain` and `coEvolve` get their controls. */
export type SparkHandle<K extends SparkWorkflowName> = K extends GrpoWorkflowName ? RlTrainHandle<K> : SparkRunHandle<K>;

export interface SparkStartOptions {
  /** Default `spark/<runName>/<stage>`. */
  workflowId?: string;
  /** Default: the client's task queue. */
  taskQueue?: string;
  /** A run with this ID still going: `fail` (default) throws WorkflowExecutionAlreadyStartedError, `attach` returns its handle. */
  ifRunning?: 'fail' | 'attach';
  /** Shown in the Web UI's run list. */
  summary?: string;
}

export interface SparkListFilter {
  runName?: string;
  /** `rl-train` or the workflow name `rlTrain`. */
  stage?: string;
  /** The status the workflow sets (`SparkStatus`: running, completed, stopped). */
  status?: string;
  /** Temporal's execution status: Running, Completed, Failed, Canceled, Terminated, TimedOut, ContinuedAsNew. */
  executionStatus?: string;
  /** More visibility-query clauses, ANDed. */
  query?: string;
  /** Default 100. */
  limit?: number;
}

export interface SparkRunSummary {
  workflowId: string;
  runId: string;
  type: string;
  taskQueue: string;
  /** Temporal's execution status. */
  status: WorkflowExecutionStatusName;
  runName?: string;
  stage?: string;
  sparkStatus?: string;
  step?: number;
  itemsDone?: number;
  reward?: number;
  accuracy?: number;
  startTime: Date;
  closeTime?: Date;
}

const EXECUTION_STATUSES = ['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'TimedOut', 'ContinuedAsNew'];

/** A visibility-query string literal. */
function literal(value: string): string {
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** The visibility query for a filter; exported so people can paste it into `temporal workflow list --query`. */
export function listQuery(filter: SparkListFilter): string {
  const clauses: string[] = [];
  if (filter.runName) clauses.push(`SparkRun = ${literal(filter.runName)}`);
  if (filter.stage) clauses.push(`SparkStage = ${literal(isSparkWorkflowName(filter.stage) ? stageOf(filter.stage) : filter.stage)}`);
  if (filter.status) clauses.push(`SparkStatus = ${literal(filter.status)}`);
  if (filter.executionStatus) {
    const name = EXECUTION_STATUSES.find((s) => s.toLowerCase() === filter.executionStatus!.toLowerCase().replace(/[_-]/g, ''));
    if (!name) throw new SparkInputError('list', [{ field: 'executionStatus', message: `expected one of ${EXECUTION_STATUSES.join(', ')} (got ${literal(filter.executionStatus)})` }]);
    clauses.push(`ExecutionStatus = ${literal(name)}`);
  }
  if (filter.query) clauses.push(`(${filter.query})`);
  // Only SPARK runs: everything this project starts carries SparkRun.
  if (clauses.length === 0) clauses.push('SparkRun IS NOT NULL');
  return clauses.join(' AND ');
}

/** An activity of a run (or of one of its running child workflows) that failed and is being retried. */
export interface RetryingActivity {
  /** The workflow the activity belongs to: the run itself or a child (e.g. a labels shard). */
  workflowId: string;
  workflowType: string;
  activityType: string;
  activityId: string;
  /** The attempt running or scheduled next (1-based). */
  attempt: number;
  /** The retry policy's limit; null when unlimited. */
  maximumAttempts: number | null;
  /** What the last attempt failed with (its message, then its causes'). */
  lastFailure: string;
  /** The failure's type (e.g. `Inference.connection`), when it had one. */
  failureType: string | null;
  /** `scheduled`: waiting out the backoff until `nextAttemptAt`; `started`: the attempt is running. */
  state: 'scheduled' | 'started' | 'cancel-requested' | 'paused' | 'unknown';
  nextAttemptAt: Date | null;
}

type TimestampLike = { seconds?: { toString(): string } | number | null; nanos?: number | null } | null | undefined;
const tsToDate = (ts: TimestampLike): Date | null =>
  ts && ts.seconds != null ? new Date(Number(ts.seconds.toString()) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)) : null;
const ACTIVITY_STATES: Record<number, RetryingActivity['state']> = { 1: 'scheduled', 2: 'started', 3: 'cancel-requested', 4: 'paused', 5: 'paused' };

type FailureLike = { message?: string | null; cause?: FailureLike | null; applicationFailureInfo?: { type?: string | null } | null } | null | undefined;
function failureText(f: FailureLike): string {
  const parts: string[] = [];
  for (let e = f; e && parts.length < 4; e = e.cause) if (e.message && !parts.includes(e.message)) parts.push(e.message.split('\n')[0]!);
  return parts.join(' ← ');
}

export interface SparkClientOptions {
  /** Task queue runs are started on unless a start says otherwise; default env SPARK_TASK_QUEUE or `spark`. */
  taskQueue?: string;
}

/**
 * Starts and finds SPARK runs. Build it from a Temporal `Client` you own, or with
 * `SparkClient.connect()` from environment/overrides (then `close()` it).
 */
export class SparkClient {
  readonly taskQueue: string;

  constructor(
    readonly temporal: Client,
    opts: SparkClientOptions = {},
    private readonly ownedConnection?: Connection,
  ) {
    this.taskQueue = opts.taskQueue || process.env.SPARK_TASK_QUEUE || 'spark';
  }

  /** Connects with TEMPORAL_* settings from the environment, `overrides` taking precedence. */
  static async connect(overrides: Partial<TemporalSettings> = {}, opts: SparkClientOptions = {}): Promise<SparkClient> {
    const settings = resolveTemporalSettings(overrides);
    const connection = await Connection.connect(connectionOptions(settings));
    return new SparkClient(new Client({ connection, namespace: settings.namespace }), opts, connection);
  }

  get namespace(): string {
    return this.temporal.options.namespace;
  }

  /** Closes the connection if this client opened it. */
  async close(): Promise<void> {
    await this.ownedConnection?.close();
  }

  /** Checks `input` without starting anything; returns it with defaults filled in. */
  validate<K extends SparkWorkflowName>(workflow: K, input: unknown): SparkConfig<K> {
    if (!isSparkWorkflowName(workflow)) throw new SparkInputError(String(workflow), [{ field: '(workflow)', message: `expected one of ${sparkWorkflowNames.join(', ')}` }]);
    return validateInput(workflow, input);
  }

  /**
   * Validates `input` here (SparkInputError naming each field) and starts the run. The input is sent
   * as written, defaults unfilled, so the history shows what was asked; the worker validates again.
   */
  async start<K extends SparkWorkflowName>(workflow: K, input: SparkInput<K>, opts: SparkStartOptions = {}): Promise<SparkHandle<K>> {
    const config = this.validate(workflow, input) as { runName?: unknown };
    const runName = typeof config.runName === 'string' ? config.runName : undefined;
    const workflowId = opts.workflowId ?? (runName ? defaultWorkflowId(workflow, runName) : undefined);
    if (!workflowId) throw new SparkInputError(workflow, [{ field: 'runName', message: 'required to name the run (or pass a workflow ID)' }]);
    const handle = await this.temporal.workflow.start(workflow, {
      taskQueue: opts.taskQueue ?? this.taskQueue,
      workflowId,
      args: [input],
      workflowIdConflictPolicy: opts.ifRunning === 'attach' ? WorkflowIdConflictPolicy.USE_EXISTING : WorkflowIdConflictPolicy.FAIL,
      // Set at start as well, so a run is listed before a worker has picked it up.
      typedSearchAttributes: runName ? [{ key: SparkRun, value: runName }, { key: SparkStage, value: stageOf(workflow) }] : [],
      ...(opts.summary ? { staticSummary: opts.summary } : {}),
    });
    return this.wrap(workflow, handle);
  }

  /** A handle on an existing run by ID (the latest run of that ID unless `runId` is given). */
  getHandle<K extends SparkWorkflowName>(workflow: K, workflowId: string, runId?: string): SparkHandle<K> {
    return this.wrap(workflow, this.temporal.workflow.getHandle(workflowId, runId));
  }

  /** A handle on a run whose type is not known in advance; the type comes from the server. */
  async open(workflowId: string, runId?: string): Promise<{ handle: SparkRunHandle | RlTrainHandle; description: WorkflowExecutionDescription }> {
    const temporal = this.temporal.workflow.getHandle(workflowId, runId);
    const description = await temporal.describe();
    return { handle: this.wrap(description.type as SparkWorkflowName, temporal), description };
  }

  /**
   * Activities that failed and are being retried, in the run and in its running child workflows
   * (walked from each workflow's pending children, at most `maxWorkflows` described): what failed,
   * attempt n of m and when the next try is. From describe(), so it needs no worker and costs one
   * call per workflow; a run waiting on a server that is down says so here, not in its progress.
   */
  async retrying(workflowId: string, opts: { maxWorkflows?: number } = {}): Promise<RetryingActivity[]> {
    const limit = opts.maxWorkflows ?? 50;
    const out: RetryingActivity[] = [];
    let level: { workflowId: string; runId?: string }[] = [{ workflowId }];
    let described = 0;
    while (level.length && described < limit) {
      const batch = level.slice(0, limit - described);
      described += batch.length;
      const descriptions = await Promise.all(batch.map((w) => this.temporal.workflow.getHandle(w.workflowId, w.runId).describe().catch(() => null)));
      const next: { workflowId: string; runId?: string }[] = [];
      for (const d of descriptions) {
        if (!d) continue;
        for (const a of d.raw.pendingActivities ?? []) {
          const attempt = a.attempt ?? 1;
          if (attempt <= 1 && !a.lastFailure) continue;
          out.push({
            workflowId: d.workflowId,
            workflowType: d.type,
            activityType: a.activityType?.name ?? '?',
            activityId: a.activityId ?? '?',
            attempt,
            maximumAttempts: a.maximumAttempts ? a.maximumAttempts : null,
            lastFailure: failureText(a.lastFailure as FailureLike) || '(no failure recorded)',
            failureType: a.lastFailure?.applicationFailureInfo?.type || null,
            state: ACTIVITY_STATES[Number(a.state ?? 0)] ?? 'unknown',
            nextAttemptAt: tsToDate(a.nextAttemptScheduleTime as TimestampLike),
          });
        }
        for (const c of d.raw.pendingChildren ?? []) {
          // By ID alone: a child that continued as new is described at its latest run.
          if (c.workflowId) next.push({ workflowId: c.workflowId });
        }
      }
      level = next;
    }
    return out;
  }

  /** Runs by run name, stage and status, newest first, through visibility queries on the search attributes. */
  async list(filter: SparkListFilter = {}): Promise<SparkRunSummary[]> {
    const limit = filter.limit ?? 100;
    const out: SparkRunSummary[] = [];
    for await (const info of this.temporal.workflow.list({ query: listQuery(filter), pageSize: Math.min(limit, 1000) })) {
      const sa = info.typedSearchAttributes;
      out.push({
        workflowId: info.workflowId,
        runId: info.runId,
        type: info.type,
        taskQueue: info.taskQueue,
        status: info.status.name,
        runName: sa.get(SparkRun),
        stage: sa.get(SparkStage),
        sparkStatus: sa.get(SparkStatus),
        step: sa.get(SparkStep),
        itemsDone: sa.get(SparkItemsDone),
        reward: sa.get(SparkReward),
        accuracy: sa.get(SparkAccuracy),
        startTime: info.startTime,
        closeTime: info.closeTime,
      });
      if (out.length >= limit) break;
    }
    return out;
  }

  private wrap<K extends SparkWorkflowName>(workflow: K, handle: WorkflowHandle): SparkHandle<K> {
    const typed = workflow === 'rlTrain' || workflow === 'coEvolve' ? new RlTrainHandle(workflow, handle, this.temporal) : new SparkRunHandle(workflow, handle, this.temporal);
    return typed as SparkHandle<K>;
  }
}
