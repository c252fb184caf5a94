import { afterEach, describe, expect, it } from 'vitest';
import type { Action } from '../core/action.js';
import { RulePathError } from './condition-error.js';
import { compileEffect, type Effect, type EffectContext } from './effects.js';
import { defaultKey } from './template.js';

const CTX: EffectContext = { timeZone: undefined, providers: new Set(['sink', 'backup']) };
const AT = ['effects', 0];

function action(over: Partial<Action> = {}): Action {
  return {
    id: 'act-1',
    namespace: 'alerts',
    tenant: 'acme',
    provider: 'sink',
    actionType: 'page',
    payload: { to: 'ops@example.com', sev: 'high', meta: { a: 1, b: { c: 1 } }, list: [1, 2] },
    labels: { team: 'ops' },
    dedupKey: undefined,
    fingerprint: undefined,
    deliverAt: undefined,
    receivedAt: Date.UTC(2026, 0, 5, 12, 0, 0),
    ...over,
  };
}

const compile = (raw: unknown, ctx: EffectContext = CTX): Effect => compileEffect(raw, AT, ctx);

function rejection(raw: unknown, ctx: EffectContext = CTX): RulePathError {
  try {
    compileEffect(raw, AT, ctx);
  } catch (err) {
    if (err instanceof RulePathError) return err;
    throw err;
  }
  throw new Error('expected compileEffect to reject the effect');
}

/** Applies a modify-kind effect to a copy of `a` and returns the copy. */
function applied(raw: unknown, a: Action = action()): Action {
  const effect = compile(raw);
  if (effect.kind !== 'modify') throw new Error(`expected a modify effect, got ${effect.kind}`);
  const draft = structuredClone(a);
  effect.apply(draft);
  return draft;
}

describe('compileEffect: each effect from its YAML form', () => {
  it('allow, as a bare name or a mapping', () => {
    expect(compile('allow')).toEqual({ kind: 'allow' });
    expect(compile({ allow: {} })).toEqual({ kind: 'allow' });
    expect(compile({ allow: null })).toEqual({ kind: 'allow' });
  });

  it('suppress, with a default reason', () => {
    expect(compile('suppress')).toEqual({ kind: 'suppress', reason: 'suppressed by rule' });
    expect(compile({ suppress: null })).toEqual({ kind: 'suppress', reason: 'suppressed by rule' });
    expect(compile({ suppress: { reason: 'maintenance' } })).toEqual({
      kind: 'suppress',
      reason: 'maintenance',
    });
  });

  it('deduplicate, with the default key and onFailure release', () => {
    const effect = compile({ deduplicate: { ttl: '5m' } });
    expect(effect).toEqual({
      kind: 'deduplicate',
      key: defaultKey,
      ttlMs: 300_000,
      onFailure: 'release',
    });
  });

  it('deduplicate, with a key template, a numeric ttl and onFailure keep', () => {
    const effect = compile({
      deduplicate: { key: '{{tenant}}:{{payload.to}}', ttl: 1500, onFailure: 'keep' },
    });
    if (effect.kind !== 'deduplicate') throw new Error(effect.kind);
    expect(effect.key(action())).toBe('acme:ops@example.com');
    expect(effect.ttlMs).toBe(1500);
    expect(effect.onFailure).toBe('keep');
  });

  it('throttle with limit + window', () => {
    const effect = compile({ throttle: { limit: 3, window: '10s' } });
    expect(effect).toEqual({
      kind: 'throttle',
      key: defaultKey,
      limits: [{ limit: 3, windowMs: 10_000 }],
    });
  });

  it('throttle with several limits and a key', () => {
    const effect = compile({
      throttle: {
        key: '{{tenant}}',
        limits: [
          { limit: 2, window: '1s' },
          { limit: 100, window: '1h' },
        ],
      },
    });
    if (effect.kind !== 'throttle') throw new Error(effect.kind);
    expect(effect.key(action())).toBe('acme');
    expect(effect.limits).toEqual([
      { limit: 2, windowMs: 1000 },
      { limit: 100, windowMs: 3_600_000 },
    ]);
  });

  it('throttle windows are at least 1 ms', () => {
    const effect = compile({ throttle: { limit: 1, window: '0ms' } });
    expect(effect).toMatchObject({ limits: [{ limit: 1, windowMs: 1 }] });
  });

  it('reroute to a configured provider', () => {
    expect(compile({ reroute: { provider: 'backup' } })).toEqual({
      kind: 'reroute',
      provider: 'backup',
    });
  });

  it('reroute to any provider when no providers are configured (lint)', () => {
    const lint: EffectContext = { timeZone: undefined, providers: undefined };
    expect(compile({ reroute: { provider: 'anything' } }, lint)).toEqual({
      kind: 'reroute',
      provider: 'anything',
    });
  });

  it('modify and label compile to modify', () => {
    expect(compile({ modify: { set: { 'payload.x': 1 } } }).kind).toBe('modify');
    expect(compile({ label: { tier: 'gold' } }).kind).toBe('modify');
  });
});

