import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { createRequire } from 'node:module';
import type * as PG from 'pg';
import type { Pool, PoolClient } from 'pg';
import { SyError } from '../../core/errors.js';
import { chainHash, GENESIS_HASH, withChain, type AuditRecord } from '../record.js';
import type { AuditPage, AuditQuery, AuditStore } from '../store.js';
import { MIGRATIONS, qualified, type SchemaNames } from './schema.js';

export interface PostgresAuditStoreOptions {
  /** A libpq-style connection URL: `postgres://user@host:5432/db`. */
  readonly url: string;
  /** Prefix of every table and index name. Default `switchyard_`. */
  readonly prefix?: string;
  /** Schema holding the tables; created when missing. Default `public`. */
  readonly schema?: string;
  /** Maximum connections. Default 10. */
  readonly pool?: number;
  /**
   * Apply pending migrations in init() (default true). With false, init() only checks that the
   * schema is current and fails with a hint to run `switchyard migrate` when it is not.
   */
  readonly migrate?: boolean;
  /**
   * Server-side `statement_timeout` (the client gives up 1 s later). Default 30000: erasure by a
   * label or payload key and large retention deletes scan the table.
   */
  readonly statementTimeoutMs?: number;
  /** Time allowed to open a connection or wait for a free one. Default 5000. */
  readonly connectTimeoutMs?: number;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Most records a query returns (AuditQuery.limit). */
const MAX_LIMIT = 1000;

/** A record as its row comes back (bigint columns as strings). */
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
  labels: Record<string, string>;
  outcome: string;
  rules: string[];
  reason: string | null;
  attempt: number | null;
  status: number | null;
  error_code: string | null;
  dedup_key: string | null;
  received_at: string;
  decided_at: string;
  executed_at: string | null;
  duration_ms: number;
  node_id: string;
  trace_id: string | null;
  has_payload: boolean;
  payload: unknown;
  payload_hash: string;
  chain_seq: string | null;
  prev_hash: string | null;
  hash: string | null;
}

const COLUMNS = `id, kind, action_id, namespace, tenant, provider, original_provider, destination,
  action_type, labels, outcome, rules, reason, attempt, status, error_code, dedup_key, received_at,
  decided_at, executed_at, duration_ms, node_id, trace_id, payload is not null as has_payload,
  payload, payload_hash, chain_seq, prev_hash, hash`;

/** The columns a COPY writes, in the order copyColumns and the chain columns are written. */
const COPY_COLUMNS = `id, kind, action_id, namespace, tenant, provider, original_provider,
  destination, action_type, labels, outcome, rules, reason, attempt, status, error_code,
  dedup_key, received_at, decided_at, executed_at, duration_ms, node_id, trace_id, payload,
  payload_hash, chain_seq, prev_hash, hash`;

/** The part of pg's connection a COPY uses. */
interface CopyConnection {
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
}

/** Records per COPY data message. */
const COPY_CHUNK = 100;

/** erasePayloads fields naming a column. */
const ERASE_COLUMNS: Record<string, string> = {
  actionId: 'action_id',
  tenant: 'tenant',
  namespace: 'namespace',
  dedupKey: 'dedup_key',
};

/**
 * The PostgreSQL audit store: one table shared by every gateway process on one database.
 *
 * `append` is one `COPY ... FROM STDIN` per batch (one statement, one round trip, one commit;
 * COPY parses about twice as fast as a multi-row INSERT from unnest() arrays or
 * json_to_recordset). With `chain: true` the COPY runs in a transaction that first upserts and
 * row-locks the heads of the batch's tenants in `<prefix>audit_chain_heads` (in tenant byte
 * order, so two gateways locking overlapping tenants never deadlock: the second waits for the
 * first to commit and then reads its head), computes chainSeq / prevHash / hash in TypeScript,
 * copies, and moves the heads. A unique index on (tenant, chain_seq) backs this up: a chain can
 * never fork.
 *
 * Appends are idempotent per record (decidedAt, id): a batch retried after a lost commit
 * acknowledgement fails its COPY on the primary key and is then written again without the
 * records already stored (chained ones keep the place they got the first time).
 *
 * Durability: every write commits with the server's `synchronous_commit` (on by default), so an
 * append that resolved survives a server crash; the store never relaxes it. A server configured
 * with `synchronous_commit = off` may lose the last ~600 ms of acknowledged appends on a crash
 * (never a torn batch, and never a gap in a chain: a lost batch takes its head update with it).
 *
 * Queries page by (decided_at, id) as a row comparison, which every index above serves as an
 * index bound; filters are fixed SQL fragments with numbered parameters (no input is ever
 * spliced into SQL), planned per call (unnamed statements) so the planner sees the values.
 *
 * `pg` is loaded when a store is constructed, never at import. Every method waits for `init()`
 * (connect + migrations). Every driver error becomes one SY_ERR_STATE_UNAVAILABLE with
 * `details: { backend: 'postgres', store: 'audit', operation }` and the cause.
 */
