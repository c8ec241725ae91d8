/**
 * The sandbox trainer: trainer protocol v1 (docs/trainer-protocol.md) over node:http, for the
 * sandbox models. Sessions live in memory, as on a GPU box: a killed trainer forgets them, and
 * the control plane recreates them from the last committed checkpoint in S3.
 *
 * SFT fits the reward model's judgement parameters to the labels (./prm-fit.ts); GRPO is a policy
 * gradient on the policy's decision logits with the advantages in the batch (./policy-fit.ts). Each
 * parameter set has its own optimiser state, so one session may take both kinds of step.
 * GRPO batches may also hold the co-evolving SPARK's recycled items (judging, reflection, re-solve),
 * which train the model's self-judge (`selfJudge`, own optimiser state) and, through corrected
 * solutions, its policy.
 * Checkpoints are `state.json` (parameters, optimiser moments, the applied-step log) and
 * `adapter.json` (the LoRA document the sandbox model server loads: `prm`, `policy` and
 * `selfJudge` overrides), then the COMMITTED marker; publish calls the model server's
 * `/v1/load_lora_adapter` with the checkpoint URI, as with vLLM.
 */
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { ObjectStore } from '../../src/core/store/s3-store.js';
import { sha256Hex } from '../../src/core/store/s3-store.js';
import type { RewardModelStyle } from '../../src/spark/common/formats.js';
import type {
  CheckpointInfo, CheckpointMarker, Loss, SessionConfig, SessionState, TrainerErrorBody, TrainerErrorCode, TrainStepRequest, TrainStepResponse,
} from '../../src/core/trainer/protocol.js';
import {
  CHECKPOINT_MARKER_NAME, CheckpointMarkerSchema, CreateSessionRequestSchema, GrpoExampleSchema, parseProtocolMessage, PublishRequestSchema,
  SaveCheckpointRequestSchema, SftExampleSchema, TRAINER_ERRORS, TRAINER_PROTOCOL_VERSION, TrainStepRequestSchema,
} from '../../src/core/trainer/protocol.js';
import { listen, readBody } from '../model-server/http.js';
import type { AdapterDocument, SimModelParams } from '../model-server/params.js';
import { DEFAULT_SIM_MODELS } from '../model-server/params.js';
import type { SelfJudgeFixedParams } from '../world/selfJudge.js';
import type { PolicyObservation, PolicyVector, SelfJudgeVector } from './policy-fit.js';
import {
  grpoUpdate, observePolicy, POLICY_VECTOR_NAMES, policyOverridesOf, policyVector, SELF_JUDGE_VECTOR_NAMES, selfJudgeOverridesOf, selfJudgeVector,
} from './policy-fit.js';
import type { JudgeVector, Observation, OptimizerState } from './prm-fit.js';
import {
  batchGradient, judgeParamsOf, judgeVector, observe, optimizerStep, scheduledLearningRate, ZERO_OPTIMIZER_STATE, zeroOptimizerState,
} from './prm-fit.js';

/** A protocol error: its code decides the HTTP status. */
export class TrainerProtocolError extends Error {
  constructor(readonly code: TrainerErrorCode, message: string, readonly details?: Record<string, unknown>) {
    super(message);
  }
}

/** One applied step as the session and its checkpoints remember it. */
interface AppliedStep {
  step: number;
  batchSha256: string;
  metrics: Record<string, number>;
}

/** What a checkpoint's `state.json` holds: everything needed to continue bit for bit. */
interface TrainerState {
  kind: 'spark.sim-trainer-state';
  baseModel: string;
  /** The reward model's judgement (SFT). */
  theta: JudgeVector;
  style: RewardModelStyle;
  optimizer: OptimizerState;
  /** The policy's decision logits (GRPO), with their own optimiser state. */
  policy: PolicyVector;
  policyOptimizer: OptimizerState<PolicyVector>;
  /** The self-judge's trained parameters (GRPO on recycled items), with their own optimiser state. */
  selfJudge: SelfJudgeVector;
  selfJudgeOptimizer: OptimizerState<SelfJudgeVector>;
  log: AppliedStep[];
}

