import { Type, type Static } from 'typebox';
import { Duration } from '../core/schema-types.js';
import { parseDuration } from '../core/units.js';

/**
 * The executor's policy keys: common to every provider type, written beside the type's own keys
 * (`providers.hook.retry`, `providers.hook.timeout`, ...). The config loader validates them
 * against this schema and the rest against the provider type's schema.
 */
export const ProviderPolicySchema = Type.Object(
  {
    timeout: Type.Optional(
      Duration('Time limit of one attempt (the call is aborted after it). Default 10s.'),
    ),
    actionTimeout: Type.Optional(
      Duration(
        'Time limit of the whole action across attempts and backoff; past it the action is dead-lettered. Default: none (bounded by retry.attempts).',
      ),
    ),
    retry: Type.Optional(
      Type.Object(
        {
          attempts: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 100,
              description: 'Attempts in all, the first included (1 = no retry). Default 3.',
            }),
          ),
          baseMs: Type.Optional(
            Duration(
              'Backoff before the first retry; doubles each time (full jitter). Default 200ms.',
            ),
          ),
          maxMs: Type.Optional(Duration('Longest backoff between two attempts. Default 30s.')),
        },
        { additionalProperties: false },
      ),
    ),
    concurrency: Type.Optional(
      Type.Object(
        {
          limit: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 100_000,
              description: 'Calls to this provider running at once (per node). Default 64.',
            }),
          ),
          queue: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: 1_000_000,
              description:
                'Calls waiting for a slot; beyond it dispatch answers 503 SY_ERR_OVERLOADED. Default 1000.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    circuitBreaker: Type.Optional(
      Type.Union([
        Type.Literal(false),
        Type.Object(
          {
            failures: Type.Optional(
              Type.Integer({
                minimum: 1,
                maximum: 10_000,
                description: 'Consecutive failures that open the breaker. Default 5.',
              }),
            ),
            failureRate: Type.Optional(
              Type.Number({
                exclusiveMinimum: 0,
                maximum: 1,
                description:
                  'Failure ratio over `window` that opens the breaker (with at least `minRequests` calls). Default: off.',
              }),
            ),
            minRequests: Type.Optional(
              Type.Integer({
                minimum: 1,
                maximum: 1_000_000,
                description: 'Calls in the window before `failureRate` applies. Default 20.',
              }),
            ),
            window: Type.Optional(Duration('Window for `failureRate`. Default 60s.')),
            openFor: Type.Optional(
              Duration('How long the breaker stays open before half-open probes. Default 30s.'),
            ),
            halfOpenProbes: Type.Optional(
              Type.Integer({
                minimum: 1,
                maximum: 1000,
                description:
                  'Successful probe calls in half-open state that close the breaker. Default 1.',
              }),
            ),
          },
          { additionalProperties: false },
        ),
      ]),
    ),
    fallback: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        maxItems: 10,
        description:
          'Providers tried in order when this one is unavailable (breaker open) or fails for good. Default [].',
      }),
    ),
    rateLimit: Type.Optional(
      Type.Object(
        {
          limit: Type.Integer({
            minimum: 1,
            maximum: 10_000_000,
            description: 'Calls allowed per `window` (across all nodes, in the state store).',
          }),
          window: Duration('The sliding window of `limit`.'),
          key: Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 512,
              description:
                'A key template (e.g. "{{payload.to}}") to limit per recipient; default: one limit per provider.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    dlq: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(
            Type.Boolean({
              description: 'Keep failed actions in the dead-letter queue. Default true.',
            }),
          ),
          autoReplay: Type.Optional(
            Type.Boolean({
              description:
                "Replay this provider's dead letters when its breaker closes again. Default false.",
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ProviderPolicyInput = Static<typeof ProviderPolicySchema>;

/** The names of the policy keys (split from a provider entry before type validation). */
export const POLICY_KEYS: ReadonlySet<string> = new Set(
  Object.keys((ProviderPolicySchema as unknown as { properties: object }).properties),
);

/** Splits a provider config entry into its policy keys and the type's own keys. */
export function splitPolicy(entry: Record<string, unknown>): {
  policy: Record<string, unknown>;
  own: Record<string, unknown>;
} {
  const policy: Record<string, unknown> = {};
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entry)) (POLICY_KEYS.has(k) ? policy : own)[k] = v;
  return { policy, own };
}

export interface BreakerPolicy {
  failures: number;
  failureRate: number | undefined;
  minRequests: number;
  windowMs: number;
  openForMs: number;
  halfOpenProbes: number;
}

/** A provider's policy with defaults applied, durations in ms. */
export interface ProviderPolicy {
  timeoutMs: number;
  actionTimeoutMs: number | undefined;
  retry: { attempts: number; baseMs: number; maxMs: number };
  concurrency: { limit: number; queue: number };
  breaker: BreakerPolicy | undefined;
  fallback: string[];
  rateLimit: { limit: number; windowMs: number; key: string | undefined } | undefined;
  dlq: { enabled: boolean; autoReplay: boolean };
}

export const DEFAULT_POLICY: ProviderPolicy = {
  timeoutMs: 10_000,
  actionTimeoutMs: undefined,
  retry: { attempts: 3, baseMs: 200, maxMs: 30_000 },
  concurrency: { limit: 64, queue: 1000 },
  breaker: {
    failures: 5,
    failureRate: undefined,
    minRequests: 20,
    windowMs: 60_000,
    openForMs: 30_000,
    halfOpenProbes: 1,
  },
  fallback: [],
  rateLimit: undefined,
  dlq: { enabled: true, autoReplay: false },
};

/** Applies defaults to validated policy keys. */
export function resolvePolicy(input: ProviderPolicyInput): ProviderPolicy {
  const d = DEFAULT_POLICY;
  const cb = input.circuitBreaker;
  const defaultBreaker = d.breaker as BreakerPolicy;
  return {
    timeoutMs: parseDuration(input.timeout) ?? d.timeoutMs,
    actionTimeoutMs: parseDuration(input.actionTimeout),
    retry: {
      attempts: input.retry?.attempts ?? d.retry.attempts,
      baseMs: parseDuration(input.retry?.baseMs) ?? d.retry.baseMs,
      maxMs: parseDuration(input.retry?.maxMs) ?? d.retry.maxMs,
    },
    concurrency: {
      limit: input.concurrency?.limit ?? d.concurrency.limit,
      queue: input.concurrency?.queue ?? d.concurrency.queue,
    },
    breaker:
      cb === false
        ? undefined
        : {
            failures: cb?.failures ?? defaultBreaker.failures,
            failureRate: cb?.failureRate,
            minRequests: cb?.minRequests ?? defaultBreaker.minRequests,
            windowMs: parseDuration(cb?.window) ?? defaultBreaker.windowMs,
            openForMs: parseDuration(cb?.openFor) ?? defaultBreaker.openForMs,
            halfOpenProbes: cb?.halfOpenProbes ?? defaultBreaker.halfOpenProbes,
          },
    fallback: input.fallback ?? [],
    rateLimit:
      input.rateLimit === undefined
        ? undefined
        : {
            limit: input.rateLimit.limit,
            windowMs: parseDuration(input.rateLimit.window) as number,
            key: input.rateLimit.key,
          },
    dlq: {
      enabled: input.dlq?.enabled ?? true,
      autoReplay: input.dlq?.autoReplay ?? false,
    },
  };
}
