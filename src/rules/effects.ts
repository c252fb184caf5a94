import { Type } from 'typebox';
import type { ValidateFunction } from 'ajv';
import type { Action } from '../core/action.js';
import { Duration } from '../core/schema-types.js';
import { parseDuration } from '../core/units.js';
import { ajv, predicate, segmentsOf } from '../core/validate.js';
import { checkFieldPath } from './fields.js';
import { compileTemplate, defaultKey, type KeyFn } from './template.js';
import { RulePathError } from './condition-error.js';

/** Gates stop an action; transforms change it; `allow` ends evaluation and lets it run. */
export type Effect =
  | { readonly kind: 'allow' }
  | { readonly kind: 'suppress'; readonly reason: string }
  | {
      readonly kind: 'deduplicate';
      readonly key: KeyFn;
      readonly ttlMs: number;
      readonly onFailure: 'release' | 'keep';
    }
  | {
      readonly kind: 'throttle';
      readonly key: KeyFn;
      readonly limits: readonly { readonly limit: number; readonly windowMs: number }[];
    }
  | { readonly kind: 'reroute'; readonly provider: string }
  | {
      readonly kind: 'modify';
      readonly apply: (draft: Action) => void;
      /** False for label-only changes: the payload need not be copied for them. */
      readonly touchesPayload: boolean;
    };

export const EFFECT_NAMES = [
  'allow',
  'suppress',
  'deduplicate',
  'throttle',
  'reroute',
  'modify',
  'label',
] as const;

const Key = Type.String({
  minLength: 1,
  maxLength: 512,
  description: 'Key template, e.g. "{{tenant}}:{{payload.to}}".',
});
const Limit = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    window: Duration('Window length, e.g. "1s", "1m".'),
  },
  { additionalProperties: false },
);

const SCHEMAS: Record<(typeof EFFECT_NAMES)[number], ValidateFunction> = {
  allow: ajv.compile(Type.Object({}, { additionalProperties: false })),
  suppress: ajv.compile(
    Type.Object(
      { reason: Type.Optional(Type.String({ maxLength: 512 })) },
      { additionalProperties: false },
    ),
  ),
  deduplicate: ajv.compile(
    Type.Object(
      {
        key: Type.Optional(Key),
        ttl: Duration('How long a key stays taken.'),
        onFailure: Type.Optional(Type.Union([Type.Literal('release'), Type.Literal('keep')])),
      },
      { additionalProperties: false },
    ),
  ),
  throttle: ajv.compile(
    Type.Object(
      {
        key: Type.Optional(Key),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        window: Type.Optional(Duration('Window length.')),
        limits: Type.Optional(Type.Array(Limit, { minItems: 1, maxItems: 8 })),
      },
      { additionalProperties: false },
    ),
  ),
  reroute: ajv.compile(
    Type.Object(
      { provider: Type.String({ minLength: 1, maxLength: 128 }) },
      { additionalProperties: false },
    ),
  ),
  modify: ajv.compile(
    Type.Object(
      {
        set: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { maxProperties: 64 })),
        unset: Type.Optional(Type.Array(Type.String(), { maxItems: 64 })),
        merge: Type.Optional(
          Type.Object(
            {
              payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
              labels: Type.Optional(Type.Record(Type.String(), Type.String())),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false, minProperties: 1 },
    ),
  ),
  label: ajv.compile(
    Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.String({ maxLength: 1024 }), {
      minProperties: 1,
      maxProperties: 64,
    }),
  ),
};

export interface EffectContext {
  readonly timeZone: string | undefined;
  /** Configured provider names; when given, `reroute` must name one of them. */
  readonly providers: ReadonlySet<string> | undefined;
}

/** Validates and compiles one effect (`{ throttle: {...} }`, or a bare name like `allow`). */
export function compileEffect(raw: unknown, path: (string | number)[], ctx: EffectContext): Effect {
  let name: string;
  let body: unknown;
  if (typeof raw === 'string') {
    name = raw;
    body = {};
  } else if (
    raw !== null &&
    typeof raw === 'object' &&
    !Array.isArray(raw) &&
    Object.keys(raw).length === 1
  ) {
    name = Object.keys(raw)[0] as string;
    body = (raw as Record<string, unknown>)[name] ?? {};
  } else {
    throw new RulePathError(
      path,
      `must be a mapping with exactly one effect (${EFFECT_NAMES.join(', ')})`,
    );
  }
  const check = SCHEMAS[name as keyof typeof SCHEMAS];
  if (check === undefined) {
    throw new RulePathError(
      path,
      `"${name}" is not an effect (use one of ${EFFECT_NAMES.join(', ')})`,
    );
  }
  const at = typeof raw === 'string' ? path : [...path, name];
  if (!check(body)) {
    const error = check.errors?.[0];
    if (error === undefined) throw new RulePathError(at, 'is invalid');
    throw new RulePathError([...at, ...segmentsOf(error)], predicate(error));
  }
  const b = body as Record<string, unknown>;
  const key = (k: unknown): KeyFn =>
    typeof k === 'string' ? compileTemplate(k, ctx.timeZone, [...at, 'key']) : defaultKey;
  switch (name) {
    case 'allow':
      return { kind: 'allow' };
    case 'suppress':
      return {
        kind: 'suppress',
        reason: typeof b.reason === 'string' ? b.reason : 'suppressed by rule',
      };
    case 'deduplicate':
      return {
        kind: 'deduplicate',
        key: key(b.key),
        ttlMs: parseDuration(b.ttl) as number,
        onFailure: b.onFailure === 'keep' ? 'keep' : 'release',
      };
    case 'throttle':
      return { kind: 'throttle', key: key(b.key), limits: throttleLimits(b, at) };
    case 'reroute': {
      const provider = b.provider as string;
      if (ctx.providers !== undefined && !ctx.providers.has(provider)) {
        throw new RulePathError(
          [...at, 'provider'],
          `"${provider}" is not a configured provider (configured: ${[...ctx.providers].sort().join(', ')})`,
        );
      }
      return { kind: 'reroute', provider };
    }
    case 'label':
      return {
        kind: 'modify',
        apply: compileModify({ set: prefixed(b) }, at, ctx.timeZone),
        touchesPayload: false,
      };
    default:
      return {
        kind: 'modify',
        apply: compileModify(b, at, ctx.timeZone),
        touchesPayload: modifiesPayload(b),
      };
  }
}

