import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { SyError } from '../../core/errors.js';
import {
  PASS,
  type DueItem,
  type GateOp,
  type GateResult,
  type Lease,
  type SettleOp,
  type StateStore,
  type ThrottleOp,
  type Versioned,
} from '../store.js';
import { MIGRATIONS, MIGRATIONS_TABLE, type Migration } from './schema.js';

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement<unknown[], unknown>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- better-sqlite3's own constraint
type Transaction<F extends (...args: any[]) => unknown> = BetterSqlite3.Transaction<F>;

export interface SqliteStateStoreOptions {
  /** The database file; its directory is created when missing. */
  readonly path: string;
  /** Prepended to every key, lease name and queue, so several stores can share one file. */
  readonly prefix?: string;
  /** How long a write waits for another process's transaction before failing. Default 5000. */
  readonly busyTimeoutMs?: number;
  /**
   * Apply pending migrations on open (default true). With false the schema is left alone and
   * opening a file that needs migrations fails (run `switchyard migrate` first).
   */
  readonly migrate?: boolean;
}

/** Sweep expired rows inside a gate transaction every this many gate calls (like memory). */
const SWEEP_EVERY = 10_000;

/** The statements of one reservation table (dedup or idempotency). */
interface Reservations {
  /** [holder, done, stored] of the live reservation, raw. */
  readonly check: Statement;
  readonly reserve: Statement;
  readonly commit: Statement;
  readonly release: Statement;
  readonly sweep: Statement;
}

/**
 * The SQLite state store: durable on one node, and shared by every process that opens the same
 * file. Each gate() is one BEGIN IMMEDIATE transaction, so concurrent processes serialize on the
 * file's write lock and the memory store's exact semantics (check all, apply all or nothing,
 * sliding-window logs) hold across them. better-sqlite3 is synchronous, so every method answers
 * with a value, never a promise: the gateway's hot path awaits nothing.
 *
 * The native binding is loaded in the constructor, not at import, so configurations that do not
 * use SQLite never load it.
 *
 * @example
 *   const state = new SqliteStateStore({ path: 'switchyard-data/state.db' });
 */
export class SqliteStateStore implements StateStore {
  readonly backend = 'sqlite';
  readonly path: string;
  private readonly prefix: string;
  private readonly db: Database;
  private readonly q: Statements;
  // Transactions, created once; writers run them with .immediate() (BEGIN IMMEDIATE), so a
  // read-then-write never loses an update to another process.
  private readonly gateTx: Transaction<(ops: readonly GateOp[], now: number) => GateResult>;
  private readonly dryRunTx: Transaction<(ops: readonly GateOp[], now: number) => GateResult>;
  private readonly settleTx: Transaction<(ops: readonly SettleOp[]) => void>;
  private readonly setTx: Transaction<
    (
      key: string,
      value: string,
      options: { ttlMs?: number; ifVersion?: number },
      now: number,
    ) => number | undefined
  >;
  private readonly deleteTx: Transaction<
    (key: string, options: { ifVersion?: number }, now: number) => boolean
  >;
  private readonly acquireTx: Transaction<
    (name: string, holder: string, ttlMs: number, now: number) => Lease | undefined
  >;
  private readonly claimTx: Transaction<
    (queue: string, limit: number, holder: string, leaseMs: number, now: number) => DueItem[]
  >;
  private readonly cleanupTx: Transaction<(now: number) => number>;
  private calls = 0;
  private deferred: SettleOp[] = [];
  private applying: SettleOp[] = [];
  private flushScheduled = false;
  /** Migrations applied by this store and not yet reported by migrate(). */
  private unreported: string[] = [];

