import type { Action } from '../core/action.js';
import type {
  DeduplicatedOutcome,
  Outcome,
  ReroutedOutcome,
  SuppressedOutcome,
  ThrottledOutcome,
} from '../core/outcome.js';
import type { GateResult } from '../state/store.js';
import type { RunOutcome } from '../executor/executor.js';

/** Builders for the outcomes the pipeline decides itself (one object shape per variant). */
export function suppressed(
  a: Action,
  rule: string,
  reason: string,
  durationMs: number,
): SuppressedOutcome {
  return { outcome: 'suppressed', actionId: a.id, provider: a.provider, durationMs, rule, reason };
}

export function blocked(
  a: Action,
  result: Exclude<GateResult, { pass: true }>,
  rule: string | undefined,
  durationMs: number,
): DeduplicatedOutcome | ThrottledOutcome {
  if (result.kind === 'throttle') {
    return {
      outcome: 'throttled',
      actionId: a.id,
      provider: a.provider,
      durationMs,
      rule: rule ?? '',
      retryAfterMs: Math.ceil(result.retryAfterMs),
      limit: result.limit,
      windowMs: result.windowMs,
    };
  }
  const outcome: DeduplicatedOutcome = {
    outcome: 'deduplicated',
    actionId: a.id,
    provider: a.provider,
    durationMs,
    inFlight: result.inFlight,
    duplicateOf: result.holder,
  };
  if (rule !== undefined) outcome.rule = rule;
  return outcome;
}

/** An execution on a provider other than the one the action named is reported as "rerouted". */
export function withReroute(
  outcome: RunOutcome,
  reroute: { from: string; rule: string } | undefined,
): Outcome {
  if (reroute === undefined || outcome.outcome !== 'executed') return outcome;
  const rerouted: ReroutedOutcome = {
    outcome: 'rerouted',
    actionId: outcome.actionId,
    provider: outcome.provider,
    durationMs: outcome.durationMs,
    originalProvider: reroute.from,
    rule: reroute.rule,
    response: outcome.response,
  };
  if (outcome.attempts !== undefined) rerouted.attempts = outcome.attempts;
  if (outcome.fallbackFrom !== undefined) rerouted.fallbackFrom = outcome.fallbackFrom;
  return rerouted;
}
