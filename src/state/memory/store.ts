import {
  PASS,
  type DueItem,
  type Lease,
  type Versioned,
  type GateOp,
  type GateResult,
  type SettleOp,
  type StateStore,
  type ThrottleOp,
} from '../store.js';

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
  private readonly kv = new Map<
    string,
    { value: string; version: number; expiresAt: number | null }
  >();
  private readonly leases = new Map<string, Lease>();
  private readonly due = new Map<string, Map<string, DueEntry>>();
  private calls = 0;

  gate(ops: readonly GateOp[], now: number, dryRun = false): GateResult {
    if (++this.calls % SWEEP_EVERY === 0) this.sweep(now);
    // Check everything first; apply only when every op passes.
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as GateOp;
      if (op.kind === 'throttle') {
        // A call passes only when every window has room: wait for the one that frees last.
        let blocked: { limit: number; windowMs: number; retryAfterMs: number } | undefined;
        for (const { limit, windowMs } of op.limits) {
          const log = this.window(op.key, windowMs, now);
          if (log !== undefined && log.length >= limit) {
            const oldest = log[log.length - limit] as number;
            const retryAfterMs = Math.max(1, oldest + windowMs - now);
            if (blocked === undefined || retryAfterMs > blocked.retryAfterMs) {
              blocked = { limit, windowMs, retryAfterMs };
            }
          }
        }
        if (blocked !== undefined) {
          return {
            pass: false,
            index: i,
            kind: 'throttle',
            retryAfterMs: blocked.retryAfterMs,
            limit: blocked.limit,
            windowMs: blocked.windowMs,
          };
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
        for (let j = 0; j < op.limits.length; j++) {
          const { windowMs } = op.limits[j] as ThrottleOp['limits'][number];
          // Limits with the same key and window share one log: record the call in it once.
          if (recordedEarlier(ops, i, j)) continue;
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

  get(key: string, now: number): Versioned | undefined {
    const e = this.kv.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt !== null && e.expiresAt <= now) {
      this.kv.delete(key);
      return undefined;
    }
    return { value: e.value, version: e.version, expiresAt: e.expiresAt };
  }

  set(
    key: string,
    value: string,
    options: { ttlMs?: number; ifVersion?: number },
    now: number,
  ): number | undefined {
    const current = this.get(key, now);
    if (options.ifVersion !== undefined && (current?.version ?? 0) !== options.ifVersion) {
      return undefined;
    }
    const version = (current?.version ?? 0) + 1;
    const expiresAt = options.ttlMs === undefined ? null : now + options.ttlMs;
    this.kv.set(key, { value, version, expiresAt });
    return version;
  }

  delete(key: string, options: { ifVersion?: number }, now: number): boolean {
    const current = this.get(key, now);
    if (current === undefined) return false;
    if (options.ifVersion !== undefined && current.version !== options.ifVersion) return false;
    return this.kv.delete(key);
  }

  acquireLease(name: string, holder: string, ttlMs: number, now: number): Lease | undefined {
    const held = this.leases.get(name);
    if (held !== undefined && held.expiresAt > now && held.holder !== holder) return undefined;
    const token =
      held === undefined
        ? 1
        : held.holder === holder && held.expiresAt > now
          ? held.token
          : held.token + 1;
    const lease: Lease = { name, holder, token, expiresAt: now + ttlMs };
    this.leases.set(name, lease);
    return lease;
  }

  renewLease(name: string, holder: string, token: number, ttlMs: number, now: number): boolean {
    const held = this.leases.get(name);
    if (
      held === undefined ||
      held.holder !== holder ||
      held.token !== token ||
      held.expiresAt <= now
    ) {
      return false;
    }
    this.leases.set(name, { ...held, expiresAt: now + ttlMs });
    return true;
  }

  releaseLease(name: string, holder: string, token: number): boolean {
    const held = this.leases.get(name);
    if (held === undefined || held.holder !== holder || held.token !== token) return false;
    // Keep the token so the next holder's is still higher.
    this.leases.set(name, { ...held, holder: '', expiresAt: 0 });
    return true;
  }

  putDue(queue: string, id: string, dueAt: number, payload: string): void {
    let q = this.due.get(queue);
    if (q === undefined) {
      q = new Map();
      this.due.set(queue, q);
    }
    q.set(id, { id, dueAt, payload, holder: undefined, claimedUntil: 0, attempts: 0 });
  }

  claimDue(queue: string, limit: number, holder: string, leaseMs: number, now: number): DueItem[] {
    const q = this.due.get(queue);
    if (q === undefined || limit <= 0) return [];
    const ready = [...q.values()]
      .filter((e) => e.dueAt <= now && (e.holder === undefined || e.claimedUntil <= now))
      .sort(byDue)
      .slice(0, limit);
    return ready.map((e) => {
      e.holder = holder;
      e.claimedUntil = now + leaseMs;
      e.attempts++;
      return dueItem(queue, e);
    });
  }

  ackDue(queue: string, id: string, holder: string): boolean {
    const q = this.due.get(queue);
    const e = q?.get(id);
    if (e === undefined || e.holder !== holder) return false;
    return (q as Map<string, DueEntry>).delete(id);
  }

  rescheduleDue(
    queue: string,
    id: string,
    holder: string,
    dueAt: number,
    payload?: string,
  ): boolean {
    const e = this.due.get(queue)?.get(id);
    if (e === undefined || e.holder !== holder) return false;
    e.dueAt = dueAt;
    if (payload !== undefined) e.payload = payload;
    e.holder = undefined;
    e.claimedUntil = 0;
    return true;
  }

  listDue(
    queue: string,
    options: { limit: number; after?: { dueAt: number; id: string } },
  ): DueItem[] {
    const q = this.due.get(queue);
    if (q === undefined || options.limit <= 0) return [];
    const after = options.after;
    const entries =
      after === undefined
        ? [...q.values()]
        : [...q.values()].filter(
            (e) => e.dueAt > after.dueAt || (e.dueAt === after.dueAt && e.id > after.id),
          );
    return entries
      .sort(byDue)
      .slice(0, options.limit)
      .map((e) => dueItem(queue, e));
  }

  getDue(queue: string, id: string): DueItem | undefined {
    const e = this.due.get(queue)?.get(id);
    return e === undefined ? undefined : dueItem(queue, e);
  }

  removeDue(queue: string, id: string): boolean {
    const q = this.due.get(queue);
    if (q === undefined || !q.delete(id)) return false;
    if (q.size === 0) this.due.delete(queue);
    return true;
  }

  countDue(queue: string): number {
    return this.due.get(queue)?.size ?? 0;
  }

  cleanup(now: number): number {
    return this.sweep(now);
  }

  close(): Promise<void> {
    this.dedup.clear();
    this.idempotency.clear();
    this.windows.clear();
    this.kv.clear();
    this.leases.clear();
    this.due.clear();
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

  private sweep(now: number): number {
    let removed = 0;
    for (const map of [this.dedup, this.idempotency]) {
      for (const [key, held] of map) {
        if (held.expiresAt <= now) {
          map.delete(key);
          removed++;
        }
      }
    }
    for (const [id, log] of this.windows) {
      const windowMs = Number(id.slice(id.lastIndexOf('\u0000') + 1));
      if (log.length === 0 || (log[log.length - 1] as number) + windowMs <= now) {
        this.windows.delete(id);
        removed++;
      }
    }
    for (const [key, e] of this.kv) {
      if (e.expiresAt !== null && e.expiresAt <= now) {
        this.kv.delete(key);
        removed++;
      }
    }
    return removed;
  }
}

function windowId(key: string, windowMs: number): string {
  return `${key}\u0000${windowMs}`;
}

interface DueEntry {
  readonly id: string;
  dueAt: number;
  payload: string;
  holder: string | undefined;
  claimedUntil: number;
  attempts: number;
}

/** Order of due items: by due time, then id. */
function byDue(a: DueEntry, b: DueEntry): number {
  return a.dueAt - b.dueAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function dueItem(queue: string, e: DueEntry): DueItem {
  return { queue, id: e.id, dueAt: e.dueAt, payload: e.payload, attempts: e.attempts };
}

/** True when an earlier limit in `ops` (same key and window) already recorded this call. */
function recordedEarlier(ops: readonly GateOp[], i: number, j: number): boolean {
  const op = ops[i] as ThrottleOp;
  const windowMs = (op.limits[j] as ThrottleOp['limits'][number]).windowMs;
  for (let a = 0; a <= i; a++) {
    const other = ops[a] as GateOp;
    if (other.kind !== 'throttle' || other.key !== op.key) continue;
    const end = a === i ? j : other.limits.length;
    for (let b = 0; b < end; b++) {
      if ((other.limits[b] as ThrottleOp['limits'][number]).windowMs === windowMs) return true;
    }
  }
  return false;
}
