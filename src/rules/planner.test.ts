import { describe, expect, it } from 'vitest';
import type { Action } from '../core/action.js';
import { compileRule, sortRules, type CompiledRule } from './load.js';
import { EMPTY_PLAN, plan } from './planner.js';

const CTX = { providers: new Set(['sink', 'backup', 'third']) };

function action(over: Partial<Action> = {}): Action {
  return {
    id: 'act-1',
    namespace: 'alerts',
    tenant: 'acme',
    provider: 'sink',
    actionType: 'page',
    payload: { to: 'ops@example.com', host: 'db1', nested: { list: [1, 2] } },
    labels: { team: 'ops' },
    dedupKey: undefined,
    fingerprint: undefined,
    deliverAt: undefined,
    receivedAt: Date.UTC(2026, 0, 5, 12, 0, 0),
    ...over,
  };
}

function rules(...raw: Record<string, unknown>[]): CompiledRule[] {
  return sortRules(raw.map((r, i) => compileRule(r, i, CTX)));
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const never = { field: 'tenant', eq: 'nobody' };

describe('plan', () => {
  it('returns EMPTY_PLAN itself when no rule matches', () => {
    expect(plan([], action())).toBe(EMPTY_PLAN);
    const set = rules(
      { name: 'a', condition: never, effects: { suppress: {} } },
      { name: 'b', condition: never, effects: { throttle: { limit: 1, window: '1s' } } },
    );
    expect(plan(set, action())).toBe(EMPTY_PLAN);
    expect(plan(set, action(), () => false)).toBe(EMPTY_PLAN);
  });

  it('EMPTY_PLAN is frozen and empty', () => {
    expect(Object.isFrozen(EMPTY_PLAN)).toBe(true);
    expect(Object.isFrozen(EMPTY_PLAN.gates)).toBe(true);
    expect(EMPTY_PLAN).toEqual({
      action: undefined,
      matched: [],
      gates: [],
      gateRules: [],
      dedups: [],
      suppressed: undefined,
      reroute: undefined,
    });
  });

  it('lists the matched rules in evaluation order and leaves the action alone when nothing transforms it', () => {
    const set = rules(
      { name: 'late', priority: 300, effects: 'allow' },
      { name: 'skip', priority: 100, condition: never, effects: 'allow' },
      { name: 'early', priority: 10, effects: { throttle: { limit: 1, window: '1s' } } },
    );
    const p = plan(set, action());
    expect(p.matched).toEqual(['early', 'late']);
    expect(p.action).toBeUndefined();
    expect(p.suppressed).toBeUndefined();
    expect(p.reroute).toBeUndefined();
  });

  it('builds gates in rule and effect order, with the rule owning each gate', () => {
    const set = rules(
      {
        name: 'first',
        priority: 1,
        effects: [
          { throttle: { key: 'k1', limits: [{ limit: 2, window: '1s' }] } },
          { deduplicate: { key: '{{payload.host}}', ttl: '5m', onFailure: 'keep' } },
        ],
      },
      { name: 'second', priority: 2, effects: { deduplicate: { ttl: '1m' } } },
    );
    const p = plan(set, action({ dedupKey: 'dk' }));
    const scope = 'alerts|acme';
    expect(p.gates).toEqual([
      {
        kind: 'throttle',
        scope,
        key: 'throttle|first|alerts|acme|k1',
        limits: [{ limit: 2, windowMs: 1000 }],
      },
      {
        kind: 'dedup',
        scope,
        key: 'dedup|first|alerts|acme|db1',
        ttlMs: 300_000,
        actionId: 'act-1',
      },
      {
        kind: 'dedup',
        scope,
        key: 'dedup|second|alerts|acme|dk',
        ttlMs: 60_000,
        actionId: 'act-1',
      },
    ]);
    expect(p.gateRules).toEqual(['first', 'first', 'second']);
    expect(p.dedups).toEqual([
      { key: 'dedup|first|alerts|acme|db1', onFailure: 'keep' },
      { key: 'dedup|second|alerts|acme|dk', onFailure: 'release' },
    ]);
  });

  it('scopes gate keys by kind, rule, namespace and tenant', () => {
    const set = rules({ name: 'd', effects: { deduplicate: { key: 'same', ttl: '1m' } } });
    const keys = [
      action(),
      action({ tenant: 'globex' }),
      action({ namespace: 'billing' }),
      action({ id: 'other-id' }),
    ].map((a) => [plan(set, a).gates[0]?.key, plan(set, a).gates[0]?.scope]);
    expect(keys).toEqual([
      ['dedup|d|alerts|acme|same', 'alerts|acme'],
      ['dedup|d|alerts|globex|same', 'alerts|globex'],
      ['dedup|d|billing|acme|same', 'billing|acme'],
      ['dedup|d|alerts|acme|same', 'alerts|acme'],
    ]);
  });

  it('gate keys are rendered from the action as earlier effects left it', () => {
    const set = rules(
      { name: 'tag', priority: 1, effects: { label: { tier: 'gold' } } },
      {
        name: 'keyed',
        priority: 2,
        effects: [
          { modify: { set: { 'payload.host': 'db9' } } },
          { throttle: { key: '{{labels.tier}}/{{payload.host}}', limit: 1, window: '1s' } },
        ],
      },
    );
    expect(plan(set, action()).gates[0]?.key).toBe('throttle|keyed|alerts|acme|gold/db9');
  });

  it('suppress stops at once and keeps the gates of earlier rules (the caller ignores them)', () => {
    const set = rules(
      { name: 't1', priority: 1, effects: { throttle: { key: 'k', limit: 1, window: '1s' } } },
      { name: 'd1', priority: 2, effects: { deduplicate: { key: 'k', ttl: '1m' } } },
      {
        name: 'quiet',
        priority: 3,
        effects: [
          { label: { seen: 'yes' } },
          { suppress: { reason: 'maintenance' } },
          { throttle: { key: 'after', limit: 1, window: '1s' } },
        ],
      },
      { name: 't2', priority: 4, effects: { throttle: { key: 'k', limit: 1, window: '1s' } } },
    );
    const p = plan(set, action());
    expect(p.suppressed).toEqual({ rule: 'quiet', reason: 'maintenance' });
    expect(p.matched).toEqual(['t1', 'd1', 'quiet']);
    expect(p.gateRules).toEqual(['t1', 'd1']);
    expect(p.gates.map((g) => g.key)).toEqual([
      'throttle|t1|alerts|acme|k',
      'dedup|d1|alerts|acme|k',
    ]);
    expect(p.dedups).toEqual([{ key: 'dedup|d1|alerts|acme|k', onFailure: 'release' }]);
    // Effects before suppress in the same rule were applied.
    expect(p.action?.labels).toEqual({ team: 'ops', seen: 'yes' });
  });

  it('suppress as the first match has no gates and no action', () => {
    const p = plan(rules({ name: 'q', effects: 'suppress' }), action());
    expect(p).toEqual({
      action: undefined,
      matched: ['q'],
      gates: [],
      gateRules: [],
      dedups: [],
      suppressed: { rule: 'q', reason: 'suppressed by rule' },
      reroute: undefined,
    });
  });

  it('final stops after its rule, all of whose effects apply', () => {
    const set = rules(
      {
        name: 'vip',
        priority: 1,
        final: true,
        effects: [{ label: { vip: 'yes' } }, { throttle: { key: 'v', limit: 9, window: '1s' } }],
      },
      { name: 'everyone', priority: 2, effects: { suppress: {} } },
    );
    const p = plan(set, action());
    expect(p.matched).toEqual(['vip']);
    expect(p.suppressed).toBeUndefined();
    expect(p.gateRules).toEqual(['vip']);
    expect(p.action?.labels.vip).toBe('yes');
  });

  it('a final rule that does not match does not stop anything', () => {
    const set = rules(
      { name: 'vip', priority: 1, final: true, condition: never, effects: 'allow' },
      { name: 'everyone', priority: 2, effects: { suppress: {} } },
    );
    expect(plan(set, action()).suppressed?.rule).toBe('everyone');
  });

  it('allow stops after its rule; its other effects and earlier gates still apply', () => {
    const set = rules(
      { name: 'limit', priority: 1, effects: { throttle: { key: 'k', limit: 1, window: '1s' } } },
      { name: 'ok', priority: 2, effects: ['allow', { label: { allowed: 'yes' } }] },
      { name: 'everyone', priority: 3, effects: { suppress: {} } },
    );
    const p = plan(set, action());
    expect(p.matched).toEqual(['limit', 'ok']);
    expect(p.suppressed).toBeUndefined();
    expect(p.gateRules).toEqual(['limit']);
    expect(p.action?.labels.allowed).toBe('yes');
  });

  it('transforms accumulate and later conditions see them', () => {
    const set = rules(
      { name: 'tag', priority: 1, effects: { label: { tier: 'gold' } } },
      {
        name: 'gold-only',
        priority: 2,
        condition: { field: 'labels.tier', eq: 'gold' },
        effects: { modify: { set: { 'payload.subject': '[{{labels.tier}}]' } } },
      },
    );
    const p = plan(set, action());
    expect(p.matched).toEqual(['tag', 'gold-only']);
    expect(p.action?.payload.subject).toBe('[gold]');
  });

  it('the dry-run test sees the current (transformed) action', () => {
    const set = rules(
      { name: 'tag', priority: 1, effects: { label: { tier: 'gold' } } },
      { name: 'check', priority: 2, effects: 'allow' },
    );
    const seen: [string, string | undefined][] = [];
    plan(set, action(), (rule, current) => {
      seen.push([rule.name, current.labels.tier]);
      return true;
    });
    expect(seen).toEqual([
      ['tag', undefined],
      ['check', 'gold'],
    ]);
  });

  it('reroute changes the provider and records where it came from', () => {
    const p = plan(rules({ name: 'r', effects: { reroute: { provider: 'backup' } } }), action());
    expect(p.reroute).toEqual({ from: 'sink', rule: 'r' });
    expect(p.action?.provider).toBe('backup');
  });

  it('a chain of reroutes keeps the first provider and names the last rule', () => {
    const set = rules(
      { name: 'r1', priority: 1, effects: { reroute: { provider: 'backup' } } },
      { name: 'r2', priority: 2, effects: { reroute: { provider: 'third' } } },
    );
    const p = plan(set, action());
    expect(p.reroute).toEqual({ from: 'sink', rule: 'r2' });
    expect(p.action?.provider).toBe('third');
  });

  it('a reroute back to the original provider, or to the same provider, is not a reroute', () => {
    const back = rules(
      { name: 'away', priority: 1, effects: { reroute: { provider: 'backup' } } },
      { name: 'back', priority: 2, effects: { reroute: { provider: 'sink' } } },
    );
    const p = plan(back, action());
    expect(p.reroute).toBeUndefined();
    expect(p.action?.provider).toBe('sink');
    const same = plan(
      rules({ name: 'same', effects: { reroute: { provider: 'sink' } } }),
      action(),
    );
    expect(same.reroute).toBeUndefined();
    expect(same.matched).toEqual(['same']);
  });

  it('a reroute back to the original provider is not a reroute in a suppressed plan either', () => {
    const set = rules(
      { name: 'away', priority: 1, effects: { reroute: { provider: 'backup' } } },
      { name: 'back', priority: 2, effects: { reroute: { provider: 'sink' } } },
      { name: 'quiet', priority: 3, effects: 'suppress' },
    );
    expect(plan(set, action()).reroute).toBeUndefined();
    const away = rules(
      { name: 'away', priority: 1, effects: { reroute: { provider: 'backup' } } },
      { name: 'quiet', priority: 3, effects: 'suppress' },
    );
    expect(plan(away, action()).reroute).toEqual({ from: 'sink', rule: 'away' });
  });

  it('never changes the input action', () => {
    const set = rules(
      { name: 'tag', priority: 1, effects: { label: { tier: 'gold', team: 'sre' } } },
      {
        name: 'mod',
        priority: 2,
        effects: {
          modify: {
            set: { 'payload.nested.list': [9], 'payload.new.deep': 1 },
            unset: ['payload.to', 'labels.team'],
            merge: { payload: { nested: { extra: true } } },
          },
        },
      },
      { name: 'move', priority: 3, effects: { reroute: { provider: 'backup' } } },
      { name: 'limit', priority: 4, effects: { throttle: { limit: 1, window: '1s' } } },
    );
    const input = deepFreeze(action());
    const before = structuredClone(input);
    const p = plan(set, input);
    expect(input).toEqual(before);
    expect(p.action).not.toBe(input);
    expect(p.action).toEqual({
      ...before,
      provider: 'backup',
      labels: { tier: 'gold' },
      payload: { host: 'db1', nested: { list: [9], extra: true }, new: { deep: 1 } },
    });
  });

  it('plans are independent: planning one action does not affect the next', () => {
    const set = rules({ name: 'tag', effects: { label: { n: '{{payload.host}}' } } });
    expect(plan(set, action()).action?.labels.n).toBe('db1');
    expect(plan(set, action({ payload: { host: 'db2' } })).action?.labels.n).toBe('db2');
  });
});
