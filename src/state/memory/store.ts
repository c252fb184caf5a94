import { PASS, type GateOp, type GateResult, type SettleOp, type StateStore } from '../store.js';

interface Holder {
  holder: string;
  done: boolean;
  expiresAt: number;
  stored: string | undefined;
}

/** Sweep expired entries after this many gate calls (lazy: no timers, fake clocks work). */
const SWEEP_EVERY = 10_000;

/**
 * The in-process state store: exact and atomic because JavaScript runs one gate() at a time,
 * and synchronous (it returns values, not promises). State lives as long as the process; use a
 * durable backend to survive restarts or share state between processes.
 *
 * Throttles are sliding-window logs: the accepted timestamps of the last window per key, so
 * "at most `limit` in any window of `windowMs`" holds exactly and `retryAfterMs` is when the
 * oldest counted call leaves the window.
 */
export class MemoryStateStore implements StateStore {
  readonly backend = 'memory';
  private readonly dedup = new Map<string, Holder>();
  private readonly idempotency = new Map<string, Holder>();
  private readonly windows = new Map<string, number[]>();
  private calls = 0;

  gate(ops: readonly GateOp[], now: number, dryRun = false): GateResult {
    if (++this.calls % SWEEP_EVERY === 0) this.sweep(now);
    // Check everything first; apply only when every op passes.
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as GateOp;
      if (op.kind === 'throttle') {
        for (const { limit, windowMs } of op.limits) {
          const log = this.window(op.key, windowMs, now);
          if (log !== undefined && log.length >= limit) {
            const oldest = log[log.length - limit] as number;
            return {
              pass: false,
              index: i,
              kind: 'throttle',
              retryAfterMs: Math.max(1, oldest + windowMs - now),
              limit,
              windowMs,
            };
          }
        }
      } else {
        const map = op.kind === 'dedup' ? this.dedup : this.idempotency;
        const held = map.get(op.key);
        if (held !== undefined && held.expiresAt > now) {
          return {
            pass: false,
            index: i,
            kind: op.kind,
            inFlight: !held.done,
            holder: held.holder,
            stored: held.stored,
          };
        }
      }
    }
    if (dryRun) return PASS;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as GateOp;
      if (op.kind === 'throttle') {
        for (const { windowMs } of op.limits) {
          const id = windowId(op.key, windowMs);
          const log = this.windows.get(id);
          if (log === undefined) this.windows.set(id, [now]);
          else log.push(now);
        }
      } else {
        const map = op.kind === 'dedup' ? this.dedup : this.idempotency;
        map.set(op.key, {
          holder: op.actionId,
          done: false,
          expiresAt: now + op.ttlMs,
          stored: undefined,
        });
      }
    }
    return PASS;
  }

  settle(ops: readonly SettleOp[]): void {
    for (const op of ops) {
      const map = op.gate === 'dedup' ? this.dedup : this.idempotency;
      const held = map.get(op.key);
      if (held === undefined || held.holder !== op.actionId) continue;
      if (op.op === 'release') {
        map.delete(op.key);
      } else {
        held.done = true;
        held.stored = op.outcome;
      }
    }
  }

  close(): Promise<void> {
    this.dedup.clear();
    this.idempotency.clear();
    this.windows.clear();
    return Promise.resolve();
  }

  /** The log of one (key, window), with entries older than the window dropped. */
  private window(key: string, windowMs: number, now: number): number[] | undefined {
    const log = this.windows.get(windowId(key, windowMs));
    if (log === undefined) return undefined;
    const cutoff = now - windowMs;
    let drop = 0;
    while (drop < log.length && (log[drop] as number) <= cutoff) drop++;
    if (drop > 0) log.splice(0, drop);
    return log;
  }

  private sweep(now: number): void {
    for (const map of [this.dedup, this.idempotency]) {
      for (const [key, held] of map) if (held.expiresAt <= now) map.delete(key);
    }
    for (const [id, log] of this.windows) {
      const windowMs = Number(id.slice(id.lastIndexOf('\u0000') + 1));
      if (log.length === 0 || (log[log.length - 1] as number) + windowMs <= now) {
        this.windows.delete(id);
      }
    }
  }
}

function windowId(key: string, windowMs: number): string {
  return `${key}\u0000${windowMs}`;
}
