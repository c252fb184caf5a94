import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as PG from 'pg';
import type { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  dropPostgresPrefix,
  POSTGRES_URL,
  serviceAvailable,
} from '../../../test/helpers/services.js';
import { runAuditStoreSuite } from '../conformance.js';
import { chainHash, GENESIS_HASH, payloadHashOf, type AuditRecord } from '../record.js';
import { MIGRATIONS } from './schema.js';
import { PostgresAuditStore } from './store.js';

const available = await serviceAvailable('postgres');
const pg = createRequire(import.meta.url)('pg') as typeof PG;
// Every table this file creates starts with this prefix (one sub-prefix per store), dropped in
// afterAll.
const runPrefix = `sya${randomBytes(4).toString('hex')}_`;
const T0 = 1_790_000_000_000;

let prefixes = 0;
const open: PostgresAuditStore[] = [];
function store(
  options: Partial<ConstructorParameters<typeof PostgresAuditStore>[0]> = {},
): PostgresAuditStore {
  const s = new PostgresAuditStore({
    url: POSTGRES_URL,
    prefix: `${runPrefix}${++prefixes}_`,
    ...options,
  });
  open.push(s);
  return s;
}

let seq = 0;
/** A record; ids sort like creation order (as UUIDv7 ids do). */
function rec(overrides: Partial<AuditRecord> = {}): AuditRecord {
  const n = ++seq;
  const payload = 'payload' in overrides ? overrides.payload : { to: `user${n}@example.com`, n };
  return {
    id: `0190${String(n).padStart(12, '0')}`,
    kind: 'decision',
    actionId: `act-${n}`,
    namespace: 'ns',
    tenant: 'acme',
    provider: 'webhook',
    originalProvider: 'webhook',
    destination: 'hooks.example.com',
    actionType: 'notify',
    labels: { env: 'prod' },
    outcome: 'executed',
    rules: [],
    reason: undefined,
    attempt: undefined,
    status: undefined,
    errorCode: undefined,
    dedupKey: undefined,
    receivedAt: T0 + n,
    decidedAt: T0 + n,
    executedAt: undefined,
    durationMs: 3,
    nodeId: 'node-a',
    traceId: undefined,
    payloadHash: payloadHashOf(payload),
    chainSeq: undefined,
    prevHash: undefined,
    hash: undefined,
    ...overrides,
    payload,
  };
}

/** Checks a tenant's chain: seq 1..n without gaps, each hash over the previous one. */
function checkChain(records: AuditRecord[]): void {
  let prev = GENESIS_HASH;
  records.forEach((r, i) => {
    expect(r.chainSeq).toBe(i + 1);
    expect(r.prevHash).toBe(prev);
    expect(r.hash).toBe(chainHash(r, prev));
    prev = r.hash as string;
  });
}

async function allChain(s: PostgresAuditStore, tenant: string): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (;;) {
    const page = await s.chainPage(tenant, out.at(-1)?.chainSeq ?? 0, 333);
    if (page.length === 0) return out;
    out.push(...page);
  }
}

