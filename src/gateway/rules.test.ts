import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from './gateway.js';
import { ManualClock } from '../core/clock.js';
import type { Provider } from '../providers/provider.js';
import type { Action } from '../core/action.js';
import type { ProviderResponse, Outcome } from '../core/outcome.js';
import type { ConfigInput } from '../config/schema.js';

/** Records every execution; fails while `failing` is true; can hold calls until released. */
class Recorder implements Provider {
  readonly type = 'recorder';
  readonly calls: Action[] = [];
  failing = false;
  hold = false;
  private held: (() => void)[] = [];
  constructor(readonly name: string) {}
  async execute(action: Action): Promise<ProviderResponse> {
    this.calls.push(action);
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    if (this.failing) throw new Error('downstream is down');
    return { status: 200 };
  }
  release(): void {
    for (const r of this.held.splice(0)) r();
  }
}

let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.close(100);
  gw = undefined;
});

function setup(rules: unknown[], extra: ConfigInput = {}) {
  const clock = new ManualClock();
  const sink = new Recorder('sink');
  const backup = new Recorder('backup');
  gw = createGateway(
    { ...extra, rules: { inline: rules } },
    { providers: { sink, backup }, clock },
  );
  return { gw, clock, sink, backup };
}

const action = (over: Record<string, unknown> = {}) => ({
  namespace: 'alerts',
  tenant: 'acme',
  provider: 'sink',
  actionType: 'page',
  payload: { alert: 'disk-full', host: 'db1', to: 'ops@example.com', severity: 'warning' },
  ...over,
});

const kinds = (outcomes: Outcome[]) => outcomes.map((o) => o.outcome);

describe('deduplicate', () => {
  const dedup = [
    {
      name: 'dedup-alerts',
      effects: { deduplicate: { key: '{{payload.alert}}:{{payload.host}}', ttl: '5m' } },
    },
  ];

  it('20 concurrent duplicates execute exactly once', async () => {
    const { gw, sink } = setup(dedup);
    sink.hold = true;
    const pending = Array.from({ length: 20 }, () => gw.dispatch(action()));
    await new Promise((r) => setImmediate(r));
    sink.release();
    const outcomes = await Promise.all(pending);
    expect(sink.calls).toHaveLength(1);
    expect(outcomes.filter((o) => o.outcome === 'executed')).toHaveLength(1);
    const dups = outcomes.filter((o) => o.outcome === 'deduplicated');
    expect(dups).toHaveLength(19);
    const first = outcomes.find((o) => o.outcome === 'executed');
    for (const d of dups) {
      expect(d).toMatchObject({
        rule: 'dedup-alerts',
        inFlight: true,
        duplicateOf: first?.actionId,
      });
    }
  });

  it('a duplicate after the first finished is deduplicated with inFlight false, until the TTL ends', async () => {
    const { gw, clock, sink } = setup(dedup);
    expect((await gw.dispatch(action())).outcome).toBe('executed');
    expect(await gw.dispatch(action())).toMatchObject({ outcome: 'deduplicated', inFlight: false });
    clock.advance(5 * 60_000 - 1);
    expect((await gw.dispatch(action())).outcome).toBe('deduplicated');
    clock.advance(1);
    expect((await gw.dispatch(action())).outcome).toBe('executed');
    expect(sink.calls).toHaveLength(2);
  });

  it('a failed send releases its dedup key', async () => {
    const { gw, sink } = setup(dedup);
    sink.failing = true;
    expect((await gw.dispatch(action())).outcome).toBe('failed');
    sink.failing = false;
    expect((await gw.dispatch(action())).outcome).toBe('executed');
    expect((await gw.dispatch(action())).outcome).toBe('deduplicated');
    expect(sink.calls).toHaveLength(2);
  });

  it('onFailure: keep holds the key after a failure', async () => {
    const { gw, sink } = setup([
      {
        name: 'once',
        effects: { deduplicate: { key: '{{payload.alert}}', ttl: '1h', onFailure: 'keep' } },
      },
    ]);
    sink.failing = true;
    expect((await gw.dispatch(action())).outcome).toBe('failed');
    sink.failing = false;
    expect((await gw.dispatch(action())).outcome).toBe('deduplicated');
  });

  it('keys are scoped by tenant: the same key in another tenant is not a duplicate', async () => {
    const { gw } = setup(dedup);
    expect((await gw.dispatch(action())).outcome).toBe('executed');
    expect((await gw.dispatch(action({ tenant: 'globex' }))).outcome).toBe('executed');
  });

  it('without a key template, the action dedupKey (or a payload hash) is the key', async () => {
    const { gw } = setup([{ name: 'd', effects: { deduplicate: { ttl: '1m' } } }]);
    expect((await gw.dispatch(action({ dedupKey: 'k1' }))).outcome).toBe('executed');
    expect((await gw.dispatch(action({ dedupKey: 'k1', payload: { other: 1 } }))).outcome).toBe(
      'deduplicated',
    );
    expect((await gw.dispatch(action({ payload: { a: 1, b: 2 } }))).outcome).toBe('executed');
    expect((await gw.dispatch(action({ payload: { b: 2, a: 1 } }))).outcome).toBe('deduplicated');
  });
});

