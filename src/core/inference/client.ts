import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from 'openai';
import type { ChatMessage, SamplingParams } from './chat.js';
import type { InferenceEndpoint } from './endpoints.js';
import { createHttpFetch } from './http-fetch.js';

export type { InferenceEndpoint } from './endpoints.js';


export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  sampling: SamplingParams;
  /** Number of samples in this one request. */
  n: number;
}

export interface ChatChoice {
  index: number;
  text: string;
  finishReason: string;
}

export interface ChatResult {
  id: string;
  model: string;
  choices: ChatChoice[];
  usage: { promptTokens: number; completionTokens: number };
}

/** What went wrong talking to an inference server, and whether trying again can help. */
export type InferenceErrorKind =
  | 'rate-limited'
  | 'server-error'
  | 'timeout'
  | 'connection'
  | 'malformed-response'
  | 'truncated'
  | 'bad-request'
  | 'auth'
  | 'not-found'
  | 'cancelled';

const RETRYABLE: Record<InferenceErrorKind, boolean> = {
  'rate-limited': true,
  'server-error': true,
  timeout: true,
  connection: true,
  'malformed-response': true,
  truncated: true,
  'bad-request': false,
  auth: false,
  'not-found': false,
  cancelled: false,
};

export class InferenceError extends Error {
  override readonly name = 'InferenceError';
  readonly retryable: boolean;
  constructor(
    readonly kind: InferenceErrorKind,
    message: string,
    /** Server-requested delay before the next attempt (from `retry-after`). */
    readonly retryAfterMs?: number,
    readonly status?: number,
  ) {
    super(message);
    this.retryable = RETRYABLE[kind];
  }
}

/**
 * The one client for OpenAI-compatible inference. Retries are off: Temporal owns them,
 * so a failed call surfaces at once as a typed InferenceError the activity maps to a failure.
 */
export class InferenceClient {
  private readonly openai: OpenAI;

  constructor(readonly endpoint: InferenceEndpoint, env: NodeJS.ProcessEnv = process.env) {
    const apiKey = endpoint.apiKeyEnv ? env[endpoint.apiKeyEnv] : undefined;
    if (endpoint.apiKeyEnv && !apiKey) {
      throw new InferenceError('auth', `environment variable ${endpoint.apiKeyEnv} (the API key for ${endpoint.baseURL}) is not set on this worker`);
    }
    this.openai = new OpenAI({
      baseURL: endpoint.baseURL,
      apiKey: apiKey ?? 'EMPTY',
      maxRetries: 0,
      timeout: endpoint.timeoutMs,
      fetch: processFetch(),
    });
  }

  /**
   * One chat completion with `n` samples. A choice cut off by the token limit is returned
   * with finishReason `length`; callers decide whether that is acceptable.
   */
  async chat(request: ChatRequest, signal?: AbortSignal): Promise<ChatResult> {
    let response: OpenAI.Chat.Completions.ChatCompletion;
    try {
      response = await this.openai.chat.completions.create(
        {
          model: request.model,
          messages: request.messages,
          n: request.n,
          temperature: request.sampling.temperature,
          top_p: request.sampling.topP,
          max_tokens: request.sampling.maxTokens,
          seed: request.sampling.seed,
        },
        { signal },
      );
    } catch (err) {
      throw toInferenceError(err, this.endpoint.baseURL);
    }
    return parseCompletion(response, request.n);
  }
}

let sharedFetch: typeof fetch | undefined;
/** One transport per process, so every client shares its kept-alive connections. */
function processFetch(): typeof fetch {
  return (sharedFetch ??= createHttpFetch());
}

/**
 * Vendor responses differ slightly, so parse leniently (missing ids, null content or finish
 * reasons get defaults), but insist on the choices we asked for. Checked by hand rather than
 * with a schema: this runs once per model request, and on a busy stage-1 worker a schema
 * parse was a visible share of its CPU.
 */
