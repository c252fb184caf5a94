import type { Action, ActionInput } from '../../src/core/action.js';
import { newId } from '../../src/core/ids.js';
import { compileRule, sortRules, type CompiledRule } from '../../src/rules/load.js';

/**
 * Rule sets and actions shared by the rule scenarios (S2, S8 and the later backends' S3–S6).
 * Rules are written exactly as in a config's `rules.inline` list, so the same objects serve
 * `compileRule` (S8) and `createGateway({ rules: { inline } })` (S2).
 */

export const TEAMS = ['a', 'b', 'c'] as const;

/**
 * `count` field-predicate rules of the usual shape: an `actionType` equality and a label
 * membership, effect a label. Rule `i` tests `type-<i % modulo>`: with the default modulo
 * (= count) each action type matches at most one rule; with modulo 10 and 100 rules, an action of
 * type `type-<k>` (k < 10) matches 10 of them.
 */
export function fieldRules(count: number, modulo = count): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `field-${i}`,
    condition: {
      all: [
        { field: 'actionType', eq: `type-${i % modulo}` },
        { field: 'labels.team', in: [...TEAMS] },
      ],
    },
    effects: { label: { matched: `field-${i}` } },
  }));
}

/** `count` CEL rules: `payload.severity == "critical" && labels.team == "t<i>"`, effect a label. */
export function celRules(count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `cel-${i}`,
    condition: { expr: `payload.severity == "critical" && labels.team == "t${i}"` },
    effects: { label: { matched: `cel-${i}` } },
  }));
}

/** S2: one gate per dispatch, a unique key per action (the bench puts a unique `payload.i`). */
export function dedupRule(): Record<string, unknown> {
  return {
    name: 'dedup-by-i',
    effects: { deduplicate: { key: '{{payload.i}}', ttl: '1h' } },
  };
}

/** Compiles raw rules the way the rule engine does (compileRule in load order, then sortRules). */
export function compileRuleSet(
  raw: readonly unknown[],
  providers: readonly string[] = ['noop'],
): CompiledRule[] {
  const ctx = { providers: new Set(providers) };
  return sortRules(raw.map((r, i) => compileRule(r, i, ctx)));
}

/** An action as the gateway's `normalize` builds it: same fields, same order, same hidden class. */
export function normalized(input: ActionInput, receivedAt = Date.now()): Action {
  return {
    id: input.id ?? newId(),
    namespace: input.namespace,
    tenant: input.tenant,
    provider: input.provider,
    actionType: input.actionType,
    payload: input.payload,
    labels: input.labels ?? {},
    dedupKey: input.dedupKey,
    fingerprint: input.fingerprint,
    deliverAt: input.deliverAt,
    receivedAt,
  };
}

/** A realistic alert-like action input: a few payload fields and two labels. */
export function alertInput(
  k: number,
  actionType: string,
  team: string,
  severity: 'critical' | 'warning',
): ActionInput {
  return {
    namespace: 'alerts',
    tenant: 'acme',
    provider: 'noop',
    actionType,
    payload: {
      i: k,
      severity,
      host: `host-${k % 7}`,
      message: `disk ${80 + (k % 20)}% full on host-${k % 7}`,
    },
    labels: { team, env: k % 2 === 0 ? 'prod' : 'staging' },
  };
}
