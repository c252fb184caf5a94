/**
 * The SQLite audit schema, as numbered migrations. A migration is applied once per file and
 * recorded in `audit_migrations` (not `switchyard_migrations`: the state store's numbering is its
 * own, and both may share one file); never edit one that has shipped — add the next number.
 *
 * Times are epoch milliseconds (INTEGER). `labels` and `rules` are JSON text; `payload` is JSON
 * text or NULL (not stored, or erased) — JSON `null` is the text 'null'.
 *
 * Indexes are the ones the common queries need, and no more: the writer must sustain 100,000
 * records/s, and every index is one more b-tree insert per record.
 *   - (decided_at, id), UNIQUE: the cursor order of unfiltered queries, retention deletes (oldest
 *     first), and distinct cursor keys;
 *   - (tenant, decided_at, id) and (namespace, decided_at, id): the usual scoped listings, a
 *     time range and a cursor as one index range;
 *   - (action_id): history();
 *   - (tenant, chain_seq), UNIQUE, partial (chained records only): chainPage() walks it, and two
 *     writers can never give one tenant the same sequence number. Costs nothing without strict
 *     mode.
 * Other filters (provider, outcome, kind, rule, label, text) are checked on rows read in one of
 * these orders.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: '001-audit-initial',
    sql: `
      -- One row per AuditRecord (the rowid is internal: deletes by it, never exposed).
      CREATE TABLE audit_records (
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        action_id TEXT NOT NULL,
        namespace TEXT NOT NULL,
        tenant TEXT NOT NULL,
        provider TEXT NOT NULL,
        original_provider TEXT NOT NULL,
        destination TEXT,
        action_type TEXT NOT NULL,
        labels TEXT NOT NULL,
        outcome TEXT NOT NULL,
        rules TEXT NOT NULL,
        reason TEXT,
        attempt INTEGER,
        status INTEGER,
        error_code TEXT,
        dedup_key TEXT,
        received_at INTEGER NOT NULL,
        decided_at INTEGER NOT NULL,
        executed_at INTEGER,
        -- INTEGER affinity keeps a fractional duration as a REAL, exactly.
        duration_ms INTEGER NOT NULL,
        node_id TEXT NOT NULL,
        trace_id TEXT,
        payload TEXT,
        payload_hash TEXT NOT NULL,
        chain_seq INTEGER,
        prev_hash TEXT,
        hash TEXT
      );
      CREATE UNIQUE INDEX audit_records_time ON audit_records (decided_at, id);
      CREATE INDEX audit_records_tenant_time ON audit_records (tenant, decided_at, id);
      CREATE INDEX audit_records_namespace_time ON audit_records (namespace, decided_at, id);
      CREATE INDEX audit_records_action ON audit_records (action_id);
      CREATE UNIQUE INDEX audit_records_chain ON audit_records (tenant, chain_seq)
        WHERE chain_seq IS NOT NULL;

      -- The last link of each tenant's chain. Kept when retention deletes the records, so a
      -- chain continues (seq n+1, prev = hash n) instead of restarting at 1.
      CREATE TABLE audit_chain_heads (
        tenant TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
];

/** Created before any migration runs; the list of what has been applied to this file. */
export const MIGRATIONS_TABLE = `
  CREATE TABLE IF NOT EXISTS audit_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )
`;
