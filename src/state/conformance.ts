import { afterEach, describe, expect, it } from 'vitest';
import type { DueItem, GateOp, StateStore } from './store.js';

/**
 * The state-store conformance suite: every backend runs exactly these cases, so "memory, sqlite,
 * redis and postgres behave the same" is a test result, not a hope. A backend that cannot support
 * a case skips it by name with a reason.
 *
 * Times are passed explicitly (`now`), starting at the real clock and only moving forward, so
 * backends that also set server-side expiry (Redis PEXPIREAT) agree with the logical clock.
 */
export interface StateStoreSuiteOptions {
  /** Shown in test names. */
  readonly name: string;
  /** A fresh, empty store (isolated from other tests, e.g. by a unique key prefix). */
  readonly create: () => Promise<StateStore>;
  readonly skip?: readonly { readonly reason: string; readonly tests: readonly string[] }[];
}

const dedup = (key: string, actionId: string, ttlMs = 60_000): GateOp => ({
  kind: 'dedup',
  key,
  ttlMs,
  actionId,
});
const throttle = (key: string, ...limits: [number, number][]): GateOp => ({
  kind: 'throttle',
  key,
  limits: limits.map(([limit, windowMs]) => ({ limit, windowMs })),
});
const idem = (key: string, actionId: string, ttlMs = 60_000): GateOp => ({
  kind: 'idempotency',
  key,
  ttlMs,
  actionId,
});

const resolve = <T>(v: T | Promise<T>): Promise<T> => Promise.resolve(v);

