import { Type, type Static } from 'typebox';

/** Names of namespaces, tenants and providers: short, printable, safe in metric labels and keys. */
const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]*$';

const Name = (description: string) =>
  Type.String({ minLength: 1, maxLength: 128, pattern: NAME_PATTERN, description });

/**
 * An action as a client sends it. `id` is optional: the gateway assigns a UUIDv7 when absent.
 * Unknown top-level fields are rejected so that a typo (`dedup_key`) is an error, not a no-op.
 */
export const ActionInputSchema = Type.Object(
  {
    id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description: 'Client-supplied action id; a UUIDv7 is assigned when absent.',
      }),
    ),
    namespace: Name('Logical area the action belongs to (e.g. "billing", "alerts").'),
    tenant: Name('The tenant (customer, team or agent) on whose behalf the action runs.'),
    provider: Name('Name of a configured provider that executes the action.'),
    actionType: Type.String({
      minLength: 1,
      maxLength: 128,
      description: 'What kind of action this is (e.g. "send_email").',
    }),
    payload: Type.Record(Type.String(), Type.Unknown(), {
      description: 'The provider-specific content of the action (a JSON object).',
    }),
    labels: Type.Optional(
      Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 1024 }), {
        maxProperties: 64,
        description: 'String key/value labels used by rules, grouping and filtering.',
      }),
    ),
    dedupKey: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    fingerprint: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    deliverAt: Type.Optional(
      Type.String({ format: 'date-time', description: 'RFC 3339 time to deliver the action at.' }),
    ),
  },
  { additionalProperties: false },
);

export type ActionInput = Static<typeof ActionInputSchema>;

/**
 * An action after normalization: it has an id, labels and the time the gateway received it.
 * Every object of this type has the same shape (hidden class) so the hot path stays monomorphic.
 */
export interface Action {
  id: string;
  namespace: string;
  tenant: string;
  provider: string;
  actionType: string;
  payload: Record<string, unknown>;
  labels: Record<string, string>;
  dedupKey: string | undefined;
  fingerprint: string | undefined;
  deliverAt: string | undefined;
  /** Epoch milliseconds at which the gateway accepted the action. */
  receivedAt: number;
}
