import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { MemoryStateStore } from '../state/memory/store.js';
import { MemoryAuditStore } from './memory/store.js';
import { payloadHashOf, type AuditRecord } from './record.js';
import {
  RETENTION_LEASE,
  startRetention,
  type Retention,
  type RetentionOptions,
} from './retention.js';

const DAY = 86_400_000;

function record(i: number, decidedAt: number): AuditRecord {
  return {
    id: `rec-${String(i).padStart(5, '0')}`,
    kind: 'decision',
    actionId: `act-${i}`,
    namespace: 'billing',
    tenant: 'acme',
    provider: 'mail',
    originalProvider: 'mail',
    destination: undefined,
    actionType: 'send_email',
    labels: {},
    outcome: 'executed',
    rules: [],
    reason: undefined,
    attempt: undefined,
    status: undefined,
    errorCode: undefined,
    dedupKey: undefined,
    receivedAt: decidedAt,
    decidedAt,
    executedAt: undefined,
    durationMs: 1,
    nodeId: 'n1',
    traceId: undefined,
    payload: { i },
    payloadHash: payloadHashOf({ i }),
    chainSeq: undefined,
    prevHash: undefined,
    hash: undefined,
  };
}

/** A MemoryAuditStore that logs deleteBefore calls (and can run a hook in the middle of one). */
class LoggingStore extends MemoryAuditStore {
  readonly deletes: { before: number; limit: number; deleted: number }[] = [];
  onDelete: (() => void | Promise<void>) | undefined;
  failDelete = false;

  override async deleteBefore(before: number, limit: number): Promise<number> {
    if (this.failDelete) throw new Error('database is locked');
    await this.onDelete?.();
    const deleted = await super.deleteBefore(before, limit);
    this.deletes.push({ before, limit, deleted });
    return deleted;
  }
}

const clock = new ManualClock();
const started: Retention[] = [];

function retention(over: Partial<RetentionOptions> & Pick<RetentionOptions, 'store' | 'state'>) {
  const r = startRetention({ retentionMs: 30 * DAY, holder: 'node-a', clock, ...over });
  started.push(r);
  return r;
}

afterEach(async () => {
  for (const r of started.splice(0)) await r.stop();
});

/** `old` records older than 30 days, `fresh` younger ones. */
async function seeded(old: number, fresh: number): Promise<LoggingStore> {
  const store = new LoggingStore();
  const now = clock.now();
  const records: AuditRecord[] = [];
  for (let i = 0; i < old; i++) records.push(record(i, now - 40 * DAY + i));
  for (let i = 0; i < fresh; i++) records.push(record(old + i, now - DAY + i));
  await store.append(records, { chain: false });
  return store;
}

