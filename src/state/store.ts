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

export type GateOp = DedupOp | ThrottleOp | IdempotencyOp;

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
  readonly gate: 'dedup' | 'idempotency';
  readonly key: string;
  readonly actionId: string;
  readonly outcome: string | undefined;
}

export interface StateStore {
  /** Backend name for messages and metrics: "memory", "sqlite", "redis", "postgres". */
  readonly backend: string;
  /**
   * Decides all ops atomically at time `now` (epoch ms). With `dryRun`, reports what would
   * happen and applies nothing (used by the rules dry run).
   * Fails with SY_ERR_STATE_UNAVAILABLE when the backend cannot answer.
   */
  gate(ops: readonly GateOp[], now: number, dryRun?: boolean): MaybePromise<GateResult>;
  /** Applies settle ops; each op is independent and idempotent. */
  settle(ops: readonly SettleOp[], now: number): MaybePromise<void>;
  close(): Promise<void>;
}
