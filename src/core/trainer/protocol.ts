/**
 * The trainer protocol, version 1: HTTP/JSON between the control plane and a trainer server
 * (the sandbox trainer, or a real one on GPUs). Data only: schemas, their types, and the checks
 * both sides run on every message. docs/trainer-protocol.md is the prose version; its examples
 * are parsed with these schemas by test/unit/trainer-protocol.test.ts.
 *
 * Requests are strict (an unknown field is a typo that would otherwise silently fall back to a
 * default); responses strip unknown fields, so a server may add fields without a version bump.
 */
import { z } from 'zod';

import type { ChatMessage } from '../inference/chat.js';
import type { ObjectRef } from '../store/refs.js';

export const TRAINER_PROTOCOL_VERSION = 1;

const ProtocolVersionSchema = z.literal(TRAINER_PROTOCOL_VERSION);

const S3_URI = /^s3:\/\/[^/]+\/.+/;
/** An S3 URI, e.g. `s3://bucket/key`. */
const S3UriSchema = z.string().regex(S3_URI, 'an S3 URI like s3://bucket/key');
/** A checkpoint URI: a prefix with no trailing slash, so that one checkpoint has one spelling (idempotency compares URIs). */
const CheckpointUriSchema = S3UriSchema.refine((u) => !u.endsWith('/'), 'a checkpoint URI without a trailing slash, like s3://bucket/checkpoints/run/step-000120');
const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256 (64 characters)');
/** Session IDs go into URL paths unescaped, and workflows derive them from their own IDs. */
const SessionIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, ".", "_" or "-" (at most 128, starting with a letter or digit)');
const StepNumberSchema = z.number().int().nonnegative();

/** The project's ObjectRef (src/core/store/refs.ts) on the wire. */
export const ObjectRefSchema = z
  .object({
    uri: S3UriSchema,
    sha256: Sha256Schema,
    bytes: z.number().int().nonnegative(),
  })
  .strict() satisfies z.ZodType<ObjectRef>;

// ---------------------------------------------------------------------------------------------
// Session configuration

/** LoRA adapter on the base model (PEFT naming, which vLLM loads), or full fine-tuning. */
export const AdapterSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('lora'),
      rank: z.number().int().positive(),
      alpha: z.number().positive(),
      /** Module names as in the model's code, e.g. `q_proj`; `all-linear` as PEFT accepts it. */
      targetModules: z.array(z.string().min(1)).min(1),
      dropout: z.number().min(0).lt(1).optional(),
    })
    .strict(),
  z.object({ kind: z.literal('full') }).strict(),
]);
export type Adapter = z.infer<typeof AdapterSchema>;

/**
 * The optimiser. The learning rate rises linearly from 0 to `learningRate` over `warmupSteps`
 * steps, then stays constant; a control plane that wants another schedule sends it per step.
 */
export const OptimizerSchema = z
  .object({
    name: z.enum(['adamw', 'adam', 'sgd']),
    learningRate: z.number().positive(),
    /** Adam's β1, β2 (ignored by sgd). */
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]),
    weightDecay: z.number().nonnegative(),
    warmupSteps: z.number().int().nonnegative(),
    /** Gradient-norm clipping; absent means none. */
    maxGradNorm: z.number().positive().optional(),
  })
  .strict();
export type Optimizer = z.infer<typeof OptimizerSchema>;

/** What a session was created with; also recorded in every checkpoint's marker so resume can be verified. */
export const SessionConfigSchema = z
  .object({
    /** The model to load, as the trainer names it (e.g. `Qwen/Qwen2.5-14B-Instruct`); also the GRPO reference model. */
    baseModel: z.string().min(1),
    adapter: AdapterSchema,
    optimizer: OptimizerSchema,
    /** Seeds data order within a batch, dropout and anything else random in the trainer. */
    seed: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    /** A committed checkpoint to start from: weights, optimiser state and the applied-step log. */
    resumeFrom: CheckpointUriSchema.optional(),
  })
  .strict();
export type SessionConfig = z.infer<typeof SessionConfigSchema>;

// ---------------------------------------------------------------------------------------------
// POST /v1/sessions — create a session.
// Idempotent by `sessionId`: a retry with the same ID and the same config returns the existing
// session (`created: false`); the same ID with another config is `conflict`. Without a
// `sessionId` the server picks one and a retry creates a second session.

