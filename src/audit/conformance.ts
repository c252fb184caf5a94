import { afterEach, describe, expect, it } from 'vitest';
import { newId } from '../core/ids.js';
import { chainHash, GENESIS_HASH, payloadHashOf, type AuditRecord } from './record.js';
import type { AuditQuery, AuditStore } from './store.js';

/**
 * The audit-store conformance suite: memory, sqlite and postgres run exactly these cases, so the
 * backends agree on filters, ordering, cursors, the per-tenant chain, retention and erasure.
 *
 * What it pins down beyond the doc comments of AuditStore:
 *   - records come back with every field, exactly (optional fields `undefined`, never `null`;
 *     `''` and `0` kept; numbers as numbers; a JSON `null` payload is not an absent one);
 *   - order is (decidedAt, id) with ids compared as plain strings (bytes), in both directions;
 *   - a page shorter than `limit` — and the page that reaches the last record — has
 *     `nextCursor: null` (no trailing empty page); a cursor the store did not make is a
 *     SY_ERR_VALIDATION;
 *   - `text` is a literal substring (`%` and `_` are not wildcards); `rule` and `label` match
 *     whole names and values;
 *   - chain heads outlive the records retention deletes (the chain continues, not restarts);
 *   - erasure by `payload.<key>` matches a top-level string equal to the value, or an integer or
 *     boolean whose JSON text is the value; an unknown field is a SY_ERR_VALIDATION.
 *
 * Ids are real UUIDv7s (a backend may store them as `uuid`); action ids are free text. Payload
 * strings avoid U+0000, which PostgreSQL's jsonb cannot hold.
 */
export interface AuditStoreSuiteOptions {
  /** A fresh, empty store (isolated from other tests: its own file, schema or prefix). */
  create(): Promise<AuditStore> | AuditStore;
  /** Called after each test, once its stores are closed (drop the schema, remove the file). */
  cleanup?(): Promise<void> | void;
  /**
   * A second handle on the storage of the latest create() — another gateway writing the same
   * database. Enables the two-writer chain test; omit for a store that cannot be shared.
   */
  peer?(): Promise<AuditStore> | AuditStore;
  /** Tests a backend cannot run, by name, with the reason shown in the report. */
  skip?: readonly { readonly reason: string; readonly tests: readonly string[] }[];
}

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

let made = 0;

/** A record with plausible defaults; `payloadHash` follows the payload unless given. */
export function auditRecord(over: Partial<AuditRecord> = {}): AuditRecord {
  const n = ++made;
  const payload = 'payload' in over ? over.payload : { n, message: 'hello' };
  const base: AuditRecord = {
    id: newId(),
    kind: 'decision',
    actionId: `act-${n}`,
    namespace: 'prod',
    tenant: 'acme',
    provider: 'webhook',
    originalProvider: 'webhook',
    destination: undefined,
    actionType: 'notify',
    labels: {},
    outcome: 'executed',
    rules: [],
    reason: undefined,
    attempt: undefined,
    status: undefined,
    errorCode: undefined,
    dedupKey: undefined,
    receivedAt: T0 - 5,
    decidedAt: T0,
    executedAt: undefined,
    durationMs: 1,
    nodeId: 'node-1',
    traceId: undefined,
    payload,
    payloadHash: payloadHashOf(payload),
    chainSeq: undefined,
    prevHash: undefined,
    hash: undefined,
  };
  return { ...base, ...over, payload, payloadHash: over.payloadHash ?? payloadHashOf(payload) };
}

/** The reference semantics of AuditQuery's filters. */
function matches(r: AuditRecord, q: AuditQuery): boolean {
  return (
    (q.tenant === undefined || r.tenant === q.tenant) &&
    (q.namespace === undefined || r.namespace === q.namespace) &&
    (q.provider === undefined || r.provider === q.provider) &&
    (q.actionType === undefined || r.actionType === q.actionType) &&
    (q.outcome === undefined || r.outcome === q.outcome) &&
    (q.kind === undefined || r.kind === q.kind) &&
    (q.rule === undefined || r.rules.includes(q.rule)) &&
    (q.label === undefined || r.labels[q.label.key] === q.label.value) &&
    (q.from === undefined || r.decidedAt >= q.from) &&
    (q.to === undefined || r.decidedAt < q.to) &&
    (q.text === undefined ||
      r.actionId.includes(q.text) ||
      (r.dedupKey !== undefined && r.dedupKey.includes(q.text)))
  );
}

