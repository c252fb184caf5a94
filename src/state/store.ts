/**
 * The state store: what must be shared between dispatches (and, with a remote backend, between
 * gateway processes) for gates to be exact — dedup reservations, throttle windows, idempotency
 * records.
 *
 * The central promise is `gate(ops)`: every gate of one action is decided in ONE call, atomically.
 * That is one Map walk for the memory store, one Lua script for Redis, one statement (or one
 * function call) for PostgreSQL, one transaction for SQLite. Atomic means:
 *   - the ops are checked in order; the first that blocks decides the result;
 *   - when any op blocks, NOTHING is applied (a throttle earlier in the list consumes no budget
 *     for an action a later dedup rejects);
 *   - when all pass, all are applied before any other gate call can observe the keys.
 *
 * Methods may answer synchronously (the memory store does): callers must accept a value or a
 * promise, so the in-memory hot path allocates no promise it does not need.
 */
export type MaybePromise<T> = T | Promise<T>;

/** Reserve a dedup key; blocks when the key is reserved (in flight) or committed (done). */
export interface DedupOp {
  readonly kind: 'dedup';
  readonly key: string;
  readonly ttlMs: number;
  /** Recorded as the reservation's owner; reported to duplicates as `duplicateOf`. */
  readonly actionId: string;
}

/** Consume one unit of every window; blocks (consuming none) when any window is full. */
export interface ThrottleOp {
  readonly kind: 'throttle';
  readonly key: string;
  readonly limits: readonly { readonly limit: number; readonly windowMs: number }[];
}

/** Reserve an action id; blocks when the id was seen (in flight, or done with its outcome). */
export interface IdempotencyOp {
  readonly kind: 'idempotency';
  readonly key: string;
  readonly ttlMs: number;
  readonly actionId: string;
}

/**
 * Every op may carry a `scope` (the gateway sets `namespace|tenant`): all ops of one gate() call
 * share it, and a sharded backend keeps a scope's keys together (Redis Cluster hash tags).
 */
export type GateOp = (DedupOp | ThrottleOp | IdempotencyOp) & { readonly scope?: string };

export type GateResult =
  | { readonly pass: true }
  | {
      readonly pass: false;
      /** Index of the op that blocked. */
      readonly index: number;
      readonly kind: 'dedup' | 'idempotency';
      /** True while the first action holding the key has not finished. */
      readonly inFlight: boolean;
      /** Id of the action that holds the key. */
      readonly holder: string;
      /** For idempotency: the stored outcome of the first action, once it finished (JSON). */
      readonly stored: string | undefined;
    }
  | {
      readonly pass: false;
      readonly index: number;
      readonly kind: 'throttle';
      /** Milliseconds until a call would pass (the earliest window to free a slot). */
      readonly retryAfterMs: number;
      readonly limit: number;
      readonly windowMs: number;
    };

export const PASS: GateResult = Object.freeze({ pass: true });

/**
 * After execution, what to do with a reservation gate() made: `commit` marks it done (kept until
 * its TTL; an idempotency commit stores the outcome JSON), `release` drops it so the action may
 * be retried. Both act only while `actionId` still holds the key (a reservation that expired and
 * was taken over is not ours to change).
 */
export interface SettleOp {
  readonly op: 'commit' | 'release';
  /** The scope of the gate op this settles (see GateOp). */
  readonly scope?: string;
  readonly gate: 'dedup' | 'idempotency';
  readonly key: string;
  readonly actionId: string;
  readonly outcome: string | undefined;
}

/** A stored value with its version (for compare-and-set) and expiry (epoch ms, or null). */
export interface Versioned {
  readonly value: string;
  readonly version: number;
  readonly expiresAt: number | null;
}

/** A lease: who holds a named lock, until when, and its fencing token. */
export interface Lease {
  readonly name: string;
  readonly holder: string;
  /** Strictly increases every time the lease changes hands: stale holders can be fenced off. */
  readonly token: number;
  readonly expiresAt: number;
}

/** Background work waiting for its time: a scheduled action, a group flush, a retry. */
export interface DueItem {
  readonly queue: string;
  readonly id: string;
  readonly dueAt: number;
  readonly payload: string;
  /**
   * How many times it was claimed: 1 on the first claim (as claimDue returns it), 0 for an item
   * listDue / getDue report before anyone claimed it. putDue resets it to 0.
   */
  readonly attempts: number;
}

export interface StateStore {
  /** Backend name for messages and metrics: "memory", "sqlite", "redis", "postgres". */
  readonly backend: string;

