import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Action } from '../core/action.js';
import { RulePathError } from './condition-error.js';
import { compileTemplate, defaultKey } from './template.js';

function action(over: Partial<Action> = {}): Action {
  return {
    id: 'act-1',
    namespace: 'alerts',
    tenant: 'acme',
    provider: 'sink',
    actionType: 'page',
    payload: {
      to: 'ops@example.com',
      n: 42,
      b: false,
      z: null,
      obj: { k: 'v', list: [1, 'two'] },
      items: [{ id: 'i1' }],
    },
    labels: { team: 'ops' },
    dedupKey: undefined,
    fingerprint: undefined,
    deliverAt: undefined,
    receivedAt: Date.UTC(2026, 2, 29, 1, 0, 0),
    ...over,
  };
}

const render = (template: string, a: Action = action(), timeZone?: string): string =>
  compileTemplate(template, timeZone, ['key'])(a);

function rejection(template: string): RulePathError {
  try {
    compileTemplate(template, undefined, ['effects', 0, 'deduplicate', 'key']);
  } catch (err) {
    if (err instanceof RulePathError) return err;
    throw err;
  }
  throw new Error('expected compileTemplate to reject the template');
}

describe('compileTemplate', () => {
  it('fills placeholders with field values', () => {
    expect(render('{{tenant}}:{{payload.to}}')).toBe('acme:ops@example.com');
    expect(render('{{namespace}}/{{labels.team}}/{{payload.items.0.id}}')).toBe('alerts/ops/i1');
  });

  it('keeps the literal text around a single placeholder', () => {
    expect(render('<{{tenant}}>')).toBe('<acme>');
    expect(render('{{tenant}}')).toBe('acme');
  });

  it('allows spaces inside the braces', () => {
    expect(render('{{ tenant }}-{{  actionType}}')).toBe('acme-page');
  });

  it('renders numbers and booleans as text', () => {
    expect(render('{{payload.n}}|{{payload.b}}')).toBe('42|false');
  });

  it('renders a missing field, an unset field and null as the empty string', () => {
    expect(render('[{{payload.nope}}][{{dedupKey}}][{{payload.z}}][{{labels.x}}]')).toBe(
      '[][][][]',
    );
  });

  it('renders objects and arrays as JSON', () => {
    expect(render('{{payload.obj}}')).toBe('{"k":"v","list":[1,"two"]}');
    expect(render('items={{payload.items}}')).toBe('items=[{"id":"i1"}]');
  });

  it('renders time parts in the given time zone', () => {
    expect(render('{{time.hour}}:{{time.minute}}', action(), 'Europe/Berlin')).toBe('3:0');
    expect(render('{{time.hour}}', action())).toBe('1');
  });

  it('a template without placeholders is returned as is', () => {
    expect(render('global')).toBe('global');
    expect(render('')).toBe('');
    expect(render('a { b } c')).toBe('a { b } c');
  });

  it.each([
    ['an unclosed placeholder', '{{tenant'],
    ['an unclosed placeholder before a closed one', 'x{{ {{tenant}}'],
    ['an empty placeholder', '{{}}'],
    ['an empty placeholder before a closed one', '{{}}{{tenant}}'],
    ['a stray closing brace pair', 'x}}'],
    ['a stray closing pair between placeholders', '{{tenant}}}}{{provider}}'],
    ['a placeholder with a space in its path', '{{payload.a b}}'],
  ])('rejects %s', (_name, template) => {
    expect(rejection(template).path).toEqual(['effects', 0, 'deduplicate', 'key']);
  });

  it.each(['{{tenat}}', '{{labels.a.b}}', '{{time.second}}', '{{payload..x}}'])(
    'rejects a bad field path: %s',
    (template) => {
      expect(rejection(template).path).toEqual(['effects', 0, 'deduplicate', 'key']);
    },
  );

  it('rejects a template longer than 512 characters', () => {
    expect(rejection('x'.repeat(513)).path).toEqual(['effects', 0, 'deduplicate', 'key']);
    expect(render('x'.repeat(512))).toBe('x'.repeat(512));
  });

  it('renders each action independently (no state kept between calls)', () => {
    const key = compileTemplate('{{tenant}}-{{payload.to}}-{{labels.team}}', undefined, []);
    expect(key(action())).toBe('acme-ops@example.com-ops');
    expect(key(action({ tenant: 'globex', payload: {}, labels: {} }))).toBe('globex--');
    expect(key(action())).toBe('acme-ops@example.com-ops');
  });
});

describe('defaultKey', () => {
  it("is the action's dedupKey when it has one", () => {
    expect(defaultKey(action({ dedupKey: 'order-7' }))).toBe('order-7');
  });

  it('is otherwise a 32-character base64url hash', () => {
    expect(defaultKey(action())).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('does not depend on the key order of the payload, at any depth', () => {
    const a = action({ payload: { a: 1, b: { c: [1, { d: 2, e: 3 }], f: null } } });
    const b = action({ payload: { b: { f: null, c: [1, { e: 3, d: 2 }] }, a: 1 } });
    expect(defaultKey(b)).toBe(defaultKey(a));
  });

  it('does not depend on id, tenant, namespace or labels (the planner scopes keys)', () => {
    const base = defaultKey(action());
    expect(
      defaultKey(action({ id: 'other', tenant: 'globex', namespace: 'x', labels: { a: 'b' } })),
    ).toBe(base);
  });

  it('differs by provider, actionType and payload', () => {
    const keys = [
      defaultKey(action()),
      defaultKey(action({ provider: 'backup' })),
      defaultKey(action({ actionType: 'email' })),
      defaultKey(action({ payload: { to: 'ops@example.com' } })),
      defaultKey(action({ payload: {} })),
      defaultKey(action({ payload: { list: [1, 2] } })),
      defaultKey(action({ payload: { list: [2, 1] } })),
      defaultKey(action({ payload: { n: 1 } })),
      defaultKey(action({ payload: { n: '1' } })),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('is the same for any key order of a random payload (property)', () => {
    const shuffled = (v: unknown, seed: number): unknown => {
      if (Array.isArray(v)) return v.map((x, i) => shuffled(x, seed + i));
      if (v === null || typeof v !== 'object') return v;
      const entries = Object.entries(v);
      // A deterministic rotation per level stands in for a shuffle.
      const k = entries.length === 0 ? 0 : seed % entries.length;
      const rotated = [...entries.slice(k), ...entries.slice(0, k)].reverse();
      return Object.fromEntries(rotated.map(([key, x]) => [key, shuffled(x, seed + 1)]));
    };
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 3 }), {
          maxKeys: 6,
        }),
        fc.nat(),
        (payload, seed) => {
          const reordered = shuffled(payload, seed) as Record<string, unknown>;
          expect(defaultKey(action({ payload: reordered }))).toBe(defaultKey(action({ payload })));
        },
      ),
      { seed: 11, numRuns: 500 },
    );
  });
});