export function runStateStoreSuite(options: StateStoreSuiteOptions): void {
  const skipped = new Map<string, string>();
  for (const s of options.skip ?? []) for (const t of s.tests) skipped.set(t, s.reason);
  let store: StateStore | undefined;
  let t0 = 0;

  const test = (name: string, fn: (s: StateStore) => Promise<void>): void => {
    const reason = skipped.get(name);
    if (reason !== undefined) {
      it.skip(`${name} (skipped: ${reason})`, () => {});
      return;
    }
    it(name, async () => {
      store = await options.create();
      t0 = Date.now();
      await fn(store);
    });
  };

  describe(`StateStore conformance: ${options.name}`, () => {
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    describe('gate: dedup', () => {
      test('a reserved key blocks a duplicate while in flight, then after commit', async (s) => {
        expect(await resolve(s.gate([dedup('k', 'a1')], t0))).toEqual({ pass: true });
        expect(await resolve(s.gate([dedup('k', 'a2')], t0 + 1))).toMatchObject({
          pass: false,
          index: 0,
          kind: 'dedup',
          inFlight: true,
          holder: 'a1',
        });
        await resolve(
          s.settle(
            [{ op: 'commit', gate: 'dedup', key: 'k', actionId: 'a1', outcome: undefined }],
            t0 + 2,
          ),
        );
        expect(await resolve(s.gate([dedup('k', 'a3')], t0 + 3))).toMatchObject({
          pass: false,
          inFlight: false,
          holder: 'a1',
        });
      });

      test('a released key can be reserved again', async (s) => {
        await resolve(s.gate([dedup('k', 'a1')], t0));
        await resolve(
          s.settle(
            [{ op: 'release', gate: 'dedup', key: 'k', actionId: 'a1', outcome: undefined }],
            t0,
          ),
        );
        expect(await resolve(s.gate([dedup('k', 'a2')], t0 + 1))).toEqual({ pass: true });
      });

      test('a reservation expires after its TTL', async (s) => {
        await resolve(s.gate([dedup('k', 'a1', 1000)], t0));
        expect((await resolve(s.gate([dedup('k', 'a2', 1000)], t0 + 999))).pass).toBe(false);
        expect(await resolve(s.gate([dedup('k', 'a3', 1000)], t0 + 1000))).toEqual({ pass: true });
      });

      test('settle by a holder that lost the key changes nothing (fencing)', async (s) => {
        await resolve(s.gate([dedup('k', 'old', 1000)], t0));
        await resolve(s.gate([dedup('k', 'new', 60_000)], t0 + 1000));
        await resolve(
          s.settle(
            [{ op: 'release', gate: 'dedup', key: 'k', actionId: 'old', outcome: undefined }],
            t0 + 1001,
          ),
        );
        expect(await resolve(s.gate([dedup('k', 'third')], t0 + 1002))).toMatchObject({
          pass: false,
          holder: 'new',
        });
      });

      test('20 concurrent reservations of one key: exactly one passes', async (s) => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => resolve(s.gate([dedup('hot', `a${i}`)], t0))),
        );
        expect(results.filter((r) => r.pass)).toHaveLength(1);
      });
    });

    describe('gate: throttle', () => {
      test('exactly limit calls pass per sliding window, with exact retryAfterMs', async (s) => {
        const op = throttle('t', [3, 10_000]);
        const passes = [];
        for (let i = 0; i < 3; i++) passes.push(await resolve(s.gate([op], t0 + i * 1000)));
        expect(passes.every((r) => r.pass)).toBe(true);
        expect(await resolve(s.gate([op], t0 + 4000))).toEqual({
          pass: false,
          index: 0,
          kind: 'throttle',
          retryAfterMs: 6000,
          limit: 3,
          windowMs: 10_000,
        });
        expect((await resolve(s.gate([op], t0 + 9999))).pass).toBe(false);
        expect((await resolve(s.gate([op], t0 + 10_000))).pass).toBe(true);
        expect(await resolve(s.gate([op], t0 + 10_001))).toMatchObject({
          pass: false,
          retryAfterMs: 999,
        });
      });

      test('a call rejected by one window consumes none of the others', async (s) => {
        const op = throttle('t', [2, 1000], [3, 60_000]);
        expect((await resolve(s.gate([op], t0))).pass).toBe(true);
        expect((await resolve(s.gate([op], t0))).pass).toBe(true);
        expect(await resolve(s.gate([op], t0))).toMatchObject({ pass: false, limit: 2 });
        expect((await resolve(s.gate([op], t0 + 1000))).pass).toBe(true);
        expect(await resolve(s.gate([op], t0 + 1000))).toMatchObject({
          pass: false,
          limit: 3,
          retryAfterMs: 59_000,
        });
      });

      test('4x limit concurrent calls: exactly limit pass', async (s) => {
        const op = throttle('burst', [5, 60_000]);
        const results = await Promise.all(
          Array.from({ length: 20 }, () => resolve(s.gate([op], t0))),
        );
        expect(results.filter((r) => r.pass)).toHaveLength(5);
      });
    });

    describe('gate: atomicity', () => {
      test('when a later op blocks, earlier ops are not applied', async (s) => {
        await resolve(s.gate([dedup('d', 'first')], t0));
        const blocked = await resolve(
          s.gate([throttle('t', [1, 60_000]), dedup('d', 'second')], t0),
        );
        expect(blocked).toMatchObject({ pass: false, index: 1, kind: 'dedup' });
        // The throttle did not count the blocked call.
        expect((await resolve(s.gate([throttle('t', [1, 60_000])], t0))).pass).toBe(true);
      });

      test('a dry run reports the decision and applies nothing', async (s) => {
        expect(
          await resolve(s.gate([dedup('d', 'a'), throttle('t', [1, 1000])], t0, true)),
        ).toEqual({ pass: true });
        expect(await resolve(s.gate([dedup('d', 'a'), throttle('t', [1, 1000])], t0))).toEqual({
          pass: true,
        });
        expect((await resolve(s.gate([throttle('t', [1, 1000])], t0, true))).pass).toBe(false);
      });
    });

    describe('gate: idempotency', () => {
      test('a committed id returns its stored outcome; a released one can run again', async (s) => {
        await resolve(s.gate([idem('i1', 'i1')], t0));
        expect(await resolve(s.gate([idem('i1', 'i1')], t0))).toMatchObject({
          pass: false,
          kind: 'idempotency',
          inFlight: true,
        });
        await resolve(
          s.settle(
            [
              {
                op: 'commit',
                gate: 'idempotency',
                key: 'i1',
                actionId: 'i1',
                outcome: '{"outcome":"executed"}',
              },
            ],
            t0,
          ),
        );
        expect(await resolve(s.gate([idem('i1', 'i1')], t0))).toMatchObject({
          inFlight: false,
          stored: '{"outcome":"executed"}',
        });
        await resolve(s.gate([idem('i2', 'i2')], t0));
        await resolve(
          s.settle(
            [{ op: 'release', gate: 'idempotency', key: 'i2', actionId: 'i2', outcome: undefined }],
            t0,
          ),
        );
        expect(await resolve(s.gate([idem('i2', 'i2')], t0))).toEqual({ pass: true });
      });
    });

    describe('keys', () => {
      test('set, get and delete with versions', async (s) => {
        expect(await resolve(s.get('k', t0))).toBeUndefined();
        expect(await resolve(s.set('k', 'v1', {}, t0))).toBe(1);
        expect(await resolve(s.get('k', t0))).toEqual({ value: 'v1', version: 1, expiresAt: null });
        expect(await resolve(s.set('k', 'v2', {}, t0))).toBe(2);
        expect(await resolve(s.delete('k', {}, t0))).toBe(true);
        expect(await resolve(s.delete('k', {}, t0))).toBe(false);
      });

      test('compare-and-set succeeds only at the expected version', async (s) => {
        expect(await resolve(s.set('k', 'a', { ifVersion: 0 }, t0))).toBe(1);
        expect(await resolve(s.set('k', 'b', { ifVersion: 0 }, t0))).toBeUndefined();
        expect(await resolve(s.set('k', 'b', { ifVersion: 1 }, t0))).toBe(2);
        expect(await resolve(s.set('k', 'c', { ifVersion: 1 }, t0))).toBeUndefined();
        expect(await resolve(s.delete('k', { ifVersion: 1 }, t0))).toBe(false);
        expect((await resolve(s.get('k', t0)))?.value).toBe('b');
      });

      test('a key expires after its TTL', async (s) => {
        await resolve(s.set('k', 'v', { ttlMs: 500 }, t0));
        expect((await resolve(s.get('k', t0 + 499)))?.expiresAt).toBe(t0 + 500);
        expect(await resolve(s.get('k', t0 + 500))).toBeUndefined();
        expect(await resolve(s.set('k', 'w', { ifVersion: 0 }, t0 + 500))).toBeGreaterThan(0);
      });

      test('10 concurrent compare-and-sets at one version: exactly one wins', async (s) => {
        await resolve(s.set('c', '0', {}, t0));
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            resolve(s.set('c', String(i), { ifVersion: 1 }, t0)),
          ),
        );
        expect(results.filter((r) => r !== undefined)).toHaveLength(1);
      });
    });

    describe('leases', () => {
      test('one holder at a time; renew and release by the holder only', async (s) => {
        const a = await resolve(s.acquireLease('l', 'A', 1000, t0));
        expect(a).toMatchObject({ holder: 'A', expiresAt: t0 + 1000 });
        expect(await resolve(s.acquireLease('l', 'B', 1000, t0 + 10))).toBeUndefined();
        expect(await resolve(s.renewLease('l', 'A', a!.token, 1000, t0 + 500))).toBe(true);
        expect(await resolve(s.renewLease('l', 'B', a!.token, 1000, t0 + 500))).toBe(false);
        expect(await resolve(s.releaseLease('l', 'B', a!.token))).toBe(false);
        expect(await resolve(s.releaseLease('l', 'A', a!.token))).toBe(true);
        const b = await resolve(s.acquireLease('l', 'B', 1000, t0 + 600));
        expect(b!.token).toBeGreaterThan(a!.token);
      });

      test('an expired lease passes to the next holder with a higher fencing token', async (s) => {
        const a = await resolve(s.acquireLease('l', 'A', 1000, t0));
        const b = await resolve(s.acquireLease('l', 'B', 1000, t0 + 1000));
        expect(b).toMatchObject({ holder: 'B' });
        expect(b!.token).toBeGreaterThan(a!.token);
        expect(await resolve(s.renewLease('l', 'A', a!.token, 1000, t0 + 1001))).toBe(false);
      });
    });

    describe('due items', () => {
      test('items are claimed when due, oldest first, and acked by their holder', async (s) => {
        await resolve(s.putDue('q', 'late', t0 + 2000, 'L'));
        await resolve(s.putDue('q', 'early', t0 + 1000, 'E'));
        await resolve(s.putDue('q', 'now', t0, 'N'));
        expect(
          (await resolve(s.claimDue('q', 10, 'w1', 5000, t0 + 1500))).map((i) => i.id),
        ).toEqual(['now', 'early']);
        expect(await resolve(s.ackDue('q', 'now', 'w2'))).toBe(false);
        expect(await resolve(s.ackDue('q', 'now', 'w1'))).toBe(true);
        expect(await resolve(s.claimDue('q', 10, 'w2', 5000, t0 + 1500))).toEqual([]);
        const late = await resolve(s.claimDue('q', 10, 'w2', 5000, t0 + 2000));
        expect(late).toEqual([
          { queue: 'q', id: 'late', dueAt: t0 + 2000, payload: 'L', attempts: 1 },
        ]);
      });

      test('a claim that expires is picked up by another holder', async (s) => {
        await resolve(s.putDue('q', 'x', t0, 'p'));
        expect(await resolve(s.claimDue('q', 1, 'crashed', 1000, t0))).toHaveLength(1);
        expect(await resolve(s.claimDue('q', 1, 'other', 1000, t0 + 999))).toEqual([]);
        const again = await resolve(s.claimDue('q', 1, 'other', 1000, t0 + 1000));
        expect(again).toMatchObject([{ id: 'x', attempts: 2 }]);
        expect(await resolve(s.ackDue('q', 'x', 'crashed'))).toBe(false);
      });

      test('reschedule moves an item and releases its claim', async (s) => {
        await resolve(s.putDue('q', 'x', t0, 'p1'));
        await resolve(s.claimDue('q', 1, 'w', 60_000, t0));
        expect(await resolve(s.rescheduleDue('q', 'x', 'w', t0 + 5000, 'p2'))).toBe(true);
        expect(await resolve(s.claimDue('q', 1, 'w', 60_000, t0 + 4999))).toEqual([]);
        expect(await resolve(s.claimDue('q', 1, 'w', 60_000, t0 + 5000))).toMatchObject([
          { payload: 'p2' },
        ]);
      });

      test('concurrent claimers never get the same item', async (s) => {
        for (let i = 0; i < 100; i++)
          await resolve(s.putDue('q', `i${String(i).padStart(3, '0')}`, t0, ''));
        const batches = await Promise.all(
          Array.from({ length: 5 }, (_, w) => resolve(s.claimDue('q', 30, `w${w}`, 60_000, t0))),
        );
        const ids = batches.flat().map((i) => i.id);
        expect(ids).toHaveLength(100);
        expect(new Set(ids).size).toBe(100);
      });

      test('queues are separate', async (s) => {
        await resolve(s.putDue('a', 'x', t0, ''));
        expect(await resolve(s.claimDue('b', 10, 'w', 1000, t0))).toEqual([]);
      });

      test('listDue orders by due time then id, claimed or not; getDue reads one item', async (s) => {
        await resolve(s.putDue('q', 'c', t0 + 2000, 'C'));
        await resolve(s.putDue('q', 'b', t0 + 1000, 'B'));
        await resolve(s.putDue('q', 'a', t0 + 1000, 'A'));
        await resolve(s.putDue('q', 'ab', t0 + 1000, 'AB'));
        await resolve(s.putDue('q', 'z', t0, 'Z'));
        expect(await resolve(s.claimDue('q', 1, 'w', 60_000, t0))).toMatchObject([{ id: 'z' }]);
        expect(await resolve(s.listDue('q', { limit: 10 }))).toEqual([
          { queue: 'q', id: 'z', dueAt: t0, payload: 'Z', attempts: 1 },
          { queue: 'q', id: 'a', dueAt: t0 + 1000, payload: 'A', attempts: 0 },
          { queue: 'q', id: 'ab', dueAt: t0 + 1000, payload: 'AB', attempts: 0 },
          { queue: 'q', id: 'b', dueAt: t0 + 1000, payload: 'B', attempts: 0 },
          { queue: 'q', id: 'c', dueAt: t0 + 2000, payload: 'C', attempts: 0 },
        ]);
        expect((await resolve(s.listDue('q', { limit: 2 }))).map((i) => i.id)).toEqual(['z', 'a']);
        expect(await resolve(s.listDue('q', { limit: 0 }))).toEqual([]);
        expect(await resolve(s.listDue('empty', { limit: 10 }))).toEqual([]);
        expect(await resolve(s.getDue('q', 'z'))).toEqual({
          queue: 'q',
          id: 'z',
          dueAt: t0,
          payload: 'Z',
          attempts: 1,
        });
        expect(await resolve(s.getDue('q', 'b'))).toEqual({
          queue: 'q',
          id: 'b',
          dueAt: t0 + 1000,
          payload: 'B',
          attempts: 0,
        });
        expect(await resolve(s.getDue('q', 'missing'))).toBeUndefined();
        // A rescheduled item is listed at its new time and keeps its attempts.
        expect(await resolve(s.rescheduleDue('q', 'z', 'w', t0 + 3000, 'Z2'))).toBe(true);
        expect((await resolve(s.listDue('q', { limit: 10 }))).at(-1)).toEqual({
          queue: 'q',
          id: 'z',
          dueAt: t0 + 3000,
          payload: 'Z2',
          attempts: 1,
        });
      });

      test('listDue pages with `after` return every item exactly once, ties included', async (s) => {
        // Ids of different lengths sharing prefixes, put in no particular order; three due
        // times, so most items tie with others; a few claimed (by either of two holders).
        const ids = Array.from({ length: 40 }, (_, i) => `i${(i * 7) % 40}`);
        for (const [n, id] of ids.entries()) {
          await resolve(s.putDue('q', id, t0 + (n % 3) * 1000, `p-${id}`));
        }
        await resolve(s.claimDue('q', 5, 'w1', 60_000, t0));
        // All 9 unclaimed items due at t0, then 3 of the 13 due at t0 + 1000.
        await resolve(s.claimDue('q', 12, 'w2', 60_000, t0 + 1000));
        const expected = ids
          .map((id, n) => ({ id, dueAt: t0 + (n % 3) * 1000 }))
          .sort((a, b) => a.dueAt - b.dueAt || (a.id < b.id ? -1 : 1));

        for (const limit of [1, 3, 7, 40]) {
          const seen: { id: string; dueAt: number }[] = [];
          let after: { dueAt: number; id: string } | undefined;
          for (let pages = 0; pages <= 40; pages++) {
            const page = await resolve(
              s.listDue('q', after === undefined ? { limit } : { limit, after }),
            );
            expect(page.length).toBeLessThanOrEqual(limit);
            if (page.length === 0) break;
            for (const item of page) seen.push({ id: item.id, dueAt: item.dueAt });
            const last = page[page.length - 1] as DueItem;
            after = { dueAt: last.dueAt, id: last.id };
          }
          expect(seen).toEqual(expected);
        }

        // `after` need not name an existing item (the last one listed may be gone meanwhile):
        // the page starts just past that point.
        const mid = expected[20] as { id: string; dueAt: number };
        expect(await resolve(s.removeDue('q', mid.id))).toBe(true);
        expect(
          (await resolve(s.listDue('q', { limit: 100, after: mid }))).map((i) => i.id),
        ).toEqual(expected.slice(21).map((e) => e.id));
        expect(
          await resolve(s.listDue('q', { limit: 10, after: { dueAt: t0 + 2000, id: '~' } })),
        ).toEqual([]);
      });

      test('removeDue removes an item whatever its claim', async (s) => {
        await resolve(s.putDue('q', 'x', t0, 'p'));
        await resolve(s.putDue('q', 'y', t0 + 1000, 'p'));
        expect(await resolve(s.claimDue('q', 10, 'w', 60_000, t0))).toMatchObject([{ id: 'x' }]);
        expect(await resolve(s.removeDue('q', 'x'))).toBe(true);
        expect(await resolve(s.getDue('q', 'x'))).toBeUndefined();
        // The old holder can no longer ack or reschedule it.
        expect(await resolve(s.ackDue('q', 'x', 'w'))).toBe(false);
        expect(await resolve(s.rescheduleDue('q', 'x', 'w', t0 + 5000))).toBe(false);
        expect(await resolve(s.getDue('q', 'x'))).toBeUndefined();
        expect(await resolve(s.removeDue('q', 'x'))).toBe(false);
        expect(await resolve(s.removeDue('q', 'never'))).toBe(false);
        expect(await resolve(s.removeDue('q', 'y'))).toBe(true);
        expect(await resolve(s.listDue('q', { limit: 10 }))).toEqual([]);
        expect(await resolve(s.countDue('q'))).toBe(0);
        expect(await resolve(s.claimDue('q', 10, 'w', 60_000, t0 + 60_000))).toEqual([]);
        // The id can be used again, as a new item.
        await resolve(s.putDue('q', 'x', t0, 'again'));
        expect(await resolve(s.getDue('q', 'x'))).toMatchObject({ payload: 'again', attempts: 0 });
      });

      test('countDue counts claimed and unclaimed items', async (s) => {
        expect(await resolve(s.countDue('q'))).toBe(0);
        await resolve(s.putDue('q', 'a', t0, ''));
        await resolve(s.putDue('q', 'b', t0, ''));
        await resolve(s.putDue('q', 'c', t0 + 1000, ''));
        await resolve(s.putDue('q', 'c', t0 + 2000, 'replaced'));
        expect(await resolve(s.countDue('q'))).toBe(3);
        expect(await resolve(s.claimDue('q', 2, 'w', 60_000, t0))).toHaveLength(2);
        expect(await resolve(s.countDue('q'))).toBe(3);
        expect(await resolve(s.ackDue('q', 'a', 'w'))).toBe(true);
        expect(await resolve(s.countDue('q'))).toBe(2);
      });

      test('large payloads round-trip unchanged', async (s) => {
        const chunk = 'ascii {"json": "quoted \\ \u00e9"}\n\ttabs, é € 漢字 😀 \r\n';
        const payload = chunk.repeat(Math.ceil(60_000 / chunk.length));
        await resolve(s.putDue('q', 'big', t0, payload));
        expect((await resolve(s.getDue('q', 'big')))?.payload).toBe(payload);
        expect((await resolve(s.listDue('q', { limit: 1 })))[0]?.payload).toBe(payload);
        expect((await resolve(s.claimDue('q', 1, 'w', 60_000, t0)))[0]?.payload).toBe(payload);
        expect((await resolve(s.listDue('q', { limit: 1 })))[0]?.payload).toBe(payload);
      });

      test('listing, reading, counting and removing keep queues separate', async (s) => {
        await resolve(s.putDue('a', 'x', t0, 'in a'));
        await resolve(s.putDue('ab', 'x', t0, 'in ab'));
        await resolve(s.putDue('ab', 'y', t0, 'in ab'));
        await resolve(s.claimDue('ab', 1, 'w', 60_000, t0));
        expect(await resolve(s.listDue('a', { limit: 10 }))).toEqual([
          { queue: 'a', id: 'x', dueAt: t0, payload: 'in a', attempts: 0 },
        ]);
        expect(await resolve(s.getDue('a', 'y'))).toBeUndefined();
        expect(await resolve(s.countDue('a'))).toBe(1);
        expect(await resolve(s.countDue('ab'))).toBe(2);
        expect(await resolve(s.removeDue('a', 'y'))).toBe(false);
        expect(await resolve(s.removeDue('ab', 'x'))).toBe(true);
        expect(await resolve(s.getDue('a', 'x'))).toMatchObject({ payload: 'in a' });
        expect(await resolve(s.countDue('a'))).toBe(1);
        expect((await resolve(s.listDue('ab', { limit: 10 }))).map((i) => i.id)).toEqual(['y']);
      });
    });

    describe('cleanup', () => {
      test('removes expired entries and keeps live ones', async (s) => {
        await resolve(s.set('gone', 'v', { ttlMs: 10 }, t0));
        await resolve(s.set('kept', 'v', {}, t0));
        await resolve(s.gate([dedup('d', 'a', 10)], t0));
        expect(await resolve(s.cleanup(t0 + 10))).toBeGreaterThanOrEqual(2);
        expect((await resolve(s.get('kept', t0 + 10)))?.value).toBe('v');
      });
    });
  });
}
