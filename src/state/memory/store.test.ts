import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GateOp, GateResult, SettleOp, StateStore } from '../store.js';
import { MemoryStateStore } from './store.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

const dedup = (key: string, actionId: string, ttlMs = 1000): GateOp => ({
  kind: 'dedup',
  key,
  ttlMs,
  actionId,
});
const idem = (key: string, actionId: string, ttlMs = 1000): GateOp => ({
  kind: 'idempotency',
  key,
  ttlMs,
  actionId,
});
const throttle = (key: string, ...limits: [limit: number, windowMs: number][]): GateOp => ({
  kind: 'throttle',
  key,
  limits: limits.map(([limit, windowMs]) => ({ limit, windowMs })),
});
const settle = (
  op: 'commit' | 'release',
  gate: 'dedup' | 'idempotency',
  key: string,
  actionId: string,
  outcome?: string,
): SettleOp => ({ op, gate, key, actionId, outcome });

/** Settles through the StateStore interface (which passes the time). */
const settleAt = (s: StateStore, ops: readonly SettleOp[], now: number): unknown =>
  s.settle(ops, now);

/** Internal maps, read only to check that the lazy sweep frees memory. */
interface Internals {
  dedup: Map<string, unknown>;
  idempotency: Map<string, unknown>;
  windows: Map<string, unknown>;
}
const internals = (s: MemoryStateStore): Internals => s as unknown as Internals;

describe('MemoryStateStore dedup', () => {
  it('a reservation blocks duplicates while in flight, then while committed, until its TTL', () => {
    const s = new MemoryStateStore();
    expect(s.gate([dedup('k', 'a1', 1000)], T0)).toEqual({ pass: true });
    expect(s.gate([dedup('k', 'a2')], T0 + 1)).toEqual({
      pass: false,
      index: 0,
      kind: 'dedup',
      inFlight: true,
      holder: 'a1',
      stored: undefined,
    });
    settleAt(s, [settle('commit', 'dedup', 'k', 'a1')], T0 + 2);
    expect(s.gate([dedup('k', 'a3')], T0 + 999)).toMatchObject({
      pass: false,
      inFlight: false,
      holder: 'a1',
    });
    expect(s.gate([dedup('k', 'a4')], T0 + 1000)).toEqual({ pass: true });
    expect(s.gate([dedup('k', 'a5')], T0 + 1000)).toMatchObject({ pass: false, holder: 'a4' });
  });

  it('the holder can release its key so the action may be retried', () => {
    const s = new MemoryStateStore();
    s.gate([dedup('k', 'a1')], T0);
    settleAt(s, [settle('release', 'dedup', 'k', 'a1')], T0);
    expect(s.gate([dedup('k', 'a2')], T0)).toEqual({ pass: true });
  });

  it('release or commit by a non-holder does nothing', () => {
    const s = new MemoryStateStore();
    s.gate([dedup('k', 'a1')], T0);
    settleAt(
      s,
      [settle('release', 'dedup', 'k', 'intruder'), settle('commit', 'dedup', 'k', 'intruder')],
      T0,
    );
    expect(s.gate([dedup('k', 'a2')], T0)).toMatchObject({
      pass: false,
      inFlight: true,
      holder: 'a1',
    });
  });

  it('after expiry another holder takes the key, and the old holder can no longer touch it', () => {
    const s = new MemoryStateStore();
    s.gate([dedup('k', 'old', 1000)], T0);
    expect(s.gate([dedup('k', 'new', 1000)], T0 + 1000)).toEqual({ pass: true });
    settleAt(s, [settle('release', 'dedup', 'k', 'old')], T0 + 1001);
    expect(s.gate([dedup('k', 'third')], T0 + 1002)).toMatchObject({
      pass: false,
      inFlight: true,
      holder: 'new',
    });
    settleAt(s, [settle('commit', 'dedup', 'k', 'old', '{"x":1}')], T0 + 1003);
    expect(s.gate([dedup('k', 'third')], T0 + 1004)).toMatchObject({
      inFlight: true,
      holder: 'new',
      stored: undefined,
    });
  });

  it('settling an unknown key does nothing', () => {
    const s = new MemoryStateStore();
    settleAt(
      s,
      [settle('commit', 'dedup', 'nope', 'a1'), settle('release', 'idempotency', 'x', 'a')],
      T0,
    );
    expect(s.gate([dedup('nope', 'a2')], T0)).toEqual({ pass: true });
  });

  it('dedup and idempotency keys live apart', () => {
    const s = new MemoryStateStore();
    s.gate([dedup('same', 'a1')], T0);
    expect(s.gate([idem('same', 'a2')], T0)).toEqual({ pass: true });
    settleAt(s, [settle('release', 'idempotency', 'same', 'a1')], T0);
    expect(s.gate([dedup('same', 'a3')], T0)).toMatchObject({ pass: false, holder: 'a1' });
  });

  it('a zero TTL reserves nothing beyond the instant', () => {
    const s = new MemoryStateStore();
    s.gate([dedup('k', 'a1', 0)], T0);
    expect(s.gate([dedup('k', 'a2', 0)], T0)).toEqual({ pass: true });
  });
});

