import { describe, expect, it } from 'vitest';
import type { Action } from '../core/action.js';
import { RulePathError } from './condition-error.js';
import {
  OPERATORS,
  compileCondition,
  explainCondition,
  parseCondition,
  type Trace,
} from './conditions.js';

const NOON = Date.UTC(2026, 0, 5, 12, 0, 0);

function action(over: Partial<Action> = {}): Action {
  return {
    id: 'act-1',
    namespace: 'alerts',
    tenant: 'acme',
    provider: 'sink',
    actionType: 'page',
    payload: {
      s: 'hello world',
      n: 42,
      f: 2.5,
      b: true,
      z: null,
      empty: '',
      list: ['a', 'b', 3],
      obj: { k: 'v', nested: { x: 1 } },
      items: [{ id: 'i1' }, { id: 'i2' }],
    },
    labels: { team: 'ops' },
    dedupKey: undefined,
    fingerprint: undefined,
    deliverAt: undefined,
    receivedAt: NOON,
    ...over,
  };
}

/** Parses and runs a condition both ways (compiled closure and interpreter); they must agree. */
function evaluate(raw: unknown, a: Action = action(), timeZone?: string): boolean {
  const c = parseCondition(raw, timeZone);
  const compiled = compileCondition(c, timeZone)(a);
  expect(explainCondition(c, a, timeZone, [])).toBe(compiled);
  return compiled;
}

function trace(raw: unknown, a: Action = action(), timeZone?: string): Trace[] {
  const out: Trace[] = [];
  explainCondition(parseCondition(raw, timeZone), a, timeZone, out);
  return out;
}

/** The RulePathError parseCondition throws for `raw` (fails the test when it does not throw). */
function rejection(raw: unknown, timeZone?: string): RulePathError {
  try {
    parseCondition(raw, timeZone);
  } catch (err) {
    if (err instanceof RulePathError) return err;
    throw err;
  }
  throw new Error('expected parseCondition to reject the condition');
}

const at = (iso: string): Action => action({ receivedAt: Date.parse(iso) });

