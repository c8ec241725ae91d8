import { Context } from '@temporalio/activity';

/**
 * Heartbeats every `everyMs` while `fn` runs, so a worker that dies mid-call is noticed within
 * the heartbeat timeout instead of the (long) start-to-close timeout of a model call.
 * `details` is read at each beat, so callers can report progress through it.
 */
export async function withHeartbeat<T>(fn: () => Promise<T>, details: () => unknown = () => undefined, everyMs = 1000): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat(details());
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}
