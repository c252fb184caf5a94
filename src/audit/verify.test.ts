import { describe, expect, it } from 'vitest';
import type { Action } from '../core/action.js';
import { MemoryAuditStore } from './memory/store.js';
import { chainHash, GENESIS_HASH, payloadHashOf, type AuditRecord } from './record.js';
import type { AuditStore } from './store.js';
import { verifyChains } from './verify.js';
import { AuditWriter } from './writer.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

let counter = 0;

function record(tenant: string, over: Partial<AuditRecord> = {}): AuditRecord {
  const n = ++counter;
  const payload = { n, to: `user${n}@example.com` };
  return {
    id: `rec-${String(n).padStart(4, '0')}`,
    kind: 'decision',
    actionId: `act-${n}`,
    namespace: 'billing',
    tenant,
    provider: 'mail',
    originalProvider: 'mail',
    destination: undefined,
    actionType: 'send_email',
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
    durationMs: 1,
    nodeId: 'node-1',
    traceId: undefined,
    payload,
    payloadHash: payloadHashOf(payload),
    chainSeq: undefined,
    prevHash: undefined,
    hash: undefined,
    ...over,
  };
}

/**
 * Just enough of an audit store for verify, over a plain array the tests tamper with: chained by
 * MemoryAuditStore, read back, then edited in place.
 */
class TamperStore implements Pick<AuditStore, 'chainPage' | 'chainTenants'> {
  readonly pages: number[] = [];
  constructor(public records: AuditRecord[]) {}

  static async chained(counts: Record<string, number>): Promise<TamperStore> {
    const memory = new MemoryAuditStore();
    for (const [tenant, n] of Object.entries(counts)) {
      await memory.append(
        Array.from({ length: n }, () => record(tenant)),
        { chain: true },
      );
    }
    const records: AuditRecord[] = [];
    for (const tenant of await memory.chainTenants()) {
      records.push(...(await memory.chainPage(tenant, 0, 10_000)));
    }
    return new TamperStore(records);
  }

  at(tenant: string, seq: number): AuditRecord {
    const r = this.records.find((x) => x.tenant === tenant && x.chainSeq === seq);
    if (r === undefined) throw new Error(`no record ${tenant}/${seq}`);
    return r;
  }

  remove(tenant: string, ...seqs: number[]): void {
    this.records = this.records.filter(
      (r) => r.tenant !== tenant || !seqs.includes(r.chainSeq ?? -1),
    );
  }

  chainPage(tenant: string, afterSeq: number, limit: number): Promise<AuditRecord[]> {
    this.pages.push(afterSeq);
    return Promise.resolve(
      this.records
        .filter((r) => r.tenant === tenant && r.chainSeq !== undefined && r.chainSeq > afterSeq)
        .sort((a, b) => (a.chainSeq as number) - (b.chainSeq as number))
        .slice(0, limit),
    );
  }

  chainTenants(): Promise<string[]> {
    return Promise.resolve([...new Set(this.records.map((r) => r.tenant))].sort());
  }
}