export class PostgresAuditStore implements AuditStore {
  readonly backend = 'postgres';
  private readonly pool: Pool;
  private readonly pg: typeof PG;
  private readonly names: SchemaNames;
  private readonly records: string;
  private readonly heads: string;
  private readonly autoMigrate: boolean;
  private ready: Promise<void> | undefined;
  private initialized = false;
  private closing: Promise<void> | undefined;

  constructor(options: PostgresAuditStoreOptions) {
    const schema = options.schema ?? 'public';
    const prefix = options.prefix ?? 'switchyard_';
    for (const [name, value] of [
      ['schema', schema],
      ['prefix', prefix],
    ] as const) {
      // Spliced into SQL; identifiers are at most 63 bytes ("<prefix>audit_namespace_time").
      if (!IDENTIFIER.test(value) || value.length > 40) {
        throw new SyError(
          'SY_ERR_CONFIG_INVALID',
          `postgres audit store: ${name} "${value}" must be a plain identifier of at most 40 characters`,
          { backend: 'postgres', [name]: value },
        );
      }
    }
    this.names = { schema, prefix };
    this.records = qualified(this.names, 'audit_records');
    this.heads = qualified(this.names, 'audit_chain_heads');
    this.autoMigrate = options.migrate ?? true;
    const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
    const pg = createRequire(import.meta.url)('pg') as typeof PG;
    this.pg = pg;
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.pool ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      statement_timeout: statementTimeoutMs,
      query_timeout: statementTimeoutMs + 1000,
      keepAlive: true,
      application_name: 'switchyard-audit',
    });
    // An idle connection that dies is reported here (the pool drops it); without a listener the
    // 'error' event would crash the process.
    this.pool.on('error', () => {});
  }

  /** Connects and applies pending migrations (once; retried on the next call after a failure). */
  init(): Promise<void> {
    this.ready ??= (this.autoMigrate ? this.migrate().then(() => {}) : this.verifySchema()).then(
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
        `select version from ${qualified(this.names, 'audit_migrations')}`,
      );
      versions = new Set(rows.rows.map((r) => r.version));
    } catch (err) {
      throw new SyError(
        'SY_ERR_STATE_UNAVAILABLE',
        `postgres audit schema check failed (run \`switchyard migrate\`): ${(err as Error).message}`,
        { backend: 'postgres', store: 'audit', operation: 'init' },
        { cause: err },
      );
    }
    const missing = MIGRATIONS.filter((m) => !versions.has(m.version)).map((m) => m.name);
    if (missing.length > 0) {
      throw new SyError(
        'SY_ERR_STATE_UNAVAILABLE',
        `postgres audit schema is not current (missing ${missing.join(', ')}); run \`switchyard migrate\` or set migrate: true`,
        { backend: 'postgres', store: 'audit', operation: 'init' },
      );
    }
  }

  /**
   * Applies pending migrations in one transaction under an advisory lock on (schema, prefix), so
   * processes starting together apply each exactly once. Returns the names applied.
   */
  async migrate(): Promise<string[]> {
    return this.transaction('migrate', async (client) => {
      const { schema, prefix } = this.names;
      const table = qualified(this.names, 'audit_migrations');
      await client.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `switchyard-audit-migrate:${schema}.${prefix}`,
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
      return applied;
    });
  }

  async append(records: readonly AuditRecord[], options: { chain: boolean }): Promise<void> {
    if (records.length === 0) return;
    for (const r of records) checkRecord(r);
    if (!this.initialized) await this.init();
    try {
      await this.write(records, options.chain, false);
    } catch (err) {
      // Some of these records are stored already (a batch retried after its commit was not
      // acknowledged): write the others. Rare, so the common path never looks first.
      if (!this.isDuplicate(err)) throw unavailable('append', err);
      await this.write(records, options.chain, true).catch((e: unknown) => {
        throw unavailable('append', e);
      });
    }
  }

  /** A unique violation of the records' primary key (not of the chain index: that is a bug). */
  private isDuplicate(err: unknown): boolean {
    const e = err as { code?: unknown; constraint?: unknown };
    return e.code === '23505' && e.constraint === `${this.names.prefix}audit_records_pkey`;
  }

  /**
   * One batch: a COPY on its own (plain), or in a transaction that locks the tenants' chain heads
   * first and moves them after (chained). With `skipStored`, records already stored (same
   * decidedAt and id) are left out, and chained ones keep the place they got the first time.
   */
  private async write(
    records: readonly AuditRecord[],
    chain: boolean,
    skipStored: boolean,
  ): Promise<void> {
    let pending = unique(records);
    const client = await this.pool.connect();
    const ignore = (): void => {};
    // A checked-out client has no pool listener: keep a dying connection from crashing us.
    client.on('error', ignore);
    let transaction = false;
    try {
      if (!chain && !skipStored) {
        // Encoded chunk by chunk while the server inserts the chunks before.
        await this.copy(
          client,
          pending.length,
          (i) => copyLine(pending[i] as AuditRecord) + NO_CHAIN,
        );
      } else {
        // Encoded before the heads are locked: only the chain columns wait for the lock.
        let lines = pending.map(copyLine);
        transaction = true;
        await client.query('begin');
        const heads = chain ? await this.lockHeads(client, pending) : undefined;
        if (skipStored) {
          const keep = await this.notStored(client, pending);
          pending = pending.filter((_, i) => keep[i]);
          lines = lines.filter((_, i) => keep[i]);
        }
        if (pending.length > 0) {
          const columns = heads === undefined ? undefined : chainColumns(pending, heads);
          await this.copy(client, pending.length, (i) => lines[i] + (columns?.(i) ?? NO_CHAIN));
          if (heads !== undefined) {
            const next = [...heads];
            await client.query(
              `update ${this.heads} h set seq = v.seq, hash = v.hash
               from unnest($1::text[], $2::bigint[], $3::text[]) as v(tenant, seq, hash)
               where h.tenant = v.tenant`,
              [next.map(([t]) => t), next.map(([, h]) => h.seq), next.map(([, h]) => h.hash)],
            );
          }
        }
        await client.query('commit');
      }
      client.removeListener('error', ignore);
      client.release();
    } catch (err) {
      client.removeListener('error', ignore);
      // A COPY the server refused on its own leaves the connection idle and usable; anything else
      // (mid-transaction, broken, timed out) drops it.
      const refused = typeof (err as { code?: unknown }).code === 'string';
      client.release(transaction || !refused ? (err instanceof Error ? err : true) : undefined);
      throw err;
    }
  }

  /**
   * Inserts the heads of the batch's tenants that are missing and row-locks all of them, in
   * tenant byte order: appends touching the same tenants queue up in one order and never
   * deadlock. A head another transaction holds comes back as that transaction committed it.
   */
  private async lockHeads(
    client: PoolClient,
    records: readonly AuditRecord[],
  ): Promise<Map<string, { seq: number; hash: string }>> {
    const tenants = [...new Set(records.map((r) => r.tenant))];
    const locked = await client.query<{ tenant: string; seq: string; hash: string }>(
      `insert into ${this.heads} as h (tenant, seq, hash)
       select t, 0, $2 from unnest($1::text[]) t order by t collate "C"
       on conflict (tenant) do update set tenant = excluded.tenant
       returning h.tenant, h.seq, h.hash`,
      [tenants, GENESIS_HASH],
    );
    return new Map(locked.rows.map((h) => [h.tenant, { seq: Number(h.seq), hash: h.hash }]));
  }

  /** For each record, whether it is not stored yet. */
  private async notStored(client: PoolClient, records: readonly AuditRecord[]): Promise<boolean[]> {
    const stored = await client.query<{ decided_at: string; id: string }>(
      `select decided_at, id from ${this.records}
       where (decided_at, id) in (select * from unnest($1::bigint[], $2::text[]))`,
      [records.map((r) => r.decidedAt), records.map((r) => r.id)],
    );
    const keys = new Set(stored.rows.map((r) => key(Number(r.decided_at), r.id)));
    return records.map((r) => !keys.has(key(r.decidedAt, r.id)));
  }

  /**
   * `COPY ... FROM STDIN` of `count` lines, `line(i)` called for each in order (one statement,
   * the fastest way in). The data goes in chunks as the lines are made, so the server parses and
   * inserts the first records while the next are still being encoded (and hashed) here.
   */
  private copy(client: PoolClient, count: number, line: (i: number) => string): Promise<void> {
    return new Promise((resolve, reject) => {
      const query = new this.pg.Query(
        `copy ${this.records} (${COPY_COLUMNS}) from stdin`,
        (err: Error | undefined) => (err === undefined || err === null ? resolve() : reject(err)),
      ) as PG.Query & { handleCopyInResponse(connection: CopyConnection): void };
      // What pg calls when the server is ready for the data (pg-copy-streams does the same).
      query.handleCopyInResponse = (connection) => {
        try {
          for (let start = 0; start < count; start += COPY_CHUNK) {
            let text = '';
            const end = Math.min(count, start + COPY_CHUNK);
            for (let i = start; i < end; i++) text += line(i);
            connection.sendCopyFromChunk(Buffer.from(text));
          }
          connection.endCopyFrom();
        } catch (err) {
          // The server ends the COPY with an error (nothing is written), which rejects.
          connection.sendCopyFail(err instanceof Error ? err.message : String(err));
        }
      };
      client.query(query);
    });
  }

  async query(q: AuditQuery): Promise<AuditPage> {
    // 1..1000, as the other stores do.
    const limit = Math.max(1, Math.min(MAX_LIMIT, Math.floor(q.limit) || 1));
    const values: unknown[] = [];
    const where: string[] = [];
    const param = (value: unknown, cast = ''): string => {
      values.push(value);
      return `$${values.length}${cast}`;
    };
    const eq: [keyof AuditQuery, string][] = [
      ['tenant', 'tenant'],
      ['namespace', 'namespace'],
      ['provider', 'provider'],
      ['actionType', 'action_type'],
      ['outcome', 'outcome'],
      ['kind', 'kind'],
    ];
    for (const [field, column] of eq) {
      const v = q[field];
      if (v !== undefined) where.push(`${column} = ${param(v, '::text')}`);
    }
    if (q.rule !== undefined) where.push(`rules ? ${param(q.rule, '::text')}`);
    if (q.label !== undefined) {
      where.push(`labels ->> ${param(q.label.key, '::text')} = ${param(q.label.value, '::text')}`);
    }
    if (q.from !== undefined) where.push(`decided_at >= ${param(timeBound(q.from), '::bigint')}`);
    if (q.to !== undefined) where.push(`decided_at < ${param(timeBound(q.to), '::bigint')}`);
    if (q.text !== undefined && q.text !== '') {
      const t = param(q.text, '::text');
      where.push(`(strpos(action_id, ${t}) > 0 or strpos(dedup_key, ${t}) > 0)`);
    }
    const desc = q.order !== 'asc';
    const after = decodeCursor(q.cursor);
    if (after !== undefined) {
      where.push(
        `(decided_at, id) ${desc ? '<' : '>'} (${param(after.at, '::bigint')}, ${param(after.id, '::text')})`,
      );
    }
    const dir = desc ? 'desc' : 'asc';
    const sql =
      `select ${COLUMNS} from ${this.records}` +
      (where.length > 0 ? ` where ${where.join(' and ')}` : '') +
      ` order by decided_at ${dir}, id ${dir} limit ${param(limit + 1, '::bigint')}`;
    const res = await this.run<Row>('query', sql, values);
    const more = res.rows.length > limit;
    const items = (more ? res.rows.slice(0, limit) : res.rows).map(toRecord);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: more && last !== undefined ? encodeCursor(last.decidedAt, last.id) : null,
    };
  }

  async history(
    actionId: string,
    scope?: { namespace: string; tenant: string },
  ): Promise<AuditRecord[]> {
    const res =
      scope === undefined
        ? await this.run<Row>(
            'history',
            `select ${COLUMNS} from ${this.records} where action_id = $1::text
             order by decided_at, id`,
            [actionId],
          )
        : await this.run<Row>(
            'history',
            `select ${COLUMNS} from ${this.records}
             where action_id = $1::text and namespace = $2::text and tenant = $3::text
             order by decided_at, id`,
            [actionId, scope.namespace, scope.tenant],
          );
    return res.rows.map(toRecord);
  }

  async chainPage(tenant: string, afterSeq: number, limit: number): Promise<AuditRecord[]> {
    const n = Math.max(0, Math.floor(limit));
    if (!Number.isFinite(n) || n === 0) return [];
    const res = await this.run<Row>(
      'chainPage',
      `select ${COLUMNS} from ${this.records}
       where tenant = $1::text and chain_seq is not null and chain_seq > $2::bigint
       order by chain_seq limit $3::bigint`,
      [tenant, Math.floor(afterSeq), n],
    );
    return res.rows.map(toRecord);
  }

  async chainTenants(): Promise<string[]> {
    // Every tenant with a chain, also when retention deleted all its records (the chain goes on
    // from its head), as the other stores do.
    const res = await this.run<{ tenant: string }>(
      'chainTenants',
      `select tenant from ${this.heads} where seq > 0 order by tenant`,
      [],
    );
    return res.rows.map((r) => r.tenant);
  }

  async deleteBefore(before: number, limit: number): Promise<number> {
    const n = Math.max(0, Math.floor(limit));
    if (!Number.isFinite(n) || n === 0) return 0;
    // Oldest first through the primary key; rows another transaction is changing right now (an
    // erasure) are skipped, not waited for, and go next time.
    const res = await this.run(
      'deleteBefore',
      `delete from ${this.records} where ctid = any(array(
         select ctid from ${this.records} where decided_at < $1::bigint
         order by decided_at, id limit $2::bigint for update skip locked))`,
      [timeBound(before), n],
    );
    return res.rowCount ?? 0;
  }

  async erasePayloads(field: string, value: string): Promise<number> {
    const column = ERASE_COLUMNS[field];
    let condition: string;
    const values: unknown[] = [value];
    if (column !== undefined && Object.hasOwn(ERASE_COLUMNS, field)) {
      condition = `${column} = $1::text`;
    } else if (field.startsWith('labels.') && field.length > 'labels.'.length) {
      condition = `labels ->> $2::text = $1::text`;
      values.push(field.slice('labels.'.length));
    } else if (field.startsWith('payload.') && field.length > 'payload.'.length) {
      // A top-level key of an object payload whose value is the string `value`, or an integer
      // (JS-safe) or boolean whose JSON text is `value` (as the other stores match).
      condition = `jsonb_typeof(payload) = 'object' and payload ->> $2::text = $1::text and
        case jsonb_typeof(payload -> $2::text)
          when 'string' then true
          when 'boolean' then true
          when 'number' then case when $1::text ~ '^-?[0-9]{1,16}$'
                             then abs($1::text::numeric) <= 9007199254740991 else false end
          else false end`;
      values.push(field.slice('payload.'.length));
    } else {
      throw new SyError(
        'SY_ERR_VALIDATION',
        `erasure field "${field}" is not one of actionId, tenant, namespace, dedupKey, labels.<key>, payload.<key>`,
        { field: 'field', value: field },
      );
    }
    const res = await this.run(
      'erasePayloads',
      `update ${this.records} set payload = null where payload is not null and ${condition}`,
      values,
    );
    return res.rowCount ?? 0;
  }

  async count(): Promise<number> {
    const res = await this.run<{ n: string }>(
      'count',
      `select count(*) as n from ${this.records}`,
      [],
    );
    return Number(res.rows[0]?.n ?? 0);
  }

  close(): Promise<void> {
    // A store closed before (or while) init finished must still end cleanly, and only once.
    this.closing ??= (this.ready ?? Promise.resolve()).catch(() => {}).then(() => this.pool.end());
    return this.closing;
  }

  /** One statement, after init; any failure becomes SY_ERR_STATE_UNAVAILABLE. */
  private async run<R extends object = object>(
    operation: string,
    text: string,
    values: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }> {
    if (!this.initialized) await this.init();
    try {
      return await this.pool.query<R & Record<string, unknown>>(text, values);
    } catch (err) {
      throw unavailable(operation, err);
    }
  }

  /** `fn` in a transaction on one connection; rolled back (and the connection dropped) on error. */
  private async transaction<T>(
    operation: string,
    fn: (client: PoolClient) => Promise<T>,
  ): Promise<T> {
    let client: PoolClient | undefined;
    const ignore = (): void => {};
    try {
      client = await this.pool.connect();
      // A checked-out client has no pool listener: keep a dying connection from crashing us.
      client.on('error', ignore);
      await client.query('begin');
      const result = await fn(client);
      await client.query('commit');
      client.removeListener('error', ignore);
      client.release();
      return result;
    } catch (err) {
      if (client !== undefined) {
        client.removeListener('error', ignore);
        // Drop the connection: it may be mid-transaction or broken.
        client.release(err instanceof Error ? err : true);
      }
      throw unavailable(operation, err);
    }
  }
}

