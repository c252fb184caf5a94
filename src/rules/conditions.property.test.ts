import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Action } from '../core/action.js';
import { RulePathError } from './condition-error.js';
import { compileCondition, explainCondition, parseCondition, type Trace } from './conditions.js';

/*
 * The compiled closures are the fast path; explainCondition is the plain interpreter the dry run
 * uses. They must agree on every condition and every action, and neither may throw.
 */

const FIELDS = [
  'id',
  'tenant',
  'provider',
  'dedupKey',
  'labels.team',
  'labels.env',
  'payload.n',
  'payload.s',
  'payload.b',
  'payload.z',
  'payload.list',
  'payload.obj',
  'payload.obj.k',
  'payload.obj.deep.x',
  'payload.items.0.id',
  'payload.items.1',
  'payload.missing',
  'time.hour',
  'time.weekday',
  'time.minute',
];

const SAFE_REGEXES = ['^a', 'b$', '^$', 'a|b', '^[a-c]+$', '\\d', '.', 'ü', '^acme$'];

const CEL = [
  'tenant == "acme"',
  'payload.n > 1',
  'size(payload.s) > 1',
  'payload.missing == 1',
  'labels.team == "ops"',
  'time.hour < 12',
  'action.namespace == "alerts"',
  'payload.b == true',
  'dedupKey == null',
];

const str = fc.constantFrom('a', 'b', 'ab', 'acme', '', 'ops', 'x1', 'ü');
const num = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.double({ min: -5, max: 5 }),
  fc.double(),
  fc.constant(Number.NaN),
);
const scalar = fc.oneof(str, num, fc.boolean(), fc.constant(null));
const json: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    scalar,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('k', 'j', 'x', 'deep'), tie('value'), { maxKeys: 3 }),
  ),
})).value;

const predicate = fc
  .oneof(
    fc.record({ field: fc.constantFrom(...FIELDS), op: fc.constantFrom('eq', 'ne'), v: json }),
    fc.record({
      field: fc.constantFrom(...FIELDS),
      op: fc.constantFrom('in', 'not_in'),
      v: fc.array(json, { maxLength: 4 }),
    }),
    fc.record({
      field: fc.constantFrom(...FIELDS),
      op: fc.constant('contains'),
      v: fc.oneof(str, num, fc.boolean()),
    }),
    fc.record({
      field: fc.constantFrom(...FIELDS),
      op: fc.constantFrom('starts_with', 'ends_with'),
      v: str,
    }),
    fc.record({
      field: fc.constantFrom(...FIELDS),
      op: fc.constant('matches'),
      v: fc.constantFrom(...SAFE_REGEXES),
    }),
    fc.record({
      field: fc.constantFrom(...FIELDS),
      op: fc.constantFrom('gt', 'gte', 'lt', 'lte'),
      v: fc.oneof(str, num),
    }),
    fc.record({ field: fc.constantFrom(...FIELDS), op: fc.constant('exists'), v: fc.boolean() }),
  )
  .map(({ field, op, v }) => ({ field, [op]: v }));

const condition: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    predicate,
    fc.constantFrom(...CEL).map((expr) => ({ expr })),
    fc.array(tie('node'), { minLength: 1, maxLength: 4 }).map((all) => ({ all })),
    fc.array(tie('node'), { minLength: 1, maxLength: 4 }).map((any) => ({ any })),
    tie('node').map((not) => ({ not })),
  ),
})).node;

const JAN_2026 = Date.UTC(2026, 0, 1);
const YEAR_MS = 366 * 86_400_000;

