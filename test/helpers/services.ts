import { createConnection } from 'node:net';

/**
 * Real backing services for backend tests (PostgreSQL and Redis on 127.0.0.1). Outside CI a
 * missing service skips its tests with a loud message; with CI=true the tests fail instead, so
 * a broken CI machine can never pass by skipping.
 */
export const REDIS_URL = process.env.SWITCHYARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const POSTGRES_URL =
  process.env.SWITCHYARD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function reachable(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether the service answers. When it does not: with CI=true this throws (the suite fails);
 * otherwise it prints a loud warning and returns false so the caller can `describe.skipIf`.
 */
export async function serviceAvailable(name: 'redis' | 'postgres'): Promise<boolean> {
  const url = new URL(name === 'redis' ? REDIS_URL : POSTGRES_URL);
  const ok = await reachable(Number(url.port || (name === 'redis' ? 6379 : 5432)), url.hostname);
  if (ok) return true;
  const message = `${name} is not reachable at ${url.host}; its backend tests cannot run`;
  if (process.env.CI === 'true')
    throw new Error(`${message} (CI=true: failing instead of skipping)`);
  console.warn(`\n!!! SKIPPED: ${message}. Start it (see README) to run them. !!!\n`);
  return false;
}

/** Drops the tables and functions a test created in `public` under a table prefix. */
export async function dropPostgresPrefix(prefix: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const like = `${prefix.replace(/_/g, '\\_')}%`;
    const tables = await client.query<{ name: string }>(
      "select tablename as name from pg_tables where schemaname = 'public' and tablename like $1",
      [like],
    );
    for (const t of tables.rows)
      await client.query(`drop table if exists public."${t.name}" cascade`);
    const fns = await client.query<{ sig: string }>(
      "select p.oid::regprocedure::text as sig from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public' and p.proname like $1",
      [like],
    );
    for (const f of fns.rows) await client.query(`drop function if exists ${f.sig} cascade`);
  } finally {
    await client.end();
  }
}