/**
 * Rejects a record the table cannot hold exactly, before anything is written: times are integer
 * epoch ms (bigint columns) and the chain hash covers them, so they are never rounded.
 */
function checkRecord(r: AuditRecord): void {
  const times: [string, number | undefined][] = [
    ['receivedAt', r.receivedAt],
    ['decidedAt', r.decidedAt],
    ['executedAt', r.executedAt],
  ];
  for (const [field, v] of times) {
    if (v !== undefined && !Number.isSafeInteger(v)) {
      throw new SyError('SY_ERR_VALIDATION', `audit record ${r.id}: ${field} must be integer ms`, {
        field,
        id: r.id,
      });
    }
  }
}

/**
 * A time bound of a query or deletion as a bigint parameter: fractions round up (for integer
 * times, `>= t` and `< t` mean the same), infinities clamp to the bigint range.
 */
function timeBound(t: number): number {
  if (Number.isNaN(t)) {
    throw new SyError('SY_ERR_VALIDATION', 'a time bound must be a number of ms', {
      field: 'time',
    });
  }
  return Math.max(-9e18, Math.min(9e18, Math.ceil(t)));
}

/** The batch without repeated records (same decidedAt and id: the first one stays). */
function unique(records: readonly AuditRecord[]): readonly AuditRecord[] {
  const keys = new Set(records.map((r) => key(r.decidedAt, r.id)));
  if (keys.size === records.length) return records;
  return records.filter((r) => keys.delete(key(r.decidedAt, r.id)));
}