export const CreateSessionRequestSchema = SessionConfigSchema.extend({
  protocolVersion: ProtocolVersionSchema,
  sessionId: SessionIdSchema.optional(),
}).strict();
export type CreateSessionRequest = z.infer<typeof CreateSessionRequestSchema>;

/** A committed checkpoint, as the session and responses describe it. */
export const CheckpointInfoSchema = z.object({
  uri: CheckpointUriSchema,
  /** The last step applied to the saved weights; null for weights saved before any step. */
  step: StepNumberSchema.nullable(),
  /** `<uri>/COMMITTED`: the object whose existence makes the checkpoint real. */
  markerUri: S3UriSchema,
});
export type CheckpointInfo = z.infer<typeof CheckpointInfoSchema>;

export const SESSION_STATUSES = ['loading', 'ready', 'busy', 'failed'] as const;

// ---------------------------------------------------------------------------------------------
// GET /v1/sessions/{id} — session state. Read-only (no body; the path carries the version).

export const SessionStateSchema = z.object({
  protocolVersion: ProtocolVersionSchema,
  sessionId: SessionIdSchema,
  config: SessionConfigSchema,
  /** loading: weights or a checkpoint are loading; busy: a step, save or publish is running; failed: unusable, recreate from the last checkpoint. */
  status: z.enum(SESSION_STATUSES),
  /** Why the session failed, for people. */
  statusMessage: z.string().optional(),
  /** null before the first step (or, after resume, the checkpoint's step). */
  lastAppliedStep: StepNumberSchema.nullable(),
  /** The only step number that will be applied next: lastAppliedStep + 1, or 0. */
  nextStep: StepNumberSchema,
  lastCheckpoint: CheckpointInfoSchema.nullable(),
});
export type SessionState = z.infer<typeof SessionStateSchema>;

export const CreateSessionResponseSchema = z.object({
  protocolVersion: ProtocolVersionSchema,
  /** false when `sessionId` already named this session (a retried create). */
  created: z.boolean(),
  session: SessionStateSchema,
});
export type CreateSessionResponse = z.infer<typeof CreateSessionResponseSchema>;

// ---------------------------------------------------------------------------------------------
// POST /v1/sessions/{id}/steps — one train step: forward-backward on the batch, then an optimiser step.
// Idempotent by `step`: a step number already applied is not applied again; the response repeats
// the stored metrics with `applied: false` (a different batch under that number is `conflict`).
// A number beyond `nextStep` is `step-out-of-order`.

/** GRPO (SPARK stage 3): clipped policy gradient on the advantages in the batch, plus a KL loss to the base model. */
export const GrpoLossSchema = z
  .object({
    kind: z.literal('grpo'),
    /** Weight of the KL term in the loss, not in the reward (SPARK: 0.001). */
    klCoefficient: z.number().nonnegative(),
    /** Weight of the entropy bonus (SPARK: 0). */
    entropyCoefficient: z.number().nonnegative(),
    /** PPO ratio clip ε; the trainer's default when absent (0.2 in verl). */
    clipRatio: z.number().positive().optional(),
    /** KL estimator; absent means `low-var-kl` (k3), as SPARK used. */
    klEstimator: z.enum(['low-var-kl', 'k1', 'k2']).optional(),
  })
  .strict();

/** SFT (SPARK stage 2): token cross-entropy on the completions only. */
export const SftLossSchema = z.object({ kind: z.literal('sft') }).strict();

export const LossSchema = z.discriminatedUnion('kind', [SftLossSchema, GrpoLossSchema]);
export type Loss = z.infer<typeof LossSchema>;

export const TrainStepRequestSchema = z
  .object({
    protocolVersion: ProtocolVersionSchema,
    step: StepNumberSchema,
    /** A JSONL object: SftExample lines for `sft`, GrpoExample lines for `grpo`. */
    batch: ObjectRefSchema,
    loss: LossSchema,
    /** Overrides the optimiser's scheduled learning rate for this step. */
    learningRate: z.number().positive().optional(),
  })
  .strict();
export type TrainStepRequest = z.infer<typeof TrainStepRequestSchema>;

export const TrainStepResponseSchema = z.object({
  protocolVersion: ProtocolVersionSchema,
  step: StepNumberSchema,
  /** false: the step had been applied before; `metrics` are the stored ones. */
  applied: z.boolean(),
  /** At least `loss`; usually `tokens`, `examples`, `learningRate`, `gradNorm`, and for GRPO `kl`, `entropy`, `clipFraction`. */
  metrics: z.record(z.string(), z.number()).refine((m) => 'loss' in m, 'metrics must include loss'),
});
export type TrainStepResponse = z.infer<typeof TrainStepResponseSchema>;