describe('compileEffect rejects, with the path of the problem', () => {
  it('an unknown effect', () => {
    expect(rejection('explode').path).toEqual(AT);
    expect(rejection({ explode: {} }).path).toEqual(AT);
  });

  it('two effects in one mapping, or none', () => {
    expect(rejection({ allow: {}, suppress: {} }).path).toEqual(AT);
    expect(rejection({}).path).toEqual(AT);
  });

  it('an effect that is not a name or a mapping', () => {
    for (const raw of [42, null, [], ['allow'], true]) expect(rejection(raw).path).toEqual(AT);
  });

  it('a bare effect name that needs settings', () => {
    expect(rejection('deduplicate').path).toEqual([...AT, 'ttl']);
    expect(rejection('reroute').path).toEqual([...AT, 'provider']);
  });

  it('settings on allow, or unknown settings', () => {
    expect(rejection({ allow: { really: true } }).path).toEqual([...AT, 'allow', 'really']);
    expect(rejection({ suppress: { reason: 'x', why: 'y' } }).path).toEqual([
      ...AT,
      'suppress',
      'why',
    ]);
    expect(rejection({ throttle: { limit: 1, window: '1s', burst: 2 } }).path).toEqual([
      ...AT,
      'throttle',
      'burst',
    ]);
  });

  it('throttle with both limit and limits', () => {
    const raw = { throttle: { limit: 1, window: '1s', limits: [{ limit: 2, window: '1m' }] } };
    expect(rejection(raw).path).toEqual([...AT, 'throttle']);
  });

  it('throttle without a window, or without a limit', () => {
    expect(rejection({ throttle: { limit: 1 } }).path).toEqual([...AT, 'throttle']);
    expect(rejection({ throttle: { window: '1s' } }).path).toEqual([...AT, 'throttle']);
    expect(rejection({ throttle: {} }).path).toEqual([...AT, 'throttle']);
  });

  it('a limit that is not a positive integer', () => {
    expect(rejection({ throttle: { limit: 0, window: '1s' } }).path).toEqual([
      ...AT,
      'throttle',
      'limit',
    ]);
    expect(rejection({ throttle: { limit: 1.5, window: '1s' } }).path).toEqual([
      ...AT,
      'throttle',
      'limit',
    ]);
  });

  it('deduplicate without a ttl', () => {
    expect(rejection({ deduplicate: { key: 'k' } }).path).toEqual([...AT, 'deduplicate', 'ttl']);
  });

  it.each(['soon', '5 minutes', '1.5.0s', -1, '1w'])('a bad duration: %j', (bad) => {
    expect(rejection({ deduplicate: { ttl: bad } }).path).toEqual([...AT, 'deduplicate', 'ttl']);
    expect(rejection({ throttle: { limit: 1, window: bad } }).path).toEqual([
      ...AT,
      'throttle',
      'window',
    ]);
  });

  it('a bad duration inside limits', () => {
    const raw = {
      throttle: {
        limits: [
          { limit: 1, window: '1s' },
          { limit: 2, window: 'later' },
        ],
      },
    };
    expect(rejection(raw).path).toEqual([...AT, 'throttle', 'limits', '1', 'window']);
  });

  it('a bad key template', () => {
    expect(rejection({ deduplicate: { ttl: '1m', key: '{{nope}}' } }).path).toEqual([
      ...AT,
      'deduplicate',
      'key',
    ]);
    expect(rejection({ throttle: { limit: 1, window: '1s', key: '' } }).path).toEqual([
      ...AT,
      'throttle',
      'key',
    ]);
  });

  it('onFailure other than release or keep', () => {
    expect(rejection({ deduplicate: { ttl: '1m', onFailure: 'retry' } }).path).toEqual([
      ...AT,
      'deduplicate',
      'onFailure',
    ]);
  });

  it('reroute to a provider that is not configured', () => {
    expect(rejection({ reroute: { provider: 'nowhere' } }).path).toEqual([
      ...AT,
      'reroute',
      'provider',
    ]);
  });

  it.each(['tenant', 'provider', 'payload', 'labels', 'labels.a.b', 'time.hour', 'payload..x'])(
    'modify set on a path that is not payload.<path> or labels.<name>: %s',
    (path) => {
      expect(rejection({ modify: { set: { [path]: 'x' } } }).path).toEqual([
        ...AT,
        'modify',
        'set',
        path,
      ]);
    },
  );

  it('modify unset on a bad path, with its index', () => {
    expect(rejection({ modify: { unset: ['payload.ok', 'provider'] } }).path).toEqual([
      ...AT,
      'modify',
      'unset',
      1,
    ]);
  });

  it('an empty modify', () => {
    expect(rejection({ modify: {} }).path).toEqual([...AT, 'modify']);
    expect(rejection('modify').path).toEqual(AT);
  });

  it('a label value that is not a string', () => {
    expect(rejection({ modify: { set: { 'labels.tier': 5 } } }).path).toEqual([
      ...AT,
      'modify',
      'set',
      'labels.tier',
    ]);
    expect(rejection({ label: { tier: 5 } }).path).toEqual([...AT, 'label', 'tier']);
    expect(rejection({ modify: { merge: { labels: { tier: true } } } }).path).toEqual([
      ...AT,
      'modify',
      'merge',
      'labels',
      'tier',
    ]);
    expect(rejection({ label: {} }).path).toEqual([...AT, 'label']);
  });

  it('a bad template in a modify value', () => {
    expect(rejection({ modify: { set: { 'payload.x': '{{nope}}' } } }).path).toEqual([
      ...AT,
      'modify',
      'set',
      'payload.x',
    ]);
  });

  it('merge of anything but payload and labels', () => {
    expect(rejection({ modify: { merge: { tenant: 'x' } } }).path).toEqual([
      ...AT,
      'modify',
      'merge',
      'tenant',
    ]);
  });
});