describe.skipIf(!available)('PostgresAuditStore', () => {
  let admin: Pool;
  beforeAll(() => {
    admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await admin.end();
    await dropPostgresPrefix(runPrefix);
  });

  describe('migrations', () => {
    it('3 stores migrating at once apply each migration exactly once', async () => {
      const prefix = `${runPrefix}m_`;
      const stores = [0, 1, 2].map(() => store({ prefix }));
      const applied = await Promise.all(stores.map((s) => s.migrate()));
      expect(applied.flat()).toEqual(MIGRATIONS.map((m) => m.name));
      expect(await Promise.all(stores.map((s) => s.migrate()))).toEqual([[], [], []]);
      await stores[0]!.append([rec()], { chain: false });
      expect(await stores[1]!.count()).toBe(1);
    });

    it('migrate: false fails with a hint on a fresh database, and works once migrated', async () => {
      const prefix = `${runPrefix}v_`;
      await expect(store({ prefix, migrate: false }).count()).rejects.toMatchObject({
        code: 'SY_ERR_STATE_UNAVAILABLE',
        details: { operation: 'init' },
      });
      await store({ prefix }).init();
      expect(await store({ prefix, migrate: false }).count()).toBe(0);
    });

    it('rejects a prefix or schema that is not a plain identifier', () => {
      for (const o of [{ prefix: 'x"; drop' }, { schema: 'a b' }, { prefix: 'p'.repeat(41) }]) {
        expect(() => new PostgresAuditStore({ url: POSTGRES_URL, ...o })).toThrow(
          expect.objectContaining({ code: 'SY_ERR_CONFIG_INVALID' }),
        );
      }
    });
  });

  it('round-trips every field, undefined and null payloads, and jsonb labels and rules', async () => {
    const s = store();
    const full = rec({
      kind: 'attempt',
      destination: 'a@example.com',
      labels: { team: 'payments', 'key with space': 'v"al\'ue', env: 'prod' },
      rules: ['block-weekend', 'route eu'],
      reason: 'upstream said no',
      attempt: 2,
      status: 503,
      errorCode: 'SY_ERR_PROVIDER_HTTP_STATUS',
      dedupKey: 'dk-1',
      executedAt: T0 + 999_999,
      durationMs: 12.75,
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      payload: { b: [1, 2.5, null, { z: true }], a: 'é 日本 😀', big: 12345678901234 },
    });
    const bare = rec({ destination: undefined, labels: {}, payload: undefined, payloadHash: '' });
    const jsonNull = rec({ payload: null });
    const scalar = rec({ payload: 'just text' });
    await s.append([full, bare, jsonNull, scalar], { chain: false });
    const page = await s.query({ limit: 10, order: 'asc' });
    expect(page).toEqual({ items: [full, bare, jsonNull, scalar], nextCursor: null });
    expect(page.items[1]!.payload).toBeUndefined();
    expect(page.items[2]!.payload).toBeNull();
    expect(await s.count()).toBe(4);
  });

  it('stores strings PostgreSQL cannot hold (U+0000, lone surrogates) as U+FFFD', async () => {
    const s = store();
    const r = rec({ reason: 'a\u0000b', payload: { 'k\u0000': 'x\ud800y', ok: '\\u0000' } });
    await s.append([r, rec()], { chain: false });
    const [got] = (await s.query({ limit: 1, order: 'asc' })).items;
    expect(got).toEqual({
      ...r,
      reason: 'a\ufffdb',
      payload: { 'k\ufffd': 'x\ufffdy', ok: '\\u0000' },
    });
  });

  it('rejects fractional times before writing anything', async () => {
    const s = store();
    await expect(
      s.append([rec(), rec({ decidedAt: T0 + 0.5 })], { chain: false }),
    ).rejects.toMatchObject({ code: 'SY_ERR_VALIDATION', details: { field: 'decidedAt' } });
    expect(await s.count()).toBe(0);
  });

  it('appending a batch again stores each record once (plain and chained)', async () => {
    const s = store();
    const a = [rec(), rec(), rec({ tenant: 'other' })];
    await s.append(a, { chain: true });
    const b = rec();
    await s.append([...a, b, b], { chain: true });
    expect(await s.count()).toBe(4);
    const chain = await allChain(s, 'acme');
    expect(chain.map((r) => r.id)).toEqual([a[0]!.id, a[1]!.id, b.id]);
    checkChain(chain);
    const c = rec();
    await s.append([c, c, a[0]!], { chain: false });
    expect(await s.count()).toBe(5);
  });

  describe('query', () => {
    it('applies every filter, combined with AND', async () => {
      const s = store();
      const rs = [
        rec({ tenant: 't1', namespace: 'billing', provider: 'email', rules: ['r1', 'r2'] }),
        rec({ tenant: 't1', actionType: 'page', outcome: 'failed', labels: { env: 'dev' } }),
        rec({ tenant: 't2', kind: 'attempt', dedupKey: 'order-42', rules: ['r2'] }),
        rec({ tenant: 't2', actionId: 'x-order-42-y', labels: { env: 'dev', team: 'a' } }),
        rec({ tenant: 't1', kind: 'replay', decidedAt: T0 + 10_000 }),
      ];
      await s.append(rs, { chain: false });
      const idx = async (q: Omit<Parameters<typeof s.query>[0], 'limit'>): Promise<number[]> => {
        const got = (await s.query({ ...q, limit: 100, order: 'asc' })).items;
        return got.map((g) => rs.findIndex((r) => r.id === g.id));
      };
      expect(await idx({})).toEqual([0, 1, 2, 3, 4]);
      expect(await idx({ tenant: 't1' })).toEqual([0, 1, 4]);
      expect(await idx({ namespace: 'billing' })).toEqual([0]);
      expect(await idx({ provider: 'email' })).toEqual([0]);
      expect(await idx({ actionType: 'page' })).toEqual([1]);
      expect(await idx({ outcome: 'failed' })).toEqual([1]);
      expect(await idx({ kind: 'attempt' })).toEqual([2]);
      expect(await idx({ rule: 'r2' })).toEqual([0, 2]);
      expect(await idx({ rule: 'r' })).toEqual([]);
      expect(await idx({ label: { key: 'env', value: 'dev' } })).toEqual([1, 3]);
      expect(await idx({ label: { key: 'team', value: 'a' }, tenant: 't2' })).toEqual([3]);
      expect(await idx({ text: 'order-42' })).toEqual([2, 3]);
      expect(await idx({ text: "'; drop table x; --" })).toEqual([]);
      expect(await idx({ from: rs[1]!.decidedAt, to: rs[3]!.decidedAt })).toEqual([1, 2]);
      expect(await idx({ from: T0 + 10_000 })).toEqual([4]);
      expect(await idx({ from: -Infinity, to: Infinity })).toEqual([0, 1, 2, 3, 4]);
      // Fractional bounds mean what they say for integer times.
      expect(await idx({ from: rs[1]!.decidedAt - 0.5, to: rs[3]!.decidedAt + 0.5 })).toEqual([
        1, 2, 3,
      ]);
      expect(await idx({ from: rs[1]!.decidedAt + 0.5, to: rs[3]!.decidedAt - 0.5 })).toEqual([2]);
      expect(await idx({ tenant: 't1', kind: 'replay', to: T0 + 10_000 })).toEqual([]);
      expect(await idx({ rule: 'r2', tenant: 't2', order: 'desc' })).toEqual([2]);
    });

    it('pages by (decidedAt, id) both ways, exactly, with many equal times', async () => {
      const s = store();
      // 5 records per millisecond, inserted out of order.
      const rs = Array.from({ length: 230 }, (_, i) => rec({ decidedAt: T0 + Math.floor(i / 5) }));
      await s.append([...rs].reverse(), { chain: false });
      for (const order of ['asc', 'desc'] as const) {
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await s.query({ limit: 7, order, cursor, tenant: 'acme' });
          pages++;
          seen.push(...page.items.map((r) => r.id));
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        const expected = rs.map((r) => r.id);
        expect(seen).toEqual(order === 'asc' ? expected : expected.reverse());
        expect(pages).toBe(Math.ceil(230 / 7));
      }
      // Default order is newest first; limit is capped at 1000.
      const newest = await s.query({ limit: 1 });
      expect(newest.items[0]!.id).toBe(rs[229]!.id);
      const page = await s.query({ limit: 5000 });
      expect(page.items).toHaveLength(230);
      expect(page.nextCursor).toBeNull();
    });

    it('a page never repeats or skips a record while records are inserted meanwhile', async () => {
      const s = store();
      const rs = Array.from({ length: 40 }, (_, i) => rec({ decidedAt: T0 + Math.floor(i / 3) }));
      await s.append(rs, { chain: false });
      const seen: string[] = [];
      let cursor: string | undefined;
      let round = 0;
      do {
        const page = await s.query({ limit: 6, cursor });
        seen.push(...page.items.map((r) => r.id));
        cursor = page.nextCursor ?? undefined;
        // Newer records (after the first page) and records at the same times, with ids
        // sorting both before and after the ones already read.
        await s.append(
          [
            rec({ decidedAt: T0 + 1000 + round }),
            rec({ id: `0000-late-${round}`, decidedAt: T0 + 5 }),
          ],
          { chain: false },
        );
        round++;
      } while (cursor !== undefined);
      const original = new Set(rs.map((r) => r.id));
      expect(seen.filter((id) => original.has(id))).toEqual(rs.map((r) => r.id).reverse());
      expect(new Set(seen).size).toBe(seen.length);
    });

    it('rejects a cursor it did not make', async () => {
      const s = store();
      await expect(s.query({ limit: 5, cursor: 'bm90IGEgY3Vyc29y' })).rejects.toMatchObject({
        code: 'SY_ERR_VALIDATION',
        details: { field: 'cursor' },
      });
    });
  });

  it('history: every record of one action, oldest first, optionally scoped', async () => {
    const s = store();
    const a = [
      rec({ actionId: 'A', kind: 'attempt', decidedAt: T0 + 2 }),
      rec({ actionId: 'A', kind: 'decision', decidedAt: T0 + 1 }),
      rec({ actionId: 'A', kind: 'replay', decidedAt: T0 + 3, tenant: 'other' }),
    ];
    await s.append([...a, rec({ actionId: 'B' })], { chain: false });
    expect((await s.history('A')).map((r) => r.kind)).toEqual(['decision', 'attempt', 'replay']);
    expect((await s.history('A', { namespace: 'ns', tenant: 'acme' })).map((r) => r.kind)).toEqual([
      'decision',
      'attempt',
    ]);
    expect(await s.history('nope')).toEqual([]);
  });

  describe('chain', () => {
    it('assigns seq, prevHash and hash per tenant; chainPage pages it; chainTenants lists it', async () => {
      const s = store();
      await s.append([rec({ tenant: 'plain' })], { chain: false });
      const batch1 = [rec({ tenant: 'b' }), rec({ tenant: 'a' }), rec({ tenant: 'b' })];
      const batch2 = [rec({ tenant: 'a' }), rec({ tenant: 'b', payload: undefined })];
      await s.append(batch1, { chain: true });
      await s.append(batch2, { chain: true });
      expect(batch1[0]!.chainSeq).toBeUndefined(); // the caller's objects are not changed
      const b = await allChain(s, 'b');
      expect(b.map((r) => r.id)).toEqual([batch1[0]!.id, batch1[2]!.id, batch2[1]!.id]);
      checkChain(b);
      checkChain(await allChain(s, 'a'));
      expect((await s.chainPage('b', 1, 1)).map((r) => r.chainSeq)).toEqual([2]);
      expect(await s.chainPage('b', 3, 10)).toEqual([]);
      expect(await s.chainTenants()).toEqual(['a', 'b']);
      // Erasing a payload keeps the chain valid (the hash covers payloadHash, not payload).
      expect(await s.erasePayloads('tenant', 'b')).toBe(2);
      checkChain(await allChain(s, 'b'));
      // A tenant whose chained records are all gone still has its chain (and head).
      expect(await s.deleteBefore(T0 + 10 ** 9, 100)).toBe(6);
      expect(await s.chainTenants()).toEqual(['a', 'b']);
      // ... and the chain goes on from its head.
      await s.append([rec({ tenant: 'a' })], { chain: true });
      expect((await s.chainPage('a', 0, 10)).map((r) => r.chainSeq)).toEqual([3]);
    });

    it('two gateways appending concurrently form one gap-free chain per tenant', async () => {
      const prefix = `${runPrefix}c_`;
      const [s1, s2] = [store({ prefix, pool: 4 }), store({ prefix, pool: 4 })];
      await s1.init();
      await s2.init();
      const tenants = ['t0', 't1', 't2', 't3', 't4'];
      // 2 stores x 8 concurrent writers x 10 batches of 20 records over overlapping tenants.
      const writer = async (s: PostgresAuditStore, w: number): Promise<void> => {
        for (let b = 0; b < 10; b++) {
          const batch = Array.from({ length: 20 }, (_, i) =>
            rec({ tenant: tenants[(w * 7 + b * 3 + i) % tenants.length]!, nodeId: `w${w}` }),
          );
          await s.append(batch, { chain: true });
        }
      };
      await Promise.all(
        [s1, s2].flatMap((s, k) => Array.from({ length: 8 }, (_, w) => writer(s, k * 8 + w))),
      );
      expect(await s1.count()).toBe(2 * 8 * 10 * 20);
      let total = 0;
      for (const t of tenants) {
        const chain = await allChain(s2, t);
        checkChain(chain);
        total += chain.length;
      }
      expect(total).toBe(3200);
      expect(await s2.chainTenants()).toEqual(tenants);
    }, 60_000);
  });

  it('deleteBefore deletes the oldest records first, at most limit', async () => {
    const s = store();
    const rs = Array.from({ length: 50 }, (_, i) => rec({ decidedAt: T0 + (i % 10) }));
    await s.append(rs, { chain: false });
    expect(await s.deleteBefore(T0 + 5, 12)).toBe(12);
    const left = (await s.query({ limit: 100, order: 'asc', to: T0 + 5 })).items;
    expect(left.map((r) => r.decidedAt)).toEqual([
      ...Array(3).fill(T0 + 2),
      ...Array(5).fill(T0 + 3),
      ...Array(5).fill(T0 + 4),
    ]);
    expect(await s.deleteBefore(T0 + 5, 1000)).toBe(13);
    expect(await s.deleteBefore(T0 + 5, 1000)).toBe(0);
    expect(await s.deleteBefore(T0 + 100, 0)).toBe(0);
    expect(await s.count()).toBe(25);
  });

  describe('erasePayloads', () => {
    it('drops the payload of every record matching the field, keeping its hash', async () => {
      const s = store();
      const rs = [
        rec({ actionId: 'A', dedupKey: 'd1', labels: { user: 'u1' }, payload: { user: 'u1' } }),
        rec({ actionId: 'A', namespace: 'n2', payload: { user: 42, nested: { user: 'u1' } } }),
        rec({ tenant: 't2', labels: { user: 'u2' }, payload: ['user', 'u1'] }),
        rec({ dedupKey: 'd1', payload: undefined, payloadHash: '' }),
        rec({ tenant: 't2', namespace: 'n2', payload: 'u1' }),
      ];
      await s.append(rs, { chain: false });
      const payloads = async (): Promise<boolean[]> =>
        (await s.query({ limit: 10, order: 'asc' })).items.map((r) => r.payload !== undefined);
      expect(await s.erasePayloads('payload.user', '42')).toBe(1);
      expect(await payloads()).toEqual([true, false, true, false, true]);
      expect(await s.erasePayloads('payload.user', 'u1')).toBe(1);
      expect(await s.erasePayloads('labels.user', 'u2')).toBe(1);
      expect(await payloads()).toEqual([false, false, false, false, true]);
      expect(await s.erasePayloads('namespace', 'n2')).toBe(1);
      expect(await s.erasePayloads('dedupKey', 'd1')).toBe(0);
      expect(await s.erasePayloads('actionId', 'A')).toBe(0);
      expect(await s.erasePayloads('tenant', 'acme')).toBe(0);
      const after = (await s.query({ limit: 10, order: 'asc' })).items;
      expect(after.map((r) => r.payloadHash)).toEqual(rs.map((r) => r.payloadHash));
      expect(after.map((r) => ({ ...r, payload: undefined }))).toEqual(
        rs.map((r) => ({ ...r, payload: undefined })),
      );
    });

    it('rejects an unknown field, without ever putting it into SQL', async () => {
      const s = store();
      await s.append([rec()], { chain: false });
      for (const field of ['id', 'labels.', 'payload.', 'action_id', 'tenant; drop', '']) {
        await expect(s.erasePayloads(field, 'x')).rejects.toMatchObject({
          code: 'SY_ERR_VALIDATION',
        });
      }
      expect(await s.erasePayloads("labels.'; drop table x; --", 'x')).toBe(0);
      expect(await s.count()).toBe(1);
    });
  });

  it('a server that does not answer fails with SY_ERR_STATE_UNAVAILABLE', async () => {
    const s = store({ url: 'postgres://postgres@127.0.0.1:1/test', connectTimeoutMs: 500 });
    await expect(s.append([rec()], { chain: false })).rejects.toMatchObject({
      code: 'SY_ERR_STATE_UNAVAILABLE',
      details: { backend: 'postgres', store: 'audit', operation: 'migrate' },
    });
  });

  describe('performance', () => {
    it('append rate: 100,000 records in batches of 1,000 (printed, not asserted)', async () => {
      const s = store();
      await s.init();
      const batches = (tenants: number) =>
        Array.from({ length: 100 }, (_, b) =>
          Array.from({ length: 1000 }, (_, i) =>
            rec({
              tenant: `tenant-${(b * 1000 + i) % tenants}`,
              rules: i % 10 === 0 ? ['rate-limit'] : [],
              labels: { env: 'prod', team: `team-${i % 7}` },
            }),
          ),
        );
      for (const [chain, concurrency] of [
        [false, 1],
        [false, 4],
        [true, 1],
        [true, 4],
      ] as const) {
        const all = batches(20);
        const started = performance.now();
        const next = { i: 0 };
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next.i < all.length) await s.append(all[next.i++]!, { chain });
          }),
        );
        const seconds = (performance.now() - started) / 1000;
        console.log(
          `postgres audit append, chain=${chain}, ${concurrency} in flight: ` +
            `${Math.round(100_000 / seconds).toLocaleString('en')} records/s`,
        );
      }
      expect(await s.count()).toBe(400_000);
    }, 300_000);

    it('the tenant + time range and action id queries are index scans on their indexes', async () => {
      const s = store();
      const prefix = `${runPrefix}${prefixes}_`;
      for (let b = 0; b < 10; b++) {
        await s.append(
          Array.from({ length: 1000 }, (_, i) =>
            rec({
              tenant: `tenant-${i % 50}`,
              namespace: `ns-${i % 40}`,
              decidedAt: T0 + b * 1000 + i,
            }),
          ),
          { chain: false },
        );
      }
      await admin.query(`analyze "${prefix}audit_records"`);
      const plan = async (sql: string, values: unknown[]): Promise<string> => {
        const client = await admin.connect();
        try {
          // The store's queries are unnamed statements with values: custom plans, like here.
          const res = await client.query<{ 'QUERY PLAN': string }>(`explain ${sql}`, values);
          return res.rows.map((r) => r['QUERY PLAN']).join('\n');
        } finally {
          client.release();
        }
      };
      const t = `"${prefix}audit_records"`;
      const byTenant = await plan(
        `select * from ${t} where tenant = $1::text and decided_at >= $2::bigint
         and decided_at < $3::bigint and (decided_at, id) < ($4::bigint, $5::text)
         order by decided_at desc, id desc limit 51`,
        ['tenant-7', T0 + 1000, T0 + 9000, T0 + 8000, 'z'],
      );
      expect(byTenant).toMatch(
        new RegExp(`Index Scan Backward using "?${prefix}audit_tenant_time`),
      );
      const byAction = await plan(
        `select * from ${t} where action_id = $1::text order by decided_at, id`,
        ['act-5'],
      );
      expect(byAction).toMatch(new RegExp(`Index Scan using "?${prefix}audit_action`));
      const byNamespace = await plan(
        `select * from ${t} where namespace = $1::text order by decided_at desc, id desc limit 51`,
        ['ns-1'],
      );
      expect(byNamespace).toMatch(
        new RegExp(`Index Scan Backward using "?${prefix}audit_namespace_time`),
      );
      const chain = await plan(
        `select * from ${t} where tenant = $1::text and chain_seq is not null and chain_seq > $2::bigint
         order by chain_seq limit 100`,
        ['tenant-7', 0],
      );
      expect(chain).toMatch(new RegExp(`Index Scan using "?${prefix}audit_chain`));
    }, 60_000);
  });
});

describe.skipIf(!available)('PostgresAuditStore: conformance', () => {
  // One table prefix per test, dropped after it; peer() is a second store (its own pool) on the
  // same tables, like another gateway.
  let current = '';
  let n = 0;
  runAuditStoreSuite('postgres', {
    create: () =>
      new PostgresAuditStore({ url: POSTGRES_URL, prefix: (current = `${runPrefix}k${++n}_`) }),
    peer: () => new PostgresAuditStore({ url: POSTGRES_URL, prefix: current }),
    cleanup: () => dropPostgresPrefix(current),
  });
});