/** Cursor order: (decidedAt, id), ids as plain strings. */
function byKey(a: AuditRecord, b: AuditRecord): number {
  if (a.decidedAt !== b.decidedAt) return a.decidedAt - b.decidedAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function sorted(records: readonly AuditRecord[], order: 'asc' | 'desc' = 'asc'): AuditRecord[] {
  const out = [...records].sort(byKey);
  return order === 'desc' ? out.reverse() : out;
}

const ids = (records: readonly AuditRecord[]): string[] => records.map((r) => r.id);

/** A deterministic shuffle (append order must not be the answer's order). */
function shuffled<T>(items: readonly T[], seed = 7): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Every page of a query; checks the cursor contract on the way. */
async function collect(s: AuditStore, q: AuditQuery): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await s.query({ ...q, cursor });
    expect(page.items.length).toBeLessThanOrEqual(q.limit);
    // No trailing empty page: the page that reaches the last record ends the traversal.
    if (page.items.length === 0) expect(pages).toBe(0);
    out.push(...page.items);
    if (page.nextCursor === null) return out;
    expect(page.items).toHaveLength(q.limit);
    cursor = page.nextCursor;
  }
  throw new Error('pagination did not end');
}

/** Checks a tenant's chain: seq 1..n, prevHash links, hash === chainHash(record, prevHash). */
function expectChain(records: readonly AuditRecord[], first = 1, start = GENESIS_HASH): void {
  let prev = start;
  records.forEach((r, i) => {
    expect(r.chainSeq).toBe(first + i);
    expect(r.prevHash).toBe(prev);
    expect(r.hash).toBe(chainHash(r, prev));
    prev = r.hash as string;
  });
}

async function wholeChain(s: AuditStore, tenant: string, pageSize = 1000): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (let after = 0; ;) {
    const page = await s.chainPage(tenant, after, pageSize);
    out.push(...page);
    if (page.length < pageSize) return out;
    after = page[page.length - 1]?.chainSeq as number;
  }
}

/** `r` as a store returns it after appending with `chain: false`. */
const unchained = (r: AuditRecord): AuditRecord => ({
  ...r,
  chainSeq: undefined,
  prevHash: undefined,
  hash: undefined,
});

/** The rejection's SyError code. */
async function codeOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return 'resolved';
}

/** 24 records spread over every filtered field (values cycle with different periods). */
function filterDataset(): AuditRecord[] {
  const kinds: AuditRecord['kind'][] = ['decision', 'attempt', 'replay', 'erasure'];
  const rules = [[], ['block-spam'], ['throttle-eu', 'reroute-eu'], ['reroute-eu'], ['audit-all']];
  const labels = [{ env: 'prod', 'team.name': 'core' }, { env: 'dev' }, {}, { env: 'prod' }];
  return Array.from({ length: 24 }, (_, i) =>
    auditRecord({
      actionId: `ord-${String(i).padStart(3, '0')}`,
      tenant: ['acme', 'globex'][i % 2] as string,
      namespace: ['prod', 'staging', 'prod'][i % 3] as string,
      provider: ['webhook', 'email', 'slack'][i % 3 === 0 ? 0 : (i % 5) % 3] as string,
      actionType: ['notify', 'charge'][Math.floor(i / 2) % 2] as string,
      outcome: ['executed', 'suppressed', 'failed', 'executed', 'retrying', 'deduplicated', 'x'][
        i % 7
      ] as string,
      kind: kinds[i % 4] as AuditRecord['kind'],
      rules: rules[i % 5] as string[],
      labels: labels[(i >> 1) % 4] as Record<string, string>,
      dedupKey: i % 2 === 1 ? undefined : i % 6 === 0 ? `pct%${i}` : `key_${i}`,
      // Groups of three records share a decidedAt.
      decidedAt: T0 + Math.floor(i / 3) * 1000,
    }),
  );
}