  constructor(options: SqliteStateStoreOptions) {
    this.path = options.path;
    this.prefix = options.prefix ?? '';
    let open: typeof BetterSqlite3;
    try {
      open = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
    } catch (err) {
      throw this.fail('load', err, ' (is the better-sqlite3 package installed?)');
    }
    let db: Database | undefined;
    try {
      if (this.path !== ':memory:' && this.path !== '') {
        mkdirSync(dirname(this.path), { recursive: true });
      }
      db = new open(this.path, { timeout: options.busyTimeoutMs ?? 5000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    } catch (err) {
      db?.close();
      throw this.fail('open', err);
    }
    this.db = db;
    try {
      if (options.migrate === false) {
        const pending = pendingMigrations(db);
        if (pending.length > 0) {
          throw new Error(
            `the schema needs migrations ${pending.map((m) => m.name).join(', ')}; run \`switchyard migrate\``,
          );
        }
      } else {
        this.unreported = this.applyMigrations();
      }
      this.q = compile(db);
    } catch (err) {
      db.close();
      throw this.fail('open', err);
    }

    this.gateTx = db.transaction((ops: readonly GateOp[], now: number) => {
      this.applyDeferred();
      if (++this.calls % SWEEP_EVERY === 0) this.sweep(now);
      const blocked = this.check(ops, now);
      if (blocked !== undefined) return blocked;
      this.apply(ops, now);
      return PASS;
    });
    this.dryRunTx = db.transaction(
      (ops: readonly GateOp[], now: number) => this.check(ops, now) ?? PASS,
    );
    this.settleTx = db.transaction((ops: readonly SettleOp[]) => {
      this.applyDeferred();
      for (const op of ops) this.settleOne(op);
    });
    this.setTx = db.transaction(
      (key: string, value: string, options: { ttlMs?: number; ifVersion?: number }, now) => {
        const current = this.readKey(key, now)?.version ?? 0;
        if (options.ifVersion !== undefined && current !== options.ifVersion) return undefined;
        const expiresAt = options.ttlMs === undefined ? null : now + options.ttlMs;
        this.q.kvPut.run(key, value, current + 1, expiresAt);
        return current + 1;
      },
    );
    this.deleteTx = db.transaction((key: string, options: { ifVersion?: number }, now: number) => {
      const current = this.readKey(key, now);
      if (current === undefined) return false;
      if (options.ifVersion !== undefined && current.version !== options.ifVersion) {
        return false;
      }
      return this.q.kvDelete.run(key).changes > 0;
    });
    this.acquireTx = db.transaction((name: string, holder: string, ttlMs: number, now: number) => {
      const held = this.q.leaseGet.get(this.prefix + name) as
        [holder: string, token: number, expiresAt: number] | undefined;
      if (held !== undefined && held[2] > now && held[0] !== holder) return undefined;
      // A new holder (or the same one after expiry or release) gets the next fencing token.
      const token =
        held === undefined ? 1 : held[0] === holder && held[2] > now ? held[1] : held[1] + 1;
      const expiresAt = now + ttlMs;
      this.q.leasePut.run(this.prefix + name, holder, token, expiresAt);
      return { name, holder, token, expiresAt };
    });
    this.claimTx = db.transaction(
      (queue: string, limit: number, holder: string, leaseMs: number, now: number) => {
        const q = this.prefix + queue;
        const rows = this.q.dueReady.all(q, now, now, limit) as [
          id: string,
          dueAt: number,
          payload: string,
          attempts: number,
        ][];
        const items: DueItem[] = [];
        for (const [id, dueAt, payload, attempts] of rows) {
          this.q.dueClaim.run(holder, now + leaseMs, attempts + 1, q, id);
          items.push({ queue, id, dueAt, payload, attempts: attempts + 1 });
        }
        return items;
      },
    );
    this.cleanupTx = db.transaction((now: number) => this.sweep(now));
  }

  /**
   * Applies the migrations this file lacks and returns the names this store applied that were
   * not reported yet — including those applied when it opened the file, so `switchyard migrate`
   * on a new file lists them; none when the file was already up to date.
   */
  migrate(): string[] {
    try {
      const applied = [...this.unreported, ...this.applyMigrations()];
      this.unreported = [];
      return applied;
    } catch (err) {
      throw this.fail('migrate', err);
    }
  }

  /**
   * One BEGIN IMMEDIATE transaction, so several processes opening a new file at once apply
   * each migration exactly once; returns the names applied.
   */
  private applyMigrations(): string[] {
    const db = this.db;
    return db
      .transaction(() => {
        db.exec(MIGRATIONS_TABLE);
        const pending = pendingMigrations(db);
        const record = db.prepare(
          'INSERT INTO switchyard_migrations (version, name, applied_at) VALUES (?, ?, ?)',
        );
        for (const m of pending) {
          db.exec(m.sql);
          record.run(m.version, m.name, Date.now());
        }
        return pending.map((m) => m.name);
      })
      .immediate();
  }

  gate(ops: readonly GateOp[], now: number, dryRun = false): GateResult {
    try {
      if (dryRun) {
        this.flushDeferred();
        return this.dryRunTx.deferred(ops, now);
      }
      const result = this.gateTx.immediate(ops, now);
      this.applying = [];
      return result;
    } catch (err) {
      this.restoreDeferred();
      throw this.fail(dryRun ? 'gate (dry run)' : 'gate', err);
    }
  }

  /**
   * Dedup commits (the success path of every deduplicated dispatch) are deferred: they ride in
   * the next gate's transaction, or are written on the next event-loop turn, whichever comes
   * first. That makes a dispatch ONE write transaction instead of two (measured 16.7k → 30.8k/s).
   * The cost: for one loop turn another process may still see the key as in flight, and a crash
   * in that turn leaves the key reserved (still deduplicating) until its TTL. Releases and
   * idempotency commits are written at once: they change what a retry gets.
   */
  settle(ops: readonly SettleOp[], _now?: number): void {
    try {
      let immediate: SettleOp[] | undefined;
      for (const op of ops) {
        if (op.gate === 'dedup' && op.op === 'commit') this.deferred.push(op);
        else (immediate ??= []).push(op);
      }
      if (immediate !== undefined) {
        this.settleTx.immediate(immediate);
        this.applying = [];
      } else if (this.deferred.length > 0 && !this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          // A failed flush keeps the ops for the next gate or settle to write.
          try {
            this.flushDeferred();
          } catch {
            /* retried with the next transaction; close() reports a final failure */
          }
        });
      }
    } catch (err) {
      this.restoreDeferred();
      throw this.fail('settle', err);
    }
  }

