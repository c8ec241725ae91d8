/**
 * The sandbox's models: one response per (request, choice index), computed from the prompt
 * and the model's parameters with seeded randomness. Nothing is scripted.
 *
 * Every decision draws from rngFrom(server seed, model family, role, messages, request seed,
 * temperature, top_p, choice index). The family is the base model's name, so an adapter
 * trained from a base sees the same random numbers as its base: differences between them
 * come from their parameters alone.
 */
import type { ChatMessage } from '../../src/core/inference/chat.js';
import type { Role } from './roles.js';
import { detectRole } from './roles.js';
import { hashParts, rngFrom } from '../../src/core/random.js';
import type { SimModelParams } from '../model-server/params.js';
import { writeCriticResponse } from './criticRole.js';
import { writeMergerResponse } from './mergerRole.js';
import { writePolicyResponse } from './policy.js';
import { writeProcessBenchResponse } from './processBenchRole.js';
import { readGeneratorQuestion } from './promptReader.js';
import { Sampler } from './sampling.js';
import { writeSelfJudgeResponse } from './selfJudge.js';
import { writeRewardModelResponse, writeVerifierResponse } from './verifierRole.js';

/** Everything one choice of a completion depends on. */
export interface WorldRequest {
  serverSeed: number;
  /** The base model's name: the random stream shared by a base and its adapters. */
  family: string;
  params: SimModelParams;
  messages: readonly ChatMessage[];
  temperature: number;
  topP: number;
  seed: number | null;
  choiceIndex: number;
}

/** A stable hash of a conversation. */
export function hashMessages(messages: readonly ChatMessage[]): string {
  return hashParts(...messages.flatMap((m) => [m.role, m.content]));
}

/** The sampler of one choice; greedy decoding ignores the choice index, so all choices agree. */
export function samplerFor(request: WorldRequest, role: Role): Sampler {
  const sample = request.temperature <= 0 ? 'greedy' : request.choiceIndex;
  const rng = rngFrom(request.serverSeed, request.family, role, hashMessages(request.messages), request.seed ?? 'no-seed', request.temperature, request.topP, sample);
  return new Sampler(rng, request.temperature);
}

/** The content of one choice and the role it was answered in. */
export function respond(request: WorldRequest): { role: Role; content: string } {
  const role = detectRole(request.messages);
  const sampler = samplerFor(request, role);
  const identity = { serverSeed: request.serverSeed, family: request.family, role };
  const { params, messages } = request;
  switch (role) {
    case 'verifier': return { role, content: writeVerifierResponse(messages, params, sampler, identity) };
    case 'critic': return { role, content: writeCriticResponse(messages, params, sampler, identity) };
    case 'merger': return { role, content: writeMergerResponse(messages, params, sampler, identity) };
    case 'orm':
    case 'prm': return { role, content: writeRewardModelResponse(role, messages, params, sampler, identity) };
    case 'processbench': return { role, content: writeProcessBenchResponse(messages, params, sampler, identity) };
    case 'pointwise-judge':
    case 'pairwise-judge':
    case 'reflection':
    case 'resolve': return { role, content: writeSelfJudgeResponse(role, messages, params, sampler) };
    case 'generator':
    case 'unknown': return { role, content: writePolicyResponse(readGeneratorQuestion(messages), params.policy, sampler) };
  }
}
