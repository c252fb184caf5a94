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

export const ExecutedOutcomeSchema = Type.Object({
  outcome: Type.Literal('executed'),
  ...Common,
  response: ProviderResponseSchema,
});

export const FailedOutcomeSchema = Type.Object({
  outcome: Type.Literal('failed'),
  ...Common,
  error: OutcomeErrorSchema,
  response: Type.Optional(ProviderResponseSchema),
});

/**
 * What happened to an action: a discriminated union on `outcome`. Later capabilities add variants
 * ("deduplicated", "suppressed", "throttled", "rerouted", "grouped", "scheduled", ...) here, in
 * docs/api.md and in the client types, in the same commit.
 */
export const OutcomeSchema = Type.Union([ExecutedOutcomeSchema, FailedOutcomeSchema]);

export type ProviderResponse = Static<typeof ProviderResponseSchema>;
export type OutcomeError = Static<typeof OutcomeErrorSchema>;
export type ExecutedOutcome = Static<typeof ExecutedOutcomeSchema>;
export type FailedOutcome = Static<typeof FailedOutcomeSchema>;
export type Outcome = Static<typeof OutcomeSchema>;
export type OutcomeKind = Outcome['outcome'];