describe('startRetention', () => {
  it('deletes records older than the retention, in batches, until a batch is not full', async () => {
    const store = await seeded(25, 5);
    const state = new MemoryStateStore();
    const r = retention({ store, state, batch: 10 });
    expect(await r.runOnce()).toBe(25);
    expect(store.deletes.map((d) => d.deleted)).toEqual([10, 10, 5]);
    expect(store.deletes.every((d) => d.before === clock.now() - 30 * DAY && d.limit === 10)).toBe(
      true,
    );
    expect(await store.count()).toBe(5);
    // Nothing left to delete: one call.
    expect(await r.runOnce()).toBe(0);
    expect(store.deletes).toHaveLength(4);
  });

  it('stops after an exactly full last batch with one more (empty) call', async () => {
    const store = await seeded(20, 0);
    const r = retention({ store, state: new MemoryStateStore(), batch: 10 });
    expect(await r.runOnce()).toBe(20);
    expect(store.deletes.map((d) => d.deleted)).toEqual([10, 10, 0]);
  });

  it('lets one node at a time delete (the audit-retention lease)', async () => {
    const store = await seeded(15, 0);
    const state = new MemoryStateStore();
    const a = retention({ store, state, holder: 'node-a', batch: 10, leaseMs: 60_000 });
    const b = retention({ store, state, holder: 'node-b', batch: 10, leaseMs: 60_000 });
    expect(await a.runOnce()).toBe(15);
    // a keeps the lease between runs: b gets nothing to do.
    await store.append([record(100, clock.now() - 40 * DAY)], { chain: false });
    expect(await b.runOnce()).toBe(0);
    expect(await store.count()).toBe(1);
    expect(await a.runOnce()).toBe(1);
    // Once a's lease expires (a died), b takes over.
    await store.append([record(101, clock.now() - 40 * DAY)], { chain: false });
    clock.advance(60_001);
    expect(await b.runOnce()).toBe(1);
    expect(state.acquireLease(RETENTION_LEASE, 'node-a', 1000, clock.now())).toBeUndefined();
  });

  it('renews the lease between batches, and stops when it was lost', async () => {
    const store = await seeded(50, 0);
    const state = new MemoryStateStore();
    const r = retention({ store, state, batch: 10, leaseMs: 1000 });
    let calls = 0;
    store.onDelete = () => {
      calls++;
      // Each batch takes 600 ms: without renewals the lease would lapse after the second.
      clock.advance(600);
      if (calls === 4) {
        // Someone else took the lease (say a's process was paused past its expiry).
        clock.advance(2000);
        expect(state.acquireLease(RETENTION_LEASE, 'node-b', 10_000, clock.now())).toBeDefined();
      }
    };
    expect(await r.runOnce()).toBe(40);
    expect(store.deletes.map((d) => d.deleted)).toEqual([10, 10, 10, 10]);
    expect(await store.count()).toBe(10);
  });

  it('gives the lease up on stop, so another node can start at once', async () => {
    const store = await seeded(3, 0);
    const state = new MemoryStateStore();
    const a = retention({ store, state, holder: 'node-a', leaseMs: 3_600_000 });
    expect(await a.runOnce()).toBe(3);
    await a.stop();
    expect(await a.runOnce()).toBe(0);
    const b = retention({ store, state, holder: 'node-b' });
    await store.append([record(7, clock.now() - 40 * DAY)], { chain: false });
    expect(await b.runOnce()).toBe(1);
  });

  it('stop waits for a run in progress, which ends after its current batch', async () => {
    const store = await seeded(30, 0);
    const state = new MemoryStateStore();
    const r = retention({ store, state, batch: 10 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    store.onDelete = () => gate;
    const run = r.runOnce();
    await new Promise((resolve) => setImmediate(resolve));
    const stopped = r.stop();
    release();
    await stopped;
    expect(await run).toBe(10);
    expect(state.acquireLease(RETENTION_LEASE, 'node-b', 1000, clock.now())).toBeDefined();
  });

  it('never runs two deletions at once', async () => {
    const store = await seeded(30, 0);
    const r = retention({ store, state: new MemoryStateStore(), batch: 10 });
    let active = 0;
    let most = 0;
    store.onDelete = async () => {
      most = Math.max(most, ++active);
      await new Promise((resolve) => setImmediate(resolve));
      active--;
    };
    const counts = await Promise.all([r.runOnce(), r.runOnce()]);
    expect(counts).toEqual([30, 0]);
    expect(most).toBe(1);
  });

  it('rejects runOnce when the store fails, and keeps working afterwards', async () => {
    const store = await seeded(5, 0);
    const r = retention({ store, state: new MemoryStateStore() });
    store.failDelete = true;
    await expect(r.runOnce()).rejects.toThrow('database is locked');
    store.failDelete = false;
    expect(await r.runOnce()).toBe(5);
  });

  it('runs on its own every everyMs', async () => {
    const store = await seeded(4, 1);
    retention({ store, state: new MemoryStateStore(), everyMs: 10 });
    expect(await store.count()).toBe(5);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await store.count()).toBe(1);
  });
});
