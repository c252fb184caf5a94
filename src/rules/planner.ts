import type { Action } from '../core/action.js';
import type { GateOp } from '../state/store.js';
import type { CompiledRule } from './load.js';
import type { Effect } from './effects.js';

/** What to do with a dedup reservation once the action has run. */
export interface DedupSettle {
  readonly key: string;
  readonly onFailure: 'release' | 'keep';
}

/**
 * What the rules decided for one action. Pure data: planning reads no state and has no side
 * effects, so the same function serves dispatch and the dry run.
 */
export interface Plan {
  /** The action after transforms (modify, label, reroute); undefined when unchanged. */
  readonly action: Action | undefined;
  /** Names of the rules that matched, in evaluation order. */
  readonly matched: readonly string[];
  /** State-store gates, in rule order, decided in one call; `gateRules[i]` owns `gates[i]`. */
  readonly gates: readonly GateOp[];
  readonly gateRules: readonly string[];
  readonly dedups: readonly DedupSettle[];
  /** A stateless gate (suppress) that stopped the action. */
  readonly suppressed: { readonly rule: string; readonly reason: string } | undefined;
  /** Set when a rule changed the provider. */
  readonly reroute: { readonly from: string; readonly rule: string } | undefined;
}

const NONE: readonly never[] = Object.freeze([]);

export const EMPTY_PLAN: Plan = Object.freeze({
  action: undefined,
  matched: NONE,
  gates: NONE,
  gateRules: NONE,
  dedups: NONE,
  suppressed: undefined,
  reroute: undefined,
});

/**
 * Copy-on-write: the first transform copies the action (and its labels) so the caller's object is
 * never changed; the payload is deep-copied only when a transform changes it (`withPayload`).
 */
function draftOf(a: Action): Action {
  return {
    id: a.id,
    namespace: a.namespace,
    tenant: a.tenant,
    provider: a.provider,
    actionType: a.actionType,
    payload: a.payload,
    labels: { ...a.labels },
    dedupKey: a.dedupKey,
    fingerprint: a.fingerprint,
    deliverAt: a.deliverAt,
    receivedAt: a.receivedAt,
  };
}

/** Store keys are scoped by rule, namespace and tenant: tenants never share gate state. */
function scoped(kind: string, rule: string, a: Action, key: string): string {
  return `${kind}|${rule}|${a.namespace}|${a.tenant}|${key}`;
}

/**
 * Evaluates the rules in order against the action. Transforms accumulate (later rules see their
 * result); `suppress` ends evaluation at once; `allow` and `final` end it after their rule;
 * deduplicate/throttle become gates for the state store. No rule matching costs no allocation.
 */
export function plan(
  rules: readonly CompiledRule[],
  action: Action,
  /** Dry run: evaluates each rule's condition instead of `rule.test` (to record why). */
  test?: (rule: CompiledRule, current: Action) => boolean,
): Plan {
  let cur = action;
  let drafted = false;
  let payloadCopied = false;
  let matched: string[] | undefined;
  let gates: GateOp[] | undefined;
  let gateRules: string[] | undefined;
  let dedups: DedupSettle[] | undefined;
  let reroute: Plan['reroute'];
  for (let r = 0; r < rules.length; r++) {
    const rule = rules[r] as CompiledRule;
    if (!(test === undefined ? rule.test(cur) : test(rule, cur))) continue;
    (matched ??= []).push(rule.name);
    let stop = rule.final;
    for (let e = 0; e < rule.effects.length; e++) {
      const effect = rule.effects[e] as Effect;
      switch (effect.kind) {
        case 'allow':
          stop = true;
          break;
        case 'suppress':
          return {
            action: drafted ? cur : undefined,
            matched,
            gates: gates ?? NONE,
            gateRules: gateRules ?? NONE,
            dedups: dedups ?? NONE,
            suppressed: { rule: rule.name, reason: effect.reason },
            reroute: cur.provider === action.provider ? undefined : reroute,
          };
        case 'deduplicate': {
          const key = scoped('dedup', rule.name, cur, effect.key(cur));
          (gates ??= []).push({
            kind: 'dedup',
            key,
            ttlMs: effect.ttlMs,
            actionId: cur.id,
            scope: `${cur.namespace}|${cur.tenant}`,
          });
          (gateRules ??= []).push(rule.name);
          (dedups ??= []).push({ key, onFailure: effect.onFailure });
          break;
        }
        case 'throttle':
          (gates ??= []).push({
            kind: 'throttle',
            scope: `${cur.namespace}|${cur.tenant}`,
            key: scoped('throttle', rule.name, cur, effect.key(cur)),
            limits: effect.limits,
          });
          (gateRules ??= []).push(rule.name);
          break;
        case 'reroute':
          if (!drafted) {
            cur = draftOf(cur);
            drafted = true;
          }
          if (cur.provider !== effect.provider) {
            reroute = { from: reroute?.from ?? action.provider, rule: rule.name };
            cur.provider = effect.provider;
          }
          break;
        case 'modify':
          if (!drafted) {
            cur = draftOf(cur);
            drafted = true;
          }
          if (effect.touchesPayload && !payloadCopied) {
            cur.payload = structuredClone(cur.payload);
            payloadCopied = true;
          }
          effect.apply(cur);
          break;
      }
    }
    if (stop) break;
  }
  if (matched === undefined) return EMPTY_PLAN;
  if (reroute !== undefined && cur.provider === action.provider) reroute = undefined;
  return {
    action: drafted ? cur : undefined,
    matched,
    gates: gates ?? NONE,
    gateRules: gateRules ?? NONE,
    dedups: dedups ?? NONE,
    suppressed: undefined,
    reroute,
  };
}