const ChatMessageSchema = z
  .object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() })
  .strict() satisfies z.ZodType<ChatMessage>;

/** One line of an SFT batch; the trainer applies the base model's chat template, as the inference server does. */
export const SftExampleSchema = z
  .object({
    prompt: z.array(ChatMessageSchema).min(1),
    /** The assistant's reply; the loss covers only these tokens. */
    completion: z.string(),
  })
  .strict();
export type SftExample = z.infer<typeof SftExampleSchema>;

const GRPO_FINISH_REASONS = ['stop', 'length', 'content_filter', 'tool_calls', 'function_call', 'abort'] as const;

/**
 * One line of a GRPO batch. The control plane computes advantages (group z-scores, SPARK's
 * step-level variants); the trainer only applies them. `stepAdvantages` puts a value on the
 * completion's characters up to each `end` (exclusive, from the previous end), replacing `advantage` there.
 */
export const GrpoExampleSchema = z
  .object({
    prompt: z.array(ChatMessageSchema).min(1),
    completion: z.string(),
    advantage: z.number(),
    stepAdvantages: z
      .array(z.object({ end: z.number().int().positive(), advantage: z.number() }).strict())
      .min(1)
      .refine((spans) => spans.every((s, i) => i === 0 || s.end > spans[i - 1]!.end), 'step ends must increase')
      .optional(),
    /**
     * Why the sampler stopped: `stop` ended the turn (the trainer trains the end-of-turn token),
     * `length` cut it at the token limit (no end-of-turn token: the policy never sampled one).
     * Optional: lines without it are trained as ended, as before the field existed.
     */
    finishReason: z.enum(GRPO_FINISH_REASONS).optional(),
  })
  .strict();
export type GrpoExample = z.infer<typeof GrpoExampleSchema>;

/** The OpenAI finish reasons a GRPO line may carry (and vLLM's `abort`). */
export type GrpoFinishReason = (typeof GRPO_FINISH_REASONS)[number];

/** A sampler's finish reason as a GRPO line carries it; one outside the protocol's list is left out. */
export function grpoFinishReason(reason: string): { finishReason?: GrpoFinishReason } {
  return (GRPO_FINISH_REASONS as readonly string[]).includes(reason) ? { finishReason: reason as GrpoFinishReason } : {};
}

// ---------------------------------------------------------------------------------------------
// POST /v1/sessions/{id}/checkpoints — save weights, optimiser state and the applied-step log.
// Writes every data object under `uri`, then `<uri>/COMMITTED` (put-if-absent) listing their
// SHA-256s. No marker, no checkpoint: readers ignore data without one, and a retried save
// overwrites it. Idempotent by URI: a URI already committed by this session at this step returns
// the existing checkpoint (`created: false`); committed with anything else it is `conflict`.

export const SaveCheckpointRequestSchema = z
  .object({
    protocolVersion: ProtocolVersionSchema,
    uri: CheckpointUriSchema,
    /** If given, the step the caller believes was applied last; otherwise `step-out-of-order`. */
    step: StepNumberSchema.nullable().optional(),
  })
  .strict();
export type SaveCheckpointRequest = z.infer<typeof SaveCheckpointRequestSchema>;

export const SaveCheckpointResponseSchema = CheckpointInfoSchema.extend({
  protocolVersion: ProtocolVersionSchema,
  /** false when the URI already held this checkpoint. */
  created: z.boolean(),
});
export type SaveCheckpointResponse = z.infer<typeof SaveCheckpointResponseSchema>;

/** Name of the commit marker object inside a checkpoint prefix. */
export const CHECKPOINT_MARKER_NAME = 'COMMITTED';

/** Contents of `<checkpoint>/COMMITTED`. Written last, in one PUT; loaders verify every listed object. */
export const CheckpointMarkerSchema = z.object({
  protocolVersion: ProtocolVersionSchema,
  sessionId: SessionIdSchema,
  step: StepNumberSchema.nullable(),
  /** The session's config, so a resume with another base model or adapter is refused. */
  config: SessionConfigSchema,
  /** Every data object of the checkpoint, by name relative to the checkpoint URI. */
  objects: z
    .array(
      z.object({
        name: z.string().regex(/^[^/].*[^/]$|^[^/]$/, 'a name relative to the checkpoint URI'),
        sha256: Sha256Schema,
        bytes: z.number().int().nonnegative(),
      }),
    )
    .min(1),
  committedAt: z.iso.datetime(),
});
export type CheckpointMarker = z.infer<typeof CheckpointMarkerSchema>;

