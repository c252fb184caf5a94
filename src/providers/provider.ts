import type { TSchema } from 'typebox';
import type { Logger } from 'pino';
import type { Action } from '../core/action.js';
import type { ProviderResponse } from '../core/outcome.js';
import { SyError, type ErrorCode } from '../core/errors.js';

/** What a provider gets besides the action: a signal that fires on timeout or shutdown. */
export interface ExecuteContext {
  readonly signal: AbortSignal;
}

/**
 * Something that performs an action's side effect: POSTs a webhook, sends an email, calls an LLM.
 * `execute` resolves with what the destination answered, or throws a ProviderError saying
 * whether a retry may help. Providers never decide retries themselves; the executor does.
 */
export interface Provider {
  readonly name: string;
  readonly type: string;
  execute(action: Action, ctx: ExecuteContext): Promise<ProviderResponse>;
  /** Finish in-flight work and release connections. */
  close?(): Promise<void>;
}

/** Everything a provider factory may use besides its own config. */
export interface ProviderFactoryContext {
  readonly logger: Logger;
}

/**
 * A kind of provider (`webhook`, `log`, ...): the schema of its config block and a factory.
 * Config is validated against `configSchema` (with file/line errors) before `create` is called.
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

  constructor(
    code: ErrorCode,
    message: string,
    opts: { transient: boolean; response?: ProviderResponse; cause?: unknown },
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
  }
}