describe('throttle', () => {
  it('throttle lets exactly N through per window with correct retryAfterMs', async () => {
    const { gw, clock, sink } = setup([
      {
        name: 'per-recipient',
        effects: { throttle: { key: '{{payload.to}}', limit: 3, window: '10s' } },
      },
    ]);
    const t0 = clock.now();
    const first = await Promise.all(Array.from({ length: 10 }, () => gw.dispatch(action())));
    expect(kinds(first).filter((k) => k === 'executed')).toHaveLength(3);
    const rejected = first.filter((o) => o.outcome === 'throttled');
    expect(rejected).toHaveLength(7);
    for (const r of rejected) {
      expect(r).toMatchObject({
        rule: 'per-recipient',
        retryAfterMs: 10_000,
        limit: 3,
        windowMs: 10_000,
      });
    }
    // Sliding window: 4 s later the window still holds all 3; retryAfterMs counts down.
    clock.advance(4_000);
    expect(await gw.dispatch(action())).toMatchObject({
      outcome: 'throttled',
      retryAfterMs: 6_000,
    });
    // Exactly when the first three leave the window, three more pass and no fourth.
    clock.set(t0 + 10_000);
    const second = await Promise.all(Array.from({ length: 5 }, () => gw.dispatch(action())));
    expect(kinds(second).filter((k) => k === 'executed')).toHaveLength(3);
    expect(sink.calls).toHaveLength(6);
  });

  it('a call rejected by one window consumes none of the others', async () => {
    const { gw, clock } = setup([
      {
        name: 'burst-and-minute',
        effects: {
          throttle: {
            key: '{{tenant}}',
            limits: [
              { limit: 2, window: '1s' },
              { limit: 3, window: '1m' },
            ],
          },
        },
      },
    ]);
    expect(kinds(await Promise.all([1, 2, 3].map(() => gw.dispatch(action()))))).toEqual([
      'executed',
      'executed',
      'throttled',
    ]);
    clock.advance(1_000);
    // The rejected third call did not count against the minute window: one more passes.
    expect((await gw.dispatch(action())).outcome).toBe('executed');
    const fifth = await gw.dispatch(action());
    expect(fifth).toMatchObject({
      outcome: 'throttled',
      limit: 3,
      windowMs: 60_000,
      retryAfterMs: 59_000,
    });
  });

  it('a throttled action that a later dedup would reject consumes no budget', async () => {
    const { gw } = setup([
      { name: 't', priority: 1, effects: { throttle: { key: 'all', limit: 2, window: '1m' } } },
      { name: 'd', priority: 2, effects: { deduplicate: { key: '{{payload.alert}}', ttl: '1m' } } },
    ]);
    expect((await gw.dispatch(action())).outcome).toBe('executed');
    expect(await gw.dispatch(action())).toMatchObject({ outcome: 'deduplicated', rule: 'd' });
    expect((await gw.dispatch(action({ payload: { alert: 'other' } }))).outcome).toBe('executed');
    expect((await gw.dispatch(action({ payload: { alert: 'third' } }))).outcome).toBe('throttled');
  });
});

describe('idempotency', () => {
  it('the same action id dispatched twice returns the first outcome, not a second execution', async () => {
    const { gw, sink } = setup([]);
    const first = await gw.dispatch(action({ id: 'order-7' }));
    const again = await gw.dispatch(action({ id: 'order-7' }));
    expect(again).toEqual(first);
    expect(sink.calls).toHaveLength(1);
    const concurrent = await Promise.all(
      [1, 2, 3].map(() => gw.dispatch(action({ id: 'order-8' }))),
    );
    expect(new Set(concurrent.map((o) => JSON.stringify(o))).size).toBe(1);
    expect(sink.calls).toHaveLength(2);
  });

  it('a failed action may be retried with the same id', async () => {
    const { gw, sink } = setup([]);
    sink.failing = true;
    expect((await gw.dispatch(action({ id: 'x1' }))).outcome).toBe('failed');
    sink.failing = false;
    expect((await gw.dispatch(action({ id: 'x1' }))).outcome).toBe('executed');
  });

  it('ids are scoped by tenant', async () => {
    const { gw, sink } = setup([]);
    await gw.dispatch(action({ id: 'same' }));
    await gw.dispatch(action({ id: 'same', tenant: 'globex' }));
    expect(sink.calls).toHaveLength(2);
  });
});

