import { Type } from 'typebox';
import { ActionInputSchema } from '../core/action.js';
import { OutcomeSchema } from '../core/outcome.js';

/** The error body every non-2xx response carries. */
export const ErrorBodySchema = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'Stable SY_ERR_* code (docs/errors.md).' }),
    message: Type.String({ description: 'A sentence naming the offending field or resource.' }),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  }),
});

export const BatchBodySchema = Type.Array(ActionInputSchema, {
  description: 'Actions to dispatch; every one is validated before any runs.',
});

export const BatchResponseSchema = Type.Object({
  outcomes: Type.Array(OutcomeSchema, { description: 'One outcome per action, in input order.' }),
});

export const errorResponses = {
  400: { description: 'Bad input', ...ErrorBodySchema },
  413: { description: 'Body or batch too large', ...ErrorBodySchema },
  415: { description: 'Not JSON', ...ErrorBodySchema },
  503: {
    description:
      'Shutting down (SY_ERR_SHUTTING_DOWN) or the state store is unavailable (SY_ERR_STATE_UNAVAILABLE)',
    ...ErrorBodySchema,
  },
};
