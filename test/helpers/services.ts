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