interface Session {
  id: string;
  config: SessionConfig;
  status: SessionState['status'];
  state: TrainerState;
  /** The base model's parameters: where training starts, where weight decay pulls, and GRPO's KL reference. */
  anchors: { prm: JudgeVector; policy: PolicyVector; selfJudge: SelfJudgeVector };
  /** The base model's fixed self-judge traits, which the judging decisions' log-odds include. */
  selfJudgeFixed: SelfJudgeFixedParams;
  lastCheckpoint: CheckpointInfo | null;
  /** Operations on one session run one at a time, in arrival order. */
  queue: Promise<unknown>;
}

export interface TrainerServerOptions {
  store: ObjectStore;
  port?: number;
  host?: string;
  /** Appends one JSON line per applied or repeated step, checkpoint and publish (tests read it across restarts). */
  eventsFile?: string;
  /** Milliseconds each applied step takes, standing in for GPU time (tests use it to crash mid-run). */
  stepLatencyMs?: number;
}

export interface TrainerServer {
  /** Base URL without the version, e.g. http://127.0.0.1:8400 */
  url: string;
  port: number;
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function errorBody(err: TrainerProtocolError): TrainerErrorBody {
  return { protocolVersion: TRAINER_PROTOCOL_VERSION, error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
}

/** Parses a request body or throws the protocol's error for it. */
function parseRequest<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const parsed = parseProtocolMessage(schema, body);
  if (!parsed.ok) throw new TrainerProtocolError(parsed.error.error.code, parsed.error.error.message, parsed.error.error.details);
  return parsed.data;
}

/** One batch line as its schema, or the protocol's error naming the line. */
function parseExample<S extends z.ZodType>(schema: S, value: unknown, line: number): z.infer<S> {
  const example = schema.safeParse(value);
  if (!example.success) throw new TrainerProtocolError('invalid-request', `batch line ${line}: ${example.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
  return example.data;
}

/** JSON with sorted keys, so equal configs compare equal whatever order their fields came in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v);
}

function baseParams(baseModel: string) {
  const params = DEFAULT_SIM_MODELS[baseModel];
  if (!params) {
    throw new TrainerProtocolError('invalid-request', `baseModel: the sandbox trainer knows ${Object.keys(DEFAULT_SIM_MODELS).join(', ')}; got '${baseModel}'`);
  }
  return params;
}

function stateOf(session: Session): SessionState {
  const last = session.state.log.at(-1)?.step ?? null;
  return {
    protocolVersion: TRAINER_PROTOCOL_VERSION,
    sessionId: session.id,
    config: session.config,
    status: session.status,
    lastAppliedStep: last,
    nextStep: last === null ? 0 : last + 1,
    lastCheckpoint: session.lastCheckpoint,
  };
}

/** The adapter document a checkpoint carries: the fitted PRM, policy and self-judge over the base model. */
function adapterDocument(state: TrainerState): AdapterDocument {
  return {
    base: state.baseModel,
    prm: { ...judgeParamsOf(state.theta), style: state.style },
    policy: policyOverridesOf(state.policy),
    selfJudge: selfJudgeOverridesOf(state.selfJudge),
  };
}

/** The state of a session that has taken no step yet. */
function initialState(baseModel: string, base: SimModelParams): TrainerState {
  return {
    kind: 'spark.sim-trainer-state',
    baseModel,
    theta: judgeVector(base.prm),
    style: base.prm.style,
    optimizer: ZERO_OPTIMIZER_STATE,
    policy: policyVector(base.policy),
    policyOptimizer: zeroOptimizerState<PolicyVector>(POLICY_VECTOR_NAMES.length),
    selfJudge: selfJudgeVector(base.selfJudge),
    selfJudgeOptimizer: zeroOptimizerState<SelfJudgeVector>(SELF_JUDGE_VECTOR_NAMES.length),
    log: [],
  };
}

/** A checkpoint's state; a part it was saved without (the GRPO policy, the self-judge: older trainers) is the base model's, untrained. */
function restoredState(saved: Partial<TrainerState>, base: SimModelParams): TrainerState {
  const fresh = initialState(saved.baseModel ?? '', base);
  return { ...fresh, ...saved };
}

/** The GRPO settings the sandbox applies; `clipRatio` is not among them because the PPO clip never binds on-policy. */
function grpoSettings(loss: Extract<Loss, { kind: 'grpo' }>) {
  return { klCoefficient: loss.klCoefficient, entropyCoefficient: loss.entropyCoefficient, klEstimator: loss.klEstimator ?? 'low-var-kl' } as const;
}

export async function startTrainerServer(options: TrainerServerOptions): Promise<TrainerServer> {
  const { store } = options;
  const sessions = new Map<string, Session>();
  let generated = 0;

  const event = (e: Record<string, unknown>) => {
    if (options.eventsFile) appendFileSync(options.eventsFile, `${JSON.stringify({ at: new Date().toISOString(), pid: process.pid, ...e })}\n`);
  };

  const keyOf = (uri: string, field: string): string => {
    try {
      return store.keyOf(uri);
    } catch (err) {
      throw new TrainerProtocolError('invalid-request', `${field}: ${(err as Error).message}`);
    }
  };

  /** Reads and verifies a committed checkpoint. */
  async function loadCheckpoint(uri: string, field: string): Promise<{ marker: CheckpointMarker; state: Partial<TrainerState> }> {
    const markerUri = `${uri}/${CHECKPOINT_MARKER_NAME}`;
    const raw = await store.getJsonIfExists(keyOf(markerUri, field));
    if (raw === null) throw new TrainerProtocolError('checkpoint-not-found', `${field}: no checkpoint at ${uri} (${markerUri} does not exist; a checkpoint without its marker was never committed)`);
    const marker = CheckpointMarkerSchema.safeParse(raw);
    if (!marker.success) throw new TrainerProtocolError('checkpoint-mismatch', `${markerUri} is not a checkpoint marker: ${marker.error.issues[0]?.message ?? ''}`);
    const objects = new Map<string, Uint8Array>();
    for (const o of marker.data.objects) {
      const bytes = await store.getBytes(keyOf(`${uri}/${o.name}`, field));
      if (sha256Hex(bytes) !== o.sha256 || bytes.length !== o.bytes) {
        throw new TrainerProtocolError('checkpoint-mismatch', `${uri}/${o.name} does not match its marker (sha256 or size differs): the checkpoint is damaged`);
      }
      objects.set(o.name, bytes);
    }
    const stateBytes = objects.get('state.json');
    if (!stateBytes) throw new TrainerProtocolError('checkpoint-mismatch', `${uri} has no state.json: not a sandbox trainer checkpoint`);
    return { marker: marker.data, state: JSON.parse(Buffer.from(stateBytes).toString('utf8')) as Partial<TrainerState> };
  }

  async function createSession(body: unknown): Promise<{ status: number; body: unknown }> {
    const req = parseRequest(CreateSessionRequestSchema, body);
    const { protocolVersion: _v, sessionId: requestedId, ...config } = req;
    const existing = requestedId ? sessions.get(requestedId) : undefined;
    if (existing) {
      if (canonical(existing.config) !== canonical(config)) {
        throw new TrainerProtocolError('conflict', `session '${existing.id}' exists with another config; use another sessionId or the same config`);
      }
      return { status: 200, body: { protocolVersion: TRAINER_PROTOCOL_VERSION, created: false, session: stateOf(existing) } };
    }
    const base = baseParams(config.baseModel);
    let state = initialState(config.baseModel, base);
    let lastCheckpoint: CheckpointInfo | null = null;
    if (config.resumeFrom) {
      const loaded = await loadCheckpoint(config.resumeFrom, 'resumeFrom');
      const saved = loaded.marker.config;
      // Resuming with another model, adapter, optimiser or seed would silently train something else.
      const differing = (['baseModel', 'adapter', 'optimizer', 'seed'] as const).filter((k) => canonical(saved[k]) !== canonical(config[k]));
      if (differing.length > 0) {
        throw new TrainerProtocolError('checkpoint-mismatch', `resumeFrom: ${config.resumeFrom} was saved with other settings: ${differing.map((k) => `${k} ${canonical(saved[k])} (request: ${canonical(config[k])})`).join('; ')}`, { fields: differing });
      }
      state = restoredState(loaded.state, base);
      lastCheckpoint = { uri: config.resumeFrom, step: loaded.marker.step, markerUri: `${config.resumeFrom}/${CHECKPOINT_MARKER_NAME}` };
    }
    const id = requestedId ?? `session-${process.pid}-${++generated}`;
    const anchors = { prm: judgeVector(base.prm), policy: policyVector(base.policy), selfJudge: selfJudgeVector(base.selfJudge) };
    const session: Session = { id, config, status: 'ready', state, anchors, selfJudgeFixed: base.selfJudge, lastCheckpoint, queue: Promise.resolve() };
    sessions.set(id, session);
    event({ event: 'session', session: id, resumeFrom: config.resumeFrom ?? null, lastAppliedStep: state.log.at(-1)?.step ?? null });
    return { status: 201, body: { protocolVersion: TRAINER_PROTOCOL_VERSION, created: true, session: stateOf(session) } };
  }

  async function trainStep(session: Session, body: unknown): Promise<TrainStepResponse> {
    const req = parseRequest(TrainStepRequestSchema, body);
    const done = session.state.log.find((s) => s.step === req.step);
    if (done) {
      if (done.batchSha256 !== req.batch.sha256) {
        throw new TrainerProtocolError('conflict', `step ${req.step} was applied with batch sha256 ${done.batchSha256}, not ${req.batch.sha256}`, { step: req.step });
      }
      event({ event: 'step', session: session.id, step: req.step, applied: false });
      return { protocolVersion: TRAINER_PROTOCOL_VERSION, step: req.step, applied: false, metrics: done.metrics };
    }
    const next = stateOf(session).nextStep;
    if (req.step !== next) {
      throw new TrainerProtocolError('step-out-of-order', `step ${req.step} cannot be applied: the next step of session '${session.id}' is ${next}`, { expectedStep: next, receivedStep: req.step });
    }
    const lines = await readBatch(req);
    if (options.stepLatencyMs) await new Promise((r) => setTimeout(r, options.stepLatencyMs));
    const { metrics, state } = req.loss.kind === 'sft' ? sftStep(session, req, lines) : grpoStep(session, req, req.loss, lines);
    session.state = { ...state, log: [...state.log, { step: req.step, batchSha256: req.batch.sha256, metrics }] };
    event({ event: 'step', session: session.id, step: req.step, applied: true, loss: metrics.loss });
    return { protocolVersion: TRAINER_PROTOCOL_VERSION, step: req.step, applied: true, metrics };
  }

  /** The batch's JSON lines, after checking it is the object the request names. */
  async function readBatch(req: TrainStepRequest): Promise<{ line: number; value: unknown }[]> {
    const bytes = await store.getBytes(keyOf(req.batch.uri, 'batch.uri'));
    if (sha256Hex(bytes) !== req.batch.sha256 || bytes.length !== req.batch.bytes) {
      throw new TrainerProtocolError('invalid-request', `batch: ${req.batch.uri} has sha256 ${sha256Hex(bytes)} and ${bytes.length} bytes, not what the request says`);
    }
    const lines: { line: number; value: unknown }[] = [];
    for (const [i, text] of Buffer.from(bytes).toString('utf8').split('\n').entries()) {
      if (text.trim() === '') continue;
      try {
        lines.push({ line: i + 1, value: JSON.parse(text) });
      } catch {
        throw new TrainerProtocolError('invalid-request', `batch line ${i + 1}: not valid JSON`);
      }
    }
    return lines;
  }

  /** One SFT step on the reward model's judgement. */
  function sftStep(session: Session, req: TrainStepRequest, lines: { line: number; value: unknown }[]) {
    const observations: Observation[] = [];
    const styles = new Map<RewardModelStyle, number>();
    let skipped = 0;
    let tokens = 0;
    for (const { line, value } of lines) {
      const example = parseExample(SftExampleSchema, value, line);
      tokens += Math.ceil(example.completion.length / 4);
      const seen = observe(example.prompt, example.completion);
      if ('reason' in seen) {
        skipped++;
        continue;
      }
      observations.push(seen.observation);
      styles.set(seen.style, (styles.get(seen.style) ?? 0) + 1);
    }
    if (observations.length === 0) throw new TrainerProtocolError('invalid-request', `batch: none of its ${skipped} examples is a reward-model prompt with a parseable answer`);

    const state = session.state;
    const learningRate = req.learningRate ?? scheduledLearningRate(session.config.optimizer, state.optimizer.t);
    const { loss, grad } = batchGradient(state.theta, observations);
    const update = optimizerStep(state.theta, session.anchors.prm, grad, state.optimizer, session.config.optimizer, learningRate);
    // The model answers in the style it was trained on most.
    const style = [...styles.entries()].sort((a, b) => b[1] - a[1])[0]![0];
    const metrics = { loss, examples: observations.length, skipped, tokens, learningRate, gradNorm: update.gradNorm };
    return { metrics, state: { ...state, theta: update.theta, optimizer: update.state, style } };
  }

  /** One GRPO step on the policy's decision logits and the self-judge's, with the base model as the KL reference. */
  function grpoStep(session: Session, req: TrainStepRequest, loss: Extract<Loss, { kind: 'grpo' }>, lines: { line: number; value: unknown }[]) {
    const observations: PolicyObservation[] = [];
    let skipped = 0;
    let tokens = 0;
    for (const { line, value } of lines) {
      const example = parseExample(GrpoExampleSchema, value, line);
      tokens += Math.ceil(example.completion.length / 4);
      const seen = observePolicy(example, session.selfJudgeFixed);
      if ('reason' in seen) {
        skipped++;
        continue;
      }
      observations.push(seen.observation);
    }
    if (observations.length === 0) throw new TrainerProtocolError('invalid-request', `batch: none of its ${skipped} examples is a sandbox policy, judging or reflection response to an arithmetic question`);

    const state = session.state;
    const update = grpoUpdate(state, session.anchors, observations, grpoSettings(loss), session.config.optimizer, req.learningRate);
    const { result } = update;
    const metrics: Record<string, number> = {
      loss: result.loss,
      examples: observations.length,
      skipped,
      tokens,
      learningRate: update.learningRate,
      gradNorm: update.gradNorm,
      kl: result.kl,
      entropy: result.entropy,
      // One update on freshly sampled rollouts: the PPO ratio is exactly 1, so nothing is clipped.
      clipFraction: 0,
      meanAdvantage: result.meanAdvantage,
      decisions: result.decisions,
      // Only batches that train the self-judge report it, so plain RLVR metrics stay as they were.
      ...(update.selfJudge ? { selfJudgeDecisions: update.selfJudge.decisions, selfJudgeGradNorm: update.selfJudge.gradNorm } : {}),
    };
    return { metrics, state: { ...state, ...update.next } };
  }

  async function saveCheckpoint(session: Session, body: unknown) {
    const req = parseRequest(SaveCheckpointRequestSchema, body);
    const last = session.state.log.at(-1)?.step ?? null;
    if (req.step !== undefined && req.step !== last) {
      throw new TrainerProtocolError('step-out-of-order', `step: the last applied step of session '${session.id}' is ${last ?? 'none'}, not ${req.step}`, { expectedStep: last, receivedStep: req.step });
    }
    const markerUri = `${req.uri}/${CHECKPOINT_MARKER_NAME}`;
    const stateText = JSON.stringify(session.state);
    const info: CheckpointInfo = { uri: req.uri, step: last, markerUri };
    const committed = await store.getJsonIfExists<CheckpointMarker>(keyOf(markerUri, 'uri'));
    if (committed) {
      // Idempotent by content: the same training state saved again (a retried save, or a session
      // recreated after a crash that redid the same steps) is the checkpoint already there.
      const same = committed.step === last && committed.objects.some((o) => o.name === 'state.json' && o.sha256 === sha256Hex(stateText));
      if (!same) throw new TrainerProtocolError('conflict', `uri: ${req.uri} already holds another checkpoint (step ${committed.step ?? 'none'} of session '${committed.sessionId}')`);
      session.lastCheckpoint = info;
      return { protocolVersion: TRAINER_PROTOCOL_VERSION, ...info, created: false };
    }
    const objects = [];
    for (const [name, text] of [['state.json', stateText], ['adapter.json', JSON.stringify(adapterDocument(session.state))]] as const) {
      const ref = await store.put(keyOf(`${req.uri}/${name}`, 'uri'), text, 'application/json');
      objects.push({ name, sha256: ref.sha256, bytes: ref.bytes });
    }
    const marker: CheckpointMarker = { protocolVersion: TRAINER_PROTOCOL_VERSION, sessionId: session.id, step: last, config: session.config, objects, committedAt: new Date().toISOString() };
    await store.putIfAbsent(keyOf(markerUri, 'uri'), JSON.stringify(marker), 'application/json');
    session.lastCheckpoint = info;
    event({ event: 'checkpoint', session: session.id, step: last, uri: req.uri });
    return { protocolVersion: TRAINER_PROTOCOL_VERSION, ...info, created: true };
  }

  async function publish(session: Session, body: unknown) {
    const req = parseRequest(PublishRequestSchema, body);
    const uri = req.checkpointUri ?? session.lastCheckpoint?.uri;
    if (!uri) throw new TrainerProtocolError('checkpoint-not-found', `checkpointUri: session '${session.id}' has saved no checkpoint yet; save one first or name one`);
    const { marker } = await loadCheckpoint(uri, 'checkpointUri');
    const base = req.inferenceBaseURL.replace(/\/+$/, '');
    const call = async (path: string, payload: unknown) => {
      try {
        const res = await fetch(`${base}/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
        return { status: res.status, text: await res.text() };
      } catch (err) {
        throw new TrainerProtocolError('publish-failed', `inferenceBaseURL: ${base} did not answer (${(err as Error).message})`);
      }
    };
    // Idempotent by name: whatever was served under it before is replaced.
    await call('unload_lora_adapter', { lora_name: req.modelName });
    const loaded = await call('load_lora_adapter', { lora_name: req.modelName, lora_path: uri });
    if (loaded.status !== 200) throw new TrainerProtocolError('publish-failed', `${base}/load_lora_adapter answered ${loaded.status}: ${loaded.text}`);
    event({ event: 'publish', session: session.id, modelName: req.modelName, uri });
    return { protocolVersion: TRAINER_PROTOCOL_VERSION, modelName: req.modelName, loraPath: uri, checkpointUri: uri, step: marker.step };
  }

  /** Runs `fn` after the session's earlier operations, marking it busy meanwhile. */
  function serialized<T>(session: Session, fn: () => Promise<T>): Promise<T> {
    const run = session.queue.then(async () => {
      session.status = 'busy';
      try {
        return await fn();
      } finally {
        session.status = 'ready';
      }
    });
    session.queue = run.catch(() => undefined);
    return run;
  }

  async function route(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const path = new URL(req.url ?? '/', 'http://trainer').pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/health') return { status: 200, body: { protocolVersion: TRAINER_PROTOCOL_VERSION, sessions: sessions.size } };
    const versioned = /^\/v(\d+)(\/.*)?$/.exec(path);
    if (!versioned) throw new TrainerProtocolError('invalid-request', `no route for ${method} ${path}`);
    if (Number(versioned[1]) !== TRAINER_PROTOCOL_VERSION) {
      throw new TrainerProtocolError('version-mismatch', `this trainer speaks protocol version ${TRAINER_PROTOCOL_VERSION}, the path asks for version ${versioned[1]}`, { serverVersion: TRAINER_PROTOCOL_VERSION, requestVersion: Number(versioned[1]) });
    }
    const rest = versioned[2] ?? '';
    const body = method === 'POST' ? await readJsonBody(req) : undefined;
    if (method === 'POST' && rest === '/sessions') return createSession(body);
    const m = /^\/sessions\/([^/]+)(?:\/(steps|checkpoints|publish))?$/.exec(rest);
    if (!m) throw new TrainerProtocolError('invalid-request', `no route for ${method} ${path}`);
    const session = sessions.get(decodeURIComponent(m[1]!));
    if (!session) {
      throw new TrainerProtocolError('unknown-session', `no session '${decodeURIComponent(m[1]!)}' on this trainer (it may have restarted): create it again, resuming from its last checkpoint`);
    }
    const action = m[2];
    if (method === 'GET' && !action) return { status: 200, body: stateOf(session) };
    if (method !== 'POST' || !action) throw new TrainerProtocolError('invalid-request', `no route for ${method} ${path}`);
    if (action === 'steps') return { status: 200, body: await serialized(session, () => trainStep(session, body)) };
    if (action === 'checkpoints') return { status: 200, body: await serialized(session, () => saveCheckpoint(session, body)) };
    return { status: 200, body: await serialized(session, () => publish(session, body)) };
  }

  const server = createServer((req, res) => {
    route(req).then(
      (out) => sendJson(res, out.status, out.body),
      (err: unknown) => {
        if (res.headersSent || res.destroyed) return;
        const protocolError = err instanceof TrainerProtocolError ? err : new TrainerProtocolError('internal', `internal error: ${(err as Error).message}`);
        sendJson(res, TRAINER_ERRORS[protocolError.code].status, errorBody(protocolError));
      },
    );
  });
  const { port, close } = await listen(server, options.port, options.host);
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    close,
  };
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TrainerProtocolError('invalid-request', `the body is not valid JSON: ${(err as Error).message}`);
  }
}