// ---------------------------------------------------------------------------------------------
// POST /v1/sessions/{id}/publish — serve a committed checkpoint from an inference server, by
// vLLM's `POST {inferenceBaseURL}/load_lora_adapter` with `{lora_name: modelName, lora_path}`.
// Idempotent by `modelName`: the trainer unloads the name first if the server already has it.

export const PublishRequestSchema = z
  .object({
    protocolVersion: ProtocolVersionSchema,
    /** The inference server's OpenAI base URL including `/v1`, as in InferenceEndpoint. */
    inferenceBaseURL: z.url({ protocol: /^https?$/ }),
    /** The LoRA name the weights are served as (`lora_name`); one per published step keeps in-flight requests on the old weights. */
    modelName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,255}$/, 'a model name of letters, digits and . _ : / -'),
    /** A committed checkpoint of this session; absent means its last one. */
    checkpointUri: CheckpointUriSchema.optional(),
  })
  .strict();
export type PublishRequest = z.infer<typeof PublishRequestSchema>;

export const PublishResponseSchema = z.object({
  protocolVersion: ProtocolVersionSchema,
  modelName: z.string().min(1),
  /** The `lora_path` sent: the checkpoint URI, or a copy the inference server can read. */
  loraPath: z.string().min(1),
  checkpointUri: CheckpointUriSchema,
  step: StepNumberSchema.nullable(),
});
export type PublishResponse = z.infer<typeof PublishResponseSchema>;

// ---------------------------------------------------------------------------------------------
// DELETE /v1/sessions/{id} — close a session and free its memory (afterwards: unknown-session).

export const DeleteSessionResponseSchema = z.object({
  protocolVersion: ProtocolVersionSchema,
  sessionId: SessionIdSchema,
  deleted: z.literal(true),
});
export type DeleteSessionResponse = z.infer<typeof DeleteSessionResponseSchema>;

// ---------------------------------------------------------------------------------------------
// Errors: every non-2xx response has this body.

