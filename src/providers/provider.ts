import type { TSchema } from 'typebox';
import type { Logger } from 'pino';
import type { Action } from '../core/action.js';
import type { ProviderResponse } from '../core/outcome.js';
import type { Clock } from '../core/clock.js';
import { SyError, type ErrorCode } from '../core/errors.js';
import type { StateStore } from '../state/store.js';

/**
 * What a provider gets besides the action. The executor owns time limits: `signal` aborts when
 * the attempt's timeout passes (reason: a ProviderError SY_ERR_PROVIDER_TIMEOUT) or the gateway
 * shuts down (reason: SY_ERR_SHUTTING_DOWN). A provider passes `signal` to its I/O and, when
 * that I/O fails because the signal fired, throws `signalError(ctx.signal)`.
 */
export interface ExecuteContext {
  readonly signal: AbortSignal;
  /** 1 on the first attempt, 2 on the first retry, ... */
  readonly attempt: number;
}

/**
 * Exactly what a provider would send for an action, without sending it
 * (`POST /v1/providers/{name}/preview`). Secrets are masked (see maskHeaders).
 */
export type ProviderPreview =
  | {
      kind: 'http';
      method: string;
      url: string;
      headers: Record<string, string>;
      /** The request body: parsed JSON when it is JSON, else the text. */
      body: unknown;
    }
  | {
      kind: 'email';
      /** SMTP envelope. */
      from: string;
      to: string[];
      cc?: string[];
      bcc?: string[];
      subject: string;
      /** Message headers besides from/to/cc/subject (masked). */
      headers: Record<string, string>;
      text?: string;
      html?: string;
    }
  | { kind: 'log'; line: string }
  | { kind: 'none'; description: string };

/**
 * Something that performs an action's side effect: POSTs a webhook, sends an email, calls an LLM.
 * `execute` resolves with what the destination answered, or throws a ProviderError saying
 * whether a retry may help. Providers never decide retries themselves; the executor does.
 */
export interface Provider {
  readonly name: string;
  readonly type: string;
  /**
   * True when `execute` does no I/O and cannot hang (log, noop): the executor then skips the
   * concurrency limits and the timeout timer for it.
   */
  readonly inline?: boolean;
  execute(action: Action, ctx: ExecuteContext): Promise<ProviderResponse>;
  /** What `execute` would send, rendered but not sent. Throws SyError on a template error. */
  preview?(action: Action): ProviderPreview | Promise<ProviderPreview>;
  /**
   * The resolved destination, for the audit trail: a webhook's host, email recipients, an LLM
   * model. Never a secret.
   */
  destination?(action: Action): string | undefined;
  /** Finish in-flight work and release connections. */
  close?(): Promise<void>;
}

/** Everything a provider factory may use besides its own config. */
export interface ProviderFactoryContext {
  readonly logger: Logger;
  /** The gateway's state store (LLM sessions, caches, budgets live here). */
  readonly state: StateStore;
  readonly clock: Clock;
  /** Counters a provider may bump (cache hits, ...); low-cardinality names only. */
  readonly count: (metric: ProviderCounter, provider: string, n?: number) => void;
}

/** Provider-level counters exported as `switchyard_provider_<name>_total{provider}`. */
export type ProviderCounter = 'llm_cache_hits' | 'llm_cache_misses' | 'llm_tokens';

/**
 * A kind of provider (`webhook`, `log`, ...): the schema of its config block and a factory.
 * Config is validated against `configSchema` (with file/line errors) before `create` is called.
 * The executor's policy keys (retry, timeout, concurrency, circuitBreaker, fallback, rateLimit,
 * dlq; see executor/policy.ts) are common to every type and are removed before validation.
 */
export interface ProviderType<C = Record<string, unknown>> {
  readonly type: string;
  readonly description: string;
  readonly configSchema: TSchema;
  create(name: string, config: C, ctx: ProviderFactoryContext): Provider;
}

/** A provider failure. `transient` tells the executor whether another attempt may succeed. */
export class ProviderError extends SyError {
  readonly transient: boolean;
  readonly response: ProviderResponse | undefined;
  /** The destination asked to wait this long (Retry-After on 429/503). */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: {
      transient: boolean;
      response?: ProviderResponse;
      retryAfterMs?: number;
      cause?: unknown;
    },
  ) {
    super(
      code,
      message,
      opts.response?.status === undefined ? undefined : { status: opts.response.status },
      {
        cause: opts.cause,
      },
    );
    this.name = 'ProviderError';
    this.transient = opts.transient;
    this.response = opts.response;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/**
 * A provider's own budget refused the action before any call (e.g. an LLM token budget): the
 * outcome is `throttled` with `retryAfterMs`, not a failure, and nothing is retried.
 */
export class ProviderThrottledError extends SyError {
  constructor(
    message: string,
    readonly throttle: {
      /** Which budget: "tokensPerMinute", "tokensPerDay", ... */
      budget: string;
      retryAfterMs: number;
      limit: number;
      windowMs: number;
    },
  ) {
    super('SY_ERR_BUDGET_EXCEEDED', message, { ...throttle });
    this.name = 'ProviderThrottledError';
  }
}

/**
 * The error to throw when I/O failed because `ctx.signal` fired: the signal's reason when the
 * executor set one (timeout or shutdown), else a shutdown error.
 */
export function signalError(signal: AbortSignal, cause?: unknown): ProviderError {
  const reason: unknown = signal.reason;
  if (reason instanceof ProviderError) return reason;
  return new ProviderError('SY_ERR_SHUTTING_DOWN', 'the provider call was aborted', {
    transient: true,
    cause: cause ?? reason,
  });
}

const SECRET_HEADER = /authorization|cookie|token|secret|key|signature|password|auth/i;

/** Replaces the values of headers that may carry secrets with "***" (for previews and logs). */
export function maskHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = SECRET_HEADER.test(k) ? '***' : v;
  return out;
}
