/**
 * Pure pieces of running training on a trainer server: the data order, step-keyed names, and
 * the session ID a workflow derives from itself. No I/O, so workflows use them too.
 */
import type { ChatMessage } from '../inference/chat.js';
import { rngFrom } from '../random.js';
import { joinKey } from '../store/refs.js';
import type { SftExample } from './protocol.js';

/**
 * The examples of each train step: every epoch is a seeded permutation cut into batches of
 * `batchSize` (the last batch of an epoch may be smaller). Same inputs, same plan.
 */
export function planBatches(examples: number, opts: { epochs: number; batchSize: number; seed: number }): { epoch: number; indices: number[] }[] {
  const steps: { epoch: number; indices: number[] }[] = [];
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    const order = Array.from({ length: examples }, (_, i) => i);
    const rng = rngFrom(opts.seed, 'epoch', epoch);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let at = 0; at < order.length; at += opts.batchSize) steps.push({ epoch, indices: order.slice(at, at + opts.batchSize) });
  }
  return steps;
}

/** A chat example (prompt turns, then the assistant's answer) as the trainer protocol's SFT line. */
export function toSftExample(messages: readonly ChatMessage[]): SftExample {
  const last = messages.at(-1);
  if (!last || last.role !== 'assistant' || messages.length < 2) {
    throw new Error('an SFT example needs prompt messages followed by one assistant message');
  }
  return { prompt: messages.slice(0, -1).map((m) => ({ role: m.role, content: m.content })), completion: last.content };
}

/** Where the checkpoint after `stepsDone` steps lives: `<prefix>/step-000120` holds steps 0..119. */
export function checkpointUri(bucketUri: string, prefix: string, stepsDone: number): string {
  return `${bucketUri.replace(/\/+$/, '')}/${joinKey(prefix, `step-${String(stepsDone).padStart(6, '0')}`)}`;
}

/**
 * A trainer session ID for a workflow run: its ID (made URL-safe) and the first run's ID, so a
 * retried or continued run finds its session and a new run with the same workflow ID does not.
 */
export function sessionIdFor(workflowId: string, firstRunId: string): string {
  const safe = workflowId.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100);
  return `${safe || 'session'}-${firstRunId.replace(/[^A-Za-z0-9]/g, '').slice(0, 12)}`;
}
