import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, describe } from 'vitest';
import { REDIS_URL, serviceAvailable } from '../../../test/helpers/services.js';
import { runStateStoreSuite } from '../conformance.js';
import { RedisStateStore } from './store.js';

const available = await serviceAvailable('redis');
const run = `sy-test:${randomBytes(6).toString('hex')}:`;
let stores = 0;

describe.skipIf(!available)('redis', () => {
  // Every case gets its own prefix (an empty store); all of them live under `run`.
  runStateStoreSuite({
    name: 'redis',
    create: () =>
      Promise.resolve(new RedisStateStore({ url: REDIS_URL, prefix: `${run}${++stores}:` })),
  });

  afterAll(async () => {
    const admin = new RedisStateStore({ url: REDIS_URL, prefix: run });
    await deleteByPrefix(admin, run);
    await admin.close();
  });
});

/** Removes every key under `prefix` (SCAN + DEL), through the store's own connection. */
async function deleteByPrefix(store: RedisStateStore, prefix: string): Promise<void> {
  await store.init();
  const client = (store as unknown as { client: Redis }).client;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}
