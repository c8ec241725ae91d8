/** Direct access to the sandbox world (no HTTP) for property tests. */
import type { ChatMessage } from '../../src/core/inference/chat.js';
import type { SimModelOverrides, SimModelParams } from '../../sandbox/model-server/params.js';
import { applyOverrides, DEFAULT_SIM_MODELS } from '../../sandbox/model-server/params.js';
import { respond } from '../../sandbox/world/world.js';
import { Sampler } from '../../sandbox/world/sampling.js';

export interface AskOptions {
  temperature?: number;
  choiceIndex?: number;
  seed?: number;
  overrides?: SimModelOverrides;
  serverSeed?: number;
}

export function modelParams(model: string, overrides?: SimModelOverrides): SimModelParams {
  const base = DEFAULT_SIM_MODELS[model];
  if (!base) throw new Error(`unknown model ${model}`);
  return applyOverrides(base, overrides);
}

/** One choice's content from a default model (optionally with overrides, like an adapter). */
export function ask(model: string, messages: readonly ChatMessage[], options: AskOptions = {}): string {
  return respond({
    serverSeed: options.serverSeed ?? 1,
    family: model,
    params: modelParams(model, options.overrides),
    messages,
    temperature: options.temperature ?? 0.8,
    topP: 1,
    seed: options.seed ?? 0,
    choiceIndex: options.choiceIndex ?? 0,
  }).content;
}

/** A sampler that remembers every likelihood decision it was asked for. */
export class RecordingSampler extends Sampler {
  readonly drawn: { logit: number; outcome: boolean }[] = [];
  override chanceLogit(x: number): boolean {
    const outcome = super.chanceLogit(x);
    this.drawn.push({ logit: x, outcome });
    return outcome;
  }
}