  /** Writes deferred dedup commits now (in their own transaction). */
  private flushDeferred(): void {
    if (this.deferred.length === 0 || !this.db.open) return;
    try {
      this.settleTx.immediate([]);
      this.applying = [];
    } catch (err) {
      this.restoreDeferred();
      throw err;
    }
  }

  /** Inside a transaction: apply the deferred commits (put back if the transaction fails). */
  private applyDeferred(): void {
    if (this.deferred.length === 0) return;
    const ops = this.deferred;
    this.deferred = [];
    this.applying = ops;
    for (const op of ops) this.settleOne(op);
  }

  /** After a failed transaction: its deferred commits were rolled back, keep them. */
  private restoreDeferred(): void {
    if (this.applying.length > 0) this.deferred = [...this.applying, ...this.deferred];
    this.applying = [];
  }

  get(key: string, now: number): Versioned | undefined {
    try {
      return this.readKey(this.prefix + key, now);
    } catch (err) {
      throw this.fail('get', err);
    }
  }

  set(
    key: string,
    value: string,
    options: { ttlMs?: number; ifVersion?: number },
    now: number,
  ): number | undefined {
    try {
      return this.setTx.immediate(this.prefix + key, value, options, now);
    } catch (err) {
      throw this.fail('set', err);
    }
  }

  delete(key: string, options: { ifVersion?: number }, now: number): boolean {
    try {
      return this.deleteTx.immediate(this.prefix + key, options, now);
    } catch (err) {
      throw this.fail('delete', err);
    }
  }

  acquireLease(name: string, holder: string, ttlMs: number, now: number): Lease | undefined {
    try {
      return this.acquireTx.immediate(name, holder, ttlMs, now);
    } catch (err) {
      throw this.fail('acquireLease', err);
    }
  }

  renewLease(name: string, holder: string, token: number, ttlMs: number, now: number): boolean {
    try {
      return this.q.leaseRenew.run(now + ttlMs, this.prefix + name, holder, token, now).changes > 0;
    } catch (err) {
      throw this.fail('renewLease', err);
    }
  }

  releaseLease(name: string, holder: string, token: number): boolean {
    try {
      return this.q.leaseRelease.run(this.prefix + name, holder, token).changes > 0;
    } catch (err) {
      throw this.fail('releaseLease', err);
    }
  }

  putDue(queue: string, id: string, dueAt: number, payload: string): void {
    try {
      this.q.duePut.run(this.prefix + queue, id, dueAt, payload);
    } catch (err) {
      throw this.fail('putDue', err);
    }
  }

  claimDue(queue: string, limit: number, holder: string, leaseMs: number, now: number): DueItem[] {
    if (limit <= 0) return [];
    try {
      return this.claimTx.immediate(queue, limit, holder, leaseMs, now);
    } catch (err) {
      throw this.fail('claimDue', err);
    }
  }

