/**
 * The SQLite state store's schema, as numbered migrations. A migration is applied once per file
 * and recorded in `switchyard_migrations`; never edit one that has shipped — add the next number.
 *
 * Times are epoch milliseconds (INTEGER). Keys are stored with the store's prefix, so several
 * stores (tests, tenants) can share one file.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: '001-initial',
    sql: `
      -- Dedup reservations and idempotency records: who holds a key, whether it finished, until
      -- when, and (idempotency) the stored outcome JSON. A row past expires_at is dead.
      CREATE TABLE switchyard_dedup (
        key TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        done INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        stored TEXT
      ) WITHOUT ROWID;
      CREATE TABLE switchyard_idempotency (
        key TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        done INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        stored TEXT
      ) WITHOUT ROWID;

      -- Sliding-window throttle logs: one row per accepted call per (key, window).
      CREATE TABLE switchyard_throttle (
        key TEXT NOT NULL,
        window_ms INTEGER NOT NULL,
        ts INTEGER NOT NULL
      );
      CREATE INDEX switchyard_throttle_window ON switchyard_throttle (key, window_ms, ts);

      -- Key/values with a version for compare-and-set; expires_at NULL = no TTL.
      CREATE TABLE switchyard_kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at INTEGER
      ) WITHOUT ROWID;

      -- Leases; a released lease keeps its row (holder '') so fencing tokens stay monotonic.
      CREATE TABLE switchyard_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        token INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;

      -- Due items; holder NULL = unclaimed, otherwise claimed until claimed_until.
      CREATE TABLE switchyard_due (
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        due_at INTEGER NOT NULL,
        payload TEXT NOT NULL,
        holder TEXT,
        claimed_until INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        PRIMARY KEY (queue, id)
      ) WITHOUT ROWID;
      CREATE INDEX switchyard_due_ready ON switchyard_due (queue, due_at, id);
    `,
  },
];

/** Created before any migration runs; the list of what has been applied to this file. */
export const MIGRATIONS_TABLE = `
  CREATE TABLE IF NOT EXISTS switchyard_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )
`;