describe('verifyChains', () => {
  it('passes intact chains and summarizes each', async () => {
    const store = await TamperStore.chained({ acme: 5, globex: 3 });
    const result = await verifyChains(store);
    expect(result).toMatchObject({ ok: true, tenants: 2, records: 8, problems: [] });
    expect(result.chains).toEqual([
      {
        tenant: 'acme',
        records: 5,
        startsAt: 1,
        fromGenesis: true,
        lastSeq: 5,
        lastHash: store.at('acme', 5).hash,
      },
      {
        tenant: 'globex',
        records: 3,
        startsAt: 1,
        fromGenesis: true,
        lastSeq: 3,
        lastHash: store.at('globex', 3).hash,
      },
    ]);
    expect(store.at('acme', 1).prevHash).toBe(GENESIS_HASH);
  });

  it('finds an edited field and names the record', async () => {
    const store = await TamperStore.chained({ acme: 5, globex: 3 });
    const edited = store.at('acme', 3);
    edited.outcome = 'suppressed';
    const result = await verifyChains(store);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      expect.objectContaining({
        tenant: 'acme',
        recordId: edited.id,
        chainSeq: 3,
        problem: 'edited',
      }),
    ]);
  });

  it('finds an edited payloadHash, and a payload that no longer matches its hash', async () => {
    const store = await TamperStore.chained({ acme: 4 });
    store.at('acme', 2).payloadHash = payloadHashOf({ other: true });
    store.at('acme', 4).payload = { n: 4, to: 'someone-else@example.com' };
    const { problems } = await verifyChains(store);
    expect(problems.map((p) => [p.problem, p.recordId, p.chainSeq])).toEqual([
      ['edited', store.at('acme', 2).id, 2],
      ['edited', store.at('acme', 4).id, 4],
    ]);
    expect(problems[1]?.message).toMatch(/payload/);
  });

  it('passes erased payloads (the chain covers the payload hash, not the payload)', async () => {
    const store = await TamperStore.chained({ acme: 3 });
    for (const r of store.records) r.payload = undefined;
    expect((await verifyChains(store)).ok).toBe(true);
  });

  it('finds a deleted record: the missing seq and the record after the gap', async () => {
    const store = await TamperStore.chained({ acme: 6 });
    const after = store.at('acme', 4);
    store.remove('acme', 3);
    const { problems } = await verifyChains(store);
    expect(problems).toEqual([
      {
        tenant: 'acme',
        recordId: '3',
        chainSeq: 3,
        problem: 'deleted',
        message: expect.stringContaining(after.id) as string,
      },
    ]);
  });

  it('names a deleted range', async () => {
    const store = await TamperStore.chained({ acme: 8 });
    store.remove('acme', 3, 4, 5);
    const { problems } = await verifyChains(store);
    expect(problems.map((p) => [p.problem, p.recordId, p.chainSeq])).toEqual([
      ['deleted', '3-5', 3],
    ]);
    expect(problems[0]?.message).toContain(store.at('acme', 6).id);
  });

  it('trusts the first remaining record (retention deletes from the start)', async () => {
    const store = await TamperStore.chained({ acme: 6 });
    store.remove('acme', 1, 2, 3);
    const result = await verifyChains(store);
    expect(result.ok).toBe(true);
    expect(result.chains[0]).toMatchObject({ startsAt: 4, fromGenesis: false, records: 3 });
  });

  it('finds two swapped records and names both', async () => {
    const store = await TamperStore.chained({ acme: 6 });
    const a = store.at('acme', 2);
    const b = store.at('acme', 3);
    a.chainSeq = 3;
    b.chainSeq = 2;
    const { problems } = await verifyChains(store);
    expect(problems.map((p) => [p.problem, p.recordId, p.chainSeq])).toEqual([
      ['reordered', b.id, 2],
      ['reordered', a.id, 3],
    ]);
    expect(problems[0]?.message).toContain('written as seq 3');
  });

  it('finds records swapped far apart (as edited, or moved) and names both', async () => {
    const store = await TamperStore.chained({ acme: 30 });
    const a = store.at('acme', 2);
    const b = store.at('acme', 25);
    a.chainSeq = 25;
    b.chainSeq = 2;
    const { problems } = await verifyChains(store);
    expect(problems.map((p) => [p.problem, p.recordId, p.chainSeq])).toEqual([
      ['edited', b.id, 2],
      ['edited', a.id, 25],
    ]);
    expect(problems[0]?.message).toContain('moved here from elsewhere');
  });

  it('finds a record rewritten with a recomputed hash (its successor no longer links)', async () => {
    const store = await TamperStore.chained({ acme: 5 });
    const forged = store.at('acme', 3);
    forged.outcome = 'suppressed';
    forged.hash = chainHash(forged, forged.prevHash as string);
    const { problems } = await verifyChains(store);
    expect(problems.map((p) => [p.problem, p.recordId, p.chainSeq])).toEqual([
      ['reordered', store.at('acme', 4).id, 4],
    ]);
    expect(problems[0]?.message).toContain(forged.id);
  });

  it('finds two records sharing a chainSeq', async () => {
    const store = await TamperStore.chained({ acme: 3 });
    const extra = { ...store.at('acme', 2), id: 'rec-extra' };
    store.records.push(extra);
    const { problems } = await verifyChains(store);
    expect(problems.some((p) => p.problem === 'reordered' && p.chainSeq === 2)).toBe(true);
  });

  it('reports records without chain fields as unchained', async () => {
    const store = await TamperStore.chained({ acme: 2 });
    store.at('acme', 2).hash = undefined;
    const { problems } = await verifyChains(store);
    expect(problems.map((p) => [p.problem, p.chainSeq])).toEqual([['unchained', 2]]);
  });

  it('checks one tenant when asked', async () => {
    const store = await TamperStore.chained({ acme: 3, globex: 3 });
    store.at('globex', 2).outcome = 'x';
    expect(await verifyChains(store, { tenant: 'acme' })).toMatchObject({
      ok: true,
      tenants: 1,
      records: 3,
    });
    expect((await verifyChains(store, { tenant: 'globex' })).ok).toBe(false);
    expect(await verifyChains(store, { tenant: 'nobody' })).toMatchObject({
      ok: true,
      tenants: 1,
      records: 0,
      chains: [{ tenant: 'nobody', startsAt: undefined, records: 0 }],
    });
  });

  it('reads the chain in pages and finds problems across page boundaries', async () => {
    const store = await TamperStore.chained({ acme: 9 });
    store.remove('acme', 5); // page 1: 1-4, page 2: 6,7,8,9
    store.at('acme', 7).status = 500;
    const result = await verifyChains(store, { pageSize: 4 });
    expect(store.pages).toEqual([-1, 4, 9]);
    expect(result.records).toBe(8);
    expect(result.problems.map((p) => [p.problem, p.chainSeq])).toEqual([
      ['deleted', 5],
      ['edited', 7],
    ]);
  });

  it('cannot see records deleted from the end, but reports the last seq and hash', async () => {
    const store = await TamperStore.chained({ acme: 5 });
    const lastHash = store.at('acme', 4).hash;
    store.remove('acme', 5);
    const result = await verifyChains(store);
    expect(result.ok).toBe(true);
    expect(result.chains[0]).toMatchObject({ lastSeq: 4, lastHash });
  });
});

