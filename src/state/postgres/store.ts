import { createRequire } from 'node:module';
import type * as PG from 'pg';
import type { Pool, PoolClient, QueryConfig } from 'pg';
import { SyError } from '../../core/errors.js';
import {
  PASS,
  type DueItem,
  type GateOp,
  type GateResult,
  type Lease,
  type SettleOp,
  type StateStore,
  type Versioned,
} from '../store.js';
import { MIGRATIONS, qualified, type SchemaNames } from './schema.js';

export interface PostgresStateStoreOptions {
  /** A libpq-style connection URL: `postgres://user@host:5432/db`. */
  readonly url: string;
  /** Schema holding the tables; created when missing. Default `public`. */
  readonly schema?: string;
  /** Prefix of every table and function name. Default `switchyard_`. */
  readonly tablePrefix?: string;
  /** Maximum connections. Default 10. */
  readonly pool?: number;
  /** Server-side `statement_timeout` (the client gives up 1 s later). Default 2000. */
  readonly statementTimeoutMs?: number;
  /** Time allowed to open a connection or wait for a free one. Default 2000. */
  readonly connectTimeoutMs?: number;
  /**
   * Apply pending migrations in init() (default true). With false, init() only checks that the
   * schema is current and fails with a hint to run `switchyard migrate` when it is not.
   */
  readonly migrate?: boolean;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Most gate calls decided in one batch: bounds its locks and its time holding them. */
const MAX_BATCH = 32;

/** A gate() call, serialized, waiting for a connection (resolve/reject set once it waits). */
interface PendingGate {
  readonly ops: string;
  readonly now: number;
  readonly dry: boolean;
  resolve: ((result: GateResult) => void) | undefined;
  reject: ((err: unknown) => void) | undefined;
}

/** Blocked gate results as the gate function returns them (see schema.ts). */
type Blocked =
  | {
      index: number;
      kind: 'dedup' | 'idempotency';
      inFlight: boolean;
      holder: string;
      stored: string | null;
    }
  | { index: number; kind: 'throttle'; retryAfterMs: number; limit: number; windowMs: number };

/**
 * The PostgreSQL state store: shared by every gateway process on one database, durable, exact.
 *
 * `gate` is one call of a PL/pgSQL function (one round trip, one implicit transaction) that
 * takes an advisory lock per key, checks every op and applies them all only when all pass.
 * While `pool` gate queries are already in flight, further calls wait and then go together as
 * one `gate_many` call: still at most one round trip per gate, and one commit for the batch,
 * which is what lets throughput under load exceed one durable commit per gate. No call is ever
 * delayed to form a batch. `settle` and compare-and-set are functions too, the other methods
 * single statements. Due items are claimed with `FOR UPDATE SKIP LOCKED`, so claimers never
 * wait on one another.
 *
 * `pg` is loaded when a store is constructed, never at import. Every method waits for `init()`
 * (connect + migrations), so calling it first only makes a misconfiguration fail at startup.
 * Every driver error becomes one SY_ERR_STATE_UNAVAILABLE with the operation and the cause.
 */
export class PostgresStateStore implements StateStore {
  readonly backend = 'postgres';
  private readonly pool: Pool;
  private readonly names: SchemaNames;
  private readonly sql: ReturnType<typeof statements>;
  private ready: Promise<void> | undefined;
  private initialized = false;
  private closing: Promise<void> | undefined;
  /** Gate queries sent and not answered; beyond the pool size, calls wait and go as a batch. */
  private gatesInFlight = 0;
  private readonly maxGatesInFlight: number;
  private readonly waiting: PendingGate[] = [];
  /** Dedup commits waiting to ride along with the next gate (see settle). */
  private pendingCommits: SettleOp[] = [];
  private flushSoon: Promise<void> | undefined;
  private readonly autoMigrate: boolean;

