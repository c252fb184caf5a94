import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { SyError, type ErrorCode } from '../../core/errors.js';
import { chainHash, GENESIS_HASH, withChain, type AuditRecord } from '../record.js';
import type { AuditPage, AuditQuery, AuditStore } from '../store.js';
import { MIGRATIONS, MIGRATIONS_TABLE, type Migration } from './schema.js';

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement<unknown[], unknown>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- better-sqlite3's own constraint
type Transaction<F extends (...args: any[]) => unknown> = BetterSqlite3.Transaction<F>;

export interface SqliteAuditStoreOptions {
  /** The database file (`:memory:` for a private in-memory one); its directory is created. */
  readonly path: string;
  /** How long a write waits for another process's transaction before failing. Default 5000. */
  readonly busyTimeoutMs?: number;
  /**
   * Apply pending migrations on open (default true). With false the schema is left alone and
   * opening a file that needs migrations fails (run `switchyard migrate` first).
   */
  readonly migrate?: boolean;
}

/**
 * The code backend failures are reported with: "a store did not answer, retry" (503), as the
 * postgres audit store does; the writer reports a failed strict write as SY_ERR_AUDIT_UNAVAILABLE.
 */
const FAILURE_CODE: ErrorCode = 'SY_ERR_STATE_UNAVAILABLE';

/** Largest page (AuditQuery.limit is documented as at most 1000). */
const MAX_LIMIT = 1000;

/** Prepared query statements kept per distinct SQL text (filter combination); beyond, reset. */
const QUERY_CACHE_SIZE = 256;

/** Every column, in the order of the INSERT's parameters and of `Row`. */
const COLUMNS = `id, kind, action_id, namespace, tenant, provider, original_provider, destination,
  action_type, labels, outcome, rules, reason, attempt, status, error_code, dedup_key, received_at,
  decided_at, executed_at, duration_ms, node_id, trace_id, payload, payload_hash, chain_seq,
  prev_hash, hash`;

/** A row of audit_records, as better-sqlite3 returns it (column names). */
interface Row {
  id: string;
  kind: AuditRecord['kind'];
  action_id: string;
  namespace: string;
  tenant: string;
  provider: string;
  original_provider: string;
  destination: string | null;
  action_type: string;
  labels: string;
  outcome: string;
  rules: string;
  reason: string | null;
  attempt: number | null;
  status: number | null;
  error_code: string | null;
  dedup_key: string | null;
  received_at: number;
  decided_at: number;
  executed_at: number | null;
  duration_ms: number;
  node_id: string;
  trace_id: string | null;
  payload: string | null;
  payload_hash: string;
  chain_seq: number | null;
  prev_hash: string | null;
  hash: string | null;
}

/**
 * The SQLite audit store: one file, shared by every process that opens it.
 *
 * Writes: each append() is ONE `BEGIN IMMEDIATE` transaction with a prepared INSERT per record,
 * so a batch is all-or-nothing and concurrent writers (other processes) serialize on the file's
 * write lock. With `chain: true` the tenant's head is read, the hashes computed and the head
 * updated inside that transaction, so two writers can never fork a chain.
 *
 * Durability: WAL with `synchronous = NORMAL` (as the state store). A committed batch survives a
 * crash of the process; an OS crash or power loss may lose the last committed transactions (not
 * yet checkpointed and fsynced), never corrupts the file.
 *
 * better-sqlite3 is synchronous: every method does its work before returning its promise (a batch
 * of 1,000 records blocks the event loop for a few milliseconds). The native binding is loaded in
 * the constructor, not at import, so configurations that do not use SQLite never load it.
 *
 * @example
 *   const audit = new SqliteAuditStore({ path: 'switchyard-data/audit.db' });
 */
export class SqliteAuditStore implements AuditStore {
  readonly backend = 'sqlite';
  readonly path: string;
  private readonly db: Database;
  private readonly q: Statements;
  private readonly appendTx: Transaction<(records: readonly AuditRecord[], chain: boolean) => void>;
  private readonly queries = new Map<string, Statement>();
  /** Migrations applied by this store and not yet reported by migrate(). */
  private unreported: string[] = [];