describe('verifyChains on what the writer and the memory store produce', () => {
  function action(i: number, tenant: string): Action {
    return {
      id: `a${i}`,
      namespace: 'billing',
      tenant,
      provider: 'mail',
      actionType: 'send_email',
      payload: { to: `u${i}@example.com`, card: { number: '4111' } },
      labels: {},
      dedupKey: undefined,
      fingerprint: undefined,
      deliverAt: undefined,
      receivedAt: T0 + i,
    };
  }

  it('verifies strict-mode chains, after erasure and after retention', async () => {
    const store = new MemoryAuditStore();
    const writer = new AuditWriter({
      store,
      mode: 'strict',
      storePayload: true,
      redact: ['card.number'],
      nodeId: 'n1',
    });
    const pending: (void | Promise<void>)[] = [];
    for (let i = 0; i < 40; i++) {
      pending.push(
        writer.record({
          kind: 'decision',
          action: action(i, i % 2 === 0 ? 'acme' : 'globex'),
          originalProvider: 'mail',
          provider: 'mail',
          outcome: 'executed',
          rules: ['r'],
          decidedAt: T0 + i,
          durationMs: 1,
        }),
      );
    }
    await Promise.all(pending);
    let result = await verifyChains(store, { pageSize: 7 });
    expect(result).toMatchObject({ ok: true, tenants: 2, records: 40 });

    expect(await store.erasePayloads('tenant', 'acme')).toBe(20);
    expect((await verifyChains(store)).ok).toBe(true);

    expect(await store.deleteBefore(T0 + 10, 1000)).toBe(10);
    result = await verifyChains(store);
    expect(result.ok).toBe(true);
    expect(result.chains.map((c) => [c.tenant, c.startsAt, c.records, c.fromGenesis])).toEqual([
      ['acme', 6, 15, false],
      ['globex', 6, 15, false],
    ]);
    await writer.close();
  });
});
