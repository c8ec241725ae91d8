/** One chat message in the OpenAI chat-completions shape. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Sampling settings sent with a chat completion; part of every cache key. */
export interface SamplingParams {
  temperature: number;
  topP?: number;
  maxTokens?: number;
  /** Seed forwarded to servers that honour it (vLLM, SGLang, the sandbox). */
  seed?: number;
}