function key(decidedAt: number, id: string): string {
  return `${decidedAt} ${id}`;
}

/**
 * The chain columns (chain_seq, prev_hash, hash) of record i, called for each record in order:
 * its tenant's next chainSeq, the tenant's last hash and its own hash; `heads` moves along to the
 * last record of each tenant.
 */
function chainColumns(
  records: readonly AuditRecord[],
  heads: Map<string, { seq: number; hash: string }>,
): (i: number) => string {
  return (i) => {
    const r = records[i] as AuditRecord;
    const head = heads.get(r.tenant) as { seq: number; hash: string };
    // Only the fields that are stored: the hash must cover exactly what verify reads back.
    const next = withChain(r, head.seq + 1, head.hash, undefined);
    const hash = chainHash(next, head.hash);
    const columns = `\t${head.seq + 1}\t${head.hash}\t${hash}\n`;
    head.seq = head.seq + 1;
    head.hash = hash;
    return columns;
  };
}

/** The chain columns of a record appended with `chain: false`. */
const NO_CHAIN = '\t\\N\t\\N\t\\N\n';

/**
 * A record as a COPY text line up to its chain columns: tab-separated, `\N` for NULL, and
 * backslash, tab, newline and carriage return escaped. PostgreSQL text and jsonb cannot hold
 * U+0000, nor jsonb an unpaired surrogate (a text column gets U+FFFD for one, from the UTF-8
 * encoding); a record holding either (rare: it takes a crafted payload or label) is cleaned, each
 * replaced by U+FFFD, rather than rejected, so one record cannot block the writer. The cleaned
 * strings are stored; the hash of a chained record covers the values as given.
 */