describe('modify semantics', () => {
  it('set creates the objects on its path and keeps their siblings', () => {
    expect(applied({ modify: { set: { 'payload.a.b.c': 1 } } }).payload.a).toEqual({
      b: { c: 1 },
    });
    expect(applied({ modify: { set: { 'payload.meta.b.d': 2 } } }).payload.meta).toEqual({
      a: 1,
      b: { c: 1, d: 2 },
    });
  });

  it('set through a scalar replaces it with an object', () => {
    expect(applied({ modify: { set: { 'payload.sev.level': 3 } } }).payload.sev).toEqual({
      level: 3,
    });
  });

  it('set writes any JSON value, and labels', () => {
    const out = applied({
      modify: {
        set: { 'payload.obj': { x: [1, { y: null }] }, 'payload.n': 0, 'labels.tier': 'gold' },
      },
    });
    expect(out.payload.obj).toEqual({ x: [1, { y: null }] });
    expect(out.payload.n).toBe(0);
    expect(out.labels).toEqual({ team: 'ops', tier: 'gold' });
  });

  it('each application gets its own copy of a set value', () => {
    const effect = compile({ modify: { set: { 'payload.obj': { x: [1] } } } });
    if (effect.kind !== 'modify') throw new Error(effect.kind);
    const first = structuredClone(action());
    const second = structuredClone(action());
    effect.apply(first);
    (first.payload.obj as { x: number[] }).x.push(2);
    effect.apply(second);
    expect(second.payload.obj).toEqual({ x: [1] });
  });

  it('string values with placeholders are templates rendered against the action', () => {
    const out = applied({
      modify: {
        set: { 'payload.subject': '[{{payload.sev}}] for {{tenant}}', 'payload.k': 'x}}' },
      },
    });
    expect(out.payload.subject).toBe('[high] for acme');
    expect(out.payload.k).toBe('x}}');
  });

  it('templates see the action as it was before this effect', () => {
    const out = applied({
      modify: {
        set: { 'payload.sev': 'low', 'payload.was': '{{payload.sev}}' },
        merge: { payload: { to: 'merged' } },
        unset: [],
      },
    });
    expect(out.payload.sev).toBe('low');
    expect(out.payload.was).toBe('high');
    const merged = applied({
      modify: { set: { 'payload.who': '{{payload.to}}' }, merge: { payload: { to: 'merged' } } },
    });
    expect(merged.payload.who).toBe('ops@example.com');
    expect(merged.payload.to).toBe('merged');
  });

  it('label values may be templates', () => {
    expect(applied({ label: { owner: '{{tenant}}/{{labels.team}}' } }).labels).toEqual({
      team: 'ops',
      owner: 'acme/ops',
    });
  });

  it('unset removes a key, nested or a label, and ignores missing paths', () => {
    const out = applied({
      modify: { unset: ['payload.to', 'payload.meta.b.c', 'labels.team', 'payload.no.such.path'] },
    });
    expect(out.payload).toEqual({ sev: 'high', meta: { a: 1, b: {} }, list: [1, 2] });
    expect(out.labels).toEqual({});
  });

  it('merge is deep for objects; arrays and scalars are replaced', () => {
    const out = applied({
      modify: {
        merge: {
          payload: { meta: { b: { d: 2 }, e: 3 }, list: [9], sev: { level: 1 } },
          labels: { tier: 'gold', team: 'sre' },
        },
      },
    });
    expect(out.payload).toEqual({
      to: 'ops@example.com',
      sev: { level: 1 },
      meta: { a: 1, b: { c: 1, d: 2 }, e: 3 },
      list: [9],
    });
    expect(out.labels).toEqual({ team: 'sre', tier: 'gold' });
  });

  it('merge applies first, then set, then unset', () => {
    const out = applied({
      modify: {
        merge: { payload: { x: 'merged', y: 'merged' } },
        set: { 'payload.x': 'set', 'payload.y': 'set' },
        unset: ['payload.y'],
      },
    });
    expect(out.payload.x).toBe('set');
    expect(Object.hasOwn(out.payload, 'y')).toBe(false);
  });

  it('a merged value is a copy: changing the draft does not change the rule', () => {
    const effect = compile({ modify: { merge: { payload: { added: { list: [1] } } } } });
    if (effect.kind !== 'modify') throw new Error(effect.kind);
    const first = structuredClone(action());
    effect.apply(first);
    (first.payload.added as { list: number[] }).list.push(2);
    const second = structuredClone(action());
    effect.apply(second);
    expect(second.payload.added).toEqual({ list: [1] });
  });
});

