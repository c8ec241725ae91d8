/** At most `max()` holders at once; the rest wait first-in, first-out. */

/** Thrown when the waiting line is full. */
export class QueueFullError extends Error {
  constructor() {
    super('the request queue is full');
  }
}

export class ConcurrencyLimiter {
  private active = 0;
  private peak = 0;
  private readonly waiting: (() => void)[] = [];

  /** Both limits are read on every call, so runtime config changes apply at once. */
  constructor(private readonly max: () => number, private readonly maxQueue: () => number | null) {}

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** The most holders seen at once since the last {@link resetPeak}. */
  get maxInFlight(): number {
    return this.peak;
  }

  resetPeak(): void {
    this.peak = this.active;
  }

  /**
   * Resolves with a release function once a slot is free. Rejects with QueueFullError when
   * the line is full, or when the signal aborts while waiting (the waiter leaves the line).
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active < this.max() && this.waiting.length === 0) return Promise.resolve(this.take());
    const limit = this.maxQueue();
    if (limit !== null && this.waiting.length >= limit) return Promise.reject(new QueueFullError());
    return new Promise((resolve, reject) => {
      const admit = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.take());
      };
      const onAbort = () => {
        const at = this.waiting.indexOf(admit);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(new Error('aborted while queued'));
      };
      if (signal?.aborted) return reject(new Error('aborted while queued'));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(admit);
    });
  }

  private take(): () => void {
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.admitNext();
    };
  }

  private admitNext(): void {
    while (this.active < this.max() && this.waiting.length > 0) this.waiting.shift()?.();
  }
}