describe('operators', () => {
  // [condition, expected] against action(): matching, non-matching, missing field, wrong type.
  const cases: [string, Record<string, unknown>, boolean][] = [
    ['eq matches', { field: 'payload.s', eq: 'hello world' }, true],
    ['eq differs', { field: 'payload.s', eq: 'hello' }, false],
    ['eq on a missing field', { field: 'payload.nope', eq: 'x' }, false],
    ['eq null on a missing field', { field: 'payload.nope', eq: null }, false],
    ['eq null on a null field', { field: 'payload.z', eq: null }, true],
    ['eq of a number against its string form', { field: 'payload.n', eq: '42' }, false],
    ['eq of a boolean', { field: 'payload.b', eq: true }, true],
    ['ne differs', { field: 'payload.s', ne: 'x' }, true],
    ['ne equal', { field: 'payload.s', ne: 'hello world' }, false],
    ['ne on a missing field', { field: 'payload.nope', ne: 'x' }, true],
    ['ne of a number against its string form', { field: 'payload.n', ne: '42' }, true],
    ['in a member', { field: 'payload.s', in: ['a', 'hello world'] }, true],
    ['in a non-member', { field: 'payload.s', in: ['a'] }, false],
    ['in on a missing field', { field: 'payload.nope', in: ['x', null] }, false],
    ['in with the string form of a number', { field: 'payload.n', in: ['42'] }, false],
    ['in with a number', { field: 'payload.n', in: [1, 42] }, true],
    ['not_in a non-member', { field: 'payload.s', not_in: ['a'] }, true],
    ['not_in a member', { field: 'payload.s', not_in: ['hello world'] }, false],
    ['not_in on a missing field', { field: 'payload.nope', not_in: ['x'] }, false],
    ['not_in with the string form of a number', { field: 'payload.n', not_in: ['42'] }, true],
    ['contains a substring', { field: 'payload.s', contains: 'o w' }, true],
    ['contains a non-substring', { field: 'payload.s', contains: 'xyz' }, false],
    ['contains a list item (string)', { field: 'payload.list', contains: 'a' }, true],
    ['contains a list item (number)', { field: 'payload.list', contains: 3 }, true],
    ['contains the string form of a list number', { field: 'payload.list', contains: '3' }, false],
    ['contains on a missing field', { field: 'payload.nope', contains: 'a' }, false],
    ['contains a number in a string', { field: 'payload.s', contains: 1 }, false],
    ['contains on a number', { field: 'payload.n', contains: 4 }, false],
    ['contains on an object (keys are not items)', { field: 'payload.obj', contains: 'k' }, false],
    ['starts_with a prefix', { field: 'payload.s', starts_with: 'hello' }, true],
    ['starts_with a non-prefix', { field: 'payload.s', starts_with: 'world' }, false],
    ['starts_with on a missing field', { field: 'payload.nope', starts_with: '' }, false],
    ['starts_with on a number', { field: 'payload.n', starts_with: '4' }, false],
    ['ends_with a suffix', { field: 'payload.s', ends_with: 'world' }, true],
    ['ends_with the empty string', { field: 'payload.s', ends_with: '' }, true],
    ['ends_with a non-suffix', { field: 'payload.s', ends_with: 'hello' }, false],
    ['ends_with longer than the value', { field: 'payload.empty', ends_with: 'x' }, false],
    ['ends_with on a missing field', { field: 'payload.nope', ends_with: '' }, false],
    ['ends_with on a number', { field: 'payload.n', ends_with: '2' }, false],
    ['matches a regex', { field: 'payload.s', matches: '^hel+o\\sw' }, true],
    ['matches a non-matching regex', { field: 'payload.s', matches: '^world' }, false],
    ['matches on a missing field', { field: 'payload.nope', matches: '.*' }, false],
    ['matches on a number (no coercion)', { field: 'payload.n', matches: '42' }, false],
    ['gt above', { field: 'payload.n', gt: 41 }, true],
    ['gt equal', { field: 'payload.n', gt: 42 }, false],
    ['gt on a missing field', { field: 'payload.nope', gt: 0 }, false],
    ['gt of a number against a string', { field: 'payload.n', gt: '41' }, false],
    ['gt of a string against a number', { field: 'payload.s', gt: 1 }, false],
    ['gt of strings compares them', { field: 'payload.s', gt: 'hello' }, true],
    ['gt on a boolean', { field: 'payload.b', gt: 0 }, false],
    ['gte equal', { field: 'payload.n', gte: 42 }, true],
    ['gte below', { field: 'payload.n', gte: 43 }, false],
    ['gte on null', { field: 'payload.z', gte: 0 }, false],
    ['lt below', { field: 'payload.f', lt: 3 }, true],
    ['lt equal', { field: 'payload.n', lt: 42 }, false],
    ['lt on a missing field', { field: 'payload.nope', lt: 100 }, false],
    ['lte equal', { field: 'payload.n', lte: 42 }, true],
    ['lte above', { field: 'payload.n', lte: 41 }, false],
    ['lte on a list', { field: 'payload.list', lte: 100 }, false],
    ['exists: true on a present field', { field: 'payload.s', exists: true }, true],
    ['exists: true on a null field', { field: 'payload.z', exists: true }, true],
    ['exists: true on a missing field', { field: 'payload.nope', exists: true }, false],
    ['exists: false on a missing field', { field: 'payload.nope', exists: false }, true],
    ['exists: false on a present field', { field: 'payload.s', exists: false }, false],
  ];
  it.each(cases)('%s', (_name, condition, expected) => {
    expect(evaluate(condition)).toBe(expected);
  });

  it('every operator appears in the table', () => {
    const used = new Set(cases.flatMap(([, c]) => Object.keys(c).filter((k) => k !== 'field')));
    expect([...used].sort()).toEqual([...OPERATORS].sort());
  });

  it('no operator throws on any type of value; each answers a boolean', () => {
    const actuals: unknown[] = ['s', '', 0, -1.5, true, false, null, [], [1, 'a'], { a: 1 }];
    const operands: Record<string, unknown[]> = {
      eq: ['s', 1, null, true, [1], { a: 1 }],
      ne: ['s', 1, null, true, [1], { a: 1 }],
      in: [[], ['s', 1, null, { a: 1 }, [1, 'a']]],
      not_in: [[], ['s', 1, null, { a: 1 }, [1, 'a']]],
      contains: ['s', 1, true],
      starts_with: ['', 's'],
      ends_with: ['', 's'],
      matches: ['^s', '.*'],
      gt: [0, 's'],
      gte: [0, 's'],
      lt: [0, 's'],
      lte: [0, 's'],
      exists: [true, false],
    };
    for (const [op, values] of Object.entries(operands)) {
      for (const value of values) {
        for (const actual of [...actuals, undefined]) {
          const a = action({ payload: actual === undefined ? {} : { v: actual } });
          expect(typeof evaluate({ field: 'payload.v', [op]: value }, a)).toBe('boolean');
        }
      }
    }
  });
});