function prefixed(labels: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(labels)) out[`labels.${k}`] = v;
  return out;
}

function throttleLimits(
  b: Record<string, unknown>,
  at: (string | number)[],
): { limit: number; windowMs: number }[] {
  const single = b.limit !== undefined || b.window !== undefined;
  if (single && b.limits !== undefined) {
    throw new RulePathError(at, 'takes either limit + window or limits, not both');
  }
  if (b.limits !== undefined) {
    return (b.limits as { limit: number; window: string | number }[]).map((l) => ({
      limit: l.limit,
      windowMs: Math.max(1, parseDuration(l.window) as number),
    }));
  }
  if (b.limit === undefined || b.window === undefined) {
    throw new RulePathError(at, 'needs limit and window (or limits: [{ limit, window }, ...])');
  }
  return [{ limit: b.limit as number, windowMs: Math.max(1, parseDuration(b.window) as number) }];
}

type Target = { root: 'payload' | 'labels'; segments: string[] };

function target(path: string, at: (string | number)[]): Target {
  const problem = checkFieldPath(path);
  const root = path.split('.')[0];
  if (problem !== undefined || (root !== 'payload' && root !== 'labels') || !path.includes('.')) {
    throw new RulePathError(at, `"${path}" must be payload.<path> or labels.<name>`);
  }
  return { root, segments: path.split('.').slice(1) };
}

/**
 * Compiles `modify { set, unset, merge }`. String values in `set` are templates rendered against
 * the action as it was before this effect. Applied to a draft copy, never to the caller's action.
 */
function modifiesPayload(b: Record<string, unknown>): boolean {
  const paths = [
    ...Object.keys((b.set as Record<string, unknown> | undefined) ?? {}),
    ...((b.unset as string[] | undefined) ?? []),
  ];
  const merge = b.merge as { payload?: unknown } | undefined;
  return merge?.payload !== undefined || paths.some((p) => p.startsWith('payload.'));
}

function compileModify(
  b: Record<string, unknown>,
  at: (string | number)[],
  timeZone: string | undefined,
): (draft: Action) => void {
  const sets = Object.entries((b.set as Record<string, unknown> | undefined) ?? {}).map(
    ([path, value]) => {
      const t = target(path, [...at, 'set', path]);
      if (t.root === 'labels' && typeof value !== 'string') {
        throw new RulePathError([...at, 'set', path], 'a label value must be a string');
      }
      const render =
        typeof value === 'string' && value.includes('{{')
          ? compileTemplate(value, timeZone, [...at, 'set', path])
          : undefined;
      return { t, value, render };
    },
  );
  const unsets = ((b.unset as string[] | undefined) ?? []).map((path, i) =>
    target(path, [...at, 'unset', i]),
  );
  const merge = b.merge as
    { payload?: Record<string, unknown>; labels?: Record<string, string> } | undefined;
  return (draft) => {
    const rendered = sets.map((s) => (s.render === undefined ? s.value : s.render(draft)));
    if (merge?.payload !== undefined) deepMerge(draft.payload, merge.payload);
    if (merge?.labels !== undefined) Object.assign(draft.labels, merge.labels);
    sets.forEach((s, i) =>
      setPath(
        s.t.root === 'payload' ? draft.payload : draft.labels,
        s.t.segments,
        // Strings and numbers are immutable: only objects need their own copy.
        typeof rendered[i] === 'object' && rendered[i] !== null
          ? structuredClone(rendered[i])
          : rendered[i],
      ),
    );
    for (const u of unsets)
      unsetPath(u.root === 'payload' ? draft.payload : draft.labels, u.segments);
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function deepMerge(into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(from)) {
    if (k === '__proto__') continue;
    const cur = into[k];
    if (isObject(cur) && isObject(v)) deepMerge(cur, v);
    else into[k] = structuredClone(v);
  }
}

function setPath(root: Record<string, unknown>, segments: string[], value: unknown): void {
  let node = root;
  for (let i = 0; i < segments.length - 1; i++) {
    const k = segments[i] as string;
    const next = Object.hasOwn(node, k) ? node[k] : undefined;
    if (!isObject(next)) {
      const created: Record<string, unknown> = {};
      Object.defineProperty(node, k, {
        value: created,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      node = created;
    } else {
      node = next;
    }
  }
  Object.defineProperty(node, segments[segments.length - 1] as string, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function unsetPath(root: Record<string, unknown>, segments: string[]): void {
  let node: unknown = root;
  for (let i = 0; i < segments.length - 1; i++) {
    if (!isObject(node) || !Object.hasOwn(node, segments[i] as string)) return;
    node = node[segments[i] as string];
  }
  if (isObject(node)) delete node[segments[segments.length - 1] as string];
}