  ackDue(queue: string, id: string, holder: string): boolean {
    try {
      return this.q.dueAck.run(this.prefix + queue, id, holder).changes > 0;
    } catch (err) {
      throw this.fail('ackDue', err);
    }
  }

  rescheduleDue(
    queue: string,
    id: string,
    holder: string,
    dueAt: number,
    payload?: string,
  ): boolean {
    try {
      return (
        this.q.dueReschedule.run(dueAt, payload ?? null, this.prefix + queue, id, holder).changes >
        0
      );
    } catch (err) {
      throw this.fail('rescheduleDue', err);
    }
  }

  listDue(
    queue: string,
    options: { limit: number; after?: { dueAt: number; id: string } },
  ): DueItem[] {
    if (options.limit <= 0) return [];
    try {
      const q = this.prefix + queue;
      const { after } = options;
      const rows = (
        after === undefined
          ? this.q.dueList.all(q, Math.floor(options.limit))
          : this.q.dueListAfter.all(q, after.dueAt, after.id, Math.floor(options.limit))
      ) as DueRow[];
      return rows.map((r) => toDueItem(queue, r));
    } catch (err) {
      throw this.fail('listDue', err);
    }
  }

  getDue(queue: string, id: string): DueItem | undefined {
    try {
      const row = this.q.dueGet.get(this.prefix + queue, id) as DueRow | undefined;
      return row === undefined ? undefined : toDueItem(queue, row);
    } catch (err) {
      throw this.fail('getDue', err);
    }
  }

  removeDue(queue: string, id: string): boolean {
    try {
      return this.q.dueRemove.run(this.prefix + queue, id).changes > 0;
    } catch (err) {
      throw this.fail('removeDue', err);
    }
  }

  countDue(queue: string): number {
    try {
      return this.q.dueCount.get(this.prefix + queue) as number;
    } catch (err) {
      throw this.fail('countDue', err);
    }
  }

  /**
   * Deletes expired reservations, throttle entries and keys of the whole file (expired rows are
   * absent for every prefix). Leases and due items are kept: a lease row carries its fencing
   * token, and due items leave only when acked.
   */
  cleanup(now: number): number {
    try {
      return this.cleanupTx.immediate(now);
    } catch (err) {
      throw this.fail('cleanup', err);
    }
  }

  close(): Promise<void> {
    try {
      this.flushDeferred();
      if (this.db.open) this.db.close();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(this.fail('close', err));
    }
  }

  /** Commits or releases one reservation, only while `op.actionId` still holds it (fencing). */
  private settleOne(op: SettleOp): void {
    const table = op.gate === 'dedup' ? this.q.dedup : this.q.idempotency;
    const key = this.prefix + op.key;
    if (op.op === 'release') table.release.run(key, op.actionId);
    else table.commit.run(op.outcome ?? null, key, op.actionId);
  }

  /** The first op that blocks, or undefined when all pass. Reads only. */
  private check(ops: readonly GateOp[], now: number): GateResult | undefined {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as GateOp;
      const key = this.prefix + op.key;
      if (op.kind === 'throttle') {
        // A call passes only when every window has room: wait for the one that frees last.
        let blocked: { limit: number; windowMs: number; retryAfterMs: number } | undefined;
        for (const { limit, windowMs } of op.limits) {
          const nth = this.q.throttleNth.get(key, windowMs, now - windowMs, limit - 1) as
            number | undefined;
          if (nth === undefined) continue;
          const retryAfterMs = Math.max(1, nth + windowMs - now);
          if (blocked === undefined || retryAfterMs > blocked.retryAfterMs) {
            blocked = { limit, windowMs, retryAfterMs };
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
        const table = op.kind === 'dedup' ? this.q.dedup : this.q.idempotency;
        const held = table.check.get(key, now) as
          [holder: string, done: number, stored: string | null] | undefined;
        if (held !== undefined) {
          return {
            pass: false,
            index: i,
            kind: op.kind,
            inFlight: held[1] === 0,
            holder: held[0],
            stored: held[2] ?? undefined,
          };
        }
      }
    }
    return undefined;
  }

  /** Applies every op (all passed the check). */
  private apply(ops: readonly GateOp[], now: number): void {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as GateOp;
      const key = this.prefix + op.key;
      if (op.kind === 'throttle') {
        for (let j = 0; j < op.limits.length; j++) {
          // Limits with the same key and window share one log: record the call in it once.
          if (recordedEarlier(ops, i, j)) continue;
          const { windowMs } = op.limits[j] as ThrottleOp['limits'][number];
          this.q.throttlePrune.run(key, windowMs, now - windowMs);
          this.q.throttleAdd.run(key, windowMs, now);
        }
      } else {
        const table = op.kind === 'dedup' ? this.q.dedup : this.q.idempotency;
        table.reserve.run(key, op.actionId, now + op.ttlMs);
      }
    }
  }

