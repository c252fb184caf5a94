import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as PG from 'pg';
import type { Pool } from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { POSTGRES_URL, serviceAvailable } from '../../../test/helpers/services.js';
import { runStateStoreSuite } from '../conformance.js';
import { PostgresStateStore } from './store.js';

const available = await serviceAvailable('postgres');
// One schema per run of this file, dropped at the end; one table prefix per test inside it.
const schema = `sy_conf_${randomBytes(5).toString('hex')}`;
let admin: Pool | undefined;
let n = 0;

describe.skipIf(!available)('PostgresStateStore', () => {
  beforeAll(() => {
    const pg = createRequire(import.meta.url)('pg') as typeof PG;
    admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
  });
  afterAll(async () => {
    await admin?.query(`drop schema if exists "${schema}" cascade`);
    await admin?.end();
  });

  runStateStoreSuite({
    name: 'postgres',
    create: async () => {
      const store = new PostgresStateStore({
        url: POSTGRES_URL,
        schema,
        tablePrefix: `t${++n}_`,
      });
      await store.init();
      return store;
    },
  });
});
