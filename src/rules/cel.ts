import { Environment } from '@marcbachmann/cel-js';
import type { Action } from '../core/action.js';
import { compileField } from './fields.js';
import { RulePathError } from './condition-error.js';

const MAX_EXPRESSION_LENGTH = 4096;

/**
 * CEL over the same fields as predicates. Expressions are parsed and type-checked once at load
 * with structural limits (size, depth), must yield a bool, and a runtime error (a missing key,
 * say) makes the expression false rather than failing the action.
 */
const env = new Environment({
  limits: {
    maxAstNodes: 1000,
    maxDepth: 32,
    maxListElements: 1000,
    maxMapEntries: 1000,
    maxCallArguments: 16,
  },
})
  .registerVariable('id', 'string')
  // `namespace` is a reserved word in CEL: expressions read it as action.namespace.
  .registerVariable('action', 'map')
  .registerVariable('tenant', 'string')
  .registerVariable('provider', 'string')
  .registerVariable('actionType', 'string')
  .registerVariable('dedupKey', 'dyn')
  .registerVariable('fingerprint', 'dyn')
  .registerVariable('payload', 'map')
  .registerVariable('labels', 'map<string, string>')
  .registerVariable('time', 'map');

export interface CelProgram {
  test(action: Action): boolean;
  explain(action: Action): { result: boolean; error: string | undefined };
}

const cache = new Map<string, CelProgram>();

/** Parses and type-checks a CEL expression; throws RulePathError at `path` when it is bad. */
export function compileCel(
  expr: string,
  timeZone: string | undefined,
  path: (string | number)[],
): CelProgram {
  const cacheKey = `${timeZone ?? ''}\u0000${expr}`;
  const hit = cache.get(cacheKey);
  if (hit !== undefined) return hit;
  if (expr.length > MAX_EXPRESSION_LENGTH) {
    throw new RulePathError(path, `is longer than ${MAX_EXPRESSION_LENGTH} characters`);
  }
  // CEL's matches() takes its pattern at run time, beyond the load-time ReDoS check: use the
  // `matches` predicate instead, whose pattern is checked.
  if (/\bmatches\s*\(/.test(expr)) {
    throw new RulePathError(
      path,
      'must not call matches(); use a `field` predicate with the `matches` operator, whose regex is checked for ReDoS',
    );
  }
  let evaluate: (ctx: Record<string, unknown>) => unknown;
  try {
    const checked = env.check(expr);
    if (!checked.valid) throw checked.error ?? new Error('invalid expression');
    if (checked.type !== 'bool' && checked.type !== 'dyn') {
      throw new Error(`must yield a bool, but yields ${String(checked.type)}`);
    }
    evaluate = env.parse(expr) as unknown as (ctx: Record<string, unknown>) => unknown;
  } catch (err) {
    const message = (err as Error).message.split('\n')[0] ?? 'invalid expression';
    throw new RulePathError(path, `is not a valid CEL expression: ${message}`);
  }
  const usesTime = /\btime\b/.test(expr);
  const parts = usesTime
    ? (['hour', 'minute', 'weekday', 'day', 'month', 'year'] as const).map(
        (p) => [p, compileField(`time.${p}`, timeZone)] as const,
      )
    : [];
  const context = (a: Action): Record<string, unknown> => {
    let time: Record<string, unknown> | undefined;
    if (usesTime) {
      time = {};
      for (const [p, get] of parts) time[p] = get(a);
    }
    return {
      id: a.id,
      action: a,
      tenant: a.tenant,
      provider: a.provider,
      actionType: a.actionType,
      dedupKey: a.dedupKey ?? null,
      fingerprint: a.fingerprint ?? null,
      payload: a.payload,
      labels: a.labels,
      time: time ?? {},
    };
  };
  const program: CelProgram = {
    test(a) {
      try {
        return evaluate(context(a)) === true;
      } catch {
        return false;
      }
    },
    explain(a) {
      try {
        return { result: evaluate(context(a)) === true, error: undefined };
      } catch (err) {
        return { result: false, error: (err as Error).message.split('\n')[0] };
      }
    },
  };
  cache.set(cacheKey, program);
  return program;
}
