/**
 * The one client for trainer servers speaking trainer protocol v1 (docs/trainer-protocol.md).
 * No retries here: activities decide (Temporal retries what is retryable; `unknown-session`
 * is answered by recreating the session from its last checkpoint).
 */
import type { z } from 'zod';
import type {
  CreateSessionRequest, CreateSessionResponse, DeleteSessionResponse, PublishRequest, PublishResponse, SaveCheckpointRequest,
  SaveCheckpointResponse, SessionState, TrainerErrorCode, TrainStepRequest, TrainStepResponse,
} from './protocol.js';
import { createHttpFetch } from '../inference/http-fetch.js';
import {
  parseProtocolMessage, TRAINER_ENDPOINTS, TRAINER_ERRORS, TRAINER_PROTOCOL_VERSION, TrainerErrorBodySchema,
} from './protocol.js';

/** Codes of the protocol, plus `unavailable` when the server did not answer at all. */
export type TrainerFailureCode = TrainerErrorCode | 'unavailable';

export class TrainerError extends Error {
  override readonly name = 'TrainerError';
  readonly retryable: boolean;
  constructor(
    readonly code: TrainerFailureCode,
    message: string,
    readonly status?: number,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.retryable = code === 'unavailable' ? true : TRAINER_ERRORS[code].retryable;
  }
}

type Endpoint = keyof typeof TRAINER_ENDPOINTS;

/**
 * node:http with keep-alive, not the built-in fetch: undici gives up on a response whose headers
 * take more than 5 minutes, and a full fine-tune's checkpoint or session load can take longer.
 */
const trainerFetch = createHttpFetch({ maxSockets: 64 });

export class TrainerClient {
  /** Base URL without the version, e.g. http://127.0.0.1:8400 */
  readonly baseURL: string;

  /**
   * `signal`: the activity's cancellation, which ends every wait. There is no fixed timeout
   * unless `timeoutMs` is given: a request waits on its operation (a full fine-tune's checkpoint
   * or session load can take longer than any fixed bound), and the activity's heartbeat and
   * start-to-close timeouts decide when waiting is over.
   */
  constructor(baseURL: string, private readonly options: { signal?: AbortSignal; timeoutMs?: number } = {}) {
    this.baseURL = baseURL.replace(/\/+$/, '').replace(/\/v\d+$/, '');
  }

  createSession(req: Omit<CreateSessionRequest, 'protocolVersion'>): Promise<CreateSessionResponse> {
    return this.call('createSession', null, { protocolVersion: TRAINER_PROTOCOL_VERSION, ...req });
  }

  getSession(sessionId: string): Promise<SessionState> {
    return this.call('getSession', sessionId, undefined);
  }

  /** Closes the session and frees its memory; afterwards it is `unknown-session`. */
  deleteSession(sessionId: string): Promise<DeleteSessionResponse> {
    return this.call('deleteSession', sessionId, undefined);
  }

  trainStep(sessionId: string, req: Omit<TrainStepRequest, 'protocolVersion'>): Promise<TrainStepResponse> {
    return this.call('trainStep', sessionId, { protocolVersion: TRAINER_PROTOCOL_VERSION, ...req });
  }

  saveCheckpoint(sessionId: string, req: Omit<SaveCheckpointRequest, 'protocolVersion'>): Promise<SaveCheckpointResponse> {
    return this.call('saveCheckpoint', sessionId, { protocolVersion: TRAINER_PROTOCOL_VERSION, ...req });
  }

  publish(sessionId: string, req: Omit<PublishRequest, 'protocolVersion'>): Promise<PublishResponse> {
    return this.call('publish', sessionId, { protocolVersion: TRAINER_PROTOCOL_VERSION, ...req });
  }

  private signal(): AbortSignal | undefined {
    const { signal, timeoutMs } = this.options;
    const signals = [signal, timeoutMs !== undefined ? AbortSignal.timeout(timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined);
    return signals.length > 1 ? AbortSignal.any(signals) : signals[0];
  }

  private async call<E extends Endpoint>(name: E, sessionId: string | null, body: unknown): Promise<z.infer<(typeof TRAINER_ENDPOINTS)[E]['response']>> {
    const endpoint = TRAINER_ENDPOINTS[name];
    const url = `${this.baseURL}${endpoint.path.replace('{id}', encodeURIComponent(sessionId ?? ''))}`;
    let res: Response;
    try {
      res = await trainerFetch(url, {
        method: endpoint.method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(this.signal() ? { signal: this.signal() } : {}),
      });
    } catch (err) {
      const cause = (err as Error).name === 'AbortError'
        ? 'aborted: the activity was cancelled or timed out'
        : (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code ?? (err as Error).message;
      throw new TrainerError('unavailable', `trainer ${this.baseURL} did not answer ${endpoint.method} ${endpoint.path} (${cause})`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new TrainerError(res.status >= 500 ? 'internal' : 'invalid-request', `trainer ${this.baseURL} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`, res.status);
    }
    if (!res.ok) {
      const parsed = TrainerErrorBodySchema.safeParse(json);
      if (!parsed.success) throw new TrainerError(res.status >= 500 ? 'internal' : 'invalid-request', `trainer ${this.baseURL} answered ${res.status}: ${text.slice(0, 300)}`, res.status);
      const { code, message, details } = parsed.data.error;
      throw new TrainerError(code, `trainer ${code}: ${message}`, res.status, details);
    }
    const parsed = parseProtocolMessage(endpoint.response, json);
    if (!parsed.ok) throw new TrainerError(parsed.error.error.code, `trainer ${this.baseURL} sent an answer this client cannot read: ${parsed.error.error.message}`, res.status);
    return parsed.data as z.infer<(typeof TRAINER_ENDPOINTS)[E]['response']>;
  }
}