describe('structural equality', () => {
  it('eq compares objects by content, whatever the key order', () => {
    expect(evaluate({ field: 'payload.obj', eq: { nested: { x: 1 }, k: 'v' } })).toBe(true);
    expect(evaluate({ field: 'payload.obj', eq: { k: 'v' } })).toBe(false);
    expect(evaluate({ field: 'payload.obj', eq: { k: 'v', nested: { x: 2 } } })).toBe(false);
    expect(evaluate({ field: 'payload.obj', eq: { k: 'v', nested: { x: 1 }, extra: 0 } })).toBe(
      false,
    );
  });

  it('eq compares arrays item by item, in order', () => {
    expect(evaluate({ field: 'payload.list', eq: ['a', 'b', 3] })).toBe(true);
    expect(evaluate({ field: 'payload.list', eq: ['b', 'a', 3] })).toBe(false);
    expect(evaluate({ field: 'payload.list', eq: ['a', 'b'] })).toBe(false);
  });

  it('an array never equals an object with the same indexes', () => {
    expect(evaluate({ field: 'payload.list', eq: { 0: 'a', 1: 'b', 2: 3 } })).toBe(false);
    expect(evaluate({ field: 'payload.v', eq: [] }, action({ payload: { v: {} } }))).toBe(false);
  });

  it('ne is the negation of structural eq', () => {
    expect(evaluate({ field: 'payload.obj', ne: { k: 'v', nested: { x: 1 } } })).toBe(false);
    expect(evaluate({ field: 'payload.obj', ne: { k: 'w' } })).toBe(true);
  });

  it('in and not_in find objects and arrays by content', () => {
    const list = ['x', { nested: { x: 1 }, k: 'v' }];
    expect(evaluate({ field: 'payload.obj', in: list })).toBe(true);
    expect(evaluate({ field: 'payload.obj', not_in: list })).toBe(false);
    expect(evaluate({ field: 'payload.list', in: [['a', 'b', 3]] })).toBe(true);
    expect(evaluate({ field: 'payload.list', in: [['a', 'b']] })).toBe(false);
    expect(evaluate({ field: 'payload.obj', in: [{ k: 'v' }] })).toBe(false);
  });

  it('NaN (YAML .nan) is equal to nothing, not even itself, in every operator', () => {
    const a = action({ payload: { v: Number.NaN, list: [Number.NaN] } });
    expect(evaluate({ field: 'payload.v', eq: Number.NaN }, a)).toBe(false);
    expect(evaluate({ field: 'payload.v', in: [Number.NaN] }, a)).toBe(false);
    expect(evaluate({ field: 'payload.v', not_in: [Number.NaN] }, a)).toBe(true);
    expect(evaluate({ field: 'payload.list', contains: Number.NaN }, a)).toBe(false);
  });
});

