import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Action } from '../core/action.js';
import { isSyError } from '../core/errors.js';
import { MemoryAuditStore } from './memory/store.js';
import { createHash } from 'node:crypto';
import {
  canonicalJson as canonicalJsonFast,
  canonicalJsonReference as canonicalJson,
  payloadHashOf as payloadHashFast,
} from './canonical.js';
import { payloadHashOf, type AuditRecord } from './record.js';
import type { AuditEvent } from './sink.js';
import type { AuditPage, AuditStore } from './store.js';
import { verifyChains } from './verify.js';
import { AuditWriter, type AuditWriterOptions } from './writer.js';

/** The payload hash computed the slow, obvious way (the reference for the fast one). */
function referencePayloadHash(value: unknown): string {
  return value === undefined ? '' : createHash('sha256').update(canonicalJson(value)).digest('hex');
}

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

function action(over: Partial<Action> = {}): Action {
  return {
    id: 'a-1',
    namespace: 'billing',
    tenant: 'acme',
    provider: 'mail',
    actionType: 'send_email',
    payload: { to: 'ann@example.com', card: { number: '4111', expiry: '12/30' } },
    labels: { env: 'prod' },
    dedupKey: undefined,
    fingerprint: undefined,
    deliverAt: undefined,
    receivedAt: T0,
    ...over,
  };
}

function event(over: Partial<AuditEvent> = {}, a: Action = action()): AuditEvent {
  return {
    kind: 'decision',
    action: a,
    originalProvider: 'mail',
    provider: 'mail',
    outcome: 'executed',
    rules: ['r1'],
    decidedAt: T0 + 5,
    durationMs: 3,
    ...over,
  };
}

/**
 * A MemoryAuditStore with controls: appends can be held until released, made to fail, and are
 * logged (records per call, concurrency).
 */
class ControlledStore implements AuditStore {
  readonly backend = 'test';
  readonly inner = new MemoryAuditStore();
  readonly calls: { ids: string[]; chain: boolean }[] = [];
  failNext = 0;
  hold = false;
  private held: (() => void)[] = [];
  inFlight = 0;
  maxInFlight = 0;
  closed = false;

  async append(records: readonly AuditRecord[], options: { chain: boolean }): Promise<void> {
    this.calls.push({ ids: records.map((r) => r.id), chain: options.chain });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error('connection refused');
      }
      await this.inner.append(records, options);
    } finally {
      this.inFlight--;
    }
  }

  /** Lets every held append go on (and stops holding). */
  release(): void {
    this.hold = false;
    for (const go of this.held.splice(0)) go();
  }

  get waiting(): number {
    return this.held.length;
  }

  all(): Promise<AuditPage> {
    return this.inner.query({ limit: 1000, order: 'asc' });
  }
  query = (q: Parameters<AuditStore['query']>[0]) => this.inner.query(q);
  history = (id: string) => this.inner.history(id);
  chainPage = (t: string, after: number, limit: number) => this.inner.chainPage(t, after, limit);
  chainTenants = () => this.inner.chainTenants();
  deleteBefore = (before: number, limit: number) => this.inner.deleteBefore(before, limit);
  erasePayloads = (f: string, v: string) => this.inner.erasePayloads(f, v);
  count = () => this.inner.count();
  close(): Promise<void> {
    this.closed = true;
    return this.inner.close();
  }
}

/** An append that does nothing (to measure the writer alone). */
class NoopStore implements AuditStore {
  readonly backend = 'noop';
  appended = 0;
  append(records: readonly AuditRecord[]): Promise<void> {
    this.appended += records.length;
    return Promise.resolve();
  }
  query = () => Promise.resolve({ items: [], nextCursor: null });
  history = () => Promise.resolve([]);
  chainPage = () => Promise.resolve([]);
  chainTenants = () => Promise.resolve([]);
  deleteBefore = () => Promise.resolve(0);
  erasePayloads = () => Promise.resolve(0);
  count = () => Promise.resolve(this.appended);
  close = () => Promise.resolve();
}

const writers: AuditWriter[] = [];

function writer(store: AuditStore, over: Partial<AuditWriterOptions> = {}): AuditWriter {
  const w = new AuditWriter({
    store,
    mode: 'batched',
    storePayload: true,
    redact: ['payload.card.number'],
    nodeId: 'node-1',
    flushIntervalMs: 60_000,
    retryDelayMs: 5,
    maxRetryDelayMs: 20,
    backlogFactor: 1,
    ...over,
  });
  writers.push(w);
  return w;
}