function copyLine(r: AuditRecord): string {
  const line = copyColumns(r);
  // U+0000 is either itself (a text column) or a JSON escape \u0000 (its backslash doubled for
  // COPY); unpaired surrogates in JSON are \udXXX escapes. A text containing a backslash followed
  // by such letters matches too: harmless, it only takes the slow path.
  if (!line.includes('\u0000') && !/\\\\u(?:0000|d[89a-f])/i.test(line)) return line;
  return copyColumns(clean(r) as AuditRecord);
}

function copyColumns(r: AuditRecord): string {
  return (
    `${text(r.id)}\t${text(r.kind)}\t${text(r.actionId)}\t${text(r.namespace)}\t` +
    `${text(r.tenant)}\t${text(r.provider)}\t${text(r.originalProvider)}\t` +
    `${text(r.destination)}\t${text(r.actionType)}\t${json(r.labels)}\t${text(r.outcome)}\t` +
    `${json(r.rules)}\t${text(r.reason)}\t${num(r.attempt)}\t${num(r.status)}\t` +
    `${text(r.errorCode)}\t${text(r.dedupKey)}\t${num(r.receivedAt)}\t${num(r.decidedAt)}\t` +
    `${num(r.executedAt)}\t${num(r.durationMs)}\t${text(r.nodeId)}\t${text(r.traceId)}\t` +
    `${json(r.payload)}\t${text(r.payloadHash)}`
  );
}

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIALS = /[\\\t\n\r]/g;
const COPY_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
};