  constructor(options: SqliteAuditStoreOptions) {
    this.path = options.path;
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
            `the audit schema needs migrations ${pending.map((m) => m.name).join(', ')}; run \`switchyard migrate\``,
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

    this.appendTx = db.transaction((records: readonly AuditRecord[], chain: boolean) => {
      const insert = this.q.insert;
      if (!chain) {
        for (const r of records) insert.run(params(r, undefined, undefined, undefined));
        return;
      }
      // Heads read once per tenant per batch, written back once at the end.
      const heads = new Map<string, { seq: number; hash: string }>();
      for (const r of records) {
        let head = heads.get(r.tenant);
        if (head === undefined) {
          const row = this.q.headGet.get(r.tenant) as [seq: number, hash: string] | undefined;
          head = row === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: row[0], hash: row[1] };
          heads.set(r.tenant, head);
        }
        const seq = head.seq + 1;
        const prevHash = head.hash;
        // Hashed as it will be read back: exactly the record's fields, nothing a caller added.
        const hash = chainHash(withChain(r, seq, prevHash, undefined), prevHash);
        insert.run(params(r, seq, prevHash, hash));
        head.seq = seq;
        head.hash = hash;
      }
      for (const [tenant, head] of heads) this.q.headPut.run(tenant, head.seq, head.hash);
    });
  }

  /** The schema is applied when the store opens (see `migrate`); nothing left to do. */
  init(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Applies the migrations this file lacks and returns the names this store applied that were
   * not reported yet — including those applied when it opened the file.
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

  /** One BEGIN IMMEDIATE transaction, so concurrent openers apply each migration once. */
  private applyMigrations(): string[] {
    const db = this.db;
    return db
      .transaction(() => {
        db.exec(MIGRATIONS_TABLE);
        const pending = pendingMigrations(db);
        const record = db.prepare(
          'INSERT INTO audit_migrations (version, name, applied_at) VALUES (?, ?, ?)',
        );
        for (const m of pending) {
          db.exec(m.sql);
          record.run(m.version, m.name, Date.now());
        }
        return pending.map((m) => m.name);
      })
      .immediate();
  }

  append(records: readonly AuditRecord[], options: { chain: boolean }): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    try {
      this.appendTx.immediate(records, options.chain);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(this.fail('append', err));
    }
  }

  query(q: AuditQuery): Promise<AuditPage> {
    try {
      const desc = q.order !== 'asc';
      const limit = clampLimit(q.limit);
      const where: string[] = [];
      const args: unknown[] = [];
      const eq = (column: string, value: string | undefined): void => {
        if (value === undefined) return;
        where.push(`${column} = ?`);
        args.push(value);
      };
      eq('tenant', q.tenant);
      eq('namespace', q.namespace);
      eq('provider', q.provider);
      eq('action_type', q.actionType);
      eq('outcome', q.outcome);
      eq('kind', q.kind);
      if (q.rule !== undefined) {
        where.push('EXISTS (SELECT 1 FROM json_each(rules) WHERE value = ?)');
        args.push(q.rule);
      }
      if (q.label !== undefined) {
        where.push('json_extract(labels, ?) = ?');
        args.push(jsonPath(q.label.key), q.label.value);
      }
      if (q.from !== undefined) {
        where.push('decided_at >= ?');
        args.push(q.from);
      }
      if (q.to !== undefined) {
        where.push('decided_at < ?');
        args.push(q.to);
      }
      if (q.text !== undefined) {
        // instr: a literal, case-sensitive substring (no LIKE wildcards to escape).
        where.push('(instr(action_id, ?) > 0 OR instr(dedup_key, ?) > 0)');
        args.push(q.text, q.text);
      }
      const after = decodeCursor(q.cursor);
      if (after !== undefined) {
        // A row value comparison: an index range on (…, decided_at, id), not a filter.
        where.push(`(decided_at, id) ${desc ? '<' : '>'} (?, ?)`);
        args.push(after.at, after.id);
      }
      const dir = desc ? 'DESC' : 'ASC';
      const sql =
        `SELECT ${COLUMNS} FROM audit_records` +
        (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
        ` ORDER BY decided_at ${dir}, id ${dir} LIMIT ?`;
      args.push(limit + 1);
      const rows = this.prepared(sql).all(...args) as Row[];
      const more = rows.length > limit;
      if (more) rows.length = limit;
      const last = rows[rows.length - 1];
      return Promise.resolve({
        items: rows.map(toRecord),
        nextCursor: more && last !== undefined ? encodeCursor(last.decided_at, last.id) : null,
      });
    } catch (err) {
      return Promise.reject(this.fail('query', err));
    }
  }

  history(actionId: string, scope?: { namespace: string; tenant: string }): Promise<AuditRecord[]> {
    try {
      const rows = (
        scope === undefined
          ? this.q.history.all(actionId)
          : this.q.historyScoped.all(actionId, scope.namespace, scope.tenant)
      ) as Row[];
      return Promise.resolve(rows.map(toRecord));
    } catch (err) {
      return Promise.reject(this.fail('history', err));
    }
  }

  chainPage(tenant: string, afterSeq: number, limit: number): Promise<AuditRecord[]> {
    try {
      const rows = this.q.chainPage.all(tenant, afterSeq, Math.max(0, limit)) as Row[];
      return Promise.resolve(rows.map(toRecord));
    } catch (err) {
      return Promise.reject(this.fail('chainPage', err));
    }
  }

  chainTenants(): Promise<string[]> {
    try {
      return Promise.resolve(this.q.chainTenants.all() as string[]);
    } catch (err) {
      return Promise.reject(this.fail('chainTenants', err));
    }
  }

  deleteBefore(before: number, limit: number): Promise<number> {
    try {
      if (limit <= 0) return Promise.resolve(0);
      return Promise.resolve(this.q.deleteBefore.run(before, limit).changes);
    } catch (err) {
      return Promise.reject(this.fail('deleteBefore', err));
    }
  }

  erasePayloads(field: string, value: string): Promise<number> {
    try {
      let condition: string;
      const args: unknown[] = [];
      const column = ERASE_COLUMNS[field];
      if (column !== undefined) {
        condition = `${column} = ?`;
        args.push(value);
      } else if (field.startsWith('labels.')) {
        condition = 'json_extract(labels, ?) = ?';
        args.push(jsonPath(field.slice('labels.'.length)), value);
      } else if (field.startsWith('payload.')) {
        // Strings compare as they are, integers and booleans by their JSON text (as memory).
        const path = jsonPath(field.slice('payload.'.length));
        condition = `CASE json_type(payload, ?)
            WHEN 'text' THEN json_extract(payload, ?) = ?
            WHEN 'integer' THEN CAST(json_extract(payload, ?) AS TEXT) = ?
            WHEN 'true' THEN ? = 'true'
            WHEN 'false' THEN ? = 'false'
            ELSE 0 END`;
        args.push(path, path, value, path, value, value, value);
      } else {
        throw eraseFieldError(field);
      }
      const sql = `UPDATE audit_records SET payload = NULL WHERE payload IS NOT NULL AND ${condition}`;
      return Promise.resolve(this.prepared(sql).run(...args).changes);
    } catch (err) {
      return Promise.reject(this.fail('erasePayloads', err));
    }
  }

  count(): Promise<number> {
    try {
      return Promise.resolve(this.q.count.get() as number);
    } catch (err) {
      return Promise.reject(this.fail('count', err));
    }
  }

  close(): Promise<void> {
    try {
      if (this.db.open) this.db.close();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(this.fail('close', err));
    }
  }

  /** A statement for SQL built from a query's filters, prepared once per distinct text. */
  private prepared(sql: string): Statement {
    let statement = this.queries.get(sql);
    if (statement === undefined) {
      if (this.queries.size >= QUERY_CACHE_SIZE) this.queries.clear();
      statement = this.db.prepare(sql);
      this.queries.set(sql, statement);
    }
    return statement;
  }

  /** Wraps a backend failure once, with the operation and the file. */
  private fail(operation: string, err: unknown, hint = ''): SyError {
    if (err instanceof SyError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new SyError(
      FAILURE_CODE,
      `sqlite audit ${operation} failed: ${message}${hint}`,
      { backend: 'sqlite', operation, path: this.path },
      { cause: err },
    );
  }
}

/** erasePayloads fields that are plain columns. */
const ERASE_COLUMNS: Readonly<Record<string, string | undefined>> = {
  actionId: 'action_id',
  tenant: 'tenant',
  namespace: 'namespace',
  dedupKey: 'dedup_key',
};

function eraseFieldError(field: string): SyError {
  return new SyError(
    'SY_ERR_VALIDATION',
    `cannot erase by "${field}": use actionId, tenant, namespace, dedupKey, labels.<key> or payload.<key>`,
    { field: 'field', value: field },
  );
}

/** A JSON path naming one top-level key, whatever its characters: `$."a.b"`. */
function jsonPath(key: string): string {
  return `$.${JSON.stringify(key)}`;
}

function clampLimit(limit: number): number {
  return Math.max(1, Math.min(MAX_LIMIT, Math.floor(limit) || 1));
}

/** The INSERT's parameters for one record, with the chain fields the store assigned. */
function params(
  r: AuditRecord,
  chainSeq: number | undefined,
  prevHash: string | undefined,
  hash: string | undefined,
): unknown[] {
  return [
    r.id,
    r.kind,
    r.actionId,
    r.namespace,
    r.tenant,
    r.provider,
    r.originalProvider,
    r.destination ?? null,
    r.actionType,
    JSON.stringify(r.labels),
    r.outcome,
    JSON.stringify(r.rules),
    r.reason ?? null,
    r.attempt ?? null,
    r.status ?? null,
    r.errorCode ?? null,
    r.dedupKey ?? null,
    r.receivedAt,
    r.decidedAt,
    r.executedAt ?? null,
    r.durationMs,
    r.nodeId,
    r.traceId ?? null,
    r.payload === undefined ? null : (JSON.stringify(r.payload) ?? null),
    r.payloadHash,
    chainSeq ?? null,
    prevHash ?? null,
    hash ?? null,
  ];
}

function toRecord(row: Row): AuditRecord {
  return {
    id: row.id,
    kind: row.kind,
    actionId: row.action_id,
    namespace: row.namespace,
    tenant: row.tenant,
    provider: row.provider,
    originalProvider: row.original_provider,
    destination: row.destination ?? undefined,
    actionType: row.action_type,
    labels: JSON.parse(row.labels) as Record<string, string>,
    outcome: row.outcome,
    rules: JSON.parse(row.rules) as string[],
    reason: row.reason ?? undefined,
    attempt: row.attempt ?? undefined,
    status: row.status ?? undefined,
    errorCode: row.error_code ?? undefined,
    dedupKey: row.dedup_key ?? undefined,
    receivedAt: row.received_at,
    decidedAt: row.decided_at,
    executedAt: row.executed_at ?? undefined,
    durationMs: row.duration_ms,
    nodeId: row.node_id,
    traceId: row.trace_id ?? undefined,
    payload: row.payload === null ? undefined : (JSON.parse(row.payload) as unknown),
    payloadHash: row.payload_hash,
    chainSeq: row.chain_seq ?? undefined,
    prevHash: row.prev_hash ?? undefined,
    hash: row.hash ?? undefined,
  };
}

/** The migrations this file lacks, in order. Reads only. */
function pendingMigrations(db: Database): Migration[] {
  const tracked = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_migrations'")
    .get();
  if (tracked === undefined) return [...MIGRATIONS];
  const done = new Set(
    db.prepare('SELECT version FROM audit_migrations').pluck().all() as number[],
  );
  return MIGRATIONS.filter((m) => !done.has(m.version));
}

/** The fixed statements, compiled once per connection (queries are built per filter set). */
interface Statements {
  readonly insert: Statement;
  readonly headGet: Statement;
  readonly headPut: Statement;
  readonly history: Statement;
  readonly historyScoped: Statement;
  readonly chainPage: Statement;
  readonly chainTenants: Statement;
  readonly deleteBefore: Statement;
  readonly count: Statement;
}

function compile(db: Database): Statements {
  return {
    insert: db.prepare(
      `INSERT INTO audit_records (${COLUMNS}) VALUES (${new Array(28).fill('?').join(', ')})`,
    ),
    headGet: db.prepare('SELECT seq, hash FROM audit_chain_heads WHERE tenant = ?').raw(),
    headPut: db.prepare(
      `INSERT INTO audit_chain_heads (tenant, seq, hash) VALUES (?, ?, ?)
       ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`,
    ),
    history: db.prepare(
      `SELECT ${COLUMNS} FROM audit_records WHERE action_id = ? ORDER BY decided_at, id`,
    ),
    historyScoped: db.prepare(
      `SELECT ${COLUMNS} FROM audit_records WHERE action_id = ? AND namespace = ? AND tenant = ?
       ORDER BY decided_at, id`,
    ),
    // `chain_seq > ?` implies chain_seq IS NOT NULL, so the partial index serves it.
    chainPage: db.prepare(
      `SELECT ${COLUMNS} FROM audit_records WHERE tenant = ? AND chain_seq > ?
       ORDER BY chain_seq LIMIT ?`,
    ),
    chainTenants: db.prepare('SELECT tenant FROM audit_chain_heads ORDER BY tenant').pluck(),
    // Oldest first, in cursor order (audit_records_time), at most `limit`.
    deleteBefore: db.prepare(
      `DELETE FROM audit_records WHERE rowid IN (
         SELECT rowid FROM audit_records WHERE decided_at < ? ORDER BY decided_at, id LIMIT ?)`,
    ),
    count: db.prepare('SELECT count(*) FROM audit_records').pluck(),
  };
}