function parseCompletion(raw: unknown, n: number): ChatResult {
  const body = record(raw, 'the body');
  const choicesRaw = body.choices;
  if (!Array.isArray(choicesRaw) || choicesRaw.length === 0) malformed('choices: expected a non-empty array');
  const choices = (choicesRaw as unknown[]).map((c, i) => {
    const choice = record(c, `choices[${i}]`);
    const index = choice.index;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0) malformed(`choices[${i}].index: expected a non-negative integer`);
    const message = record(choice.message, `choices[${i}].message`);
    const content = message.content ?? '';
    if (typeof content !== 'string') malformed(`choices[${i}].message.content: expected a string or null`);
    const finish = choice.finish_reason ?? 'stop';
    if (typeof finish !== 'string') malformed(`choices[${i}].finish_reason: expected a string or null`);
    return { index: index as number, text: content as string, finishReason: finish as string };
  });
  choices.sort((a, b) => a.index - b.index);
  if (choices.length !== n) {
    throw new InferenceError('malformed-response', `asked for n=${n} choices, got ${choices.length}`);
  }
  const usage = body.usage === undefined || body.usage === null ? {} : record(body.usage, 'usage');
  return {
    id: optionalString(body.id, 'id'),
    model: optionalString(body.model, 'model'),
    choices,
    usage: { promptTokens: optionalNumber(usage.prompt_tokens, 'usage.prompt_tokens'), completionTokens: optionalNumber(usage.completion_tokens, 'usage.completion_tokens') },
  };
}

function malformed(detail: string): never {
  throw new InferenceError('malformed-response', `the server answered with an unexpected body: ${detail}`);
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) malformed(`${where}: expected an object`);
  return value as Record<string, unknown>;
}

function optionalString(value: unknown, where: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') malformed(`${where}: expected a string`);
  return value as string;
}

function optionalNumber(value: unknown, where: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number') malformed(`${where}: expected a number`);
  return value as number;
}

/** Maps anything the openai client throws to an InferenceError, once, for every caller. */
export function toInferenceError(err: unknown, baseURL: string): InferenceError {
  if (err instanceof InferenceError) return err;
  if (err instanceof APIUserAbortError) return new InferenceError('cancelled', `request to ${baseURL} was cancelled`);
  if (err instanceof APIConnectionTimeoutError) return new InferenceError('timeout', `request to ${baseURL} timed out`);
  if (err instanceof APIConnectionError) {
    return new InferenceError('connection', `connection to ${baseURL} failed: ${causeMessage(err)}`);
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    const detail = `${baseURL} answered ${status}: ${err.message}`;
    if (status === 429) return new InferenceError('rate-limited', detail, retryAfterMs(err.headers), status);
    if (status === 400 || status === 422) return new InferenceError('bad-request', detail, undefined, status);
    if (status === 401 || status === 403) return new InferenceError('auth', detail, undefined, status);
    if (status === 404) return new InferenceError('not-found', detail, undefined, status);
    if (status === 408 || status === 409 || status >= 500) return new InferenceError('server-error', detail, retryAfterMs(err.headers), status);
    return new InferenceError('bad-request', detail, undefined, status);
  }
  // A 200 whose body is not JSON surfaces from the client as a parse error.
  if (err instanceof SyntaxError) return new InferenceError('malformed-response', `${baseURL} sent a body that is not valid JSON: ${err.message}`);
  const message = err instanceof Error ? err.message : String(err);
  return new InferenceError('connection', `request to ${baseURL} failed: ${message}`);
}

/** `retry-after` is seconds or an HTTP date; `retry-after-ms` is vLLM/OpenAI's finer variant. */
function retryAfterMs(headers: Headers | undefined): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Number(ms);
  const value = headers.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function causeMessage(err: APIConnectionError): string {
  const cause: unknown = err.cause;
  return cause instanceof Error ? cause.message : err.message;
}