  private readKey(key: string, now: number): Versioned | undefined {
    const row = this.q.kvGet.get(key, now) as
      [value: string, version: number, expiresAt: number | null] | undefined;
    return row === undefined ? undefined : { value: row[0], version: row[1], expiresAt: row[2] };
  }

  private sweep(now: number): number {
    return (
      this.q.dedup.sweep.run(now).changes +
      this.q.idempotency.sweep.run(now).changes +
      this.q.throttleSweep.run(now).changes +
      this.q.kvSweep.run(now).changes
    );
  }

  /** Wraps a backend failure once, with the operation and the file. */
  private fail(operation: string, err: unknown, hint = ''): SyError {
    if (err instanceof SyError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new SyError(
      'SY_ERR_STATE_UNAVAILABLE',
      `sqlite ${operation} failed: ${message}${hint}`,
      { backend: 'sqlite', operation, path: this.path },
      { cause: err },
    );
  }
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

/** A due item as the list and get statements return it (raw). */
type DueRow = [id: string, dueAt: number, payload: string, attempts: number];

function toDueItem(queue: string, [id, dueAt, payload, attempts]: DueRow): DueItem {
  return { queue, id, dueAt, payload, attempts };
}

/** The migrations this file lacks, in order. Reads only. */
function pendingMigrations(db: Database): Migration[] {
  const tracked = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'switchyard_migrations'")
    .get();
  if (tracked === undefined) return [...MIGRATIONS];
  const done = new Set(
    db.prepare('SELECT version FROM switchyard_migrations').pluck().all() as number[],
  );
  return MIGRATIONS.filter((m) => !done.has(m.version));
}

/** Every statement the store runs, compiled once per connection. */
interface Statements {
  readonly dedup: Reservations;
  readonly idempotency: Reservations;
  readonly throttleNth: Statement;
  readonly throttlePrune: Statement;
  readonly throttleAdd: Statement;
  readonly throttleSweep: Statement;
  readonly kvGet: Statement;
  readonly kvPut: Statement;
  readonly kvDelete: Statement;
  readonly kvSweep: Statement;
  readonly leaseGet: Statement;
  readonly leasePut: Statement;
  readonly leaseRenew: Statement;
  readonly leaseRelease: Statement;
  readonly duePut: Statement;
  readonly dueReady: Statement;
  readonly dueClaim: Statement;
  readonly dueAck: Statement;
  readonly dueReschedule: Statement;
  readonly dueList: Statement;
  readonly dueListAfter: Statement;
  readonly dueGet: Statement;
  readonly dueRemove: Statement;
  readonly dueCount: Statement;
}

function compile(db: Database): Statements {
  const reservations = (table: string): Reservations => ({
    check: db
      .prepare(`SELECT holder, done, stored FROM ${table} WHERE key = ? AND expires_at > ?`)
      .raw(),
    reserve: db.prepare(
      `INSERT INTO ${table} (key, holder, done, expires_at, stored) VALUES (?, ?, 0, ?, NULL)
       ON CONFLICT (key) DO UPDATE SET
         holder = excluded.holder, done = 0, expires_at = excluded.expires_at, stored = NULL`,
    ),
    commit: db.prepare(`UPDATE ${table} SET done = 1, stored = ? WHERE key = ? AND holder = ?`),
    release: db.prepare(`DELETE FROM ${table} WHERE key = ? AND holder = ?`),
    sweep: db.prepare(`DELETE FROM ${table} WHERE expires_at <= ?`),
  });
  return {
    dedup: reservations('switchyard_dedup'),
    idempotency: reservations('switchyard_idempotency'),
    // The limit-th newest call still in the window: present only when the window is full, and
    // then the call whose leaving frees a slot (memory's log[length - limit]).
    throttleNth: db
      .prepare(
        `SELECT ts FROM switchyard_throttle WHERE key = ? AND window_ms = ? AND ts > ?
         ORDER BY ts DESC LIMIT 1 OFFSET ?`,
      )
      .pluck(),
    throttlePrune: db.prepare(
      'DELETE FROM switchyard_throttle WHERE key = ? AND window_ms = ? AND ts <= ?',
    ),
    throttleAdd: db.prepare(
      'INSERT INTO switchyard_throttle (key, window_ms, ts) VALUES (?, ?, ?)',
    ),
    throttleSweep: db.prepare('DELETE FROM switchyard_throttle WHERE ts <= ? - window_ms'),
    kvGet: db
      .prepare(
        `SELECT value, version, expires_at FROM switchyard_kv
         WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)`,
      )
      .raw(),
    kvPut: db.prepare(
      `INSERT INTO switchyard_kv (key, value, version, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET
         value = excluded.value, version = excluded.version, expires_at = excluded.expires_at`,
    ),
    kvDelete: db.prepare('DELETE FROM switchyard_kv WHERE key = ?'),
    kvSweep: db.prepare(
      'DELETE FROM switchyard_kv WHERE expires_at IS NOT NULL AND expires_at <= ?',
    ),
    leaseGet: db
      .prepare('SELECT holder, token, expires_at FROM switchyard_leases WHERE name = ?')
      .raw(),
    leasePut: db.prepare(
      `INSERT INTO switchyard_leases (name, holder, token, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET
         holder = excluded.holder, token = excluded.token, expires_at = excluded.expires_at`,
    ),
    leaseRenew: db.prepare(
      `UPDATE switchyard_leases SET expires_at = ?
       WHERE name = ? AND holder = ? AND token = ? AND expires_at > ?`,
    ),
    // A released lease keeps its row and token, so the next holder's token is still higher.
    leaseRelease: db.prepare(
      `UPDATE switchyard_leases SET holder = '', expires_at = 0
       WHERE name = ? AND holder = ? AND token = ? AND holder <> ''`,
    ),
    duePut: db.prepare(
      `INSERT INTO switchyard_due (queue, id, due_at, payload, holder, claimed_until, attempts)
       VALUES (?, ?, ?, ?, NULL, 0, 0)
       ON CONFLICT (queue, id) DO UPDATE SET
         due_at = excluded.due_at, payload = excluded.payload,
         holder = NULL, claimed_until = 0, attempts = 0`,
    ),
    dueReady: db
      .prepare(
        `SELECT id, due_at, payload, attempts FROM switchyard_due
         WHERE queue = ? AND due_at <= ? AND (holder IS NULL OR claimed_until <= ?)
         ORDER BY due_at, id LIMIT ?`,
      )
      .raw(),
    dueClaim: db.prepare(
      `UPDATE switchyard_due SET holder = ?, claimed_until = ?, attempts = ?
       WHERE queue = ? AND id = ?`,
    ),
    dueAck: db.prepare('DELETE FROM switchyard_due WHERE queue = ? AND id = ? AND holder = ?'),
    dueReschedule: db.prepare(
      `UPDATE switchyard_due
       SET due_at = ?, payload = coalesce(?, payload), holder = NULL, claimed_until = 0
       WHERE queue = ? AND id = ? AND holder = ?`,
    ),
    // Both walk switchyard_due_ready (queue, due_at, id) in order from the page's start: the
    // row value comparison is an index range, not a filter.
    dueList: db
      .prepare(
        `SELECT id, due_at, payload, attempts FROM switchyard_due
         WHERE queue = ? ORDER BY due_at, id LIMIT ?`,
      )
      .raw(),
    dueListAfter: db
      .prepare(
        `SELECT id, due_at, payload, attempts FROM switchyard_due
         WHERE queue = ? AND (due_at, id) > (?, ?) ORDER BY due_at, id LIMIT ?`,
      )
      .raw(),
    dueGet: db
      .prepare(
        'SELECT id, due_at, payload, attempts FROM switchyard_due WHERE queue = ? AND id = ?',
      )
      .raw(),
    dueRemove: db.prepare('DELETE FROM switchyard_due WHERE queue = ? AND id = ?'),
    dueCount: db.prepare('SELECT count(*) FROM switchyard_due WHERE queue = ?').pluck(),
  };
}