describe('modify cannot pollute prototypes', () => {
  const probes = ['polluted', 'x', 'y'];
  afterEach(() => {
    for (const p of probes) delete (Object.prototype as Record<string, unknown>)[p];
  });

  it('set payload.__proto__.polluted and merge {"__proto__": {...}} leave Object.prototype alone', () => {
    const out = applied({
      modify: {
        set: { 'payload.__proto__.polluted': 'yes', 'payload.constructor.prototype.y': 1 },
        merge: { payload: JSON.parse('{"__proto__":{"x":1},"ok":true}') as unknown },
      },
    });
    for (const p of probes) {
      expect(Object.hasOwn(Object.prototype, p)).toBe(false);
      expect(({} as Record<string, unknown>)[p]).toBeUndefined();
    }
    // The keys became plain data on the draft, which keeps its ordinary prototype.
    expect(Object.getPrototypeOf(out.payload)).toBe(Object.prototype);
    expect(Object.hasOwn(out.payload, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(out.payload, '__proto__')?.value).toEqual({
      polluted: 'yes',
    });
    expect(out.payload.ok).toBe(true);
    expect(Object.hasOwn(out.payload, 'x')).toBe(false);
  });

  it('a nested __proto__ in merge does not reach the prototype of a nested object', () => {
    const out = applied({
      modify: {
        merge: { payload: JSON.parse('{"meta":{"__proto__":{"polluted":1}}}') as unknown },
      },
    });
    expect(Object.getPrototypeOf(out.payload.meta)).toBe(Object.prototype);
    expect((out.payload.meta as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false);
  });

  it('labels.__proto__ is a label like any other', () => {
    const out = applied({ modify: { set: { 'labels.__proto__': 'p' } } });
    expect(Object.getPrototypeOf(out.labels)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out.labels, '__proto__')?.value).toBe('p');
    expect(Object.hasOwn(Object.prototype, 'p')).toBe(false);
  });

  it('merge of labels with an object under __proto__ is rejected at compile time', () => {
    const raw = { modify: { merge: { labels: JSON.parse('{"__proto__":{"x":"1"}}') as unknown } } };
    expect(rejection(raw).path).toEqual([...AT, 'modify', 'merge', 'labels', '__proto__']);
  });
});
