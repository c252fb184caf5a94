import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Action } from '../core/action.js';
import type { Clock } from '../core/clock.js';
import { SyError, isSyError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { decodeCursor, encodeCursor } from '../core/cursor.js';
import type {
  AttemptError,
  CircuitOpenOutcome,
  ExecutedOutcome,
  FailedOutcome,
  OutcomeError,
  ProviderResponse,
  RetryingOutcome,
  ThrottledOutcome,
} from '../core/outcome.js';
import {
  ProviderError,
  ProviderThrottledError,
  signalError,
  type Provider,
} from '../providers/provider.js';
import type { ProviderRegistry } from '../providers/registry.js';
import {
  compileText,
  renderOrThrow,
  templateView,
  type TextTemplate,
} from '../providers/template.js';
import type { DueItem, GateResult, StateStore } from '../state/store.js';
import { backoffMs } from './backoff.js';
import { CircuitBreaker, type BreakerSnapshot, type CircuitState } from './breaker.js';
import {
  DLQ_QUEUE,
  MAX_ERRORS,
  RETRY_QUEUE,
  retryIdOf,
  type DeadLetter,
  type DeadLetterReason,
  type Job,
  type SettleContext,
} from './jobs.js';
import { Limiter } from './limiter.js';
import { PauseBoard } from './pauses.js';
import { DEFAULT_POLICY, resolvePolicy, splitPolicy, type ProviderPolicy } from './policy.js';

export type { Job, SettleContext, DeadLetter } from './jobs.js';

/** What one execution ends with. */
export type RunOutcome =
  ExecutedOutcome | FailedOutcome | RetryingOutcome | CircuitOpenOutcome | ThrottledOutcome;

/** Receives executor events (the gateway's metrics implement it). */
export interface ExecutorObserver {
  observeProvider(provider: string, outcome: 'executed' | 'failed', seconds: number): void;
  countAttempt(provider: string, result: 'success' | 'transient' | 'terminal'): void;
  countRetryScheduled(provider: string): void;
  countDeadLetter(provider: string): void;
  countOverloaded(provider: string): void;
  circuitChanged(provider: string, to: CircuitState): void;
  trackExecutor(read: () => ProviderStatus[]): void;
}

export interface ExecutorConfig {
  /** Calls running at once on this node, all providers together. */
  concurrency: number;
  /** Calls waiting for a global slot before dispatch answers 503. */
  queue: number;
  /** How long a synchronous dispatch waits for retries before answering `retrying`. */
  deadlineMs: number;
  /** How often this node looks for due retries. */
  pollIntervalMs: number;
  /** Due retries claimed per poll. */
  batch: number;
}

export const DEFAULT_EXECUTOR_CONFIG: ExecutorConfig = {
  concurrency: 1024,
  queue: 10_000,
  deadlineMs: 10_000,
  pollIntervalMs: 1000,
  batch: 64,
};

export interface ProviderStatus {
  name: string;
  type: string;
  circuit: BreakerSnapshot | undefined;
  concurrency: { limit: number; running: number; queued: number; queue: number };
  /** Pauses in force on this node (Retry-After from the destination). */
  pauses: { key: string; until: number }[];
  policy: ProviderPolicy;
}

/** One finished attempt, for the audit trail. */
export interface AttemptInfo {
  job: Job;
  provider: string;
  result: 'success' | 'transient' | 'terminal';
  status: number | undefined;
  error: OutcomeError | undefined;
  /** Epoch ms when the attempt ended. */
  at: number;
  durationMs: number;
}

export interface ExecutorOptions {
  providers: ProviderRegistry;
  /** Provider config entries (policy keys are read from them). */
  providerConfigs: Record<string, Record<string, unknown>>;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  observer: ExecutorObserver;
  config: ExecutorConfig;
  /** Called when a retried or replayed action reaches its final outcome off the request path. */
  complete: (job: Job, outcome: RunOutcome, kind: 'decision' | 'replay') => void;
  /** Called after every attempt (the audit trail); undefined = nobody listens. */
  onAttempt?: ((attempt: AttemptInfo) => void) | undefined;
  random?: () => number;
  /** This node's id (claims of the retry queue, audit records). Default host:pid:random. */
  nodeId?: string;
}

interface Mode {
  /** True in the retry worker: never sleep, reschedule instead. */
  worker: boolean;
  /** Epoch ms after which a synchronous caller stops waiting. */
  deadline: number;
  /** performance.now() when the action was accepted (for durationMs). */
  startedAt: number;
  /** The due item this run holds (worker) or its safety-net copy (sync), if any. */
  durable: 'claimed' | 'net' | undefined;
}

/** Margin for store round trips and scheduling around the deadline and the claim lease. */
const NET_SLACK_MS = 5000;

/** No concurrency slot came free before the deadline (nothing ran). */
class SlotTimeout extends Error {}

/**
 * Runs actions on providers under each provider's policy: concurrency limits (global and per
 * provider, with bounded queues), a timeout per attempt and per action, retries with exponential
 * backoff and full jitter (Retry-After honoured), a circuit breaker, a fallback chain, fleet-wide
 * pauses and rate limits, and a dead-letter queue.
 *
 * A synchronous dispatch waits for retries up to `deadlineMs`; retries due later are written to
 * the state store's `retry` queue and the caller gets `retrying`. Every node polls that queue,
 * so a restart (or another node) finishes them. Inline retries also leave a copy in the queue,
 * due a little after the inline attempt would have ended, so a crash mid-backoff loses nothing.
 */
export class Executor {
  readonly nodeId: string;
  private readonly policies = new Map<string, ProviderPolicy>();
  private readonly limiters = new Map<string, Limiter>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly rateKeys = new Map<string, TextTemplate>();
  private readonly global: Limiter;
  private readonly pauses: PauseBoard;
  private readonly stopping = new AbortController();
  private readonly random: () => number;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private readonly running = new Set<Promise<unknown>>();
  private closed = false;
  private maxTimeout: number | undefined;

  constructor(
    private readonly opts: ExecutorOptions,
    /** Fires when shutdown gives up waiting: providers abort what is still running. */
    private readonly abortSignal: AbortSignal,
  ) {
    this.nodeId = opts.nodeId ?? `${hostname()}:${process.pid}:${newId().slice(-6)}`;
    this.random = opts.random ?? Math.random;
    this.global = new Limiter('the executor', opts.config.concurrency, opts.config.queue);
    this.pauses = new PauseBoard(opts.state);
    opts.observer.trackExecutor(() => this.status());
  }

  /** The resolved policy of a provider (defaults for built-ins and code-registered ones). */
  policy(name: string): ProviderPolicy {
    let p = this.policies.get(name);
    if (p === undefined) {
      const entry = this.opts.providerConfigs[name];
      p = entry === undefined ? DEFAULT_POLICY : resolvePolicy(splitPolicy(entry).policy);
      this.policies.set(name, p);
    }
    return p;
  }

  /** Starts polling the durable retry queue. */
  start(): void {
    if (this.pollTimer !== undefined || this.closed) return;
    const tick = (): void => {
      if (this.polling !== undefined || this.closed) return;
      this.polling = this.poll()
        .catch((err: unknown) => this.opts.logger.warn({ err }, 'retry poll failed'))
        .finally(() => (this.polling = undefined));
    };
    this.pollTimer = setInterval(tick, this.opts.config.pollIntervalMs);
    this.pollTimer.unref();
    tick();
  }

  /**
   * Runs a freshly accepted action. Throws SY_ERR_OVERLOADED (nothing ran) when the queues are
   * full; every other result is an outcome.
   */
  run(action: Action, settle: SettleContext, startedAt: number): Promise<RunOutcome> {
    const now = this.opts.clock.now();
    const job: Job = {
      v: 1,
      action,
      provider: action.provider,
      fallbacks: this.fallbackChain(action.provider),
      attempts: 0,
      providerAttempts: 0,
      errors: [],
      startedAt: now,
      settle,
      replays: 0,
    };
    const mode: Mode = {
      worker: false,
      deadline: now + this.opts.config.deadlineMs,
      startedAt,
      durable: undefined,
    };
    // Fast path for providers that do no I/O (log, noop) with nothing to wait for: one call, no
    // limiter, no timer. Any failure continues in the full loop.
    const provider = this.opts.providers.get(action.provider);
    if (provider?.inline === true) {
      const policy = this.policy(provider.name);
      const breaker = this.breaker(provider.name);
      if (
        policy.rateLimit === undefined &&
        policy.actionTimeoutMs === undefined &&
        (breaker === undefined || breaker.current === 'closed')
      ) {
        return this.runInline(provider, job, mode, policy, breaker);
      }
    }
    return this.drive(job, mode);
  }

  // ---------------------------------------------------------------------------------------------
  // The attempt loop

  private async drive(job: Job, mode: Mode): Promise<RunOutcome> {
    const { clock } = this.opts;
    for (;;) {
      const now = clock.now();
      const name = job.provider;
      const provider = this.opts.providers.get(name);
      if (provider === undefined) {
        // A fallback or a stored job naming a provider removed from the config since.
        const err = new SyError('SY_ERR_UNKNOWN_PROVIDER', `provider "${name}" is not configured`);
        this.addError(job, name, toOutcomeError(err), now);
        if (this.nextFallback(job)) continue;
        return this.deadLetter(job, 'terminal', toOutcomeError(err), mode);
      }
      const policy = this.policy(name);
      if (policy.actionTimeoutMs !== undefined && now - job.startedAt >= policy.actionTimeoutMs) {
        return this.deadLetter(job, 'timeout', this.timeoutError(job, policy), mode);
      }

      const breaker = this.breaker(name);
      if (breaker !== undefined && !breaker.allow(now)) {
        if (this.nextFallback(job)) continue;
        const wait = Math.max(1, breaker.retryAfterMs(now));
        // A fresh action fails fast; one already in progress waits for the breaker.
        if (job.attempts === 0 && !mode.worker) return this.circuitOpen(job, wait, mode);
        const parked = await this.waitOrPark(job, mode, now + wait, false);
        if (parked !== undefined) return parked;
        continue;
      }

      // Inline providers (log, noop) never answer 429: no pause to look up unless rate-limited.
      let waitUntil = 0;
      if (provider.inline !== true || policy.rateLimit !== undefined) {
        try {
          waitUntil = await this.rateWait(name, policy, job.action, now);
        } catch (err) {
          breaker?.cancel();
          // A rate key that does not render fails the action; a store error before anything
          // ran is the caller's 503 (fresh) or a later retry (in progress).
          if (isSyError(err) && err.code === 'SY_ERR_TEMPLATE') {
            return this.deadLetter(job, 'terminal', toOutcomeError(err), mode);
          }
          if (job.attempts === 0 && !mode.worker) throw err;
          return this.park(job, mode, now + 1000);
        }
      }
      if (waitUntil > 0) {
        breaker?.cancel();
        const parked = await this.waitOrPark(job, mode, waitUntil, false);
        if (parked !== undefined) return parked;
        continue;
      }

      let response: ProviderResponse;
      const t0 = performance.now();
      try {
        response = await this.attempt(provider, policy, job, mode.deadline);
      } catch (err) {
        const done = await this.failed(job, mode, err, policy, breaker, t0);
        if (done !== undefined) return done;
        continue;
      }
      return this.executed(job, mode, response, t0, breaker);
    }
  }

  private async runInline(
    provider: Provider,
    job: Job,
    mode: Mode,
    policy: ProviderPolicy,
    breaker: CircuitBreaker | undefined,
  ): Promise<RunOutcome> {
    job.attempts = 1;
    job.providerAttempts = 1;
    const t0 = performance.now();
    let response: ProviderResponse;
    try {
      response = await provider.execute(job.action, { signal: this.abortSignal, attempt: 1 });
    } catch (err) {
      return (await this.failed(job, mode, err, policy, breaker, t0)) ?? this.drive(job, mode);
    }
    return this.executed(job, mode, response, t0, breaker);
  }

  private executed(
    job: Job,
    mode: Mode,
    response: ProviderResponse,
    t0: number,
    breaker: CircuitBreaker | undefined,
  ): RunOutcome | Promise<RunOutcome> {
    const name = job.provider;
    const seconds = (performance.now() - t0) / 1000;
    this.opts.observer.observeProvider(name, 'executed', seconds);
    this.opts.onAttempt?.({
      job,
      provider: name,
      result: 'success',
      status: response.status,
      error: undefined,
      at: this.opts.clock.now(),
      durationMs: Math.round(seconds * 1000),
    });
    this.opts.observer.countAttempt(name, 'success');
    breaker?.success(this.opts.clock.now());
    const outcome: ExecutedOutcome = {
      outcome: 'executed',
      actionId: job.action.id,
      provider: name,
      durationMs: this.duration(job, mode),
      response,
    };
    if (job.attempts > 1) outcome.attempts = job.attempts;
    if (name !== job.action.provider) outcome.fallbackFrom = job.action.provider;
    return this.finish(job, mode, outcome);
  }

  /**
   * After a failed attempt: classify, count, pause, then retry (sleep or park), fall back, or
   * dead-letter. Returns the final outcome, or undefined when the attempt loop should go on.
   */
  private async failed(
    job: Job,
    mode: Mode,
    err: unknown,
    policy: ProviderPolicy,
    breaker: CircuitBreaker | undefined,
    t0: number,
  ): Promise<RunOutcome | undefined> {
    const { clock } = this.opts;
    const name = job.provider;
    if (err instanceof SlotTimeout) {
      // No slot before the deadline: nothing ran; wait in the retry queue (due now, so any node
      // with a free slot may take it).
      breaker?.cancel();
      this.opts.observer.countOverloaded(name);
      return this.park(job, mode, clock.now());
    }
    if (isSyError(err) && err.code === 'SY_ERR_OVERLOADED') {
      breaker?.cancel();
      this.opts.observer.countOverloaded(name);
      // Nothing ran: a fresh synchronous action is refused (503), a retry tries again later.
      if (job.attempts === 0 && !mode.worker) throw err;
      const parked = await this.waitOrPark(job, mode, clock.now() + 1000, false);
      if (parked !== undefined) return parked;
      return undefined;
    }
    const seconds = (performance.now() - t0) / 1000;
    this.opts.observer.observeProvider(name, 'failed', seconds);
    const after = clock.now();
    if (err instanceof ProviderThrottledError) {
      breaker?.cancel();
      return this.finish(job, mode, this.throttled(job, err, mode));
    }
    const error = toOutcomeError(err);
    const pe = err instanceof ProviderError ? err : undefined;
    this.addError(job, name, error, after);
    this.opts.logger.warn(
      {
        actionId: job.action.id,
        provider: name,
        attempt: job.attempts,
        code: error.code,
        status: error.status,
      },
      'provider attempt failed',
    );
    this.opts.onAttempt?.({
      job,
      provider: name,
      result: error.transient ? 'transient' : 'terminal',
      status: error.status,
      error,
      at: after,
      durationMs: Math.round(seconds * 1000),
    });
    if (error.transient) {
      breaker?.failure(after);
      this.opts.observer.countAttempt(name, 'transient');
    } else {
      // The destination answered: it is up, whatever it thought of this action.
      breaker?.success(after);
      this.opts.observer.countAttempt(name, 'terminal');
    }
    const retryAfter = pe?.retryAfterMs;
    if (retryAfter !== undefined && (error.status === 429 || error.status === 503)) {
      await this.pauses.pause(
        name,
        this.rateKey(name, policy, job.action),
        after + retryAfter,
        after,
      );
    }
    if (error.transient && job.providerAttempts < policy.retry.attempts) {
      const delay =
        retryAfter ??
        backoffMs(job.providerAttempts, policy.retry.baseMs, policy.retry.maxMs, this.random);
      const due = after + delay;
      if (policy.actionTimeoutMs !== undefined && due - job.startedAt >= policy.actionTimeoutMs) {
        if (this.nextFallback(job)) return undefined;
        return this.deadLetter(job, 'timeout', this.timeoutError(job, policy), mode, pe);
      }
      this.opts.observer.countRetryScheduled(name);
      const parked = await this.waitOrPark(job, mode, due, true);
      if (parked !== undefined) return parked;
      return undefined;
    }
    if (this.nextFallback(job)) return undefined;
    // The failure is what the provider did last; `attempts` and `errors` tell the rest.
    const final: OutcomeError =
      job.attempts > 1
        ? { ...error, message: `after ${job.attempts} attempts: ${error.message}` }
        : error;
    return this.deadLetter(job, error.transient ? 'exhausted' : 'terminal', final, mode, pe);
  }

  /**
   * One attempt under the concurrency limits and the attempt timeout. The provider's own slot is
   * taken before the global one, so actions queued for a slow provider hold no global slot.
   * Throws SY_ERR_OVERLOADED (before counting an attempt) when a queue is full.
   */
  private async attempt(
    provider: Provider,
    policy: ProviderPolicy,
    job: Job,
    deadline: number,
  ): Promise<ProviderResponse> {
    const action =
      provider.name === job.action.provider
        ? job.action
        : { ...job.action, provider: provider.name };
    if (provider.inline === true) {
      job.attempts++;
      job.providerAttempts++;
      return provider.execute(action, { signal: this.abortSignal, attempt: job.attempts });
    }
    const own = this.limiter(provider.name, policy);
    // Waiting for a slot is bounded by the deadline: past it the action waits in the retry queue.
    const budget = (): number => deadline - this.opts.clock.now();
    const waitOwn = own.acquire(budget());
    if (waitOwn !== undefined && !(await waitOwn)) throw new SlotTimeout();
    try {
      const waitGlobal = this.global.acquire(budget());
      if (waitGlobal !== undefined && !(await waitGlobal)) throw new SlotTimeout();
      try {
        job.attempts++;
        job.providerAttempts++;
        return await this.withTimeout(provider, action, policy.timeoutMs, job.attempts);
      } finally {
        this.global.release();
      }
    } finally {
      own.release();
    }
  }

  private withTimeout(
    provider: Provider,
    action: Action,
    timeoutMs: number,
    attempt: number,
  ): Promise<ProviderResponse> {
    const ctl = new AbortController();
    const signal = AbortSignal.any([ctl.signal, this.abortSignal]);
    return new Promise<ProviderResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new ProviderError(
          'SY_ERR_PROVIDER_TIMEOUT',
          `provider "${provider.name}" did not answer within ${timeoutMs}ms`,
          { transient: true },
        );
        ctl.abort(err);
        reject(err);
      }, timeoutMs);
      const onAbort = (): void => reject(signalError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      provider.execute(action, { signal, attempt }).then(
        (r) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        (err: unknown) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /**
   * The next attempt is due at `due`. A synchronous caller with time left sleeps (leaving a
   * safety-net copy in the retry queue when `net`); otherwise the job is written to the retry
   * queue and the caller gets `retrying`. Returns undefined when the loop should go on.
   */
  private async waitOrPark(
    job: Job,
    mode: Mode,
    due: number,
    net: boolean,
  ): Promise<RunOutcome | undefined> {
    const now = this.opts.clock.now();
    if (!mode.worker && due <= mode.deadline && !this.stopping.signal.aborted) {
      if (net && mode.durable === undefined) {
        // Everything inline ends by the deadline plus one attempt: slot waits and sleeps are
        // bounded by the deadline, an attempt by its timeout. Only after that can the copy
        // come due, so no node runs it while this one still may.
        try {
          await this.opts.state.putDue(
            RETRY_QUEUE,
            retryIdOf(job.action),
            mode.deadline + this.maxTimeoutMs() + NET_SLACK_MS,
            JSON.stringify(job),
          );
          mode.durable = 'net';
        } catch (err) {
          // The inline retry still happens; only its crash safety is lost.
          this.opts.logger.warn({ err, actionId: job.action.id }, 'retry safety net not written');
        }
      }
      try {
        await sleep(Math.max(0, due - now), undefined, {
          signal: this.stopping.signal,
          ref: false,
        });
        return undefined;
      } catch {
        // Shutting down: park it for whichever node runs next.
      }
    }
    return this.park(job, mode, due);
  }

  /** Writes the job to the retry queue, due at `due`, and answers `retrying`. */
  private async park(job: Job, mode: Mode, due: number): Promise<RunOutcome> {
    const id = retryIdOf(job.action);
    try {
      if (mode.durable === 'claimed') {
        await this.opts.state.rescheduleDue(RETRY_QUEUE, id, this.nodeId, due, JSON.stringify(job));
      } else {
        await this.opts.state.putDue(RETRY_QUEUE, id, due, JSON.stringify(job));
      }
    } catch (err) {
      if (mode.worker) throw err; // the claim expires and another poll retries it
      this.opts.logger.error({ err, actionId: job.action.id }, 'retry could not be queued');
      return this.deadLetter(
        job,
        'exhausted',
        {
          code: 'SY_ERR_STATE_UNAVAILABLE',
          message: `the retry could not be queued: ${(err as Error).message}`,
          transient: true,
        },
        mode,
      );
    }
    const last = job.errors.at(-1);
    const outcome: RetryingOutcome = {
      outcome: 'retrying',
      actionId: job.action.id,
      provider: job.provider,
      durationMs: this.duration(job, mode),
      attempts: job.attempts,
      nextAttemptAt: new Date(due).toISOString(),
    };
    if (last !== undefined) {
      const { attempt: _a, provider: _p, at: _t, ...error } = last;
      outcome.error = error;
    }
    // Parked: the queue holds it now (a worker's claim was moved with it).
    mode.durable = undefined;
    return outcome;
  }

  /** The longest attempt timeout of the providers that have one (inline ones have none). */
  private maxTimeoutMs(): number {
    if (this.maxTimeout === undefined) {
      let max = 1000;
      for (const name of this.opts.providers.names()) {
        if (this.opts.providers.get(name)?.inline !== true)
          max = Math.max(max, this.policy(name).timeoutMs);
      }
      this.maxTimeout = max;
    }
    return this.maxTimeout;
  }

  /** Final outcome: drop the durable copy, tell the pipeline when off the request path. */
  private finish<O extends RunOutcome>(job: Job, mode: Mode, outcome: O): O | Promise<O> {
    if (mode.durable === undefined) {
      if (mode.worker) this.opts.complete(job, outcome, 'decision');
      return outcome;
    }
    return this.finishDurable(job, mode, outcome);
  }

  private async finishDurable<O extends RunOutcome>(job: Job, mode: Mode, outcome: O): Promise<O> {
    const id = retryIdOf(job.action);
    try {
      if (mode.durable === 'claimed') await this.opts.state.ackDue(RETRY_QUEUE, id, this.nodeId);
      else if (mode.durable === 'net') await this.opts.state.removeDue(RETRY_QUEUE, id);
    } catch (err) {
      this.opts.logger.error({ err, actionId: job.action.id }, 'retry queue cleanup failed');
    }
    mode.durable = undefined;
    if (mode.worker) this.opts.complete(job, outcome, 'decision');
    return outcome;
  }

  private async deadLetter(
    job: Job,
    reason: DeadLetterReason,
    error: OutcomeError,
    mode: Mode,
    last?: ProviderError,
  ): Promise<RunOutcome> {
    const now = this.opts.clock.now();
    const policy = this.policy(job.provider);
    const outcome: FailedOutcome = {
      outcome: 'failed',
      actionId: job.action.id,
      provider: job.provider,
      durationMs: this.duration(job, mode),
      error,
      attempts: job.attempts,
      errors: job.errors,
    };
    if (last?.response !== undefined) outcome.response = last.response;
    if (job.provider !== job.action.provider) outcome.fallbackFrom = job.action.provider;
    if (policy.dlq.enabled) {
      const entry: DeadLetter = {
        id: newId(),
        reason,
        failedAt: now,
        provider: job.provider,
        error,
        job,
      };
      try {
        await this.opts.state.putDue(DLQ_QUEUE, entry.id, now, JSON.stringify(entry));
        outcome.deadLetterId = entry.id;
        this.opts.observer.countDeadLetter(job.provider);
      } catch (err) {
        this.opts.logger.error({ err, actionId: job.action.id }, 'dead-letter write failed');
      }
    }
    return this.finish(job, mode, outcome);
  }

  private circuitOpen(
    job: Job,
    retryAfterMs: number,
    mode: Mode,
  ): RunOutcome | Promise<RunOutcome> {
    const outcome: CircuitOpenOutcome = {
      outcome: 'circuit_open',
      actionId: job.action.id,
      provider: job.action.provider,
      durationMs: this.duration(job, mode),
      retryAfterMs,
      error: {
        code: 'SY_ERR_CIRCUIT_OPEN',
        message: `the circuit breaker of provider "${job.action.provider}" is open after repeated failures${job.action.provider === job.provider ? '' : ', and so are the breakers of its fallbacks'}; retry after ${retryAfterMs}ms`,
        transient: true,
      },
    };
    return this.finish(job, mode, outcome);
  }

  private throttled(job: Job, err: ProviderThrottledError, mode: Mode): ThrottledOutcome {
    return {
      outcome: 'throttled',
      actionId: job.action.id,
      provider: job.provider,
      durationMs: this.duration(job, mode),
      budget: err.throttle.budget,
      retryAfterMs: Math.ceil(err.throttle.retryAfterMs),
      limit: err.throttle.limit,
      windowMs: err.throttle.windowMs,
    };
  }

  private timeoutError(job: Job, policy: ProviderPolicy): OutcomeError {
    return {
      code: 'SY_ERR_RETRIES_EXHAUSTED',
      message: `the action timeout of provider "${job.provider}" (${policy.actionTimeoutMs}ms) passed after ${job.attempts} attempts`,
      transient: true,
    };
  }

  private addError(job: Job, provider: string, error: OutcomeError, at: number): void {
    job.errors.push({ attempt: job.attempts, provider, at: new Date(at).toISOString(), ...error });
    if (job.errors.length > MAX_ERRORS) job.errors.splice(0, job.errors.length - MAX_ERRORS);
  }

  private nextFallback(job: Job): boolean {
    const next = job.fallbacks[0];
    if (next === undefined) return false;
    job.fallbacks = job.fallbacks.slice(1);
    job.provider = next;
    job.providerAttempts = 0;
    return true;
  }

  private readonly chains = new Map<string, readonly string[]>();

  /**
   * A provider's fallbacks, depth first, each once, never the provider itself. Cached and shared:
   * nextFallback() replaces a job's array instead of changing it.
   */
  private fallbackChain(name: string): string[] {
    let chain = this.chains.get(name);
    if (chain === undefined) {
      chain = this.computeChain(name);
      this.chains.set(name, chain);
    }
    return chain as string[];
  }

  private computeChain(name: string): string[] {
    const out: string[] = [];
    const seen = new Set([name]);
    const walk = (at: string): void => {
      for (const f of this.policy(at).fallback) {
        if (seen.has(f)) continue;
        seen.add(f);
        out.push(f);
        walk(f);
      }
    };
    walk(name);
    return out;
  }

  private duration(job: Job, mode: Mode): number {
    return mode.worker
      ? Math.max(0, this.opts.clock.now() - job.action.receivedAt)
      : Math.round(performance.now() - mode.startedAt);
  }

  // ---------------------------------------------------------------------------------------------
  // Pauses and rate limits

  private rateKey(name: string, policy: ProviderPolicy, action: Action): string {
    const source = policy.rateLimit?.key;
    if (source === undefined) return '';
    let t = this.rateKeys.get(name);
    if (t === undefined) {
      t = compileText(source, `providers.${name}.rateLimit.key`);
      this.rateKeys.set(name, t);
    }
    const tmpl = t;
    return renderOrThrow(() => tmpl(templateView(action)), `providers.${name}.rateLimit.key`);
  }

  /** Epoch ms to wait until (0 = go now): a pause from the destination, or our own rate limit. */
  private async rateWait(
    name: string,
    policy: ProviderPolicy,
    action: Action,
    now: number,
  ): Promise<number> {
    const key = this.rateKey(name, policy, action);
    const paused = await this.pauses.until(name, key, now);
    if (paused > now) return paused;
    if (policy.rateLimit === undefined) return 0;
    const result = await this.rateGate(name, key, policy.rateLimit, now);
    if (result.pass) return 0;
    return now + Math.max(1, Math.ceil((result as { retryAfterMs: number }).retryAfterMs));
  }

  private async rateGate(
    name: string,
    key: string,
    limit: { limit: number; windowMs: number },
    now: number,
  ): Promise<GateResult> {
    try {
      return await this.opts.state.gate(
        [
          {
            kind: 'throttle',
            key: `rl|${name}|${key}`,
            limits: [{ limit: limit.limit, windowMs: limit.windowMs }],
          },
        ],
        now,
      );
    } catch (err) {
      throw new SyError(
        'SY_ERR_STATE_UNAVAILABLE',
        `the ${this.opts.state.backend} state store is unavailable (rate limit of provider "${name}"): ${(err as Error).message}`,
        { backend: this.opts.state.backend, operation: 'rateLimit', retryAfterMs: 1000 },
        { cause: err },
      );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The durable retry queue

  /**
   * Claims due retries, up to `batch` running on this node at once, and starts them without
   * waiting: one slow provider's retries do not hold up the others'. The claim's lease covers a
   * slot wait (bounded by NET_SLACK_MS) plus the longest attempt timeout.
   */
  private async poll(): Promise<void> {
    const { state, clock, config } = this.opts;
    const room = config.batch - this.running.size;
    if (room <= 0) return;
    const items = await state.claimDue(
      RETRY_QUEUE,
      room,
      this.nodeId,
      this.maxTimeoutMs() + NET_SLACK_MS * 2,
      clock.now(),
    );
    for (const item of items) void this.track(this.resume(item));
  }

  private async resume(item: DueItem): Promise<void> {
    let job: Job;
    try {
      job = JSON.parse(item.payload) as Job;
    } catch (err) {
      this.opts.logger.error({ err, id: item.id }, 'unreadable retry item dropped');
      await this.opts.state.ackDue(RETRY_QUEUE, item.id, this.nodeId);
      return;
    }
    try {
      await this.drive(job, {
        worker: true,
        // In the worker the deadline bounds only the wait for a concurrency slot.
        deadline: this.opts.clock.now() + NET_SLACK_MS,
        startedAt: performance.now(),
        durable: 'claimed',
      });
    } catch (err) {
      // The claim expires and another poll tries again.
      this.opts.logger.error({ err, actionId: job.action.id }, 'retry failed to run');
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    void p.finally(() => this.running.delete(p)).catch(() => {});
    return p;
  }

  // ---------------------------------------------------------------------------------------------
  // Dead letters

  async listDeadLetters(
    filter: DeadLetterFilter,
    limit: number,
    cursor: string | undefined,
  ): Promise<{ items: DeadLetter[]; nextCursor: string | null }> {
    const start = decodeCursor(cursor);
    let after = start === undefined ? undefined : { dueAt: start.at, id: start.id };
    const items: DeadLetter[] = [];
    // Filters apply after reading: scan pages until the page is full or the queue ends.
    for (let pages = 0; pages < 1000; pages++) {
      const page = await this.opts.state.listDue(DLQ_QUEUE, {
        limit: Math.max(limit, 100),
        ...(after === undefined ? {} : { after }),
      });
      for (const item of page) {
        after = { dueAt: item.dueAt, id: item.id };
        const entry = parseDeadLetter(item);
        if (entry !== undefined && matches(entry, filter)) {
          items.push(entry);
          if (items.length === limit)
            return { items, nextCursor: encodeCursor(after.dueAt, after.id) };
        }
      }
      if (page.length < Math.max(limit, 100)) break;
    }
    return { items, nextCursor: null };
  }

  async getDeadLetter(id: string): Promise<DeadLetter> {
    const item = await this.opts.state.getDue(DLQ_QUEUE, id);
    const entry = item === undefined ? undefined : parseDeadLetter(item);
    if (entry === undefined) {
      throw new SyError('SY_ERR_DLQ_NOT_FOUND', `no dead-letter entry has id "${id}"`, { id });
    }
    return entry;
  }

  async discardDeadLetter(id: string): Promise<void> {
    if (!(await this.opts.state.removeDue(DLQ_QUEUE, id))) {
      throw new SyError('SY_ERR_DLQ_NOT_FOUND', `no dead-letter entry has id "${id}"`, { id });
    }
  }

  async countDeadLetters(): Promise<number> {
    return this.opts.state.countDue(DLQ_QUEUE);
  }

  /**
   * Replays one entry now, as a synchronous dispatch would run it (fresh attempts, the same
   * provider chain); the entry leaves the DLQ first, so two replays never both run it.
   */
  async replayDeadLetter(id: string): Promise<RunOutcome> {
    const entry = await this.getDeadLetter(id);
    const job = this.revive(entry);
    // Durable before the entry leaves the DLQ: a crash now leaves a due retry, not nothing.
    const now = this.opts.clock.now();
    await this.opts.state.putDue(
      RETRY_QUEUE,
      retryIdOf(job.action),
      now + this.opts.config.deadlineMs + this.maxTimeoutMs() + NET_SLACK_MS,
      JSON.stringify(job),
    );
    if (!(await this.opts.state.removeDue(DLQ_QUEUE, id))) {
      throw new SyError('SY_ERR_DLQ_NOT_FOUND', `no dead-letter entry has id "${id}"`, { id });
    }
    const outcome = await this.drive(job, {
      worker: false,
      deadline: now + this.opts.config.deadlineMs,
      startedAt: performance.now(),
      durable: 'net',
    });
    if (outcome.outcome !== 'retrying') this.opts.complete(job, outcome, 'replay');
    return outcome;
  }

  /** Replays every entry matching `filter` through the retry queue; returns how many. */
  async replayDeadLetters(filter: DeadLetterFilter): Promise<number> {
    let n = 0;
    let cursor: string | undefined;
    do {
      const page = await this.listDeadLetters(filter, 500, cursor);
      const now = this.opts.clock.now();
      for (const entry of page.items) {
        const job = this.revive(entry);
        await this.opts.state.putDue(RETRY_QUEUE, retryIdOf(job.action), now, JSON.stringify(job));
        if (await this.opts.state.removeDue(DLQ_QUEUE, entry.id)) n++;
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    if (n > 0) this.start();
    return n;
  }

  async discardDeadLetters(filter: DeadLetterFilter): Promise<number> {
    let n = 0;
    let cursor: string | undefined;
    do {
      const page = await this.listDeadLetters(filter, 500, cursor);
      for (const entry of page.items) if (await this.opts.state.removeDue(DLQ_QUEUE, entry.id)) n++;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    return n;
  }

  private revive(entry: DeadLetter): Job {
    const job = entry.job;
    return {
      ...job,
      provider: job.action.provider,
      fallbacks: this.fallbackChain(job.action.provider),
      providerAttempts: 0,
      startedAt: this.opts.clock.now(),
      replays: job.replays + 1,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Breakers, limiters, status

  private breaker(name: string): CircuitBreaker | undefined {
    let b = this.breakers.get(name);
    if (b === undefined) {
      const policy = this.policy(name);
      if (policy.breaker === undefined) return undefined;
      b = new CircuitBreaker(policy.breaker, (to, from) => this.onCircuit(name, to, from));
      this.breakers.set(name, b);
    }
    return b;
  }

  private onCircuit(name: string, to: CircuitState, from: CircuitState): void {
    this.opts.observer.circuitChanged(name, to);
    this.opts.logger.warn({ provider: name, from, to }, 'circuit breaker changed state');
    if (to === 'closed' && from === 'half_open' && this.policy(name).dlq.autoReplay) {
      void this.replayDeadLetters({ provider: name })
        .then((n) => {
          if (n > 0)
            this.opts.logger.info({ provider: name, replayed: n }, 'dead letters replayed');
        })
        .catch((err: unknown) =>
          this.opts.logger.error({ err, provider: name }, 'dead-letter auto-replay failed'),
        );
    }
  }

  private limiter(name: string, policy: ProviderPolicy): Limiter {
    let l = this.limiters.get(name);
    if (l === undefined) {
      l = new Limiter(`provider "${name}"`, policy.concurrency.limit, policy.concurrency.queue);
      this.limiters.set(name, l);
    }
    return l;
  }

  /** Closes a provider's breaker by hand and forgets its local pauses. */
  resetCircuit(name: string): void {
    this.breaker(name)?.reset(this.opts.clock.now());
    this.pauses.clear(name);
  }

  status(): ProviderStatus[] {
    const now = this.opts.clock.now();
    return this.opts.providers.names().map((name) => {
      const provider = this.opts.providers.get(name) as Provider;
      const policy = this.policy(name);
      const l = this.limiters.get(name);
      return {
        name,
        type: provider.type,
        circuit: this.breaker(name)?.snapshot(now),
        concurrency: {
          limit: policy.concurrency.limit,
          running: l?.running ?? 0,
          queued: l?.queued ?? 0,
          queue: policy.concurrency.queue,
        },
        pauses: this.pauses.active(name, now),
        policy,
      };
    });
  }

  /** Stops polling and parks sleeping retries; waits for retries this node is running. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.stopping.abort();
    await this.polling;
    await Promise.allSettled([...this.running]);
  }
}

export interface DeadLetterFilter {
  provider?: string | undefined;
  tenant?: string | undefined;
  namespace?: string | undefined;
  actionType?: string | undefined;
  reason?: string | undefined;
}

function matches(entry: DeadLetter, f: DeadLetterFilter): boolean {
  const a = entry.job.action;
  return (
    (f.provider === undefined || entry.provider === f.provider || a.provider === f.provider) &&
    (f.tenant === undefined || a.tenant === f.tenant) &&
    (f.namespace === undefined || a.namespace === f.namespace) &&
    (f.actionType === undefined || a.actionType === f.actionType) &&
    (f.reason === undefined || entry.reason === f.reason)
  );
}

function parseDeadLetter(item: DueItem): DeadLetter | undefined {
  try {
    return JSON.parse(item.payload) as DeadLetter;
  } catch {
    return undefined;
  }
}

export function toOutcomeError(err: unknown): OutcomeError {
  if (err instanceof ProviderError) {
    const error: OutcomeError = { code: err.code, message: err.message, transient: err.transient };
    if (err.response?.status !== undefined) error.status = err.response.status;
    return error;
  }
  if (isSyError(err)) return { code: err.code, message: err.message, transient: false };
  return {
    code: 'SY_ERR_PROVIDER_FAILED',
    message: err instanceof Error ? err.message : String(err),
    transient: false,
  };
}

export type { AttemptError };