describe('all, any, not', () => {
  const yes = { field: 'tenant', eq: 'acme' };
  const no = { field: 'tenant', eq: 'globex' };

  it('all is true only when every part is', () => {
    expect(evaluate({ all: [yes] })).toBe(true);
    expect(evaluate({ all: [yes, yes] })).toBe(true);
    expect(evaluate({ all: [yes, no] })).toBe(false);
    expect(evaluate({ all: [yes, yes, yes, no] })).toBe(false);
    expect(evaluate({ all: [yes, yes, yes] })).toBe(true);
  });

  it('any is true when one part is', () => {
    expect(evaluate({ any: [no] })).toBe(false);
    expect(evaluate({ any: [no, no, yes] })).toBe(true);
    expect(evaluate({ any: [no, no] })).toBe(false);
  });

  it('not negates, and nests', () => {
    expect(evaluate({ not: yes })).toBe(false);
    expect(evaluate({ not: { not: yes } })).toBe(true);
    expect(evaluate({ all: [yes, { not: { any: [no, { all: [no, yes] }] } }] })).toBe(true);
    expect(evaluate({ any: [{ not: yes }, { all: [yes, { not: { not: no } }] }] })).toBe(false);
  });

  it('no condition always matches', () => {
    expect(compileCondition(undefined, undefined)(action())).toBe(true);
    expect(explainCondition(undefined, action(), undefined, [])).toBe(true);
  });

  it('the trace records the predicates evaluated, stopping where all/any short-circuit', () => {
    expect(trace({ all: [no, yes] })).toEqual([
      { predicate: 'tenant eq "globex"', actual: 'acme', result: false },
    ]);
    expect(trace({ any: [yes, no] })).toEqual([
      { predicate: 'tenant eq "acme"', actual: 'acme', result: true },
    ]);
  });

  it('under not, trace lines are prefixed "not (…)" and keep the inner predicate\'s own result', () => {
    expect(trace({ all: [yes, { not: { field: 'payload.n', gt: 40 } }] })).toEqual([
      { predicate: 'tenant eq "acme"', actual: 'acme', result: true },
      { predicate: 'not (payload.n gt 40)', actual: 42, result: true },
    ]);
    expect(trace({ not: { not: no } })).toEqual([
      { predicate: 'not (not (tenant eq "globex"))', actual: 'acme', result: false },
    ]);
  });
});

