/**
 * The PostgreSQL audit schema as numbered migrations. Each runs once per (schema, table prefix),
 * inside the migration transaction, and is recorded in `<prefix>audit_migrations` (its own table,
 * so the audit and state stores can share a prefix); a released migration is never edited, a
 * change is a new one.
 *
 * `<prefix>audit_records` has one column per AuditRecord field. Times are bigint epoch ms
 * (integers, exact, compared exactly by the (decided_at, id) cursor); `duration_ms` is double
 * precision (a JS number, fractions kept). `id`, `action_id`, `namespace` and `tenant` are
 * `collate "C"`: byte order for the cursor (as the other stores compare ids), and index order
 * equal to the order the queries ask for.
 *
 * Indexes, each serving one common query with an index scan in cursor order:
 *   - primary key (decided_at, id): unfiltered pages, retention (deleteBefore), any other filter
 *     (provider, outcome, kind, rule, label, text) as a filter over this index in order, and
 *     idempotent appends (a retried batch is not stored twice). It doubles as the (decided_at,
 *     id) index, one btree fewer to maintain per insert than a separate primary key on id
 *     (ids are UUIDv7, unique by construction);
 *   - (tenant, decided_at, id): GET /v1/audit?tenant=...&from=...&to=... (the console's query);
 *   - (namespace, decided_at, id): the same per namespace;
 *   - (action_id): history, erasure by action;
 *   - unique (tenant, chain_seq) where chained: chainPage, and a guard that no two records ever
 *     take the same place in a tenant's chain.
 * Not indexed, on purpose: `rules` (a GIN index on the jsonb array, even `jsonb_path_ops`, made
 * 1,000-row inserts ~50% slower in a measurement, more than any one btree; `rules ? $1` is a
 * filter over one of the ordered indexes instead: fast for common rules and with a tenant or time
 * range, a scan for a rule that (almost) never matched — ~0.4 s on 1,000,000 rows), `labels`,
 * `payload`, `dedup_key`, `provider`, `outcome`, and the free-text `text` filter (a substring
 * search; alone it scans, ~1 s on 1,000,000 rows; pg_trgm would index it but is an extension).
 * Erasure by dedupKey, a label or a payload key scans the table: rare, off the hot path.
 *
 * `<prefix>audit_chain_heads` holds each tenant's last chainSeq and hash; appends with
 * `chain: true` lock the heads of their tenants (in tenant order) for the transaction.
 */
export interface SchemaNames {
  /** Schema, unquoted (validated as a plain identifier). */
  readonly schema: string;
  /** Table prefix, unquoted (validated as a plain identifier). */
  readonly prefix: string;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: (n: SchemaNames) => string;
}

/** `"schema"."<prefix>name"`: a table of this store. */
export function qualified(n: SchemaNames, name: string): string {
  return `"${n.schema}"."${n.prefix}${name}"`;
}

const tables = (n: SchemaNames): string => {
  const records = qualified(n, 'audit_records');
  const index = (name: string): string => `"${n.prefix}audit_${name}"`;
  return `
create table ${records} (
  id text collate "C" not null,
  kind text not null,
  action_id text collate "C" not null,
  namespace text collate "C" not null,
  tenant text collate "C" not null,
  provider text not null,
  original_provider text not null,
  destination text,
  action_type text not null,
  labels jsonb not null,
  outcome text not null,
  rules jsonb not null,
  reason text,
  attempt integer,
  status integer,
  error_code text,
  dedup_key text,
  received_at bigint not null,
  decided_at bigint not null,
  executed_at bigint,
  duration_ms double precision not null,
  node_id text not null,
  trace_id text,
  -- SQL NULL: no payload (not stored, or erased); a JSON null payload is the jsonb 'null'.
  payload jsonb,
  payload_hash text not null,
  chain_seq bigint,
  prev_hash text,
  hash text,
  constraint "${n.prefix}audit_records_pkey" primary key (decided_at, id)
);
create index ${index('tenant_time')} on ${records} (tenant, decided_at, id);
create index ${index('namespace_time')} on ${records} (namespace, decided_at, id);
create index ${index('action')} on ${records} (action_id);
create unique index ${index('chain')} on ${records} (tenant, chain_seq)
  where chain_seq is not null;

create table ${qualified(n, 'audit_chain_heads')} (
  tenant text collate "C" primary key,
  seq bigint not null,
  hash text not null
);
`;
};

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: '0001_audit_tables', sql: tables },
];
