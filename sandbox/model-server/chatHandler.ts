/**
 * `POST /v1/chat/completions`: validate, pick the fault for this attempt, wait for a slot and
 * the simulated latency, generate every choice, answer (or misbehave), and log the outcome.
 * Outputs depend only on the request and the model: never on faults, timing or order.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { detectRole } from '../world/roles.js';
import type { Role } from '../world/roles.js';
import { hashParts } from '../../src/core/random.js';
import { buildChatResponse, chatRequestSchema, limitChoice, normalizeChatRequest, requestKey } from './completions.js';
import type { SimServerConfig } from './config.js';
import type { FaultKind } from './faults.js';
import { decideFault } from './faults.js';
import { describeZodError, HttpError, readJson, sendError, sendJson } from './http.js';
import { delay, sampleLatencyMs } from './latency.js';
import type { ModelRegistry } from './models.js';
import type { ConcurrencyLimiter } from './queue.js';
import { QueueFullError } from './queue.js';
import type { RequestLog } from './requestLog.js';
import { respond } from '../world/world.js';

/** What the handler needs from the server. */
export interface ChatHandlerDeps {
  config: () => SimServerConfig;
  models: ModelRegistry;
  limiter: ConcurrencyLimiter;
  log: RequestLog;
  /** Attempts seen per request key, so a retry draws a fresh fault. */
  attempts: Map<string, number>;
}

export async function handleChatCompletion(req: IncomingMessage, res: ServerResponse, deps: ChatHandlerDeps): Promise<void> {
  const parsed = chatRequestSchema.safeParse(await readJson(req));
  if (!parsed.success) throw new HttpError(400, `Invalid request: ${describeZodError(parsed.error)}`, 'invalid_request_error', String(parsed.error.issues[0]?.path.join('.') ?? ''));
  if (parsed.data.stream) throw new HttpError(400, 'stream: streaming is not supported by this server', 'invalid_request_error', 'stream');
  const request = normalizeChatRequest(parsed.data);
  const model = deps.models.get(request.model);
  if (!model) throw new HttpError(404, `The model '${request.model}' does not exist.`, 'NotFoundError', 'model', 'model_not_found');

  const config = deps.config();
  const key = requestKey(request);
  const role: Role = detectRole(request.messages);
  const attempt = deps.attempts.get(key) ?? 0;
  deps.attempts.set(key, attempt + 1);
  const fault = decideFault(config.seed, key, attempt, config.faults);
  const arrived = Date.now();
  const record = (status: number, f?: FaultKind | 'queue_full', responseId?: string) => deps.log.record({
    at: new Date(arrived).toISOString(), model: request.model, role, key, n: request.n, status,
    ...(f ? { fault: f } : {}), ...(responseId ? { responseId } : {}), durationMs: Date.now() - arrived,
  });
  const retryAfter = { 'retry-after': String(config.faults.retryAfterSeconds) };

  if (fault === 'rate_limit') {
    sendError(res, new HttpError(429, 'Rate limit reached, retry later.', 'rate_limit_error', null, 'rate_limit_exceeded'), retryAfter);
    record(429, fault);
    return;
  }

  // The client may give up at any time: stop waiting for it.
  const gone = new AbortController();
  res.on('close', () => gone.abort());
  let release: (() => void) | null = null;
  try {
    release = await deps.limiter.acquire(gone.signal);
  } catch (err) {
    if (err instanceof QueueFullError) {
      sendError(res, new HttpError(429, 'The server is overloaded: the request queue is full.', 'rate_limit_error', null, 'queue_full'), retryAfter);
      record(429, 'queue_full');
    } else record(0);
    return;
  }
  try {
    await delay(sampleLatencyMs(config.seed, key, attempt, config.latency, request.n), gone.signal);
  } catch {
    release();
    record(0, fault ?? undefined);
    return;
  }
  try {
    if (fault === 'hang') {
      // Hold no slot while hanging: a stuck request should not starve the others.
      release();
      if (!gone.signal.aborted) await new Promise<void>((resolve) => gone.signal.addEventListener('abort', () => resolve(), { once: true }));
      record(0, fault);
      return;
    }
    if (fault === 'reset') {
      req.socket.destroy();
      record(0, fault);
      return;
    }
    if (fault === 'server_error') {
      sendError(res, new HttpError(500, 'The server had an error while processing your request.', 'server_error', null, 'internal_error'));
      record(500, fault);
      return;
    }
    const choices = Array.from({ length: request.n }, (_, choiceIndex) => {
      const { content } = respond({
        serverSeed: config.seed, family: model.family, params: model.params, messages: request.messages,
        temperature: request.temperature, topP: request.topP, seed: request.seed, choiceIndex,
      });
      const limited = limitChoice(content, request.maxTokens);
      return fault === 'truncated' ? { content: limited.content.slice(0, Math.floor(limited.content.length / 2)), finishReason: 'length' as const } : limited;
    });
    const body = buildChatResponse(`chatcmpl-${hashParts(key, attempt).slice(0, 24)}`, request, choices);
    if (fault === 'malformed') {
      const text = JSON.stringify(body);
      const broken = text.slice(0, Math.floor(text.length / 2));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(broken) });
      res.end(broken);
    } else sendJson(res, 200, body);
    record(200, fault ?? undefined, body.id);
  } finally {
    release();
  }
}