describe('field paths', () => {
  it('reads every top-level field', () => {
    const a = action({ dedupKey: 'dk', fingerprint: 'fp' });
    const expected: Record<string, string> = {
      id: 'act-1',
      namespace: 'alerts',
      tenant: 'acme',
      provider: 'sink',
      actionType: 'page',
      dedupKey: 'dk',
      fingerprint: 'fp',
    };
    for (const [field, value] of Object.entries(expected)) {
      expect(evaluate({ field, eq: value }, a)).toBe(true);
      expect(evaluate({ field, eq: `${value}-other` }, a)).toBe(false);
    }
  });

  it('an unset optional top-level field does not exist', () => {
    expect(evaluate({ field: 'dedupKey', exists: false })).toBe(true);
    expect(evaluate({ field: 'fingerprint', exists: true })).toBe(false);
  });

  it('reads labels by name', () => {
    expect(evaluate({ field: 'labels.team', eq: 'ops' })).toBe(true);
    expect(evaluate({ field: 'labels.tier', exists: false })).toBe(true);
  });

  it('reads payload paths of one, two and more segments', () => {
    expect(evaluate({ field: 'payload.n', eq: 42 })).toBe(true);
    expect(evaluate({ field: 'payload.obj.k', eq: 'v' })).toBe(true);
    expect(evaluate({ field: 'payload.obj.nested.x', eq: 1 })).toBe(true);
    expect(evaluate({ field: 'payload.obj.nested.y', exists: false })).toBe(true);
    expect(evaluate({ field: 'payload.obj.k.deeper', exists: false })).toBe(true);
    expect(evaluate({ field: 'payload.nope.deeper.still', exists: false })).toBe(true);
  });

  it('a numeric segment indexes an array', () => {
    expect(evaluate({ field: 'payload.items.0.id', eq: 'i1' })).toBe(true);
    expect(evaluate({ field: 'payload.items.1.id', eq: 'i2' })).toBe(true);
    expect(evaluate({ field: 'payload.items.2.id', exists: false })).toBe(true);
    expect(evaluate({ field: 'payload.list.2', eq: 3 })).toBe(true);
  });

  it('reads own properties only: inherited names are undefined', () => {
    for (const field of [
      'payload.constructor',
      'payload.__proto__',
      'payload.toString',
      'payload.hasOwnProperty',
      'payload.obj.constructor',
      'payload.obj.nested.__proto__',
      'payload.s.length',
      'labels.constructor',
      'labels.__proto__',
    ]) {
      expect(evaluate({ field, exists: false })).toBe(true);
    }
    expect(trace({ field: 'payload.constructor', eq: null })).toEqual([
      { predicate: 'payload.constructor eq null', actual: undefined, result: false },
    ]);
  });

  it('own keys named like prototype members are read as data', () => {
    const payload = JSON.parse('{"constructor":"c","__proto__":{"x":1}}') as Record<
      string,
      unknown
    >;
    const a = action({ payload });
    expect(evaluate({ field: 'payload.constructor', eq: 'c' }, a)).toBe(true);
    expect(evaluate({ field: 'payload.__proto__.x', eq: 1 }, a)).toBe(true);
  });
});

describe('time fields', () => {
  it('are in UTC when the rule names no time zone', () => {
    const a = at('2026-01-01T03:04:00Z');
    expect(evaluate({ field: 'time.hour', eq: 3 }, a)).toBe(true);
    expect(evaluate({ field: 'time.minute', eq: 4 }, a)).toBe(true);
    expect(evaluate({ field: 'time.weekday', eq: 4 }, a)).toBe(true); // Thursday
    expect(evaluate({ field: 'time.day', eq: 1 }, a)).toBe(true);
    expect(evaluate({ field: 'time.month', eq: 1 }, a)).toBe(true);
    expect(evaluate({ field: 'time.year', eq: 2026 }, a)).toBe(true);
  });

  it('follow Europe/Berlin across the spring-forward gap', () => {
    const tz = 'Europe/Berlin';
    const before = trace(
      { all: ['hour', 'minute', 'weekday', 'day', 'month', 'year'].map(part) },
      at('2026-03-29T00:59:00Z'),
      tz,
    );
    expect(before.map((t) => t.actual)).toEqual([1, 59, 7, 29, 3, 2026]);
    // 02:00 CET does not exist: one minute later it is 03:00 CEST.
    expect(evaluate({ field: 'time.hour', eq: 3 }, at('2026-03-29T01:00:00Z'), tz)).toBe(true);
    expect(evaluate({ field: 'time.minute', eq: 0 }, at('2026-03-29T01:00:00Z'), tz)).toBe(true);
  });

  it('follow Europe/Berlin through the repeated fall-back hour', () => {
    const tz = 'Europe/Berlin';
    expect(evaluate({ field: 'time.hour', eq: 2 }, at('2026-10-25T00:30:00Z'), tz)).toBe(true);
    expect(evaluate({ field: 'time.hour', eq: 2 }, at('2026-10-25T01:30:00Z'), tz)).toBe(true);
    expect(evaluate({ field: 'time.hour', eq: 3 }, at('2026-10-25T02:30:00Z'), tz)).toBe(true);
  });

  it('follow America/New_York across DST and the year boundary', () => {
    const tz = 'America/New_York';
    expect(evaluate({ field: 'time.hour', eq: 1 }, at('2026-03-08T06:59:00Z'), tz)).toBe(true);
    expect(evaluate({ field: 'time.hour', eq: 3 }, at('2026-03-08T07:00:00Z'), tz)).toBe(true);
    expect(evaluate({ field: 'time.hour', eq: 1 }, at('2026-11-01T05:30:00Z'), tz)).toBe(true);
    expect(evaluate({ field: 'time.hour', eq: 1 }, at('2026-11-01T06:30:00Z'), tz)).toBe(true);
    const nye = trace(
      { all: ['hour', 'minute', 'weekday', 'day', 'month', 'year'].map(part) },
      at('2026-01-01T03:00:00Z'),
      tz,
    );
    expect(nye.map((t) => t.actual)).toEqual([22, 0, 3, 31, 12, 2025]);
  });

  it('a compiled time predicate is right for each instant it sees, in any order', () => {
    const test = compileCondition(
      parseCondition({ field: 'time.hour', eq: 3 }, 'Europe/Berlin'),
      'Europe/Berlin',
    );
    const seen = [
      '2026-03-29T00:59:00Z',
      '2026-03-29T00:59:59Z',
      '2026-03-29T01:00:00Z',
      '2026-03-29T01:00:30Z',
      '2026-03-29T00:59:30Z',
      '2026-03-29T01:59:59Z',
      '2026-03-29T02:00:00Z',
    ].map((iso) => test(at(iso)));
    expect(seen).toEqual([false, false, true, true, false, true, false]);
  });

  function part(name: string): Record<string, unknown> {
    return { field: `time.${name}`, exists: true };
  }
});