describe('MemoryStateStore idempotency', () => {
  it('stores the outcome on commit and reports it to later calls', () => {
    const s = new MemoryStateStore();
    s.gate([idem('order-7', 'a1', 60_000)], T0);
    expect(s.gate([idem('order-7', 'a1')], T0 + 1)).toEqual({
      pass: false,
      index: 0,
      kind: 'idempotency',
      inFlight: true,
      holder: 'a1',
      stored: undefined,
    });
    const outcome = '{"outcome":"executed","provider":"sink"}';
    settleAt(s, [settle('commit', 'idempotency', 'order-7', 'a1', outcome)], T0 + 2);
    expect(s.gate([idem('order-7', 'a1')], T0 + 3)).toEqual({
      pass: false,
      index: 0,
      kind: 'idempotency',
      inFlight: false,
      holder: 'a1',
      stored: outcome,
    });
    expect(s.gate([idem('order-7', 'a1')], T0 + 60_000)).toEqual({ pass: true });
  });

  it('a released id runs again', () => {
    const s = new MemoryStateStore();
    s.gate([idem('x1', 'x1')], T0);
    settleAt(s, [settle('release', 'idempotency', 'x1', 'x1')], T0);
    expect(s.gate([idem('x1', 'x1')], T0)).toEqual({ pass: true });
  });
});

describe('MemoryStateStore throttle', () => {
  it('lets exactly limit calls through in any sliding window, with exact retryAfterMs', () => {
    const s = new MemoryStateStore();
    const op = throttle('k', [3, 1000]);
    expect([0, 400, 800].map((t) => s.gate([op], T0 + t).pass)).toEqual([true, true, true]);
    expect(s.gate([op], T0 + 800)).toEqual({
      pass: false,
      index: 0,
      kind: 'throttle',
      retryAfterMs: 200,
      limit: 3,
      windowMs: 1000,
    });
    expect(s.gate([op], T0 + 999)).toMatchObject({ pass: false, retryAfterMs: 1 });
    // The call at T0 leaves the window exactly 1000 ms later.
    expect(s.gate([op], T0 + 1000)).toEqual({ pass: true });
    expect(s.gate([op], T0 + 1000)).toMatchObject({ pass: false, retryAfterMs: 400 });
    expect(s.gate([op], T0 + 1400)).toEqual({ pass: true });
  });

  it('keys and window lengths have separate logs', () => {
    const s = new MemoryStateStore();
    expect(s.gate([throttle('a', [1, 1000])], T0).pass).toBe(true);
    expect(s.gate([throttle('b', [1, 1000])], T0).pass).toBe(true);
    expect(s.gate([throttle('a', [1, 2000])], T0).pass).toBe(true);
    expect(s.gate([throttle('a', [1, 1000])], T0).pass).toBe(false);
  });

  it('with several windows, retryAfterMs is when every window has room', () => {
    for (const limits of [
      [
        [1, 1000],
        [2, 10_000],
      ],
      [
        [2, 10_000],
        [1, 1000],
      ],
    ] as [number, number][][]) {
      const s = new MemoryStateStore();
      const op = throttle('k', ...limits);
      expect(s.gate([op], T0).pass).toBe(true);
      expect(s.gate([op], T0 + 1000).pass).toBe(true);
      // Both windows are full: the 1 s one frees at +2000, the 10 s one only at +10000.
      const blocked = s.gate([op], T0 + 1000);
      expect(blocked).toEqual({
        pass: false,
        index: 0,
        kind: 'throttle',
        retryAfterMs: 9000,
        limit: 2,
        windowMs: 10_000,
      });
      expect(s.gate([op], T0 + 9999).pass).toBe(false);
      expect(s.gate([op], T0 + 10_000).pass).toBe(true);
    }
  });

  it('a call rejected by one window consumes none of the others', () => {
    const s = new MemoryStateStore();
    const op = throttle('k', [2, 1000], [3, 60_000]);
    expect([0, 0, 0].map(() => s.gate([op], T0).pass)).toEqual([true, true, false]);
    expect(s.gate([op], T0 + 1000).pass).toBe(true);
    expect(s.gate([op], T0 + 1000)).toMatchObject({
      pass: false,
      limit: 3,
      windowMs: 60_000,
      retryAfterMs: 59_000,
    });
  });

  it('two limits over the same window count each call once', () => {
    const s = new MemoryStateStore();
    const op = throttle('k', [5, 1000], [3, 1000]);
    expect([1, 2, 3, 4].map(() => s.gate([op], T0).pass)).toEqual([true, true, true, false]);
  });

  it('two throttle ops on the same key and window in one call count it once', () => {
    const s = new MemoryStateStore();
    const ops = [throttle('k', [3, 1000]), throttle('k', [10, 1000])];
    expect([1, 2, 3, 4].map(() => s.gate(ops, T0).pass)).toEqual([true, true, true, false]);
  });
});