/** A text value (undefined: NULL). */
function text(v: string | undefined | null): string {
  if (v === undefined || v === null) return '\\N';
  const s = String(v);
  return COPY_SPECIAL.test(s) ? s.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c] as string) : s;
}

/** A number (undefined: NULL). */
function num(v: number | undefined | null): string {
  return v === undefined || v === null ? '\\N' : String(v);
}

/** A jsonb value (undefined: NULL; a JSON null is the jsonb null). */
function json(v: unknown): string {
  return v === undefined ? '\\N' : text(JSON.stringify(v));
}

// eslint-disable-next-line no-control-regex -- U+0000 is exactly what must be found
const UNSAFE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function clean(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(UNSAFE, '\ufffd');
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(clean);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k.replace(UNSAFE, '\ufffd')] = clean(v);
  return out;
}

function toRecord(r: Row): AuditRecord {
  return {
    id: r.id,
    kind: r.kind,
    actionId: r.action_id,
    namespace: r.namespace,
    tenant: r.tenant,
    provider: r.provider,
    originalProvider: r.original_provider,
    destination: r.destination ?? undefined,
    actionType: r.action_type,
    labels: r.labels,
    outcome: r.outcome,
    rules: r.rules,
    reason: r.reason ?? undefined,
    attempt: r.attempt ?? undefined,
    status: r.status ?? undefined,
    errorCode: r.error_code ?? undefined,
    dedupKey: r.dedup_key ?? undefined,
    receivedAt: Number(r.received_at),
    decidedAt: Number(r.decided_at),
    executedAt: r.executed_at === null ? undefined : Number(r.executed_at),
    durationMs: r.duration_ms,
    nodeId: r.node_id,
    traceId: r.trace_id ?? undefined,
    payload: r.has_payload ? r.payload : undefined,
    payloadHash: r.payload_hash,
    chainSeq: r.chain_seq === null ? undefined : Number(r.chain_seq),
    prevHash: r.prev_hash ?? undefined,
    hash: r.hash ?? undefined,
  };
}

/** Wraps a driver error once; errors already wrapped pass through. */
function unavailable(operation: string, err: unknown): SyError {
  if (err instanceof SyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SyError(
    'SY_ERR_STATE_UNAVAILABLE',
    `postgres audit ${operation} failed: ${message}`,
    { backend: 'postgres', store: 'audit', operation },
    { cause: err },
  );
}