describe('composition', () => {
  it('suppress stops the action with its rule and reason', async () => {
    const { gw, sink } = setup([
      {
        name: 'maintenance',
        condition: { field: 'payload.host', eq: 'db1' },
        effects: { suppress: { reason: 'db1 in maintenance' } },
      },
    ]);
    expect(await gw.dispatch(action())).toMatchObject({
      outcome: 'suppressed',
      rule: 'maintenance',
      reason: 'db1 in maintenance',
    });
    expect((await gw.dispatch(action({ payload: { host: 'db2' } }))).outcome).toBe('executed');
    expect(sink.calls).toHaveLength(1);
  });

  it('reroute runs the action elsewhere and says so', async () => {
    const { gw, sink, backup } = setup([
      {
        name: 'critical-to-backup',
        condition: { field: 'payload.severity', eq: 'critical' },
        effects: { reroute: { provider: 'backup' } },
      },
    ]);
    const outcome = await gw.dispatch(action({ payload: { severity: 'critical' } }));
    expect(outcome).toMatchObject({
      outcome: 'rerouted',
      provider: 'backup',
      originalProvider: 'sink',
      rule: 'critical-to-backup',
    });
    expect(backup.calls).toHaveLength(1);
    expect(sink.calls).toHaveLength(0);
  });

  it('transforms accumulate in priority order and later rules see them', async () => {
    const { gw, sink } = setup([
      {
        name: 'b-second',
        priority: 20,
        condition: { field: 'labels.tier', eq: 'gold' },
        effects: { modify: { set: { 'payload.subject': '[{{labels.tier}}] {{payload.alert}}' } } },
      },
      { name: 'a-first', priority: 10, effects: { label: { tier: 'gold' } } },
      {
        name: 'c-third',
        priority: 30,
        condition: { field: 'payload.subject', starts_with: '[gold]' },
        effects: {
          modify: { unset: ['payload.to'], merge: { payload: { meta: { routed: true } } } },
        },
      },
    ]);
    const input = action();
    await gw.dispatch(input);
    const sent = sink.calls[0] as Action;
    expect(sent.labels).toEqual({ tier: 'gold' });
    expect(sent.payload).toEqual({
      alert: 'disk-full',
      host: 'db1',
      severity: 'warning',
      subject: '[gold] disk-full',
      meta: { routed: true },
    });
    // The caller's object is never changed.
    expect(input.payload).toEqual(action().payload);
  });

  it('final ends evaluation after its rule; allow too; disabled rules are skipped', async () => {
    const { gw } = setup([
      {
        name: 'vip',
        priority: 1,
        condition: { field: 'tenant', eq: 'vip' },
        final: true,
        effects: { label: { vip: 'yes' } },
      },
      {
        name: 'trusted',
        priority: 2,
        condition: { field: 'tenant', eq: 'trusted' },
        effects: 'allow',
      },
      { name: 'off', priority: 3, enabled: false, effects: { suppress: { reason: 'never' } } },
      { name: 'quiet', priority: 4, effects: { suppress: { reason: 'everyone else' } } },
    ]);
    expect((await gw.dispatch(action({ tenant: 'vip' }))).outcome).toBe('executed');
    expect((await gw.dispatch(action({ tenant: 'trusted' }))).outcome).toBe('executed');
    expect(await gw.dispatch(action())).toMatchObject({ outcome: 'suppressed', rule: 'quiet' });
    gw!.rules.setEnabled('quiet', false);
    expect((await gw.dispatch(action())).outcome).toBe('executed');
  });

  it('equal priorities keep file order', async () => {
    const { gw } = setup([
      { name: 'first', effects: { suppress: { reason: 'first' } } },
      { name: 'second', effects: { suppress: { reason: 'second' } } },
    ]);
    expect(await gw.dispatch(action())).toMatchObject({ rule: 'first' });
  });
});

describe('dry run (evaluate)', () => {
  it('explains which predicates matched, predicts the outcome and consumes nothing', async () => {
    const { gw, sink } = setup([
      {
        name: 'limit',
        condition: {
          all: [{ field: 'actionType', eq: 'page' }, { expr: 'payload.host.startsWith("db")' }],
        },
        effects: { throttle: { key: 'k', limit: 1, window: '1m' } },
      },
      { name: 'other', condition: { field: 'tenant', eq: 'nobody' }, effects: 'allow' },
    ]);
    for (let i = 0; i < 3; i++) {
      const e = await gw.evaluate(action());
      expect(e.outcome).toEqual({ outcome: 'executed', provider: 'sink' });
      expect(e.matchedRules).toEqual(['limit']);
      expect(e.rules[0]?.trace).toEqual([
        { predicate: 'actionType eq "page"', actual: 'page', result: true },
        { predicate: 'expr: payload.host.startsWith("db")', actual: true, result: true },
      ]);
      expect(e.rules[1]).toMatchObject({ name: 'other', matched: false });
    }
    await gw.dispatch(action());
    const after = await gw.evaluate(action());
    expect(after.outcome).toMatchObject({
      outcome: 'throttled',
      rule: 'limit',
      retryAfterMs: 60_000,
    });
    expect(sink.calls).toHaveLength(1);
  });
});