/** Each code with its HTTP status, and whether the same request may succeed when retried. */
export const TRAINER_ERRORS = {
  /** The message's protocolVersion (or the path's /vN) is not the server's. */
  'version-mismatch': { status: 400, retryable: false },
  /** Schema violation: a missing or unknown field, a bad value. */
  'invalid-request': { status: 400, retryable: false },
  /** No such session, e.g. the trainer restarted: create it again from the last checkpoint. */
  'unknown-session': { status: 404, retryable: false },
  /** A step number beyond `nextStep`, or a checkpoint `step` that is not the last applied one. */
  'step-out-of-order': { status: 409, retryable: false },
  /** An idempotency key reused for something else: sessionId with another config, step with another batch, a committed URI. */
  conflict: { status: 409, retryable: false },
  /** No COMMITTED marker at the URI (resumeFrom, checkpointUri), or no checkpoint yet to publish. */
  'checkpoint-not-found': { status: 404, retryable: false },
  /** The checkpoint's marker or data does not match: other base model or adapter, wrong SHA-256. */
  'checkpoint-mismatch': { status: 409, retryable: false },
  /** The inference server refused or failed to load the adapter. */
  'publish-failed': { status: 502, retryable: true },
  /** Anything else on the trainer's side; the request may be retried as is. */
  internal: { status: 500, retryable: true },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type TrainerErrorCode = keyof typeof TRAINER_ERRORS;
export const TRAINER_ERROR_CODES = Object.keys(TRAINER_ERRORS) as [TrainerErrorCode, ...TrainerErrorCode[]];

/**
 * The error body. Its `protocolVersion` is any version: a client must be able to read a
 * `version-mismatch` from a server that speaks another one.
 */
export const TrainerErrorBodySchema = z.object({
  protocolVersion: z.number().int().positive(),
  error: z.object({
    code: z.enum(TRAINER_ERROR_CODES),
    message: z.string().min(1),
    /** Machine-readable context, e.g. `{serverVersion, requestVersion}` or `{expectedStep, receivedStep}`. */
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type TrainerErrorBody = z.infer<typeof TrainerErrorBodySchema>;

// ---------------------------------------------------------------------------------------------
// Catalogue and checks

/** Every endpoint with its method, path template and message schemas (GET has no request body). */
export const TRAINER_ENDPOINTS = {
  createSession: { method: 'POST', path: '/v1/sessions', request: CreateSessionRequestSchema, response: CreateSessionResponseSchema },
  trainStep: { method: 'POST', path: '/v1/sessions/{id}/steps', request: TrainStepRequestSchema, response: TrainStepResponseSchema },
  saveCheckpoint: { method: 'POST', path: '/v1/sessions/{id}/checkpoints', request: SaveCheckpointRequestSchema, response: SaveCheckpointResponseSchema },
  publish: { method: 'POST', path: '/v1/sessions/{id}/publish', request: PublishRequestSchema, response: PublishResponseSchema },
  getSession: { method: 'GET', path: '/v1/sessions/{id}', request: null, response: SessionStateSchema },
  deleteSession: { method: 'DELETE', path: '/v1/sessions/{id}', request: null, response: DeleteSessionResponseSchema },
} as const;

/** Every message schema by name, as docs/trainer-protocol.md labels its examples. */
export const TRAINER_PROTOCOL_SCHEMAS = {
  CreateSessionRequest: CreateSessionRequestSchema,
  CreateSessionResponse: CreateSessionResponseSchema,
  TrainStepRequest: TrainStepRequestSchema,
  TrainStepResponse: TrainStepResponseSchema,
  SaveCheckpointRequest: SaveCheckpointRequestSchema,
  SaveCheckpointResponse: SaveCheckpointResponseSchema,
  CheckpointMarker: CheckpointMarkerSchema,
  PublishRequest: PublishRequestSchema,
  PublishResponse: PublishResponseSchema,
  DeleteSessionResponse: DeleteSessionResponseSchema,
  SessionState: SessionStateSchema,
  SftExample: SftExampleSchema,
  GrpoExample: GrpoExampleSchema,
  TrainerErrorBody: TrainerErrorBodySchema,
} as const;
export type TrainerProtocolSchemaName = keyof typeof TRAINER_PROTOCOL_SCHEMAS;

/**
 * Checks a message's `protocolVersion` before its schema is applied, so a version skew reads as
 * such rather than as a pile of field errors. Returns undefined when it matches, else a message
 * naming both versions.
 */
export function checkProtocolVersion(body: unknown): string | undefined {
  const ours = `this side speaks trainer protocol version ${TRAINER_PROTOCOL_VERSION}`;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return `expected a JSON object with protocolVersion ${TRAINER_PROTOCOL_VERSION}, got ${Array.isArray(body) ? 'an array' : body === null ? 'null' : typeof body}; ${ours}`;
  }
  if (!('protocolVersion' in body)) return `message has no protocolVersion; ${ours}`;
  const theirs = body.protocolVersion;
  if (theirs === TRAINER_PROTOCOL_VERSION) return undefined;
  return `trainer protocol version mismatch: the message is version ${JSON.stringify(theirs)}, ${ours}; run a control plane and trainer server that speak the same version`;
}

/** One line per issue, each naming the field by its path (`optimizer.learningrate: …`). */
export function describeProtocolIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const at = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `${at ? `${at}.` : ''}${k}: unknown field`).join('; ');
      }
      return `${at || '(body)'}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * Validates a message as either side receives it: version first, then schema. On failure,
 * returns the error body to send (server) or report (client).
 */
export function parseProtocolMessage<S extends z.ZodType>(schema: S, body: unknown): { ok: true; data: z.infer<S> } | { ok: false; error: TrainerErrorBody } {
  const versionProblem = checkProtocolVersion(body);
  if (versionProblem !== undefined) {
    const requestVersion = typeof body === 'object' && body !== null && 'protocolVersion' in body ? body.protocolVersion : null;
    return {
      ok: false,
      error: {
        protocolVersion: TRAINER_PROTOCOL_VERSION,
        error: { code: 'version-mismatch', message: versionProblem, details: { serverVersion: TRAINER_PROTOCOL_VERSION, requestVersion } },
      },
    };
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return { ok: true, data: parsed.data };
  return {
    ok: false,
    error: { protocolVersion: TRAINER_PROTOCOL_VERSION, error: { code: 'invalid-request', message: describeProtocolIssues(parsed.error) } },
  };
}
