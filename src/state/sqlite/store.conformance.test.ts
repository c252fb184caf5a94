import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { runStateStoreSuite } from '../conformance.js';
import { SqliteStateStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-sqlite-conformance-'));
let n = 0;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

runStateStoreSuite({
  name: 'sqlite',
  // A fresh file per test: no state leaks between cases.
  create: () => Promise.resolve(new SqliteStateStore({ path: join(dir, `state-${++n}.db`) })),
});