describe('MemoryStateStore gate() is all-or-nothing', () => {
  it('when a later op blocks, earlier throttles consume nothing and dedups reserve nothing', () => {
    const s = new MemoryStateStore();
    s.gate([dedup('held', 'first')], T0);
    const ops = [throttle('t', [1, 1000]), dedup('fresh', 'a1'), dedup('held', 'a1')];
    for (let i = 0; i < 5; i++) {
      expect(s.gate(ops, T0)).toMatchObject({ pass: false, index: 2, kind: 'dedup' });
    }
    expect(s.gate([throttle('t', [1, 1000])], T0)).toEqual({ pass: true });
    expect(s.gate([dedup('fresh', 'a2')], T0)).toEqual({ pass: true });
  });

  it('the first op that blocks decides the result', () => {
    const s = new MemoryStateStore();
    s.gate([dedup('held', 'first'), throttle('t', [1, 1000])], T0);
    expect(s.gate([throttle('t', [1, 1000]), dedup('held', 'x')], T0)).toMatchObject({
      index: 0,
      kind: 'throttle',
    });
    expect(s.gate([dedup('held', 'x'), throttle('t', [1, 1000])], T0)).toMatchObject({
      index: 0,
      kind: 'dedup',
    });
  });

  it('an empty op list passes', () => {
    expect(new MemoryStateStore().gate([], T0)).toEqual({ pass: true });
  });

  it('a dry run reports the decision and applies nothing', () => {
    const s = new MemoryStateStore();
    const ops = [throttle('t', [2, 1000]), dedup('d', 'a1'), idem('i', 'a1')];
    for (let i = 0; i < 10; i++) expect(s.gate(ops, T0, true)).toEqual({ pass: true });
    expect(s.gate(ops, T0)).toEqual({ pass: true });
    expect(s.gate([throttle('t', [2, 1000])], T0)).toEqual({ pass: true });
    expect(s.gate(ops, T0, true)).toMatchObject({ pass: false, index: 0, kind: 'throttle' });
    expect(s.gate([dedup('d', 'a2')], T0, true)).toMatchObject({ pass: false, holder: 'a1' });
    expect(s.gate([idem('i', 'a2')], T0, true)).toMatchObject({ pass: false, holder: 'a1' });
  });
});