describe('CEL expressions', () => {
  it('evaluate to true or false over the action fields', () => {
    expect(evaluate({ expr: 'tenant == "acme" && payload.n > 40' })).toBe(true);
    expect(evaluate({ expr: 'tenant == "globex"' })).toBe(false);
    expect(evaluate({ expr: 'labels.team == "ops" && provider == "sink"' })).toBe(true);
    expect(evaluate({ expr: 'payload.items[1].id == "i2"' })).toBe(true);
    expect(evaluate({ expr: 'dedupKey == null' })).toBe(true);
    expect(evaluate({ expr: 'fingerprint == "fp"' }, action({ fingerprint: 'fp' }))).toBe(true);
  });

  it('read the namespace as action.namespace (namespace is reserved in CEL)', () => {
    expect(evaluate({ expr: 'action.namespace == "alerts"' })).toBe(true);
    expect(evaluate({ expr: 'action.namespace == "billing"' })).toBe(false);
    expect(rejection({ expr: 'namespace == "alerts"' }).path).toEqual(['expr']);
  });

  it('read time.* in the rule time zone', () => {
    const a = at('2026-03-29T01:00:00Z');
    const expr = 'time.hour == 3 && time.minute == 0 && time.weekday == 7 && time.month == 3';
    expect(evaluate({ expr }, a, 'Europe/Berlin')).toBe(true);
    expect(evaluate({ expr }, a, 'UTC')).toBe(false);
    expect(
      evaluate(
        { expr: 'time.year == 2025 && time.day == 31' },
        at('2026-01-01T03:00:00Z'),
        'America/New_York',
      ),
    ).toBe(true);
  });

  it('a runtime error is false, and the explanation names the error', () => {
    expect(evaluate({ expr: 'payload.nope == 1' })).toBe(false);
    expect(evaluate({ expr: 'int(payload.s) > 0' })).toBe(false);
    const [only, ...rest] = trace({ expr: 'payload.nope == 1' });
    expect(rest).toEqual([]);
    expect(only).toEqual({
      predicate: 'expr: payload.nope == 1',
      actual: undefined,
      result: false,
      error: expect.any(String) as unknown,
    });
    expect(only?.error).not.toBe('');
  });

  it('an erroring expression is false, so not() of it is true', () => {
    expect(evaluate({ not: { expr: 'payload.nope == 1' } })).toBe(true);
  });

  it('a dyn expression that is not a bool at run time is false, with no error', () => {
    expect(evaluate({ expr: 'payload.s' })).toBe(false);
    expect(trace({ expr: 'payload.b' })).toEqual([
      { predicate: 'expr: payload.b', actual: true, result: true },
    ]);
  });

  it.each([
    ['a string compared with a number', 'tenant == 1'],
    ['adding a number to a string', 'tenant + 1 == "x"'],
    ['a label compared with a number', 'labels.team == 1'],
    ['a method with the wrong argument type', 'tenant.startsWith(1)'],
    ['an unknown variable', 'tenantx == "acme"'],
    ['a syntax error', 'tenant =='],
    ['an int result', '1 + 2'],
    ['a string result', 'tenant'],
    ['a map result', 'payload'],
  ])('%s is rejected at parse time', (_name, expr) => {
    expect(rejection({ expr }).path).toEqual(['expr']);
  });

  it('an expression longer than 4096 characters is rejected', () => {
    const long = `tenant == "${'a'.repeat(4096)}"`;
    expect(rejection({ expr: long }).path).toEqual(['expr']);
    const fits = `tenant == "${'a'.repeat(4096 - 12)}"`;
    expect(fits).toHaveLength(4096);
    expect(evaluate({ expr: fits })).toBe(false);
  });

  it('must be a string standing alone', () => {
    expect(rejection({ expr: 5 }).path).toEqual(['expr']);
    expect(rejection({ expr: 'true', field: 'tenant' }).path).toEqual([]);
  });
});

