import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SyError } from '../../core/errors.js';
import { auditRecord, runAuditStoreSuite } from '../conformance.js';
import { chainHash, GENESIS_HASH, type AuditRecord } from '../record.js';
import { MIGRATIONS } from './schema.js';
import { SqliteAuditStore } from './store.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

const dir = mkdtempSync(join(tmpdir(), 'switchyard-audit-sqlite-'));
let files = 0;
let current = '';
afterAll(() => rmSync(dir, { recursive: true, force: true }));

runAuditStoreSuite('sqlite', {
  // A fresh file per test; peer() opens the same file again (another process would do the same).
  create: () => new SqliteAuditStore({ path: (current = join(dir, `audit-${++files}.db`)) }),
  peer: () => new SqliteAuditStore({ path: current }),
});

describe('SqliteAuditStore', () => {
  const open: SqliteAuditStore[] = [];
  const store = (path: string, migrate?: boolean): SqliteAuditStore => {
    const s = new SqliteAuditStore({ path, migrate });
    open.push(s);
    return s;
  };
  const fresh = (): string => join(dir, `extra-${++files}.db`);
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });

  it('creates missing directories and uses WAL', () => {
    const path = join(dir, 'nested', 'deeper', 'audit.db');
    store(path);
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('records and chain heads survive reopening the file', async () => {
    const path = fresh();
    const first = store(path);
    const records = Array.from({ length: 5 }, (_, i) => auditRecord({ decidedAt: T0 + i }));
    await first.append(records.slice(0, 3), { chain: true });
    await first.append(records.slice(3), { chain: false });
    const before = await first.chainPage('acme', 0, 10);
    await first.close();

    const again = store(path);
    expect(await again.count()).toBe(5);
    expect((await again.query({ limit: 10, order: 'asc' })).items.map((r) => r.id)).toEqual(
      records.map((r) => r.id),
    );
    expect(await again.chainPage('acme', 0, 10)).toStrictEqual(before);
    expect(await again.chainTenants()).toEqual(['acme']);
    // The chain continues from the stored head.
    await again.append([auditRecord({ decidedAt: T0 + 9 })], { chain: true });
    const [next] = await again.chainPage('acme', 3, 10);
    expect(next?.chainSeq).toBe(4);
    expect(next?.prevHash).toBe(before[2]?.hash);
    expect(next?.hash).toBe(chainHash(next as AuditRecord, next?.prevHash as string));
    expect(again.migrate()).toEqual([]);
  });

  it('applies migrations once and reports them; migrate: false refuses a bare file', () => {
    const path = fresh();
    expect(() => store(path, false)).toThrow(SyError);
    const s = store(path);
    expect(s.migrate()).toEqual(MIGRATIONS.map((m) => m.name));
    expect(s.migrate()).toEqual([]);
    expect(() => store(path, false)).not.toThrow();
  });

  it('wraps backend failures in SyError with the operation', async () => {
    const s = store(fresh());
    const r = auditRecord();
    await s.append([r], { chain: false });
    // The same record again violates the (decided_at, id) key: the whole batch rolls back.
    const err = await s.append([auditRecord(), r], { chain: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyError);
    expect((err as SyError).details).toMatchObject({ backend: 'sqlite', operation: 'append' });
    expect(await s.count()).toBe(1);
    expect(await s.chainTenants()).toEqual([]);
  });

  it('the common queries are index searches (EXPLAIN QUERY PLAN)', async () => {
    const path = fresh();
    const s = store(path);
    await s.append(
      Array.from({ length: 200 }, (_, i) =>
        auditRecord({ tenant: `t${i % 7}`, decidedAt: T0 + i, actionId: `a${i % 50}` }),
      ),
      { chain: true },
    );
    const db = new Database(path, { readonly: true });
    const plan = (sql: string, ...args: unknown[]): string =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[])
        .map((row) => row.detail)
        .join(' | ');
    try {
      // As query() builds them: tenant + time range + cursor, newest first.
      const tenantRange = plan(
        `SELECT * FROM audit_records WHERE tenant = ? AND decided_at >= ? AND decided_at < ?
         AND (decided_at, id) < (?, ?) ORDER BY decided_at DESC, id DESC LIMIT ?`,
        't1',
        T0,
        T0 + 100,
        T0 + 50,
        'z',
        51,
      );
      expect(tenantRange).toMatch(/SEARCH audit_records USING INDEX audit_records_tenant_time/);
      expect(tenantRange).not.toMatch(/TEMP B-TREE/);

      const namespaceRange = plan(
        `SELECT * FROM audit_records WHERE namespace = ? AND decided_at >= ?
         ORDER BY decided_at DESC, id DESC LIMIT ?`,
        'prod',
        T0,
        51,
      );
      expect(namespaceRange).toMatch(/SEARCH audit_records USING INDEX audit_records_namespace/);
      expect(namespaceRange).not.toMatch(/TEMP B-TREE/);

      const unfiltered = plan(
        `SELECT * FROM audit_records WHERE (decided_at, id) < (?, ?)
         ORDER BY decided_at DESC, id DESC LIMIT ?`,
        T0 + 50,
        'z',
        51,
      );
      expect(unfiltered).toMatch(/SEARCH audit_records USING INDEX audit_records_time/);

      const history = plan(
        'SELECT * FROM audit_records WHERE action_id = ? ORDER BY decided_at, id',
        'a1',
      );
      expect(history).toMatch(/SEARCH audit_records USING INDEX audit_records_action/);

      const chainPage = plan(
        'SELECT * FROM audit_records WHERE tenant = ? AND chain_seq > ? ORDER BY chain_seq LIMIT ?',
        't1',
        10,
        100,
      );
      expect(chainPage).toMatch(/SEARCH audit_records USING INDEX audit_records_chain/);
      expect(chainPage).not.toMatch(/TEMP B-TREE/);
    } finally {
      db.close();
    }
  });

  it('inserts 100,000 records in batches of 1,000 (rate printed)', async () => {
    const batches = Array.from({ length: 100 }, (_, b) =>
      Array.from({ length: 1000 }, (_, i) =>
        auditRecord({
          tenant: `tenant-${i % 20}`,
          namespace: i % 3 ? 'prod' : 'staging',
          decidedAt: T0 + b * 1000 + i,
          labels: { env: 'prod', team: 'core' },
          rules: ['block-spam'],
          dedupKey: `key-${b}-${i}`,
          payload: { to: `user-${i}@example.com`, subject: 'Your order has shipped', n: i },
        }),
      ),
    );
    for (const chain of [false, true]) {
      const s = store(fresh());
      const started = performance.now();
      const cpu = process.cpuUsage();
      for (const batch of batches) await s.append(batch, { chain });
      const { user, system } = process.cpuUsage(cpu);
      const rate = (seconds: number): string => Math.round(100_000 / seconds).toLocaleString('en');
      // Wall time, and the rate this process's CPU time alone gives (meaningful on a busy host).
      console.log(
        `sqlite audit append (chain: ${chain}): ${rate((performance.now() - started) / 1000)} records/s` +
          ` (CPU time: ${rate((user + system) / 1e6)} records/s)`,
      );
      expect(await s.count()).toBe(100_000);
    }
  }, 120_000);

  it('GENESIS_HASH starts every tenant chain', async () => {
    const s = store(fresh());
    await s.append([auditRecord({ tenant: 'x' }), auditRecord({ tenant: 'y' })], { chain: true });
    for (const tenant of ['x', 'y']) {
      const [first] = await s.chainPage(tenant, 0, 1);
      expect(first?.chainSeq).toBe(1);
      expect(first?.prevHash).toBe(GENESIS_HASH);
    }
  });
});
