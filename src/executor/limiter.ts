import { SyError } from '../core/errors.js';

/**
 * A counting semaphore with a bounded FIFO queue: at most `limit` holders at once, at most
 * `queue` waiters; beyond that `acquire` fails at once with SY_ERR_OVERLOADED instead of letting
 * memory grow. Used twice per call: the executor's global limit and the provider's own, so a slow
 * provider fills its own queue and cannot take the slots of the others.
 */
export class Limiter {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  private head = 0;

  constructor(
    readonly name: string,
    readonly limit: number,
    readonly queue: number,
  ) {}

  /** Resolves when a slot is held (synchronously true when one is free right away). */
  tryAcquire(): boolean {
    if (this.active < this.limit && this.queued === 0) {
      this.active++;
      return true;
    }
    return false;
  }

  acquire(): Promise<void> | undefined {
    if (this.tryAcquire()) return undefined;
    if (this.queued >= this.queue) {
      throw new SyError(
        'SY_ERR_OVERLOADED',
        `${this.name} is at its concurrency limit (${this.limit} running, ${this.queued} waiting); retry later`,
        { limiter: this.name, limit: this.limit, queue: this.queue, retryAfterMs: 1000 },
      );
    }
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    if (this.head < this.waiters.length) {
      const next = this.waiters[this.head] as () => void;
      this.waiters[this.head++] = noop;
      if (this.head > 1024 && this.head * 2 > this.waiters.length) {
        this.waiters.splice(0, this.head);
        this.head = 0;
      }
      // The slot passes straight to the next waiter: `active` stays the same.
      next();
      return;
    }
    this.active--;
  }

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiters.length - this.head;
  }
}

function noop(): void {}