describe('parseCondition rejects, with the path of the problem', () => {
  it('a node that is not a mapping', () => {
    for (const raw of [null, 'tenant == acme', 42, [], [{ field: 'tenant', eq: 'a' }]]) {
      expect(rejection(raw).path).toEqual([]);
    }
  });

  it('an unknown operator', () => {
    expect(rejection({ field: 'tenant', equals: 'acme' }).path).toEqual(['equals']);
  });

  it('two operators, or none', () => {
    expect(rejection({ field: 'tenant', eq: 'a', ne: 'b' }).path).toEqual([]);
    expect(rejection({ field: 'tenant' }).path).toEqual([]);
  });

  it('a mapping with no condition key', () => {
    expect(rejection({}).path).toEqual([]);
    expect(rejection({ eq: 'a' }).path).toEqual([]);
  });

  it('all/any/not that do not stand alone, or have no parts', () => {
    expect(rejection({ all: [{ expr: 'true' }], any: [{ expr: 'true' }] }).path).toEqual([]);
    expect(rejection({ not: { expr: 'true' }, field: 'tenant' }).path).toEqual([]);
    expect(rejection({ all: [] }).path).toEqual(['all']);
    expect(rejection({ any: 'tenant' }).path).toEqual(['any']);
  });

  it.each([
    ['an unknown top-level field', 'tenat'],
    ['a sub-field of a top-level field', 'tenant.name'],
    ['a label path with two names', 'labels.a.b'],
    ['labels without a name', 'labels'],
    ['an unknown time part', 'time.second'],
    ['time without a part', 'time'],
    ['an empty segment', 'payload..x'],
    ['a trailing dot', 'payload.x.'],
    ['more than 16 segments', `payload${'.a'.repeat(16)}`],
    ['a segment longer than 128 characters', `payload.${'a'.repeat(129)}`],
  ])('a bad field path: %s', (_name, field) => {
    expect(rejection({ field, eq: 1 }).path).toEqual(['field']);
  });

  it('accepts a payload path of exactly 16 segments and 128-character segments', () => {
    expect(evaluate({ field: `payload${'.a'.repeat(15)}`, exists: false })).toBe(true);
    expect(evaluate({ field: `payload.${'a'.repeat(128)}`, exists: false })).toBe(true);
  });

  it('a field that is not a string', () => {
    expect(rejection({ field: 5, eq: 1 }).path).toEqual(['field']);
  });

  it.each([
    ['in', 'x'],
    ['in', { a: 1 }],
    ['not_in', null],
    ['starts_with', 1],
    ['ends_with', null],
    ['matches', 1],
    ['matches', ['a']],
    ['gt', true],
    ['gte', null],
    ['lt', []],
    ['lte', { n: 1 }],
    ['exists', 'yes'],
    ['exists', 1],
    ['contains', null],
    ['contains', { a: 1 }],
    ['contains', ['a']],
  ])('a bad operand type: %s %j', (op, value) => {
    expect(rejection({ field: 'payload.v', [op]: value }).path).toEqual([op]);
  });

  it('an in list longer than 10,000 items', () => {
    const big = Array.from({ length: 10_001 }, (_, i) => i);
    expect(rejection({ field: 'payload.n', in: big }).path).toEqual(['in']);
    expect(evaluate({ field: 'payload.n', in: big.slice(0, 10_000) })).toBe(true);
  });

  it.each(['(a+)+$', '(a*)*b', '^(\\d+)*$', '(\\w+\\s?)+$'])(
    'a ReDoS regex with nested quantifiers: %s',
    (pattern) => {
      expect(() => new RegExp(pattern, 'u')).not.toThrow();
      expect(rejection({ field: 'payload.s', matches: pattern }).path).toEqual(['matches']);
    },
  );

  // Overlapping alternatives under a quantifier hang a backtracking engine (measured: 3.7 s at
  // 40 characters, doubling per character). Patterns run on RE2, so such a rule loads and an
  // adversarial payload is answered at once: a hang here would time the test out.
  it.each(['^(a|aa)+$', '^(a|a)*$', '.*a.*b.*c$'])(
    'a regex with overlapping alternatives cannot hang matching (RE2, linear time): %s',
    (pattern) => {
      const adversarial = 'a'.repeat(50_000) + '!';
      const on = (s: string): Action => action({ payload: { s } });
      expect(evaluate({ field: 'payload.s', matches: pattern }, on(adversarial))).toBe(false);
      expect(evaluate({ field: 'payload.s', matches: pattern }, on('aaaa'))).toBe(
        pattern !== '.*a.*b.*c$',
      );
    },
  );

  it.each(['(a)\\1', '(?=a)a', '(?<=a)b'])(
    'a regex RE2 cannot run (backreference, lookaround): %s',
    (pattern) => {
      expect(rejection({ field: 'payload.s', matches: pattern }).path).toEqual(['matches']);
    },
  );

  it.each(['(', '[a-', 'a{2,1}', '\\q'])('an invalid regex: %s', (pattern) => {
    expect(rejection({ field: 'payload.s', matches: pattern }).path).toEqual(['matches']);
  });

  it('a regex longer than 1000 characters', () => {
    expect(rejection({ field: 'payload.s', matches: 'a'.repeat(1001) }).path).toEqual(['matches']);
    expect(evaluate({ field: 'payload.s', matches: 'a'.repeat(1000) })).toBe(false);
  });

  it('nesting deeper than 16 levels', () => {
    const nest = (levels: number): unknown => {
      let c: unknown = { field: 'tenant', eq: 'acme' };
      for (let i = 0; i < levels; i++) c = { not: c };
      return c;
    };
    expect(evaluate(nest(16))).toBe(true);
    expect(rejection(nest(17)).path).toEqual(Array.from({ length: 17 }, () => 'not'));
  });

  it('more than 256 nodes', () => {
    const leaves = (n: number) =>
      Array.from({ length: n }, () => ({ field: 'tenant', eq: 'acme' }));
    expect(evaluate({ all: leaves(255) })).toBe(true);
    expect(rejection({ all: leaves(256) }).path).toEqual(['all', 255]);
  });

  it('an error deep inside names the full path', () => {
    const raw = {
      all: [
        { field: 'tenant', eq: 'acme' },
        { any: [{ expr: 'true' }, { not: { field: 'bogus', eq: 1 } }] },
      ],
    };
    expect(rejection(raw).path).toEqual(['all', 1, 'any', 1, 'not', 'field']);
  });
});
