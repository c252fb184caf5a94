import { Type, type Static } from 'typebox';

const Common = {
  actionId: Type.String(),
  provider: Type.String({ description: 'The provider that ran (or would have run) the action.' }),
  durationMs: Type.Number({ description: 'Time spent in the gateway for this action, in ms.' }),
};

export const ProviderResponseSchema = Type.Object({
  status: Type.Optional(Type.Integer({ description: 'HTTP status, for HTTP-based providers.' })),
  body: Type.Optional(Type.Unknown({ description: 'Response body (JSON or text), capped.' })),
  truncated: Type.Optional(Type.Boolean({ description: 'True when the body hit the cap.' })),
});

export const OutcomeErrorSchema = Type.Object({
  code: Type.String({ description: 'A SY_ERR_* code from docs/errors.md.' }),
  message: Type.String(),
  status: Type.Optional(Type.Integer({ description: 'HTTP status the provider answered.' })),
  transient: Type.Boolean({ description: 'True when retrying later may succeed.' }),
});

export const AttemptErrorSchema = Type.Object({
  attempt: Type.Integer({ description: '1 for the first attempt.' }),
  provider: Type.String({ description: 'The provider this attempt ran on.' }),
  at: Type.String({ description: 'When the attempt ended (RFC 3339).' }),
  ...OutcomeErrorSchema.properties,
});

const Execution = {
  attempts: Type.Optional(
    Type.Integer({ description: 'Attempts made so far, all providers together (1 = first try).' }),
  ),
  fallbackFrom: Type.Optional(
    Type.String({
      description: 'Set when a fallback provider ran the action: the provider it fell back from.',
    }),
  ),
};

export const ExecutedOutcomeSchema = Type.Object({
  outcome: Type.Literal('executed'),
  ...Common,
  response: ProviderResponseSchema,
  ...Execution,
});

export const FailedOutcomeSchema = Type.Object({
  outcome: Type.Literal('failed'),
  ...Common,
  error: OutcomeErrorSchema,
  response: Type.Optional(ProviderResponseSchema),
  ...Execution,
  errors: Type.Optional(
    Type.Array(AttemptErrorSchema, { description: "Every attempt's error, oldest first." }),
  ),
  deadLetterId: Type.Optional(
    Type.String({
      description: 'The dead-letter entry holding the action (replay it by this id).',
    }),
  ),
});

export const RetryingOutcomeSchema = Type.Object({
  outcome: Type.Literal('retrying'),
  ...Common,
  attempts: Type.Integer({ description: 'Attempts made so far.' }),
  nextAttemptAt: Type.String({ description: 'When the next attempt is due (RFC 3339).' }),
  error: Type.Optional(OutcomeErrorSchema),
});

export const CircuitOpenOutcomeSchema = Type.Object({
  outcome: Type.Literal('circuit_open'),
  ...Common,
  retryAfterMs: Type.Integer({ description: 'When the breaker lets a probe through.' }),
  error: OutcomeErrorSchema,
});

export const ReroutedOutcomeSchema = Type.Object({
  outcome: Type.Literal('rerouted'),
  ...Common,
  originalProvider: Type.String({ description: 'The provider the action named.' }),
  rule: Type.String({ description: 'The rule that rerouted it.' }),
  response: ProviderResponseSchema,
  ...Execution,
});

export const SuppressedOutcomeSchema = Type.Object({
  outcome: Type.Literal('suppressed'),
  ...Common,
  rule: Type.String(),
  reason: Type.String(),
});

export const DeduplicatedOutcomeSchema = Type.Object({
  outcome: Type.Literal('deduplicated'),
  ...Common,
  rule: Type.Optional(
    Type.String({ description: 'The deduplicate rule; absent for a repeated action id.' }),
  ),
  inFlight: Type.Boolean({ description: 'True while the first action is still running.' }),
  duplicateOf: Type.String({ description: 'Id of the action that holds the key.' }),
});

export const ThrottledOutcomeSchema = Type.Object({
  outcome: Type.Literal('throttled'),
  ...Common,
  rule: Type.Optional(
    Type.String({ description: 'The throttle rule; absent when a provider budget refused it.' }),
  ),
  budget: Type.Optional(
    Type.String({ description: "The provider budget that refused it (e.g. 'tokensPerMinute')." }),
  ),
  retryAfterMs: Type.Integer({ description: 'When the next call with this key would pass.' }),
  limit: Type.Integer(),
  windowMs: Type.Integer(),
});

/**
 * What happened to an action: a discriminated union on `outcome`. A new variant is added here,
 * in docs/api.md and in the client types in the same commit. "executed" and "rerouted" mean the
 * side effect happened (rerouted: on another provider than the action named).
 */
export const OutcomeSchema = Type.Union([
  ExecutedOutcomeSchema,
  FailedOutcomeSchema,
  ReroutedOutcomeSchema,
  SuppressedOutcomeSchema,
  DeduplicatedOutcomeSchema,
  ThrottledOutcomeSchema,
  RetryingOutcomeSchema,
  CircuitOpenOutcomeSchema,
]);

export type ProviderResponse = Static<typeof ProviderResponseSchema>;
export type OutcomeError = Static<typeof OutcomeErrorSchema>;
export type ExecutedOutcome = Static<typeof ExecutedOutcomeSchema>;
export type FailedOutcome = Static<typeof FailedOutcomeSchema>;
export type ReroutedOutcome = Static<typeof ReroutedOutcomeSchema>;
export type SuppressedOutcome = Static<typeof SuppressedOutcomeSchema>;
export type DeduplicatedOutcome = Static<typeof DeduplicatedOutcomeSchema>;
export type ThrottledOutcome = Static<typeof ThrottledOutcomeSchema>;
export type RetryingOutcome = Static<typeof RetryingOutcomeSchema>;
export type CircuitOpenOutcome = Static<typeof CircuitOpenOutcomeSchema>;
export type AttemptError = Static<typeof AttemptErrorSchema>;
export type Outcome = Static<typeof OutcomeSchema>;
export type OutcomeKind = Outcome['outcome'];

/** True when the side effect happened (on the named provider or a reroute target). */
export function succeeded(outcome: Outcome): boolean {
  return outcome.outcome === 'executed' || outcome.outcome === 'rerouted';
}
