/**
 * The models a server serves: base models and LoRA adapters loaded on top of them.
 * An adapter is a JSON document of parameter overrides (plus an optional base model name).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ObjectStore } from '../../src/core/store/s3-store.js';
import type { AdapterDocument, SimModelOverrides, SimModelParams } from './params.js';
import { adapterDocumentSchema, applyOverrides, DEFAULT_SIM_MODELS } from './params.js';
import { describeZodError } from './http.js';

/** A model as served: its parameters and the family whose random stream it uses. */
export interface ServedModel {
  name: string;
  family: string;
  params: SimModelParams;
  /** The base model, for adapters. */
  parent: string | null;
}

/** Reads an adapter document from a path or URI. */
export type AdapterReader = (path: string) => Promise<unknown>;

/** Reads local paths and file:// URIs; a directory holds its document in `adapter.json`. */
export const readLocalAdapter: AdapterReader = async (path) => {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) && !path.startsWith('file://')) {
    throw new Error(`no reader for '${path}' (only local paths and file:// URIs)`);
  }
  const local = path.startsWith('file://') ? fileURLToPath(path) : path;
  const file = (await stat(local)).isDirectory() ? join(local, 'adapter.json') : local;
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
};

/**
 * Reads `s3://` paths from an object store (a checkpoint prefix holds `adapter.json`), everything
 * else locally: trainers publish checkpoints from S3, as vLLM loads LoRA weights a trainer saved.
 */
export function objectStoreAdapterReader(store: () => Pick<ObjectStore, 'getJson'>): AdapterReader {
  return async (path) => {
    if (!path.startsWith('s3://')) return readLocalAdapter(path);
    return store().getJson(path.endsWith('.json') ? path : `${path.replace(/\/+$/, '')}/adapter.json`);
  };
}

/** Why a LoRA request was refused; the server answers 400 with this message. */
export class AdapterError extends Error {}

export class ModelRegistry {
  private readonly models = new Map<string, ServedModel>();
  private readonly created = Math.floor(Date.now() / 1000);

  /** Registers the default models, then `extra` ones (each may start from `base`, default sim-policy). */
  constructor(extra: Record<string, SimModelOverrides & { base?: string }> = {}) {
    for (const [name, params] of Object.entries(DEFAULT_SIM_MODELS)) this.models.set(name, { name, family: name, params, parent: null });
    for (const [name, doc] of Object.entries(extra)) {
      const base = this.models.get(doc.base ?? 'sim-policy');
      if (!base) throw new Error(`model '${name}': unknown base model '${doc.base ?? ''}'`);
      const { base: _ignored, ...overrides } = doc;
      this.models.set(name, { name, family: name, params: applyOverrides(base.params, overrides), parent: null });
    }
  }

  get(name: string): ServedModel | undefined {
    return this.models.get(name);
  }

  list(): ServedModel[] {
    return [...this.models.values()];
  }

  get createdAt(): number {
    return this.created;
  }

  /** Loads an adapter document under `name` (vLLM refuses a name already in use). */
  load(name: string, raw: unknown): ServedModel {
    if (this.models.has(name)) throw new AdapterError(`The lora adapter '${name}' has already been loaded.`);
    const parsed = adapterDocumentSchema.safeParse(raw);
    if (!parsed.success) throw new AdapterError(`Invalid LoRA adapter '${name}': ${describeZodError(parsed.error)}`);
    const doc: AdapterDocument = parsed.data;
    const baseName = doc.base ?? this.defaultBase();
    const base = this.models.get(baseName);
    if (!base || base.parent !== null) throw new AdapterError(`Invalid LoRA adapter '${name}': base: unknown base model '${baseName}'`);
    const { base: _ignored, ...overrides } = doc;
    const model: ServedModel = { name, family: base.family, params: applyOverrides(base.params, overrides), parent: base.name };
    this.models.set(name, model);
    return model;
  }

  unload(name: string): void {
    const model = this.models.get(name);
    if (!model || model.parent === null) throw new AdapterError(`The lora adapter '${name}' cannot be found.`);
    this.models.delete(name);
  }

  private defaultBase(): string {
    return this.list().find((m) => m.parent === null)?.name ?? 'sim-policy';
  }
}