afterEach(async () => {
  for (const w of writers.splice(0)) await w.close().catch(() => undefined);
});

/** Lets queued microtasks and promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function codeOf(err: unknown): string | undefined {
  return isSyError(err) ? err.code : undefined;
}

describe('AuditWriter records', () => {
  it('builds the record from the event and its action', async () => {
    const store = new ControlledStore();
    const w = writer(store);
    const a = action({
      dedupKey: 'dk-1',
      labels: { env: 'prod', traceId: 'trace-9', trace_id: 'other' },
    });
    const returned = w.record(
      event(
        {
          kind: 'attempt',
          provider: 'mail-eu',
          originalProvider: 'mail',
          outcome: 'transient',
          rules: ['r1', 'r2'],
          reason: 'HTTP 503',
          attempt: 2,
          status: 503,
          errorCode: 'SY_ERR_PROVIDER_HTTP_STATUS',
          destination: 'smtp.example.com',
          executedAt: T0 + 4,
          durationMs: 7,
        },
        a,
      ),
    );
    expect(returned).toBeUndefined();
    await w.flush();
    const [r] = (await store.all()).items;
    expect(r).toMatchObject({
      kind: 'attempt',
      actionId: 'a-1',
      namespace: 'billing',
      tenant: 'acme',
      provider: 'mail-eu',
      originalProvider: 'mail',
      destination: 'smtp.example.com',
      actionType: 'send_email',
      labels: { env: 'prod', traceId: 'trace-9', trace_id: 'other' },
      outcome: 'transient',
      rules: ['r1', 'r2'],
      reason: 'HTTP 503',
      attempt: 2,
      status: 503,
      errorCode: 'SY_ERR_PROVIDER_HTTP_STATUS',
      dedupKey: 'dk-1',
      receivedAt: T0,
      decidedAt: T0 + 5,
      executedAt: T0 + 4,
      durationMs: 7,
      nodeId: 'node-1',
      traceId: 'trace-9',
      payload: { to: 'ann@example.com', card: { number: '[REDACTED]', expiry: '12/30' } },
    });
    expect(r?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // The hash is of the payload as stored (after redaction).
    expect(r?.payloadHash).toBe(payloadHashOf(r?.payload));
    expect(r?.payloadHash).not.toBe(payloadHashOf(a.payload));
    expect([r?.chainSeq, r?.prevHash, r?.hash]).toEqual([undefined, undefined, undefined]);
    // The action's payload is untouched.
    expect(a.payload).toEqual({ to: 'ann@example.com', card: { number: '4111', expiry: '12/30' } });
  });

  it('takes the trace id from trace_id, and leaves it undefined without either label', async () => {
    const store = new ControlledStore();
    const w = writer(store);
    w.record(event({}, action({ id: 'x', labels: { trace_id: 't-2' } })));
    w.record(event({}, action({ id: 'y', labels: {} })));
    await w.flush();
    const items = (await store.all()).items;
    expect(items.map((r) => r.traceId)).toEqual(['t-2', undefined]);
  });

  it('stores the payload hash but not the payload with storePayload false', async () => {
    const store = new ControlledStore();
    const w = writer(store, { storePayload: false });
    w.record(event());
    await w.flush();
    const [r] = (await store.all()).items;
    expect(r?.payload).toBeUndefined();
    expect(r?.payloadHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('hashes a payload once for a decision and its attempts', async () => {
    const store = new ControlledStore();
    const w = writer(store);
    const a = action();
    w.record(event({ kind: 'attempt', outcome: 'success' }, { ...a, provider: 'other' }));
    w.record(event({}, a));
    await w.flush();
    const items = (await store.all()).items;
    expect(items).toHaveLength(2);
    expect(items[0]?.payloadHash).toBe(items[1]?.payloadHash);
    expect(items[0]?.id).not.toBe(items[1]?.id);
  });

  it('hashes a payload object reused (and changed) by another action anew', async () => {
    const store = new ControlledStore();
    const w = writer(store);
    const shared: Record<string, unknown> = { to: 'ann@example.com' };
    w.record(event({}, action({ id: 'a1', payload: shared })));
    // Payloads are immutable once recorded (the record holds them until its batch is written).
    await w.flush();
    shared.to = 'bob@example.com';
    w.record(event({}, action({ id: 'a2', payload: shared })));
    await w.flush();
    const items = (await store.all()).items;
    expect(items.map((r) => r.payload)).toEqual([
      { to: 'ann@example.com' },
      { to: 'bob@example.com' },
    ]);
    expect(items.map((r) => r.payloadHash)).toEqual([
      payloadHashOf({ to: 'ann@example.com' }),
      payloadHashOf({ to: 'bob@example.com' }),
    ]);
  });
});

describe('AuditWriter batched mode', () => {
  it('buffers, writes on flush, in order, in batches of batchSize', async () => {
    const store = new ControlledStore();
    const w = writer(store, { batchSize: 4 });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      expect(w.record(event({}, action({ id: `a${i}` })))).toBeUndefined();
      ids.push(`a${i}`);
    }
    // Two full batches go out on their own (off the caller: nothing happened synchronously).
    expect(store.calls).toHaveLength(0);
    await settle();
    expect(store.calls.map((c) => c.ids.length)).toEqual([4, 4]);
    expect(w.stats()).toMatchObject({ buffered: 2, written: 8 });
    await w.flush();
    expect(store.calls.map((c) => c.ids.length)).toEqual([4, 4, 2]);
    expect(store.calls.every((c) => !c.chain)).toBe(true);
    expect((await store.all()).items.map((r) => r.actionId)).toEqual(ids);
    expect(w.stats()).toEqual({ buffered: 0, written: 10, failedAppends: 0, backpressureWaits: 0 });
    await w.flush(); // nothing left: resolves at once
  });

  it('drains a backlog in bigger appends (up to backlogFactor batches)', async () => {
    const store = new ControlledStore();
    const w = writer(store, { batchSize: 2, backlogFactor: 3 });
    store.hold = true;
    for (let i = 0; i < 11; i++) w.record(event({}, action({ id: `a${i}` })));
    await settle();
    expect(store.calls).toHaveLength(1); // the first append (3 batches' worth), held
    store.release();
    await w.flush();
    expect(store.calls.map((c) => c.ids.length)).toEqual([6, 5]);
    expect((await store.all()).items.map((r) => r.actionId)).toEqual(
      Array.from({ length: 11 }, (_, i) => `a${i}`),
    );
  });

  it('writes a partial batch after flushIntervalMs', async () => {
    const store = new ControlledStore();
    const w = writer(store, { flushIntervalMs: 10 });
    w.record(event());
    expect(store.calls).toHaveLength(0);
    await vi.waitFor(() => expect(store.calls).toHaveLength(1), { timeout: 2000, interval: 5 });
    await vi.waitFor(() => expect(w.stats().written).toBe(1));
  });

  it('keeps one append in flight at a time, and the order', async () => {
    const store = new ControlledStore();
    const w = writer(store, { batchSize: 2 });
    store.hold = true;
    for (let i = 0; i < 9; i++) w.record(event({}, action({ id: `a${i}` })));
    await settle();
    expect(store.calls).toHaveLength(1);
    expect(w.stats().buffered).toBe(9);
    store.release();
    await w.flush();
    expect(store.maxInFlight).toBe(1);
    expect(store.calls.map((c) => c.ids.length)).toEqual([2, 2, 2, 2, 1]);
    expect((await store.all()).items.map((r) => r.actionId)).toEqual(
      Array.from({ length: 9 }, (_, i) => `a${i}`),
    );
  });

  it('makes callers wait when maxBuffer records are waiting, and lets them go once drained', async () => {
    const store = new ControlledStore();
    const w = writer(store, { batchSize: 2, maxBuffer: 5 });
    store.hold = true;
    const returned = [];
    for (let i = 0; i < 6; i++) returned.push(w.record(event({}, action({ id: `a${i}` }))));
    expect(returned.slice(0, 4)).toEqual([undefined, undefined, undefined, undefined]);
    const waits = returned.slice(4) as Promise<void>[];
    expect(waits.every((p) => p instanceof Promise)).toBe(true);
    let released = false;
    void Promise.all(waits).then(() => (released = true));
    await settle();
    expect(released).toBe(false);
    expect(w.stats()).toMatchObject({ buffered: 6, backpressureWaits: 2 });
    store.release();
    await Promise.all(waits);
    await w.flush();
    // Nothing was dropped.
    expect(await store.count()).toBe(6);
  });

  it('starts writing at once when maxBuffer is below batchSize', async () => {
    const store = new ControlledStore();
    const w = writer(store, { batchSize: 100, maxBuffer: 3 });
    w.record(event({}, action({ id: 'a0' })));
    w.record(event({}, action({ id: 'a1' })));
    const wait = w.record(event({}, action({ id: 'a2' })));
    expect(wait).toBeInstanceOf(Promise);
    await wait; // well before the 60 s flush interval
    expect(await store.count()).toBe(3);
  });

  it('keeps the records of a failed append and retries them with backoff, in order', async () => {
    const store = new ControlledStore();
    const w = writer(store, { batchSize: 3, retryDelayMs: 20, maxRetryDelayMs: 40 });
    store.failNext = 3;
    for (let i = 0; i < 3; i++) w.record(event({}, action({ id: `a${i}` })));
    await settle();
    expect(store.calls).toHaveLength(1);
    for (let i = 3; i < 5; i++) w.record(event({}, action({ id: `a${i}` })));
    // Backing off: no spinning.
    await new Promise((r) => setTimeout(r, 5));
    expect(store.calls).toHaveLength(1);
    await vi.waitFor(() => expect(w.stats().written).toBe(3), { timeout: 2000, interval: 5 });
    // 3 failures then a success; the first batch went out again whole, the order is kept.
    expect(store.calls.map((c) => c.ids.join())).toEqual(
      Array.from({ length: 4 }, () => (store.calls[0] as { ids: string[] }).ids.join()),
    );
    expect(w.stats()).toMatchObject({ failedAppends: 3, buffered: 2 });
    await w.flush();
    expect((await store.all()).items.map((r) => r.actionId)).toEqual([
      'a0',
      'a1',
      'a2',
      'a3',
      'a4',
    ]);
  });

  it('rejects flush with SY_ERR_AUDIT_UNAVAILABLE when the store fails, keeping the records', async () => {
    const store = new ControlledStore();
    const w = writer(store, { retryDelayMs: 60_000, maxRetryDelayMs: 60_000 });
    store.failNext = 1;
    w.record(event());
    const err = await w.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(codeOf(err)).toBe('SY_ERR_AUDIT_UNAVAILABLE');
    expect(isSyError(err) && err.status).toBe(503);
    expect(w.stats()).toMatchObject({ buffered: 1, written: 0, failedAppends: 1 });
    // A later flush tries again at once (it does not wait for the long backoff).
    await w.flush();
    expect(w.stats()).toMatchObject({ buffered: 0, written: 1 });
  });

  it('flush waits for an append in flight and what was buffered at the call', async () => {
    const store = new ControlledStore();
    const w = writer(store, { batchSize: 2 });
    store.hold = true;
    w.record(event({}, action({ id: 'a0' })));
    w.record(event({}, action({ id: 'a1' })));
    w.record(event({}, action({ id: 'a2' })));
    await settle();
    let flushed = false;
    const f = w.flush().then(() => (flushed = true));
    await settle();
    expect(flushed).toBe(false);
    store.release();
    await f;
    expect(await store.count()).toBe(3);
  });

  it('close flushes, closes the store and refuses later records', async () => {
    const store = new ControlledStore();
    const w = writer(store);
    w.record(event());
    await w.close();
    expect(await store.inner.count()).toBe(1);
    expect(store.closed).toBe(true);
    const late = w.record(event());
    await expect(late).rejects.toMatchObject({ code: 'SY_ERR_SHUTTING_DOWN' });
    await w.close(); // idempotent
  });

  it('close gives up after a few attempts against a dead store and still closes it', async () => {
    const store = new ControlledStore();
    const w = writer(store);
    w.record(event());
    store.failNext = 100;
    const err = await w.close().catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'SY_ERR_AUDIT_UNAVAILABLE',
      message: 'the test audit store is unavailable: connection refused',
    });
    expect(store.calls).toHaveLength(3);
    expect(store.closed).toBe(true);
  });
});

describe('AuditWriter strict mode', () => {
  it('resolves when the record is committed, chained', async () => {
    const store = new ControlledStore();
    const w = writer(store, { mode: 'strict' });
    const p = w.record(event());
    expect(p).toBeInstanceOf(Promise);
    expect(await store.count()).toBe(0);
    await p;
    const [r] = (await store.all()).items;
    expect(r?.chainSeq).toBe(1);
    expect(store.calls[0]?.chain).toBe(true);
    expect((await verifyChains(store)).ok).toBe(true);
  });

  it('group-commits the records that arrive while an append is in flight', async () => {
    const store = new ControlledStore();
    const w = writer(store, { mode: 'strict', batchSize: 3 });
    store.hold = true;
    const first = [
      w.record(event({}, action({ id: 'a0' }))),
      w.record(event({}, action({ id: 'a1' }))),
    ];
    await settle();
    expect(store.calls.map((c) => c.ids.length)).toEqual([2]);
    let done = 0;
    const later: Promise<void>[] = [];
    for (let i = 2; i < 7; i++) {
      const p = w.record(event({}, action({ id: `a${i}` }))) as Promise<void>;
      void p.then(() => done++);
      later.push(p);
    }
    await settle();
    expect(done).toBe(0);
    expect(w.stats().buffered).toBe(7);
    store.release();
    await Promise.all([...first, ...later]);
    // The five that waited went out together, batchSize at a time.
    expect(store.calls.map((c) => c.ids.length)).toEqual([2, 3, 2]);
    expect(store.maxInFlight).toBe(1);
    const items = (await store.all()).items;
    expect(items.map((r) => r.chainSeq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(items.map((r) => r.actionId)).toEqual(Array.from({ length: 7 }, (_, i) => `a${i}`));
  });

  it('rejects the batch with SY_ERR_AUDIT_UNAVAILABLE when the append fails, and recovers', async () => {
    const store = new ControlledStore();
    const w = writer(store, { mode: 'strict' });
    store.failNext = 1;
    const a = w.record(event({}, action({ id: 'a0' })));
    const b = w.record(event({}, action({ id: 'a1' })));
    const errs = await Promise.all(
      [a, b].map((p) => (p as Promise<void>).catch((e: unknown) => e)),
    );
    expect(errs.map(codeOf)).toEqual(['SY_ERR_AUDIT_UNAVAILABLE', 'SY_ERR_AUDIT_UNAVAILABLE']);
    expect(errs[0]).toMatchObject({
      status: 503,
      details: { backend: 'test', retryAfterMs: 1000 },
    });
    expect(w.stats()).toMatchObject({ failedAppends: 1, written: 0, buffered: 0 });
    await w.record(event({}, action({ id: 'a2' })));
    await w.flush();
    expect((await store.all()).items.map((r) => r.actionId)).toEqual(['a2']);
  });

  it('does not crash the process when a caller ignores a rejected promise', async () => {
    const store = new ControlledStore();
    const w = writer(store, { mode: 'strict' });
    store.failNext = 1;
    void w.record(event());
    await w.flush();
    await settle();
    expect(w.stats().failedAppends).toBe(1);
  });
});

describe('canonicalJsonFast', () => {
  const cases: unknown[] = [
    { b: 1, a: [3, { d: null, c: 'x' }], '': 0 },
    { '10': 'ten', '9': 'nine', b: 1, '01': 'x', a: 2, '1a': 3, '4294967295': 'big', '-1': 0 },
    { __proto__: null, z: 1 },
    JSON.parse('{"__proto__": {"x": 1}, "a": 1}'),
    JSON.parse('{"b": {"__proto__": 5}, "a": [1]}'),
    { s: 'quote " back \\ nl \n tab \t ctrl \u0001 del \u007f ls \u2028 é 😀 lone \ud800 \udfff' },
    { n: [0, -0, 1.5, -2e-7, 1e21, 123456789012345680000, NaN, Infinity, -Infinity] },
    { u: undefined, f: () => 1, arr: [undefined, () => 1, Symbol('s'), null] },
    { d: new Date(T0), nested: { toJSON: () => 'custom' } },
    { m: new Map([[1, 2]]), boxed: [new String('s'), new Number(2), new Boolean(false)] },
    [],
    {},
    'text',
    12,
    true,
    null,
    [[[]], [{}]],
    { 'key with "quotes"': 1, ключ: 2, Z: 3, a: 4, _: 5 },
  ];

  it('matches canonicalJson on edge cases', () => {
    for (const value of cases) expect(canonicalJsonFast(value)).toBe(canonicalJson(value));
  });

  it('matches canonicalJson on generated JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => canonicalJsonFast(value) === canonicalJson(value)),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.anything({ withNullPrototype: true, withObjectString: true }),
        (value) => canonicalJsonFast(value) === canonicalJson(value),
      ),
      { numRuns: 1000 },
    );
  });

  it('payloadHashOf (fast) equals the reference hash', () => {
    for (const value of [...cases, undefined]) {
      expect(payloadHashFast(value)).toBe(referencePayloadHash(value));
    }
  });
});

describe('AuditWriter performance', () => {
  const small = { to: 'ops@example.com', subject: 'Disk almost full', body: 'Host db-1 at 91%' };
  const medium = {
    to: ['a@example.com', 'b@example.com'],
    subject: 'Invoice 2026-001',
    body: 'Dear customer, your invoice for January is attached. '.repeat(8),
    meta: {
      customer: { id: 'c_123', name: 'ACME', tier: 'gold' },
      items: [
        { sku: 'A1', qty: 2, price: 9.99, ssn: '123-45-6789' },
        { sku: 'B2', qty: 1, price: 19.5, ssn: '987-65-4321' },
      ],
    },
    tags: ['billing', 'monthly'],
  };

  /**
   * record() + flush on a no-op store, a fresh action (payload) per event, in rounds of one batch
   * with a turn of the event loop between them (as under load: the writer drains while requests
   * come in). record() time: the median and the best tenth of the rounds (this machine is shared).
   */
  async function measure(
    label: string,
    payload: Record<string, unknown>,
    over: Partial<AuditWriterOptions>,
  ): Promise<void> {
    const rounds = 60;
    const size = 500;
    const store = new NoopStore();
    const w = writer(store, { batchSize: size, ...over });
    const perRound: number[] = [];
    let wall = 0;
    for (let round = -10; round < rounds; round++) {
      const events = Array.from({ length: size }, (_, i) =>
        event({}, action({ id: `a${round}-${i}`, payload: structuredClone(payload) })),
      );
      const t0 = performance.now();
      for (const e of events) w.record(e);
      const t1 = performance.now();
      await settle();
      if (round >= 0) {
        perRound.push(((t1 - t0) * 1e6) / size);
        wall += performance.now() - t0;
      }
    }
    await w.flush();
    expect(store.appended).toBe((rounds + 10) * size);
    perRound.sort((a, b) => a - b);
    const median = Math.round(perRound[rounds >> 1] as number);
    const p10 = Math.round(perRound[Math.floor(rounds / 10)] as number);
    const perSecond = Math.round((rounds * size) / (wall / 1000)).toLocaleString('en');
    console.log(
      `audit writer ${label}: record() median ${median} ns (p10 ${p10} ns); ` +
        `record()+flush ${perSecond} records/s`,
    );
  }

  it('measures record() and record()+flush throughput (console)', async () => {
    const payloadBytes = (p: unknown) => JSON.stringify(p).length;
    console.log(
      `payloads: small ${payloadBytes(small)} B, medium ${payloadBytes(medium)} B; ` +
        `canonicalJson vs fast, medium: ${timeNs(() => canonicalJson(medium))} vs ` +
        `${timeNs(() => canonicalJsonFast(medium))} ns; payloadHashOf vs fast: ` +
        `${timeNs(() => payloadHashOf(medium))} vs ${timeNs(() => payloadHashFast(medium))} ns`,
    );
    await measure('storePayload=false', small, { storePayload: false, redact: [] });
    await measure('small payload', small, { redact: [] });
    await measure('medium payload', medium, { redact: [] });
    await measure('medium payload + redact items.*.ssn', medium, {
      redact: ['payload.meta.items.*.ssn'],
    });
    const strictStore = new NoopStore();
    const s = writer(strictStore, { mode: 'strict', redact: [] });
    const n = 20_000;
    const events = Array.from({ length: n }, (_, i) =>
      event({}, action({ id: `s${i}`, payload: structuredClone(small) })),
    );
    const t0 = performance.now();
    await Promise.all(events.map((e) => s.record(e)));
    const ms = performance.now() - t0;
    console.log(
      `audit writer strict, small payload: ${Math.round(n / (ms / 1000)).toLocaleString('en')} records/s`,
    );
  });
});

function timeNs(f: () => unknown): number {
  for (let i = 0; i < 2000; i++) f();
  const n = 20_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  return Math.round(((performance.now() - t0) * 1e6) / n);
}