export function runAuditStoreSuite(name: string, options: AuditStoreSuiteOptions): void {
  const skipped = new Map<string, string>();
  for (const s of options.skip ?? []) for (const t of s.tests) skipped.set(t, s.reason);
  if (options.peer === undefined) {
    skipped.set(
      'two writers on one store form one gap-free chain per tenant',
      'no peer() handle for this backend',
    );
  }
  const open: AuditStore[] = [];

  const test = (title: string, fn: (s: AuditStore) => Promise<void>): void => {
    const reason = skipped.get(title);
    if (reason !== undefined) {
      it.skip(`${title} (skipped: ${reason})`, () => {});
      return;
    }
    it(title, async () => {
      const store = await options.create();
      open.push(store);
      await store.init?.();
      await fn(store);
    });
  };

  describe(`AuditStore conformance: ${name}`, () => {
    afterEach(async () => {
      for (const s of open.splice(0).reverse()) await s.close();
      await options.cleanup?.();
    });

    describe('append and read back', () => {
      test('a new store is empty', async (s) => {
        expect(typeof s.backend).toBe('string');
        expect(await s.count()).toBe(0);
        expect(await s.query({ limit: 10 })).toEqual({ items: [], nextCursor: null });
        expect(await s.chainTenants()).toEqual([]);
        await s.append([], { chain: true });
        expect(await s.count()).toBe(0);
      });

      test('every field round-trips exactly', async (s) => {
        const full = auditRecord({
          kind: 'attempt',
          actionId: 'client-supplied id / ünïcode',
          namespace: 'payments',
          provider: 'webhook-eu',
          originalProvider: 'webhook',
          destination: 'https://hooks.example.com/ü',
          actionType: 'charge.capture',
          labels: { env: 'prod', 'team.name': 'Zürich 🚀', empty: '' },
          outcome: 'retrying',
          rules: ['block-spam', 'reroute-eu: provider down'],
          reason: 'HTTP 503 — retrying',
          attempt: 2,
          status: 503,
          errorCode: 'SY_ERR_PROVIDER_HTTP_STATUS',
          dedupKey: 'order-42',
          receivedAt: T0 - 1234,
          decidedAt: T0,
          executedAt: T0 + 7,
          durationMs: 12.75,
          nodeId: 'gw-2',
          traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
          payload: {
            to: 'ünïcødé@example.com',
            subject: '日本語 – émoji 🎉 – مرحبا',
            ключ: 'значение',
            quote: 'a "quoted" \\ back\\slash\nnew line\ttab',
            numbers: [0, 1, -1, 2.5, -0.125, 9007199254740991, 1e21, 1e-7],
            flags: [true, false, null],
            nested: { deep: { k: 'v' }, empty: {}, list: [] },
          },
        });
        const minimal = auditRecord({ decidedAt: T0 + 1, payload: undefined });
        const edge = auditRecord({
          decidedAt: T0 + 2,
          destination: '',
          reason: '',
          attempt: 0,
          status: 0,
          errorCode: '',
          dedupKey: '',
          executedAt: 0,
          durationMs: 0,
          traceId: '',
          payload: null,
          labels: {},
          rules: [],
        });
        expect(minimal.payloadHash).toBe('');
        await s.append([full, minimal, edge], { chain: false });

        const page = await s.query({ limit: 10, order: 'asc' });
        expect(page.items).toStrictEqual([full, minimal, edge]);
        expect(page.nextCursor).toBeNull();
        expect(await s.history(full.actionId)).toStrictEqual([full]);
        expect(await s.history(minimal.actionId)).toStrictEqual([minimal]);
        expect(await s.history(edge.actionId)).toStrictEqual([edge]);
        expect(await s.count()).toBe(3);
      });

      test('a ~50 KB payload round-trips', async (s) => {
        const payload = {
          blob: 'x'.repeat(30_000) + ' – ünïcode 🎉',
          items: Array.from({ length: 500 }, (_, i) => ({
            i,
            name: `item-${i}`,
            tags: ['a', 'b'],
          })),
        };
        expect(JSON.stringify(payload).length).toBeGreaterThan(45_000);
        const r = auditRecord({ payload });
        await s.append([r], { chain: true });
        const [back] = await s.history(r.actionId);
        expect(back?.payload).toStrictEqual(payload);
        expect(back?.payloadHash).toBe(payloadHashOf(payload));
        expect(back?.hash).toBe(chainHash(back as AuditRecord, GENESIS_HASH));
      });

      test('count() counts every record', async (s) => {
        await s.append([auditRecord(), auditRecord()], { chain: false });
        await s.append([auditRecord({ tenant: 'globex' })], { chain: true });
        expect(await s.count()).toBe(3);
      });
    });

    describe('query: filters', () => {
      const single: [string, Omit<AuditQuery, 'limit'>][] = [
        ['tenant', { tenant: 'globex' }],
        ['namespace', { namespace: 'staging' }],
        ['provider', { provider: 'email' }],
        ['actionType', { actionType: 'charge' }],
        ['outcome', { outcome: 'suppressed' }],
        ['kind', { kind: 'attempt' }],
        ['rule', { rule: 'reroute-eu' }],
        ['label', { label: { key: 'env', value: 'prod' } }],
        ['label with a dot in its key', { label: { key: 'team.name', value: 'core' } }],
        ['from', { from: T0 + 3000 }],
        ['to', { to: T0 + 3000 }],
        ['from and to', { from: T0 + 2000, to: T0 + 5000 }],
        ['text in actionId', { text: 'ord-00' }],
        ['text in dedupKey', { text: 'key_1' }],
        ['text with %', { text: '%' }],
      ];
      for (const [what, filter] of single) {
        test(`by ${what}`, async (s) => {
          const data = filterDataset();
          await s.append(shuffled(data), { chain: false });
          const expected = data.filter((r) => matches(r, { ...filter, limit: 1 }));
          // A filter that keeps all or nothing would prove nothing.
          expect(expected.length).toBeGreaterThan(0);
          expect(expected.length).toBeLessThan(data.length);
          for (const order of ['desc', 'asc'] as const) {
            const got = await collect(s, { ...filter, order, limit: 5 });
            expect(ids(got)).toEqual(ids(sorted(expected, order)));
          }
        });
      }

      const none: [string, Omit<AuditQuery, 'limit'>][] = [
        ['text: _ is not a wildcard', { text: 'ord_00' }],
        ['rule: a prefix of a rule name', { rule: 'reroute' }],
        ['label: a prefix of a value', { label: { key: 'env', value: 'pro' } }],
        ['label: a key no record has', { label: { key: 'nope', value: 'prod' } }],
        ['tenant: no such tenant', { tenant: 'initech' }],
        ['from after every record', { from: T0 + 1_000_000 }],
      ];
      for (const [what, filter] of none) {
        test(`matches nothing: ${what}`, async (s) => {
          await s.append(filterDataset(), { chain: false });
          expect(await s.query({ ...filter, limit: 50 })).toEqual({ items: [], nextCursor: null });
        });
      }

      const combined: Omit<AuditQuery, 'limit'>[] = [
        { tenant: 'acme', namespace: 'prod', from: T0 + 1000, to: T0 + 7000 },
        { tenant: 'acme', provider: 'webhook', kind: 'decision' },
        { namespace: 'prod', label: { key: 'env', value: 'prod' }, rule: 'block-spam' },
        { tenant: 'globex', text: 'ord-01' },
        { tenant: 'acme', actionType: 'notify', outcome: 'executed' },
        { namespace: 'prod', from: T0 + 3000, text: 'key_' },
      ];
      test('combined filters (AND)', async (s) => {
        const data = filterDataset();
        await s.append(shuffled(data, 11), { chain: false });
        for (const filter of combined) {
          const expected = data.filter((r) => matches(r, { ...filter, limit: 1 }));
          expect(expected.length, JSON.stringify(filter)).toBeGreaterThan(0);
          for (const order of ['desc', 'asc'] as const) {
            const got = await collect(s, { ...filter, order, limit: 2 });
            expect(ids(got), JSON.stringify(filter)).toEqual(ids(sorted(expected, order)));
          }
        }
      });
    });

    describe('query: order, limit and cursors', () => {
      /** 50 records, four per decidedAt, appended out of order in batches. */
      const fifty = async (s: AuditStore): Promise<AuditRecord[]> => {
        const data = Array.from({ length: 50 }, (_, i) =>
          auditRecord({ decidedAt: T0 + Math.floor(i / 4) * 10, tenant: i % 3 ? 'acme' : 'b' }),
        );
        const mixed = shuffled(data, 3);
        for (let i = 0; i < mixed.length; i += 10) {
          await s.append(mixed.slice(i, i + 10), { chain: i % 20 === 0 });
        }
        return data;
      };

      test('newest first by default, oldest first with order: asc', async (s) => {
        const data = await fifty(s);
        const desc = await s.query({ limit: 1000 });
        expect(ids(desc.items)).toEqual(ids(sorted(data, 'desc')));
        expect(desc.nextCursor).toBeNull();
        const asc = await s.query({ limit: 1000, order: 'asc' });
        expect(ids(asc.items)).toEqual(ids(sorted(data, 'asc')));
      });

      test('limit is honoured', async (s) => {
        const data = await fifty(s);
        const page = await s.query({ limit: 3 });
        expect(ids(page.items)).toEqual(ids(sorted(data, 'desc').slice(0, 3)));
        expect(page.nextCursor).not.toBeNull();
        const one = await s.query({ limit: 1, order: 'asc' });
        expect(ids(one.items)).toEqual(ids(sorted(data).slice(0, 1)));
      });

      test('pages of 7 return every record exactly once, in order', async (s) => {
        const data = await fifty(s);
        for (const order of ['desc', 'asc'] as const) {
          const pages: number[] = [];
          const got: AuditRecord[] = [];
          let cursor: string | undefined;
          do {
            const page = await s.query({ limit: 7, order, cursor });
            pages.push(page.items.length);
            got.push(...page.items);
            cursor = page.nextCursor ?? undefined;
          } while (cursor !== undefined);
          expect(pages).toEqual([7, 7, 7, 7, 7, 7, 7, 1]);
          expect(ids(got)).toEqual(ids(sorted(data, order)));
        }
      });

      test('the page that reaches the last record has no next cursor', async (s) => {
        const data = await fifty(s);
        expect(await collect(s, { limit: 10 })).toHaveLength(50);
        expect(await collect(s, { limit: 25, order: 'asc' })).toHaveLength(50);
        const b = data.filter((r) => r.tenant === 'b');
        const page = await s.query({ tenant: 'b', limit: b.length });
        expect(page.items).toHaveLength(b.length);
        expect(page.nextCursor).toBeNull();
      });

      test('pagination with a filter', async (s) => {
        const data = await fifty(s);
        const q = { tenant: 'acme', from: T0 + 30, to: T0 + 100 };
        const expected = data.filter((r) => matches(r, { ...q, limit: 1 }));
        expect(ids(await collect(s, { ...q, limit: 4 }))).toEqual(ids(sorted(expected, 'desc')));
        expect(ids(await collect(s, { ...q, limit: 4, order: 'asc' }))).toEqual(
          ids(sorted(expected, 'asc')),
        );
      });

      test('records appended between pages: none skipped or repeated', async (s) => {
        const data = await fifty(s);
        const original = new Set(ids(data));
        // Counts across both traversals: each new "later" is the newest, each "earlier" the oldest.
        let k = 0;
        for (const order of ['desc', 'asc'] as const) {
          const seen: string[] = [];
          // Appended during the traversal: after, at and before the page boundary.
          const ahead = new Set<string>();
          let cursor: string | undefined;
          do {
            const page = await s.query({ limit: 7, order, cursor });
            seen.push(...ids(page.items));
            cursor = page.nextCursor ?? undefined;
            const boundary = page.items[page.items.length - 1]?.decidedAt ?? T0;
            k++;
            const later = auditRecord({ decidedAt: T0 + 1_000_000 + k });
            const earlier = auditRecord({ decidedAt: T0 - 1_000_000 - k });
            const same = auditRecord({ decidedAt: boundary });
            ahead.add(order === 'desc' ? later.id : earlier.id);
            await s.append(k % 2 ? [later, same, earlier] : [earlier, later, same], {
              chain: k % 3 === 0,
            });
          } while (cursor !== undefined);
          expect(new Set(seen).size).toBe(seen.length);
          const found = seen.filter((id) => original.has(id));
          expect(found).toHaveLength(original.size);
          // Behind the cursor's direction of travel: never reached.
          expect(
            seen.filter((id) => ahead.has(id)),
            order,
          ).toEqual([]);
        }
      });

      test('a cursor the store did not make is rejected as SY_ERR_VALIDATION', async (s) => {
        await fifty(s);
        const junk = Buffer.from('garbage').toString('base64url');
        expect(await codeOf(s.query({ limit: 5, cursor: junk }))).toBe('SY_ERR_VALIDATION');
      });
    });

    describe('history', () => {
      test('every record of an action, oldest first; scoped by namespace and tenant', async (s) => {
        const h = (over: Partial<AuditRecord>): AuditRecord =>
          auditRecord({ actionId: 'act-h', ...over });
        const decision = h({ decidedAt: T0 + 2000 });
        const attempt1 = h({ kind: 'attempt', attempt: 1, decidedAt: T0 + 3000 });
        const attempt2 = h({ kind: 'attempt', attempt: 2, decidedAt: T0 + 4000 });
        const replay = h({ kind: 'replay', decidedAt: T0 + 10_000 });
        // The same (client-supplied) id in another tenant and another namespace.
        const otherTenant = h({ tenant: 'globex', decidedAt: T0 + 2500 });
        const otherNamespace = h({ namespace: 'staging', decidedAt: T0 + 1000 });
        const noise = Array.from({ length: 10 }, (_, i) =>
          auditRecord({ decidedAt: T0 + i * 500 }),
        );
        await s.append([replay, ...noise.slice(0, 5), attempt2, otherTenant], { chain: true });
        await s.append([attempt1, otherNamespace, ...noise.slice(5), decision], { chain: false });

        expect(ids(await s.history('act-h'))).toEqual(
          ids([otherNamespace, decision, otherTenant, attempt1, attempt2, replay]),
        );
        expect(ids(await s.history('act-h', { namespace: 'prod', tenant: 'acme' }))).toEqual(
          ids([decision, attempt1, attempt2, replay]),
        );
        expect(ids(await s.history('act-h', { namespace: 'prod', tenant: 'globex' }))).toEqual([
          otherTenant.id,
        ]);
        expect(await s.history('act-h', { namespace: 'staging', tenant: 'globex' })).toEqual([]);
        expect(await s.history('no-such-action')).toEqual([]);
      });
    });

    describe('chain', () => {
      test('chain: true assigns seq 1..n per tenant, linked and hashed', async (s) => {
        const a = (n: number): AuditRecord => auditRecord({ tenant: 'acme', decidedAt: T0 + n });
        const g = (n: number): AuditRecord => auditRecord({ tenant: 'globex', decidedAt: T0 + n });
        const batches = [
          [a(5), a(1), g(3)],
          [g(2), a(9)],
          [a(0), g(7), g(8), a(4)],
        ];
        const loose = [a(6), auditRecord({ tenant: 'initech' })];
        await s.append(batches[0] as AuditRecord[], { chain: true });
        await s.append(batches[1] as AuditRecord[], { chain: true });
        await s.append(loose, { chain: false });
        await s.append(batches[2] as AuditRecord[], { chain: true });

        const appended = batches.flat();
        for (const tenant of ['acme', 'globex']) {
          const chain = await wholeChain(s, tenant);
          // Append order, not decidedAt order.
          const mine = appended.filter((r) => r.tenant === tenant);
          expect(ids(chain)).toEqual(ids(mine));
          expectChain(chain);
          chain.forEach((r, i) =>
            expect(r).toStrictEqual({
              ...mine[i],
              chainSeq: r.chainSeq,
              prevHash: r.prevHash,
              hash: r.hash,
            }),
          );
          // The same records through query() carry the same chain fields.
          const listed = await collect(s, { tenant, limit: 100 });
          for (const r of chain) expect(listed.find((l) => l.id === r.id)).toStrictEqual(r);
        }
        // Records appended with chain: false are not in any chain.
        for (const r of loose) expect(await s.history(r.actionId)).toStrictEqual([unchained(r)]);
        expect([...(await s.chainTenants())].sort()).toEqual(['acme', 'globex']);
      });

      test('chainPage pages by afterSeq', async (s) => {
        const records = Array.from({ length: 11 }, (_, i) => auditRecord({ decidedAt: T0 + i }));
        await s.append(records.slice(0, 4), { chain: true });
        await s.append(records.slice(4), { chain: true });
        const first = await s.chainPage('acme', 0, 4);
        expect(first.map((r) => r.chainSeq)).toEqual([1, 2, 3, 4]);
        const middle = await s.chainPage('acme', 4, 4);
        expect(middle.map((r) => r.chainSeq)).toEqual([5, 6, 7, 8]);
        const last = await s.chainPage('acme', 8, 4);
        expect(last.map((r) => r.chainSeq)).toEqual([9, 10, 11]);
        expect(await s.chainPage('acme', 11, 4)).toEqual([]);
        expect(await s.chainPage('globex', 0, 4)).toEqual([]);
        expect(ids(await wholeChain(s, 'acme', 3))).toEqual(ids(records));
        expectChain([...first, ...middle, ...last]);
      });

      test('chain: false leaves chainSeq, prevHash and hash undefined', async (s) => {
        const r = auditRecord();
        await s.append([r], { chain: false });
        const [back] = (await s.query({ limit: 1 })).items;
        expect(back?.chainSeq).toBeUndefined();
        expect(back?.prevHash).toBeUndefined();
        expect(back?.hash).toBeUndefined();
        expect(await s.chainPage('acme', 0, 10)).toEqual([]);
        expect(await s.chainTenants()).toEqual([]);
      });

      test('a chain continues after retention deleted its records', async (s) => {
        await s.append([auditRecord(), auditRecord()], { chain: true });
        const [, head] = await s.chainPage('acme', 0, 10);
        expect(head?.hash).toBeDefined();
        expect(await s.deleteBefore(T0 + 1, 100)).toBe(2);
        expect(await s.chainPage('acme', 0, 10)).toEqual([]);
        await s.append([auditRecord({ decidedAt: T0 + 5 })], { chain: true });
        const next = await s.chainPage('acme', 0, 10);
        expectChain(next, 3, head?.hash);
        expect(await s.chainTenants()).toEqual(['acme']);
      });

      test('concurrent chained appends for one tenant form one gap-free chain', async (s) => {
        const batches = Array.from({ length: 6 }, (_, b) =>
          Array.from({ length: 25 }, (_, i) => auditRecord({ decidedAt: T0 + b * 100 + i })),
        );
        await Promise.all(batches.map((batch) => s.append(batch, { chain: true })));
        const chain = await wholeChain(s, 'acme', 40);
        expect(chain).toHaveLength(150);
        expectChain(chain);
        // Each batch is contiguous and in order: batches are atomic.
        for (const batch of batches) {
          const at = chain.findIndex((r) => r.id === batch[0]?.id);
          expect(ids(chain.slice(at, at + batch.length))).toEqual(ids(batch));
        }
      });

      test('two writers on one store form one gap-free chain per tenant', async (s) => {
        if (options.peer === undefined) throw new Error('unreachable: skipped without peer()');
        const other = await options.peer();
        open.push(other);
        const writes: Promise<void>[] = [];
        for (let b = 0; b < 8; b++) {
          const batch = Array.from({ length: 20 }, (_, i) =>
            auditRecord({ tenant: i % 2 ? 'acme' : 'globex', decidedAt: T0 + b * 100 + i }),
          );
          writes.push((b % 2 ? s : other).append(batch, { chain: true }));
        }
        await Promise.all(writes);
        expect(await s.count()).toBe(160);
        expect(await other.count()).toBe(160);
        for (const tenant of ['acme', 'globex']) {
          const chain = await wholeChain(other, tenant, 33);
          expect(chain).toHaveLength(80);
          expectChain(chain);
        }
      });
    });

    describe('retention: deleteBefore', () => {
      test('deletes the oldest records before the time, at most limit', async (s) => {
        const at = [0, 0, 1, 2, 2, 3, 4, 5, 5, 9];
        const data = at.map((t) => auditRecord({ decidedAt: T0 + t }));
        await s.append(shuffled(data), { chain: false });
        expect(await s.deleteBefore(T0 + 4, 3)).toBe(3);
        expect(ids(await collect(s, { limit: 100, order: 'asc' }))).toEqual(
          ids(sorted(data).slice(3)),
        );
        expect(await s.deleteBefore(T0 + 4, 100)).toBe(3);
        expect(await s.deleteBefore(T0 + 4, 100)).toBe(0);
        // decidedAt == before is kept.
        const rest = await collect(s, { limit: 100, order: 'asc' });
        expect(rest.map((r) => r.decidedAt - T0)).toEqual([4, 5, 5, 9]);
        expect(await s.count()).toBe(4);
        expect(await s.deleteBefore(T0 + 100, 0)).toBe(0);
        expect(await s.deleteBefore(T0 + 100, 100)).toBe(4);
        expect(await s.count()).toBe(0);
      });
    });

    describe('erasure: erasePayloads', () => {
      const dataset = (): AuditRecord[] => [
        auditRecord({
          actionId: 'er-1',
          labels: { user: 'u1' },
          dedupKey: 'dk-1',
          payload: { email: 'a@x.test', userId: 42, vip: true },
        }),
        auditRecord({
          actionId: 'er-1',
          kind: 'attempt',
          labels: { user: 'u1' },
          payload: { email: 'a@x.test', userId: '42', vip: 'yes' },
        }),
        auditRecord({
          actionId: 'er-1',
          kind: 'replay',
          labels: { user: 'u1' },
          payload: undefined,
        }),
        auditRecord({
          actionId: 'er-2',
          tenant: 'initech',
          labels: { user: 'u2' },
          dedupKey: 'dk-2',
          payload: { email: 'b@x.test', nested: { email: 'a@x.test' }, userId: 42.5 },
        }),
        auditRecord({
          actionId: 'er-3',
          tenant: 'initech',
          namespace: 'ops',
          labels: { 'user.id': 'u1' },
          payload: ['a@x.test'],
        }),
        auditRecord({ actionId: 'er-4', namespace: 'ops', payload: 'a@x.test' }),
      ];
      const cases: [field: string, value: string, erased: number[]][] = [
        ['actionId', 'er-1', [0, 1]],
        ['tenant', 'initech', [3, 4]],
        ['namespace', 'ops', [4, 5]],
        ['dedupKey', 'dk-1', [0]],
        ['labels.user', 'u1', [0, 1]],
        ['labels.user.id', 'u1', [4]],
        ['payload.email', 'a@x.test', [0, 1]],
        ['payload.userId', '42', [0, 1]],
        ['payload.vip', 'true', [0]],
        ['payload.email', 'nobody@x.test', []],
      ];
      for (const [field, value, erased] of cases) {
        test(`by ${field} = ${value}`, async (s) => {
          const data = dataset();
          await s.append(data, { chain: true });
          const before = await wholeChain(s, 'acme');
          before.push(...(await wholeChain(s, 'initech')));
          expect(await s.erasePayloads(field, value)).toBe(erased.length);
          for (const [i, r] of data.entries()) {
            const was = before.find((b) => b.id === r.id) as AuditRecord;
            const [now] = await s.history(r.actionId).then((h) => h.filter((x) => x.id === r.id));
            if (erased.includes(i)) {
              expect(now).toStrictEqual({ ...was, payload: undefined });
              expect(now?.payloadHash).toBe(r.payloadHash);
              expect(now?.hash).toBe(chainHash(now as AuditRecord, now?.prevHash as string));
            } else {
              expect(now).toStrictEqual(was);
            }
          }
          // Nothing left to change.
          expect(await s.erasePayloads(field, value)).toBe(0);
          expectChain(await wholeChain(s, 'acme'));
          expectChain(await wholeChain(s, 'initech'));
        });
      }

      test('an unknown field is rejected as SY_ERR_VALIDATION', async (s) => {
        await s.append(dataset(), { chain: false });
        expect(await codeOf(s.erasePayloads('bogus', 'x'))).toBe('SY_ERR_VALIDATION');
        expect(await codeOf(s.erasePayloads('id', 'x'))).toBe('SY_ERR_VALIDATION');
      });
    });
  });
}
