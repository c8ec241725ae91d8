/**
 * The sandbox model server: an OpenAI-compatible HTTP API (chat completions, models) with
 * vLLM's LoRA endpoints, plus admin endpoints for tests (`/sim/log`, `/sim/config`).
 * node:http only.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { handleChatCompletion } from './chatHandler.js';
import type { SimServerConfig, SimServerConfigPatch } from './config.js';
import { DEFAULT_SIM_SERVER_CONFIG, simServerConfigPatchSchema, simServerConfigSchema } from './config.js';
import { describeZodError, HttpError, listen, readJson, sendError, sendJson, sendText } from './http.js';
import type { AdapterReader } from './models.js';
import { AdapterError, ModelRegistry, readLocalAdapter } from './models.js';
import type { SimModelOverrides } from './params.js';
import { deepMerge } from './params.js';
import { ConcurrencyLimiter } from './queue.js';
import { RequestLog } from './requestLog.js';

/** How to start a sandbox model server: its knobs (missing ones take {@link DEFAULT_SIM_SERVER_CONFIG}) and wiring. */
export interface SimServerOptions extends SimServerConfigPatch {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Extra base models: overrides of `base` (default sim-policy). */
  models?: Record<string, SimModelOverrides & { base?: string }>;
  /** Reads the adapter document at a `lora_path` (default: local paths and file:// URIs). */
  readAdapter?: AdapterReader;
  /** Also append every request-log entry to this JSONL file. */
  logFile?: string;
}

/** A running sandbox model server. */
export interface SimServer {
  /** Base URL for OpenAI clients, e.g. http://127.0.0.1:8300/v1 */
  url: string;
  port: number;
  log: RequestLog;
  /** The current knobs. */
  config(): SimServerConfig;
  /** Changes knobs at runtime (validated; throws on invalid values). */
  setConfig(patch: SimServerConfigPatch): SimServerConfig;
  close(): Promise<void>;
}

const loadAdapterSchema = z.object({ lora_name: z.string().min(1), lora_path: z.string().min(1) });
const unloadAdapterSchema = z.object({ lora_name: z.string().min(1) });

function applyPatch(current: SimServerConfig, raw: unknown): SimServerConfig {
  const patch = simServerConfigPatchSchema.safeParse(raw);
  if (!patch.success) throw new HttpError(400, `Invalid config: ${describeZodError(patch.error)}`);
  const next = simServerConfigSchema.safeParse(deepMerge(current, patch.data));
  if (!next.success) throw new HttpError(400, `Invalid config: ${describeZodError(next.error)}`);
  return next.data;
}

export async function startSimServer(options: SimServerOptions = {}): Promise<SimServer> {
  const { port: _port, host: _host, models: _models, readAdapter: _reader, logFile: _logFile, ...knobs } = options;
  let config = applyPatch(DEFAULT_SIM_SERVER_CONFIG, knobs);
  const models = new ModelRegistry(options.models);
  const readAdapter = options.readAdapter ?? readLocalAdapter;
  const log = new RequestLog(options.logFile);
  const limiter = new ConcurrencyLimiter(() => config.maxConcurrent, () => config.maxQueue);
  const attempts = new Map<string, number>();
  const chatDeps = { config: () => config, models, limiter, log, attempts };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://sim').pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const is = (m: string, p: string) => method === m && path === p;

    if (is('POST', '/v1/chat/completions')) return handleChatCompletion(req, res, chatDeps);
    if (is('GET', '/v1/models')) {
      const data = models.list().map((m) => ({ id: m.name, object: 'model', created: models.createdAt, owned_by: 'spark-sim', root: m.parent ?? m.name, parent: m.parent }));
      return sendJson(res, 200, { object: 'list', data });
    }
    if (is('GET', '/health')) return sendText(res, 200, '');
    if (is('POST', '/v1/load_lora_adapter')) {
      const body = loadAdapterSchema.safeParse(await readJson(req));
      if (!body.success) throw new HttpError(400, describeZodError(body.error));
      if (models.get(body.data.lora_name)) throw new AdapterError(`The lora adapter '${body.data.lora_name}' has already been loaded.`);
      let document: unknown;
      try {
        document = await readAdapter(body.data.lora_path);
      } catch (err) {
        throw new AdapterError(`Loading lora ${body.data.lora_name} failed: cannot read '${body.data.lora_path}': ${(err as Error).message}`);
      }
      models.load(body.data.lora_name, document);
      return sendText(res, 200, `Success: LoRA adapter '${body.data.lora_name}' added successfully.`);
    }
    if (is('POST', '/v1/unload_lora_adapter')) {
      const body = unloadAdapterSchema.safeParse(await readJson(req));
      if (!body.success) throw new HttpError(400, describeZodError(body.error));
      models.unload(body.data.lora_name);
      return sendText(res, 200, `Success: LoRA adapter '${body.data.lora_name}' removed successfully.`);
    }
    if (is('GET', '/sim/log')) {
      return sendJson(res, 200, { entries: log.entries, counts: log.counts(), inFlight: limiter.inFlight, maxInFlight: limiter.maxInFlight, queued: limiter.queued });
    }
    if (is('POST', '/sim/log/reset')) {
      log.reset();
      limiter.resetPeak();
      return sendJson(res, 200, { ok: true });
    }
    if (is('GET', '/sim/config')) return sendJson(res, 200, config);
    if (is('POST', '/sim/config')) {
      config = applyPatch(config, await readJson(req));
      return sendJson(res, 200, config);
    }
    throw new HttpError(404, `No route for ${method} ${path}`, 'NotFoundError');
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (err instanceof HttpError) sendError(res, err);
      else if (err instanceof AdapterError) sendError(res, new HttpError(400, err.message, 'BadRequestError'));
      else sendError(res, new HttpError(500, `Internal error: ${(err as Error).message}`, 'server_error'));
    });
  });
  const { port, close } = await listen(server, options.port, options.host);
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}/v1`,
    port,
    log,
    config: () => config,
    setConfig(patch) {
      try {
        config = applyPatch(config, patch);
      } catch (err) {
        throw err instanceof HttpError ? new Error(err.message) : err;
      }
      return config;
    },
    close,
  };
}
