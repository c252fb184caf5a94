import { SyError } from '../core/errors.js';

interface Waiter {
  resolve: (got: boolean) => void;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
}

/**
 * A counting semaphore with a bounded FIFO queue: at most `limit` holders at once, at most
 * `queue` waiters; beyond that `acquire` fails at once with SY_ERR_OVERLOADED instead of letting
 * memory grow. Used twice per call: the executor's global limit and the provider's own, so a slow
 * provider fills its own queue and cannot take the slots of the others.
 */
export class Limiter {
  private active = 0;
  private waiters: Waiter[] = [];
  private head = 0;
  private waiting = 0;

  constructor(
    readonly name: string,
    readonly limit: number,
    readonly queue: number,
  ) {}

  /**
   * Takes a slot: `undefined` when one was free at once, else a promise that resolves `true`
   * with the slot, or `false` when `maxWaitMs` passed first (no slot taken). Throws
   * SY_ERR_OVERLOADED when the queue is full.
   */
  acquire(maxWaitMs = Infinity): Promise<boolean> | undefined {
    if (this.active < this.limit && this.waiting === 0) {
      this.active++;
      return undefined;
    }
    if (this.waiting >= this.queue) {
      throw new SyError(
        'SY_ERR_OVERLOADED',
        `${this.name} is at its concurrency limit (${this.limit} running, ${this.waiting} waiting); retry later`,
        { limiter: this.name, limit: this.limit, queue: this.queue, retryAfterMs: 1000 },
      );
    }
    if (maxWaitMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const w: Waiter = { resolve, timer: undefined, done: false };
      if (Number.isFinite(maxWaitMs)) {
        w.timer = setTimeout(() => {
          if (w.done) return;
          w.done = true;
          this.waiting--;
          resolve(false);
        }, maxWaitMs);
        w.timer.unref();
      }
      this.waiters.push(w);
      this.waiting++;
    });
  }

  release(): void {
    while (this.head < this.waiters.length) {
      const next = this.waiters[this.head++] as Waiter;
      if (this.head > 1024 && this.head * 2 > this.waiters.length) {
        this.waiters = this.waiters.slice(this.head);
        this.head = 0;
      }
      if (next.done) continue; // gave up waiting
      next.done = true;
      this.waiting--;
      clearTimeout(next.timer);
      // The slot passes straight to the next waiter: `active` stays the same.
      next.resolve(true);
      return;
    }
    this.active--;
  }

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting;
  }
}
