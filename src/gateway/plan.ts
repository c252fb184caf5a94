/**
 * What the rules decided for one action. The rule engine fills in transforms, gates and hand-offs;
 * until then every action gets the empty plan (run it as sent).
 */
export interface Plan {
  /** State-store operations (dedup, throttle, idempotency) checked in one call. */
  readonly gates: readonly unknown[];
}

export const EMPTY_PLAN: Plan = Object.freeze({ gates: Object.freeze([]) });