const actionArb: fc.Arbitrary<Action> = fc
  .record({
    tenant: fc.constantFrom('acme', 'globex', 'a'),
    provider: fc.constantFrom('sink', 'backup'),
    dedupKey: fc.option(str, { nil: undefined }),
    labels: fc.dictionary(fc.constantFrom('team', 'env'), str, { maxKeys: 2 }),
    payload: fc.record(
      {
        n: fc.oneof(num, str),
        s: fc.oneof(str, num, fc.array(str, { maxLength: 3 })),
        b: fc.oneof(fc.boolean(), fc.constant(null)),
        z: fc.constant(null),
        list: fc.array(scalar, { maxLength: 4 }),
        obj: json,
        items: fc.array(json, { maxLength: 3 }),
      },
      { requiredKeys: [] },
    ),
    receivedAt: fc.integer({ min: JAN_2026, max: JAN_2026 + YEAR_MS }),
  })
  .map((r): Action => ({
    id: 'act-1',
    namespace: 'alerts',
    tenant: r.tenant,
    provider: r.provider,
    actionType: 'page',
    payload: r.payload as Record<string, unknown>,
    labels: r.labels,
    dedupKey: r.dedupKey,
    fingerprint: undefined,
    deliverAt: undefined,
    receivedAt: r.receivedAt,
  }));

const timeZone = fc.constantFrom(undefined, 'UTC', 'Europe/Berlin', 'America/New_York');

describe('compiled conditions agree with the interpreter', () => {
  it('compileCondition(c)(a) === explainCondition(c, a) for random conditions and actions', () => {
    fc.assert(
      fc.property(
        condition,
        fc.array(actionArb, { minLength: 1, maxLength: 4 }),
        timeZone,
        (raw, actions, tz) => {
          const c = parseCondition(raw, tz);
          // One compiled closure sees several actions, as in production (time caches included).
          const test = compileCondition(c, tz);
          for (const a of actions) {
            const traces: Trace[] = [];
            const explained = explainCondition(c, a, tz, traces);
            expect(test(a)).toBe(explained);
            for (const t of traces) expect(typeof t.result).toBe('boolean');
          }
        },
      ),
      { seed: 20260105, numRuns: 1500 },
    );
  });

  it('every predicate agrees on every kind of value, including its own operand', () => {
    const bestiary: unknown[] = [
      undefined,
      null,
      true,
      false,
      0,
      -0,
      1,
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '',
      'a',
      'ab',
      'acme',
      [],
      [Number.NaN],
      ['a', 1],
      [null],
      {},
      { k: 'a' },
      { k: [1] },
      [{ k: 'a' }],
    ];
    const onV = predicate.map((p) => {
      const { field: _field, ...rest } = p;
      return { field: 'payload.v', ...rest };
    });
    fc.assert(
      fc.property(onV, actionArb, (raw, base) => {
        const c = parseCondition(raw, undefined);
        const test = compileCondition(c, undefined);
        const operand = Object.entries(raw).find(([k]) => k !== 'field')?.[1];
        const values = [
          ...bestiary,
          operand,
          [operand],
          ...(Array.isArray(operand) ? operand : []),
        ];
        for (const v of values) {
          const a = { ...base, payload: v === undefined ? {} : { v } };
          expect(test(a)).toBe(explainCondition(c, a, undefined, []));
        }
      }),
      { seed: 42, numRuns: 1000 },
    );
  });

  it('parseCondition rejects arbitrary input only with a RulePathError', () => {
    const junk = fc.oneof(
      fc.anything({ maxDepth: 3, withNullPrototype: true }),
      fc.record(
        {
          field: fc.oneof(fc.constantFrom(...FIELDS), fc.string()),
          eq: fc.anything({ maxDepth: 2 }),
          in: fc.anything({ maxDepth: 2 }),
          matches: fc.oneof(fc.constantFrom(...SAFE_REGEXES, '(', '(a+)+'), fc.string()),
          expr: fc.oneof(fc.constantFrom(...CEL), fc.string()),
          all: fc.anything({ maxDepth: 2 }),
          not: fc.anything({ maxDepth: 2 }),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(junk, actionArb, (raw, a) => {
        let c;
        try {
          c = parseCondition(raw, 'Europe/Berlin');
        } catch (err) {
          expect(err).toBeInstanceOf(RulePathError);
          expect(Array.isArray((err as RulePathError).path)).toBe(true);
          return;
        }
        expect(compileCondition(c, 'Europe/Berlin')(a)).toBe(
          explainCondition(c, a, 'Europe/Berlin', []),
        );
      }),
      { seed: 7, numRuns: 1000 },
    );
  });
});