  /**
   * Connects and applies pending migrations. Optional: stores that need no async setup omit it;
   * stores that have it also wait for it internally, so calling it first is about failing fast
   * (serve awaits it before listening), not about correctness.
   */
  init?(): Promise<void>;

  /**
   * Decides all ops atomically at time `now` (epoch ms). With `dryRun`, reports what would
   * happen and applies nothing (used by the rules dry run).
   * Fails with SY_ERR_STATE_UNAVAILABLE when the backend cannot answer.
   */
  gate(ops: readonly GateOp[], now: number, dryRun?: boolean): MaybePromise<GateResult>;
  /** Applies settle ops; each op is independent and idempotent. */
  settle(ops: readonly SettleOp[], now: number): MaybePromise<void>;

  /** The live value of a key (an expired key is absent). */
  get(key: string, now: number): MaybePromise<Versioned | undefined>;
  /**
   * Writes a key. With `ifVersion`, only when the current version equals it (0 = only when the
   * key is absent or expired): an atomic compare-and-set. Returns the new version, or
   * undefined when the condition failed (nothing written).
   */
  set(
    key: string,
    value: string,
    options: { ttlMs?: number; ifVersion?: number },
    now: number,
  ): MaybePromise<number | undefined>;
  /** Deletes a key (only at `ifVersion` when given); true when something was deleted. */
  delete(key: string, options: { ifVersion?: number }, now: number): MaybePromise<boolean>;

  /**
   * Takes a named lease for `holder` when it is free or expired (or already `holder`'s, which
   * renews it). Returns the lease, or undefined when someone else holds it. A change of holder
   * increments the fencing token.
   */
  acquireLease(
    name: string,
    holder: string,
    ttlMs: number,
    now: number,
  ): MaybePromise<Lease | undefined>;
  /** Extends a lease still held by `holder` with `token`; false when it was lost. */
  renewLease(
    name: string,
    holder: string,
    token: number,
    ttlMs: number,
    now: number,
  ): MaybePromise<boolean>;
  /** Gives a lease up (only by its holder with its token); true when released. */
  releaseLease(name: string, holder: string, token: number): MaybePromise<boolean>;

  /** Adds or replaces (by queue + id) an item due at `dueAt`; replacing clears any claim. */
  putDue(queue: string, id: string, dueAt: number, payload: string): MaybePromise<void>;
  /**
   * Claims up to `limit` items of `queue` that are due at `now` and not claimed (or whose claim
   * expired), oldest first, for `holder` for `leaseMs`. Two callers never get the same item
   * while a claim is live; a crashed holder's items come back once its claim expires.
   */
  claimDue(
    queue: string,
    limit: number,
    holder: string,
    leaseMs: number,
    now: number,
  ): MaybePromise<DueItem[]>;
  /** Removes a claimed item (done); only by the holder of its claim. */
  ackDue(queue: string, id: string, holder: string): MaybePromise<boolean>;
  /** Moves a claimed item to a new time (and payload), releasing the claim; only by its holder. */
  rescheduleDue(
    queue: string,
    id: string,
    holder: string,
    dueAt: number,
    payload?: string,
  ): MaybePromise<boolean>;

  /**
   * Items of `queue` ordered by (dueAt, id), claimed or not (a dead-letter queue is a queue
   * nobody claims; a list of scheduled actions is the same). `after` is the (dueAt, id) of the
   * last item of the previous page; at most `limit` items. Ids that tie on dueAt are ordered by
   * their UTF-8 bytes (the memory store: by UTF-16 code units; the same for ids without
   * characters beyond U+FFFF). Paging is by key, so items added or removed meanwhile never make
   * a page repeat or skip the others.
   */
  listDue(
    queue: string,
    options: { limit: number; after?: { dueAt: number; id: string } },
  ): MaybePromise<DueItem[]>;
  /** One item by id, claimed or not. */
  getDue(queue: string, id: string): MaybePromise<DueItem | undefined>;
  /**
   * Removes an item whatever its claim (cancel, discard); true when it existed. A holder of the
   * removed item then fails to ack or reschedule it.
   */
  removeDue(queue: string, id: string): MaybePromise<boolean>;
  /** How many items `queue` holds (claimed or not). */
  countDue(queue: string): MaybePromise<number>;

  /** Deletes expired keys, reservations and windows; returns how many entries were removed. */
  cleanup(now: number): MaybePromise<number>;
  close(): Promise<void>;
}
