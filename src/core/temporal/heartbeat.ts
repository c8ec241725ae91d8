import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';

/** The activity's cancellation signal, for many concurrent requests to listen to at once. */
export function activityCancellation(): AbortSignal {
  const signal = Context.current().cancellationSignal;
  setMaxListeners(0, signal);
  return signal;
}

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
