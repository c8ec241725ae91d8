import { z } from 'zod';

/**
 * An OpenAI-compatible inference server (vLLM, SGLang, llama.cpp server, hosted APIs, the sandbox).
 * Plain data: it travels in workflow inputs, so it names the environment variable that holds
 * the API key instead of holding the key.
 */
export const InferenceEndpointSchema = z.object({
  /** Base URL including `/v1`, e.g. `http://127.0.0.1:8300/v1`. */
  baseURL: z.string().url(),
  /** Environment variable on the worker holding the API key; unset sends a placeholder key. */
  apiKeyEnv: z.string().optional(),
  /** Whether the server honours `n` > 1 (vLLM, SGLang, OpenAI do). Default true. */
  supportsN: z.boolean().default(true),
  /** Per-request timeout in milliseconds. Default 120000. */
  timeoutMs: z.number().int().positive().default(120_000),
});
export type InferenceEndpoint = z.infer<typeof InferenceEndpointSchema>;
export type InferenceEndpointInput = z.input<typeof InferenceEndpointSchema>;

