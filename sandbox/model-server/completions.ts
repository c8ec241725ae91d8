/**
 * The OpenAI chat-completions request the server accepts (parsed strictly where it matters,
 * unknown fields ignored) and the response it builds.
 */
import { z } from 'zod';
import type { ChatMessage } from '../../src/core/inference/chat.js';
import { hashParts } from '../../src/core/random.js';

const textPart = z.object({ type: z.literal('text'), text: z.string() });

const messageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(textPart)]).nullable(),
});

export const chatRequestSchema = z.object({
  model: z.string().min(1),
  messages: z.array(messageSchema).min(1),
  n: z.number().int().min(1).max(128).optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  max_tokens: z.number().int().min(1).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  stream: z.boolean().nullable().optional(),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** A request reduced to what the model's output depends on. */
export interface NormalizedChatRequest {
  model: string;
  messages: ChatMessage[];
  n: number;
  temperature: number;
  topP: number;
  seed: number | null;
  maxTokens: number | null;
}

export function normalizeChatRequest(body: ChatRequest): NormalizedChatRequest {
  const messages = body.messages.map((m): ChatMessage => ({
    // Developer instructions act as system prompts; tool results are read as user turns.
    role: m.role === 'developer' ? 'system' : m.role === 'tool' ? 'user' : m.role,
    content: typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => p.text).join(''),
  }));
  return {
    model: body.model,
    messages,
    n: body.n ?? 1,
    temperature: body.temperature ?? 1, // OpenAI's default
    topP: body.top_p ?? 1,
    seed: body.seed ?? null,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? null,
  };
}

/** The request's identity: same key, same answer. */
export function requestKey(r: NormalizedChatRequest): string {
  return hashParts('chat', r.model, ...r.messages.flatMap((m) => [m.role, m.content]), r.temperature, r.topP, r.seed ?? 'none', r.maxTokens ?? 'none', r.n);
}

/** A crude token count (about four characters per token), used for usage and max_tokens alike. */
export function countTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Cuts text to at most `maxTokens` crude tokens. */
export function truncateToTokens(text: string, maxTokens: number): string {
  return text.slice(0, maxTokens * 4);
}

/** One generated choice. */
export interface GeneratedChoice {
  content: string;
  finishReason: 'stop' | 'length';
}

/** Applies max_tokens: longer outputs are cut and finish with 'length'. */
export function limitChoice(content: string, maxTokens: number | null): GeneratedChoice {
  if (maxTokens !== null && countTokens(content) > maxTokens) return { content: truncateToTokens(content, maxTokens), finishReason: 'length' };
  return { content, finishReason: 'stop' };
}

/** The OpenAI response body. */
export function buildChatResponse(id: string, r: NormalizedChatRequest, choices: readonly GeneratedChoice[]) {
  const promptTokens = r.messages.reduce((sum, m) => sum + countTokens(m.content) + 3, 0);
  const completionTokens = choices.reduce((sum, c) => sum + countTokens(c.content), 0);
  return {
    id,
    object: 'chat.completion' as const,
    created: Math.floor(Date.now() / 1000),
    model: r.model,
    choices: choices.map((c, index) => ({
      index,
      message: { role: 'assistant' as const, content: c.content },
      finish_reason: c.finishReason,
      logprobs: null,
    })),
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
  };
}
