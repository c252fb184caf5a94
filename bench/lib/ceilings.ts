import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import type * as PG from 'pg';

/**
 * The raw backend operations the state scenarios (S3–S6) are compared with, measured with the
 * client libraries directly (no Switchyard code), in the same process and run as the gateway:
 *
 * - sqlite: one autocommit single-row INSERT into a WAL file with synchronous=NORMAL (the
 *   pragmas the SQLite store sets), into a table shaped like the store's dedup table;
 * - redis: one EVALSHA of a trivial script doing SET NX (with a TTL) + INCR;
 * - postgres: one durable `INSERT .. ON CONFLICT DO NOTHING` of one row (synchronous_commit as
 *   the server has it), a named prepared statement.
 *
 * Each `op(i)` writes a new key built from `i`, resolves (or returns) true when the row or key
 * was new. Client libraries are loaded with createRequire, like the stores load them.
 */

const require = createRequire(import.meta.url);

/** A 36-character holder, as long as an action id. */
const HOLDER = '01900000-0000-7000-8000-000000000000';
const HOUR_MS = 3_600_000;

/** The key a dedup gate of the bench's rule writes (`dedup|<rule>|<namespace>|<tenant>|<i>`). */
function ceilingKey(i: number): string {
  return `dedup|ceiling|bench|t1|${i}`;
}

export interface SqliteCeiling {
  readonly version: string;
  /** Synchronous, like better-sqlite3. */
  op(i: number): boolean;
  close(): void;
}

export function openSqliteCeiling(path: string): SqliteCeiling {
  const Database = require('better-sqlite3') as typeof BetterSqlite3;
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(
      `CREATE TABLE ceiling (key TEXT PRIMARY KEY, holder TEXT NOT NULL, done INTEGER NOT NULL,
         expires_at INTEGER NOT NULL, stored TEXT) WITHOUT ROWID`,
    );
  } catch (err) {
    db.close();
    throw err;
  }
  const insert = db.prepare(
    'INSERT INTO ceiling (key, holder, done, expires_at, stored) VALUES (?, ?, 0, ?, NULL)',
  );
  const version = db.prepare('SELECT sqlite_version()').pluck().get() as string;
  return {
    version,
    op: (i) => insert.run(ceilingKey(i), HOLDER, Date.now() + HOUR_MS).changes === 1,
    close: () => db.close(),
  };
}

/** SET NX with a TTL, then INCR: the minimal atomic "reserve a key and count" script. */
export const REDIS_CEILING_LUA = `
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
redis.call('INCR', KEYS[2])
if ok then return 1 end
return 0
`;

interface IoRedisModule {
  readonly Redis: new (url: string, options: RedisOptions) => RedisClient;
}

export interface RedisCeiling {
  readonly version: string;
  readonly client: RedisClient;
  op(i: number): Promise<boolean>;
  /** Deletes every key under `pattern` (SCAN + DEL); returns how many. */
  deleteMatching(pattern: string): Promise<number>;
  close(): Promise<void>;
}

/** Connects (failing within `timeoutMs` when Redis is away) and loads the script. */
export async function openRedisCeiling(
  url: string,
  prefix: string,
  timeoutMs = 1500,
): Promise<RedisCeiling> {
  const { Redis } = require('ioredis') as IoRedisModule;
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: 10_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError: Error | undefined;
  client.on('error', (err: Error) => (lastError = err));
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    // ioredis rejects with "Connection is closed."; the socket's error says why.
    throw lastError ?? err;
  }
  const sha = (await client.script('LOAD', REDIS_CEILING_LUA)) as string;
  const info = await client.info('server');
  const version = /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown';
  const counter = `${prefix}ceiling:n`;
  return {
    version,
    client,
    op: async (i) =>
      (await client.evalsha(sha, 2, `${prefix}ceiling:${i}`, counter, HOLDER, HOUR_MS)) === 1,
    deleteMatching: async (pattern) => {
      let cursor = '0';
      let deleted = 0;
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) deleted += await client.del(...keys);
      } while (cursor !== '0');
      return deleted;
    },
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}

export interface PostgresCeiling {
  readonly version: string;
  /** What makes a commit durable (or not) on this server. */
  readonly settings: Record<string, string>;
  /** One connection: the sequential ceiling. */
  op(i: number): Promise<boolean>;
  /** A pool of `poolSize` connections (all opened up front): the concurrent ceiling. */
  poolOp(i: number): Promise<boolean>;
  readonly poolSize: number;
  close(): Promise<void>;
}

/**
 * Connects one client and a pool, creates `<tablePrefix>ceiling` (shaped like the store's
 * reservations table) and prepares the insert on every connection.
 */
export async function openPostgresCeiling(
  url: string,
  tablePrefix: string,
  poolSize: number,
  timeoutMs = 1500,
): Promise<PostgresCeiling> {
  const pg = require('pg') as typeof PG;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {});
  await client.connect();
  // Idle connections stay open: the pool waits, unused, while the other variants run.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, idleTimeoutMillis: 0 });
  pool.on('error', () => {});
  try {
    const table = `"public"."${tablePrefix}ceiling"`;
    await client.query(
      `create table ${table} (kind text collate "C" not null, key text collate "C" not null,
         holder text not null, done boolean not null default false, expires_at bigint not null,
         stored text, primary key (kind, key))`,
    );
    const show = async (name: string): Promise<string> =>
      (await client.query<Record<string, string>>(`show ${name}`)).rows[0]?.[name] ?? 'unknown';
    const version = await show('server_version');
    const settings: Record<string, string> = {};
    for (const name of ['synchronous_commit', 'fsync', 'wal_sync_method', 'commit_delay']) {
      settings[name] = await show(name);
    }
    const insert = (i: number): PG.QueryConfig => ({
      name: 'ceiling_insert',
      text: `insert into ${table} (kind, key, holder, expires_at) values ('dedup', $1, $2, $3)
             on conflict do nothing`,
      values: [ceilingKey(i), HOLDER, Date.now() + HOUR_MS],
    });
    // Open every pool connection now, not inside a timed pass, and parse the statement on each.
    const clients = await Promise.all(Array.from({ length: poolSize }, () => pool.connect()));
    for (const [k, c] of clients.entries()) {
      c.on('error', () => {});
      await c.query(insert(-1 - k));
      c.release();
    }
    return {
      version,
      settings,
      poolSize,
      op: async (i) => (await client.query(insert(i))).rowCount === 1,
      poolOp: async (i) => (await pool.query(insert(i))).rowCount === 1,
      close: async () => {
        await Promise.allSettled([client.end(), pool.end()]);
      },
    };
  } catch (err) {
    await Promise.allSettled([client.end(), pool.end()]);
    throw err;
  }
}