describe('MemoryStateStore sweep', () => {
  it('every 10,000 gate calls, expired entries are dropped and live ones kept', () => {
    const s = new MemoryStateStore();
    const m = internals(s);
    s.gate([dedup('live', 'a', 10_000_000), idem('live', 'a', 10_000_000)], T0);
    s.gate([throttle('live', [1, 10_000_000])], T0);
    for (let i = 2; i < 9_999; i++) {
      s.gate([dedup(`d${i}`, 'a', 10), idem(`i${i}`, 'a', 10), throttle(`t${i}`, [5, 10])], T0 + i);
    }
    expect(m.dedup.size).toBe(9_998);
    expect(m.idempotency.size).toBe(9_998);
    expect(m.windows.size).toBe(9_998);
    // The 10,000th call sweeps before it applies its own ops.
    const later = T0 + 1_000_000;
    expect(s.gate([dedup('new', 'a'), throttle('new', [1, 1000])], later)).toEqual({ pass: true });
    expect([...m.dedup.keys()].sort()).toEqual(['live', 'new']);
    expect([...m.idempotency.keys()]).toEqual(['live']);
    expect(m.windows.size).toBe(2);
    expect(s.gate([dedup('live', 'b')], later)).toMatchObject({ pass: false, holder: 'a' });
    expect(s.gate([throttle('live', [1, 10_000_000])], later).pass).toBe(false);
  });

  it('close() forgets everything', async () => {
    const s = new MemoryStateStore();
    s.gate([dedup('k', 'a'), throttle('t', [1, 1000])], T0);
    await s.close();
    expect(s.gate([dedup('k', 'b'), throttle('t', [1, 1000])], T0)).toEqual({ pass: true });
  });
});

describe('MemoryStateStore throttle properties', () => {
  type Step = { advance: number; attempts: number };
  const steps = fc.array(
    fc.record({
      advance: fc.integer({ min: 0, max: 1500 }),
      attempts: fc.integer({ min: 0, max: 4 }),
    }),
    { minLength: 1, maxLength: 30 },
  );
  const limits = fc.array(
    fc.record({
      limit: fc.integer({ min: 1, max: 4 }),
      windowMs: fc.integer({ min: 1, max: 2000 }),
    }),
    { minLength: 1, maxLength: 3 },
  );

  /** Replays the passes into a fresh store and asks (dry run) whether a call at `t` passes. */
  function probe(op: GateOp, passes: number[], t: number): GateResult {
    const s = new MemoryStateStore();
    for (const p of passes) s.gate([op], p);
    return s.gate([op], t, true);
  }

  it('never more than limit passes in any window; a rejection names exactly when the next call passes', () => {
    fc.assert(
      fc.property(steps, limits, (seq: Step[], ls) => {
        const op: GateOp = { kind: 'throttle', key: 'k', limits: ls };
        const s = new MemoryStateStore();
        const passes: number[] = [];
        let now = T0;
        for (const { advance, attempts } of seq) {
          now += advance;
          for (let i = 0; i < attempts; i++) {
            const result = s.gate([op], now);
            if (result.pass) {
              passes.push(now);
              continue;
            }
            if (result.kind !== 'throttle') throw new Error(result.kind);
            const { retryAfterMs } = result;
            expect(retryAfterMs).toBeGreaterThanOrEqual(1);
            expect(ls).toContainEqual({ limit: result.limit, windowMs: result.windowMs });
            if (retryAfterMs > 1)
              expect(probe(op, passes, now + retryAfterMs - 1).pass).toBe(false);
            expect(probe(op, passes, now + retryAfterMs).pass).toBe(true);
          }
        }
        for (const { limit, windowMs } of ls) {
          for (const p of passes) {
            const inWindow = passes.filter((q) => q > p - windowMs && q <= p).length;
            expect(inWindow).toBeLessThanOrEqual(limit);
          }
        }
      }),
      { seed: 5, numRuns: 300 },
    );
  });

  it('a call passes whenever every window has room (the limiter is not stricter than its limits)', () => {
    fc.assert(
      fc.property(steps, limits, (seq: Step[], ls) => {
        const op: GateOp = { kind: 'throttle', key: 'k', limits: ls };
        const s = new MemoryStateStore();
        const passes: number[] = [];
        let now = T0;
        for (const { advance, attempts } of seq) {
          now += advance;
          for (let i = 0; i < attempts; i++) {
            const room = ls.every(
              ({ limit, windowMs }) => passes.filter((q) => q > now - windowMs).length < limit,
            );
            expect(s.gate([op], now).pass).toBe(room);
            if (room) passes.push(now);
          }
        }
      }),
      { seed: 6, numRuns: 300 },
    );
  });
});
