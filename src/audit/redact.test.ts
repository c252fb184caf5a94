import { describe, expect, it } from 'vitest';
import { isSyError } from '../core/errors.js';
import { REDACTED, compileRedaction } from './redact.js';

/** Deep-frozen, so any mutation of the input throws. */
function frozen<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) frozen(v);
    Object.freeze(value);
  }
  return value;
}

describe('compileRedaction', () => {
  it('replaces nested paths, with or without the payload. prefix', () => {
    const redact = compileRedaction(['payload.card.number', 'password']);
    const input = frozen({
      card: { number: '4111111111111111', expiry: '12/30' },
      password: 'hunter2',
      user: 'ann',
    });
    expect(redact(input)).toEqual({
      card: { number: REDACTED, expiry: '12/30' },
      password: REDACTED,
      user: 'ann',
    });
    // The input is untouched (frozen: a write would have thrown) and unchanged parts are shared.
    expect(input.card.number).toBe('4111111111111111');
  });

  it('never mutates the input and copies only what it changes', () => {
    const redact = compileRedaction(['a.secret']);
    const input = { a: { secret: 's', keep: 1 }, b: { deep: [1, 2, 3] } };
    const out = redact(input) as typeof input;
    expect(input.a.secret).toBe('s');
    expect(out).not.toBe(input);
    expect(out.a).not.toBe(input.a);
    expect(out.b).toBe(input.b);
  });

  it('redacts a whole subtree when the path names an object or array', () => {
    const redact = compileRedaction(['payload.card', 'payload.list']);
    expect(redact({ card: { number: '1', cvc: '2' }, list: [1, 2], x: 1 })).toEqual({
      card: REDACTED,
      list: REDACTED,
      x: 1,
    });
  });

  it('redacts present keys whatever their value (null, falsy, undefined)', () => {
    const redact = compileRedaction(['a', 'b', 'c', 'd']);
    expect(redact({ a: null, b: 0, c: '', d: undefined, e: 1 })).toEqual({
      a: REDACTED,
      b: REDACTED,
      c: REDACTED,
      d: REDACTED,
      e: 1,
    });
  });

  it('matches any array index or object key with *', () => {
    const redact = compileRedaction(['payload.items.*.ssn', 'payload.byName.*.token']);
    const input = frozen({
      items: [{ ssn: '1', name: 'a' }, { name: 'b' }, { ssn: '3' }, 'not-an-object', null],
      byName: { ann: { token: 't1', x: 1 }, bob: { token: 't2' }, eve: 'plain' },
    });
    expect(redact(input)).toEqual({
      items: [
        { ssn: REDACTED, name: 'a' },
        { name: 'b' },
        { ssn: REDACTED },
        'not-an-object',
        null,
      ],
      byName: { ann: { token: REDACTED, x: 1 }, bob: { token: REDACTED }, eve: 'plain' },
    });
  });

  it('redacts every element with a trailing *', () => {
    const redact = compileRedaction(['tags.*', 'obj.*']);
    expect(redact({ tags: ['a', 'b'], obj: { x: 1, y: { z: 2 } }, empty: [] })).toEqual({
      tags: [REDACTED, REDACTED],
      obj: { x: REDACTED, y: REDACTED },
      empty: [],
    });
  });

  it('treats numeric segments as array indexes and keys', () => {
    const redact = compileRedaction(['items.1.ssn', 'map.0']);
    expect(
      redact({ items: [{ ssn: 'a' }, { ssn: 'b' }], map: { '0': 'zero', '1': 'one' } }),
    ).toEqual({ items: [{ ssn: 'a' }, { ssn: REDACTED }], map: { '0': REDACTED, '1': 'one' } });
    // An index beyond the end changes nothing.
    const input = { items: [{ ssn: 'a' }] };
    expect(redact(input)).toBe(input);
  });

  it('combines a wildcard with an explicit sibling on the same element', () => {
    const redact = compileRedaction(['items.*.ssn', 'items.0.name']);
    expect(
      redact({
        items: [
          { ssn: '1', name: 'a' },
          { ssn: '2', name: 'b' },
        ],
      }),
    ).toEqual({
      items: [
        { ssn: REDACTED, name: REDACTED },
        { ssn: REDACTED, name: 'b' },
      ],
    });
    const byKey = compileRedaction(['users.*.ssn', 'users.admin.password']);
    expect(
      byKey({ users: { admin: { ssn: '1', password: 'p' }, ann: { ssn: '2', password: 'q' } } }),
    ).toEqual({
      users: {
        admin: { ssn: REDACTED, password: REDACTED },
        ann: { ssn: REDACTED, password: 'q' },
      },
    });
  });

  it('lets a shorter path win over a longer one below it', () => {
    const redact = compileRedaction(['card.number', 'card']);
    expect(redact({ card: { number: '1' } })).toEqual({ card: REDACTED });
  });

  it('changes nothing (and returns the same value) when no path exists', () => {
    const redact = compileRedaction(['payload.card.number', 'items.*.ssn', 'a.b.c']);
    const input = { card: 'not-an-object', items: [1, 'x', null], a: { b: null } };
    expect(redact(input)).toBe(input);
    expect(redact({})).toEqual({});
  });

  it('passes non-object payloads through', () => {
    const redact = compileRedaction(['a.b', '*']);
    expect(redact('text')).toBe('text');
    expect(redact(42)).toBe(42);
    expect(redact(null)).toBe(null);
    expect(redact(undefined)).toBe(undefined);
    expect(redact(true)).toBe(true);
    expect(compileRedaction(['x'])([{ x: 1 }])).toEqual([{ x: 1 }]);
  });

  it('redacts the whole payload for the path "payload"', () => {
    expect(compileRedaction(['payload'])({ a: 1 })).toBe(REDACTED);
  });

  it('is the identity without paths', () => {
    const input = { a: 1 };
    expect(compileRedaction([])(input)).toBe(input);
  });

  it('follows own keys only and keeps a __proto__ key an own property', () => {
    const redact = compileRedaction(['constructor', 'toString', '__proto__.x', 'obj.*']);
    const plain = { a: 1 };
    expect(redact(plain)).toBe(plain);
    const input = JSON.parse('{"__proto__": {"x": 1, "y": 2}, "obj": {"__proto__": 3}}') as object;
    const out = redact(input);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(JSON.stringify(out)).toBe(
      '{"__proto__":{"x":"[REDACTED]","y":2},"obj":{"__proto__":"[REDACTED]"}}',
    );
    expect(JSON.stringify(input)).toBe('{"__proto__":{"x":1,"y":2},"obj":{"__proto__":3}}');
  });

  it('rejects malformed paths when compiled', () => {
    for (const bad of ['a..b', '.a', 'a.', 'payload.']) {
      let caught: unknown;
      try {
        compileRedaction([bad]);
      } catch (err) {
        caught = err;
      }
      expect(isSyError(caught) && caught.code).toBe('SY_ERR_CONFIG_INVALID');
    }
  });
});