  constructor(options: PostgresStateStoreOptions) {
    const schema = options.schema ?? 'public';
    const prefix = options.tablePrefix ?? 'switchyard_';
    for (const [name, value] of [
      ['schema', schema],
      ['tablePrefix', prefix],
    ] as const) {
      // Names are spliced into SQL and identifiers are limited to 63 bytes ("<prefix>reservations").
      if (!IDENTIFIER.test(value) || value.length > 40) {
        throw new SyError(
          'SY_ERR_CONFIG_INVALID',
          `postgres state store: ${name} "${value}" must be a plain identifier of at most 40 characters`,
          { backend: 'postgres', [name]: value },
        );
      }
    }
    this.names = { schema, prefix };
    this.autoMigrate = options.migrate ?? true;
    this.sql = statements(this.names);
    const statementTimeoutMs = options.statementTimeoutMs ?? 2000;
    this.maxGatesInFlight = options.pool ?? 10;
    const pg = createRequire(import.meta.url)('pg') as typeof PG;
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: this.maxGatesInFlight,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
      statement_timeout: statementTimeoutMs,
      // Client-side bound for when the server cannot even report its own timeout (network hang).
      query_timeout: statementTimeoutMs + 1000,
      keepAlive: true,
      application_name: 'switchyard',
    });
    // An idle connection that dies (server restart, network cut) is reported here; the pool
    // has already dropped it and the next query reconnects or fails on its own. Without a
    // listener the 'error' event would crash the process.
    this.pool.on('error', () => {});
  }

  /** Connects and applies pending migrations (once; retried on the next call after a failure). */
  init(): Promise<void> {
    this.ready ??= (this.autoMigrate ? this.migrate() : this.verifySchema()).then(
      () => {
        this.initialized = true;
      },
      (err: unknown) => {
        this.ready = undefined;
        throw err;
      },
    );
    return this.ready;
  }

  /** For migrate: false — the schema must already be current. */
  private async verifySchema(): Promise<void> {
    let versions: Set<number>;
    try {
      const rows = await this.pool.query<{ version: number }>(
        `select version from ${qualified(this.names, 'migrations')}`,
      );
      versions = new Set(rows.rows.map((r) => r.version));
    } catch (err) {
      throw new SyError(
        'SY_ERR_STATE_UNAVAILABLE',
        `postgres schema check failed (run \`switchyard migrate\`): ${(err as Error).message}`,
        { backend: 'postgres', operation: 'init' },
        { cause: err },
      );
    }
    const missing = MIGRATIONS.filter((m) => !versions.has(m.version)).map((m) => m.name);
    if (missing.length > 0) {
      throw new SyError(
        'SY_ERR_STATE_UNAVAILABLE',
        `postgres schema is not current (missing ${missing.join(', ')}); run \`switchyard migrate\` or set state.migrate: true`,
        { backend: 'postgres', operation: 'init' },
      );
    }
  }

  /**
   * Applies pending migrations in one transaction under an advisory lock on the schema, so
   * processes starting together apply each migration exactly once. Returns the names applied.
   */
  async migrate(): Promise<string[]> {
    let client: PoolClient | undefined;
    const ignore = (): void => {};
    try {
      client = await this.pool.connect();
      // A checked-out client has no pool listener: keep a dying connection from crashing us.
      client.on('error', ignore);
      const { schema } = this.names;
      const table = qualified(this.names, 'migrations');
      await client.query('begin');
      await client.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `switchyard-migrate:${schema}`,
      ]);
      const exists = await client.query('select 1 from pg_namespace where nspname = $1', [schema]);
      if (exists.rowCount === 0) await client.query(`create schema "${schema}"`);
      await client.query(
        `create table if not exists ${table} (version integer primary key, name text not null, ` +
          `applied_at timestamptz not null default now())`,
      );
      const done = new Set(
        (await client.query<{ version: number }>(`select version from ${table}`)).rows.map(
          (r) => r.version,
        ),
      );
      const applied: string[] = [];
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await client.query(m.sql(this.names));
        await client.query(`insert into ${table} (version, name) values ($1, $2)`, [
          m.version,
          m.name,
        ]);
        applied.push(m.name);
      }
      await client.query('commit');
      client.removeListener('error', ignore);
      client.release();
      return applied;
    } catch (err) {
      if (client !== undefined) {
        client.removeListener('error', ignore);
        // Drop the connection: it may be mid-transaction or broken.
        client.release(err instanceof Error ? err : true);
      }
      throw unavailable('migrate', err);
    }
  }

  gate(ops: readonly GateOp[], now: number, dryRun = false): Promise<GateResult> {
    if (!this.initialized) return this.init().then(() => this.gate(ops, now, dryRun));
    const call: PendingGate = {
      ops: JSON.stringify(ops),
      now: Math.floor(now),
      dry: dryRun,
      resolve: undefined,
      reject: undefined,
    };
    if (this.gatesInFlight < this.maxGatesInFlight) return this.gateOne(call);
    return new Promise((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
      this.waiting.push(call);
    });
  }

  /** One gate() call, one query. */
  private gateOne(call: PendingGate): Promise<GateResult> {
    this.gatesInFlight++;
    // Buffered dedup commits of earlier dispatches travel in the same statement (settled first).
    const commits = call.dry ? [] : this.pendingCommits;
    if (commits.length > 0) this.pendingCommits = [];
    const statement = commits.length > 0 ? this.sql.gateWithCommits : this.sql.gate;
    const values: unknown[] = [call.ops, call.now, call.dry];
    if (commits.length > 0) values.push(JSON.stringify(commits));
    return this.pool
      .query({ name: statement.name, text: statement.text, values, rowMode: 'array' })
      .then(
        (res) => {
          this.gateDone();
          const row = res.rows[0] as unknown[];
          return toGateResult(row[row.length - 1] as Blocked | null);
        },
        (err: unknown) => {
          this.gateDone();
          // Not written: keep them for the next statement.
          if (commits.length > 0) this.pendingCommits.unshift(...commits);
          throw unavailable('gate', err);
        },
      );
  }

  /**
   * The calls that queued while every connection was busy, decided in one query (one commit).
   * If the batch fails for a reason of its own (bad input in one call, not the server being
   * unreachable), each call is retried alone so only the culprit fails.
   */
  private gateBatch(calls: PendingGate[]): void {
    this.gatesInFlight++;
    let json = '[';
    for (let i = 0; i < calls.length; i++) {
      const c = calls[i] as PendingGate;
      json += `${i === 0 ? '' : ','}[${c.ops},${c.now},${c.dry}]`;
    }
    this.pool
      .query({
        name: this.sql.gateMany.name,
        text: this.sql.gateMany.text,
        values: [`${json}]`],
        rowMode: 'array',
      })
      .then(
        (res) => {
          this.gateDone();
          const results = (res.rows[0] as [(Blocked | null)[]])[0];
          for (let i = 0; i < calls.length; i++) {
            (calls[i] as PendingGate).resolve?.(toGateResult(results[i] ?? null));
          }
        },
        (err: unknown) => {
          this.gateDone();
          const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
          const own = typeof code === 'string' && !/^(08|53|57|58)/.test(code);
          for (const c of calls) {
            if (own) this.gateOne(c).then(c.resolve, c.reject);
            else c.reject?.(unavailable('gate', err));
          }
        },
      );
  }

  private gateDone(): void {
    this.gatesInFlight--;
    while (this.waiting.length > 0 && this.gatesInFlight < this.maxGatesInFlight) {
      const calls = this.waiting.splice(0, MAX_BATCH);
      if (calls.length > 1) {
        this.gateBatch(calls);
      } else {
        const c = calls[0] as PendingGate;
        this.gateOne(c).then(c.resolve, c.reject);
      }
    }
  }

  /**
   * Dedup commits only (the success path of every deduplicated dispatch) commit asynchronously
   * (`synchronous_commit = off` for that one statement): no second WAL flush per dispatch. A
   * server crash may lose such a commit; the key then stays reserved — still deduplicating —
   * until its TTL. Releases and idempotency records are committed durably.
   */
  async settle(ops: readonly SettleOp[]): Promise<void> {
    if (ops.length === 0) return;
    const relaxed = ops.every((o) => o.op === 'commit' && o.gate === 'dedup');
    if (relaxed && this.initialized) {
      // Ride along with the next gate's statement (one transaction instead of two), or go on
      // the next event-loop turn when no gate comes first.
      this.pendingCommits.push(...ops);
      this.flushSoon ??= new Promise<void>((resolve) => {
        setImmediate(() => {
          this.flushSoon = undefined;
          this.flushCommits().then(resolve, resolve);
        });
      });
      return this.flushSoon;
    }
    await this.run('settle', relaxed ? this.sql.settleRelaxed : this.sql.settle, [
      JSON.stringify(ops),
    ]);
  }

  /** Writes the buffered dedup commits that no gate has taken along. */
  private async flushCommits(): Promise<void> {
    if (this.pendingCommits.length === 0) return;
    const ops = this.pendingCommits;
    this.pendingCommits = [];
    await this.run('settle', this.sql.settleRelaxed, [JSON.stringify(ops)]);
  }

  async get(key: string, now: number): Promise<Versioned | undefined> {
    const res = await this.run<{ value: string; version: string; expires_at: string | null }>(
      'get',
      this.sql.get,
      [key, Math.floor(now)],
    );
    const row = res.rows[0];
    if (row === undefined) return undefined;
    return {
      value: row.value,
      version: Number(row.version),
      expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    };
  }

  async set(
    key: string,
    value: string,
    options: { ttlMs?: number; ifVersion?: number },
    now: number,
  ): Promise<number | undefined> {
    const t = Math.floor(now);
    const res = await this.run<{ v: string | null }>('set', this.sql.set, [
      key,
      value,
      options.ttlMs === undefined ? null : t + Math.floor(options.ttlMs),
      options.ifVersion ?? null,
      t,
    ]);
    const v = res.rows[0]?.v;
    return v === null || v === undefined ? undefined : Number(v);
  }

  async delete(key: string, options: { ifVersion?: number }, now: number): Promise<boolean> {
    const res = await this.run('delete', this.sql.delete, [
      key,
      Math.floor(now),
      options.ifVersion ?? null,
    ]);
    return res.rowCount === 1;
  }

  async acquireLease(
    name: string,
    holder: string,
    ttlMs: number,
    now: number,
  ): Promise<Lease | undefined> {
    const t = Math.floor(now);
    const res = await this.run<{ token: string; expires_at: string }>(
      'acquireLease',
      this.sql.acquireLease,
      [name, holder, t + Math.floor(ttlMs), t],
    );
    const row = res.rows[0];
    if (row === undefined) return undefined;
    return { name, holder, token: Number(row.token), expiresAt: Number(row.expires_at) };
  }

  async renewLease(
    name: string,
    holder: string,
    token: number,
    ttlMs: number,
    now: number,
  ): Promise<boolean> {
    const t = Math.floor(now);
    const res = await this.run('renewLease', this.sql.renewLease, [
      name,
      holder,
      token,
      t + Math.floor(ttlMs),
      t,
    ]);
    return res.rowCount === 1;
  }

  async releaseLease(name: string, holder: string, token: number): Promise<boolean> {
    const res = await this.run('releaseLease', this.sql.releaseLease, [name, holder, token]);
    return res.rowCount === 1;
  }

  async putDue(queue: string, id: string, dueAt: number, payload: string): Promise<void> {
    await this.run('putDue', this.sql.putDue, [queue, id, Math.floor(dueAt), payload]);
  }

  async claimDue(
    queue: string,
    limit: number,
    holder: string,
    leaseMs: number,
    now: number,
  ): Promise<DueItem[]> {
    if (limit <= 0) return [];
    const t = Math.floor(now);
    const res = await this.run<{ id: string; due_at: string; payload: string; attempts: number }>(
      'claimDue',
      this.sql.claimDue,
      [queue, t, Math.floor(limit), holder, t + Math.floor(leaseMs)],
    );
    // RETURNING keeps no order: sort as the claim did (due time, then id in byte order).
    return res.rows
      .map((r) => ({
        queue,
        id: r.id,
        dueAt: Number(r.due_at),
        payload: r.payload,
        attempts: r.attempts,
      }))
      .sort((a, b) => a.dueAt - b.dueAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async ackDue(queue: string, id: string, holder: string): Promise<boolean> {
    const res = await this.run('ackDue', this.sql.ackDue, [queue, id, holder]);
    return res.rowCount === 1;
  }

  async rescheduleDue(
    queue: string,
    id: string,
    holder: string,
    dueAt: number,
    payload?: string,
  ): Promise<boolean> {
    const res = await this.run('rescheduleDue', this.sql.rescheduleDue, [
      queue,
      id,
      holder,
      Math.floor(dueAt),
      payload ?? null,
    ]);
    return res.rowCount === 1;
  }

  async listDue(
    queue: string,
    options: { limit: number; after?: { dueAt: number; id: string } },
  ): Promise<DueItem[]> {
    if (options.limit <= 0) return [];
    const limit = Math.floor(options.limit);
    const { after } = options;
    const res = await (after === undefined
      ? this.run<DueRow>('listDue', this.sql.listDue, [queue, limit])
      : this.run<DueRow>('listDue', this.sql.listDueAfter, [queue, after.dueAt, after.id, limit]));
    return res.rows.map((r) => toDueItem(queue, r));
  }

  async getDue(queue: string, id: string): Promise<DueItem | undefined> {
    const res = await this.run<DueRow>('getDue', this.sql.getDue, [queue, id]);
    const row = res.rows[0];
    return row === undefined ? undefined : toDueItem(queue, row);
  }

  async removeDue(queue: string, id: string): Promise<boolean> {
    const res = await this.run('removeDue', this.sql.removeDue, [queue, id]);
    return res.rowCount === 1;
  }

  async countDue(queue: string): Promise<number> {
    const res = await this.run<{ n: string }>('countDue', this.sql.countDue, [queue]);
    return Number(res.rows[0]?.n ?? 0);
  }

  async cleanup(now: number): Promise<number> {
    const res = await this.run<{ n: string }>('cleanup', this.sql.cleanup, [Math.floor(now)]);
    return Number(res.rows[0]?.n ?? 0);
  }

  close(): Promise<void> {
    // A store closed before (or while) init finished must still end cleanly, and only once.
    this.closing ??= (this.ready ?? Promise.resolve())
      .catch(() => {})
      .then(() => (this.initialized ? this.flushCommits().catch(() => {}) : undefined))
      .then(() => this.pool.end());
    return this.closing;
  }

  /** One statement, after init; any failure becomes SY_ERR_STATE_UNAVAILABLE. */
  private async run<R extends object = object>(
    operation: string,
    statement: { name: string; text: string },
    values: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }> {
    if (!this.initialized) await this.init();
    try {
      const config: QueryConfig = { name: statement.name, text: statement.text, values };
      return await this.pool.query<R & Record<string, unknown>>(config);
    } catch (err) {
      throw unavailable(operation, err);
    }
  }
}

function toGateResult(blocked: Blocked | null): GateResult {
  if (blocked === null) return PASS;
  if (blocked.kind === 'throttle') {
    return {
      pass: false,
      index: blocked.index,
      kind: 'throttle',
      retryAfterMs: blocked.retryAfterMs,
      limit: blocked.limit,
      windowMs: blocked.windowMs,
    };
  }
  return {
    pass: false,
    index: blocked.index,
    kind: blocked.kind,
    inFlight: blocked.inFlight,
    holder: blocked.holder,
    stored: blocked.stored ?? undefined,
  };
}

/** A due item as the list and get statements return it (bigints come as strings). */
interface DueRow {
  id: string;
  due_at: string;
  payload: string;
  attempts: number;
}

function toDueItem(queue: string, r: DueRow): DueItem {
  return { queue, id: r.id, dueAt: Number(r.due_at), payload: r.payload, attempts: r.attempts };
}

/** Wraps a driver error once; errors already wrapped (from init) pass through. */
function unavailable(operation: string, err: unknown): SyError {
  if (err instanceof SyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SyError(
    'SY_ERR_STATE_UNAVAILABLE',
    `postgres ${operation} failed: ${message}`,
    { backend: 'postgres', operation },
    { cause: err },
  );
}

/**
 * The statements of one store, named so each connection parses them once. Names carry the
 * prefix only for readability in pg_prepared_statements: they are per connection, and a pool
 * belongs to one store.
 */
function statements(n: SchemaNames) {
  const t = (name: string): string => qualified(n, name);
  const s = (name: string, text: string) => ({ name: `sy_${name}`, text });
  return {
    gate: s('gate', `select ${t('gate')}($1::jsonb, $2::bigint, $3::boolean)`),
    gateMany: s('gate_many', `select ${t('gate_many')}($1::jsonb)`),
    settle: s('settle', `select ${t('settle')}($1::jsonb)`),
    gateWithCommits: s(
      'gate_with_commits',
      `select ${t('settle')}($4::jsonb), ${t('gate')}($1::jsonb, $2::bigint, $3::boolean)`,
    ),
    // set_config(..., true) is local to the statement's own (implicit) transaction.
    settleRelaxed: s(
      'settle_relaxed',
      `select set_config('synchronous_commit', 'off', true), ${t('settle')}($1::jsonb)`,
    ),
    get: s(
      'get',
      `select value, version, expires_at from ${t('kv')}
       where key = $1 and (expires_at is null or expires_at > $2)`,
    ),
    set: s('set', `select ${t('kv_set')}($1, $2, $3, $4, $5) as v`),
    delete: s(
      'delete',
      `delete from ${t('kv')} where key = $1 and (expires_at is null or expires_at > $2)
       and ($3::bigint is null or version = $3)`,
    ),
    // Free, expired or already ours: take it. The token moves on whenever the holder changes
    // (or our own lease had lapsed), so a stale holder's writes can be fenced off.
    acquireLease: s(
      'acquire_lease',
      `insert into ${t('leases')} as l (name, holder, token, expires_at) values ($1, $2, 1, $3)
       on conflict (name) do update set
         token = case when l.holder = excluded.holder and l.expires_at > $4
                      then l.token else l.token + 1 end,
         holder = excluded.holder, expires_at = excluded.expires_at
       where l.expires_at <= $4 or l.holder = excluded.holder
       returning token, expires_at`,
    ),
    renewLease: s(
      'renew_lease',
      `update ${t('leases')} set expires_at = $4
       where name = $1 and holder = $2 and token = $3 and expires_at > $5`,
    ),
    releaseLease: s(
      'release_lease',
      `update ${t('leases')} set holder = '', expires_at = 0
       where name = $1 and holder = $2 and token = $3`,
    ),
    putDue: s(
      'put_due',
      `insert into ${t('due')} (queue, id, due_at, payload) values ($1, $2, $3, $4)
       on conflict (queue, id) do update set due_at = excluded.due_at, payload = excluded.payload,
         holder = null, claimed_until = 0, attempts = 0`,
    ),
    claimDue: s(
      'claim_due',
      `update ${t('due')} d set holder = $4, claimed_until = $5, attempts = d.attempts + 1
       where (d.queue, d.id) in (
         select c.queue, c.id from ${t('due')} c
         where c.queue = $1 and c.due_at <= $2 and (c.holder is null or c.claimed_until <= $2)
         order by c.due_at, c.id limit $3
         for update skip locked)
       returning d.id, d.due_at, d.payload, d.attempts`,
    ),
    ackDue: s('ack_due', `delete from ${t('due')} where queue = $1 and id = $2 and holder = $3`),
    rescheduleDue: s(
      'reschedule_due',
      `update ${t('due')} set due_at = $4, payload = coalesce($5, payload), holder = null,
         claimed_until = 0
       where queue = $1 and id = $2 and holder = $3`,
    ),
    // Both read <prefix>due_ready (queue, due_at, id) in order from the page's start: the row
    // comparison is an index bound (id is collate "C" in the table, the index and the bound).
    listDue: s(
      'list_due',
      `select id, due_at, payload, attempts from ${t('due')}
       where queue = $1 order by due_at, id limit $2`,
    ),
    listDueAfter: s(
      'list_due_after',
      `select id, due_at, payload, attempts from ${t('due')}
       where queue = $1 and (due_at, id) > ($2::bigint, $3::text)
       order by due_at, id limit $4`,
    ),
    getDue: s(
      'get_due',
      `select id, due_at, payload, attempts from ${t('due')} where queue = $1 and id = $2`,
    ),
    removeDue: s('remove_due', `delete from ${t('due')} where queue = $1 and id = $2`),
    countDue: s('count_due', `select count(*) as n from ${t('due')} where queue = $1`),
    // Rows a gate or settle is writing right now are skipped, not waited for: cleanup never
    // blocks the hot path or deadlocks with it, and gets those rows next time.
    cleanup: s(
      'cleanup',
      `with r as (delete from ${t('reservations')} where ctid = any(array(
                    select ctid from ${t('reservations')} where expires_at <= $1
                    for update skip locked)) returning 1),
            w as (delete from ${t('windows')} where ctid = any(array(
                    select ctid from ${t('windows')} where ts <= $1 - window_ms
                    for update skip locked)) returning 1),
            k as (delete from ${t('kv')} where ctid = any(array(
                    select ctid from ${t('kv')} where expires_at <= $1
                    for update skip locked)) returning 1)
       select (select count(*) from r) + (select count(*) from w) + (select count(*) from k) as n`,
    ),
  };
}
