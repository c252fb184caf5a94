import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Action } from '../core/action.js';
import type { ExecutedOutcome, FailedOutcome } from '../core/outcome.js';
import { ProviderError, type ExecuteContext, type Provider } from '../providers/provider.js';

/** Receives provider timings (the gateway's metrics implement it). */
export interface ExecutorObserver {
  observeProvider(provider: string, outcome: 'executed' | 'failed', seconds: number): void;
}

/**
 * Runs an action on a provider and turns what happened into an outcome. This is where the
 * resilience policies attach (concurrency limits, per-attempt timeouts, retries with backoff,
 * circuit breakers, fallbacks, dead letters); today it runs one attempt.
 */
export class Executor {
  private readonly ctx: ExecuteContext;

  constructor(
    private readonly metrics: ExecutorObserver,
    private readonly logger: Logger,
    /** Fires when shutdown gives up waiting: providers abort what is still running. */
    abortSignal: AbortSignal,
  ) {
    this.ctx = { signal: abortSignal, attempt: 1 };
  }

  async run(
    action: Action,
    provider: Provider,
    startedAt: number,
  ): Promise<ExecutedOutcome | FailedOutcome> {
    const t0 = performance.now();
    try {
      const response = await provider.execute(action, this.ctx);
      const t1 = performance.now();
      this.metrics.observeProvider(provider.name, 'executed', (t1 - t0) / 1000);
      return {
        outcome: 'executed',
        actionId: action.id,
        provider: provider.name,
        durationMs: Math.round(t1 - startedAt),
        response,
      };
    } catch (err) {
      const t1 = performance.now();
      this.metrics.observeProvider(provider.name, 'failed', (t1 - t0) / 1000);
      const failure = toFailure(err);
      this.logger.warn(
        {
          actionId: action.id,
          provider: provider.name,
          code: failure.code,
          status: failure.status,
        },
        'provider failed',
      );
      const outcome: FailedOutcome = {
        outcome: 'failed',
        actionId: action.id,
        provider: provider.name,
        durationMs: Math.round(t1 - startedAt),
        error: failure,
      };
      if (err instanceof ProviderError && err.response !== undefined)
        outcome.response = err.response;
      return outcome;
    }
  }
}

function toFailure(err: unknown): FailedOutcome['error'] {
  if (err instanceof ProviderError) {
    const error: FailedOutcome['error'] = {
      code: err.code,
      message: err.message,
      transient: err.transient,
    };
    if (err.response?.status !== undefined) error.status = err.response.status;
    return error;
  }
  return {
    code: 'SY_ERR_PROVIDER_FAILED',
    message: err instanceof Error ? err.message : String(err),
    transient: false,
  };
}
