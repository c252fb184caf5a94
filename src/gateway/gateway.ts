import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { ActionInputSchema, type Action, type ActionInput } from '../core/action.js';
import type { Outcome } from '../core/outcome.js';
import { SyError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { silentLogger } from '../core/logger.js';
import { compileAssert } from '../core/validate.js';
import { resolveConfig } from '../config/load.js';
import type { ConfigInput, ResolvedConfig } from '../config/schema.js';
import { Executor } from '../executor/executor.js';
import { ProviderRegistry, providerTypeMap } from '../providers/registry.js';
import type { Provider, ProviderType } from '../providers/provider.js';
import { noopAuditSink, type AuditSink } from '../audit/sink.js';
import { GatewayMetrics } from './metrics.js';
import { EMPTY_PLAN, type Plan } from './plan.js';

const actionValidator = compileAssert<ActionInput>(ActionInputSchema);

export type OutcomeListener = (outcome: Outcome, action: Action) => void;

export interface GatewayOptions {
  /** Provider instances by name, added to (or replacing) those built from config. */
  providers?: Record<string, Provider>;
  /** Provider types beyond the built-in ones, usable in config by `type`. */
  providerTypes?: readonly ProviderType<never>[];
  /** Where decisions are recorded. Default: nowhere. */
  audit?: AuditSink;
  /** Default: silent. The server passes its pino logger. */
  logger?: Logger;
  /** An existing metrics registry holder (the server shares one with its HTTP metrics). */
  metrics?: GatewayMetrics;
}

export interface Gateway {
  /** Validates and dispatches one action; resolves with its outcome. Throws SyError on bad input. */
  dispatch(input: unknown): Promise<Outcome>;
  /**
   * Validates every action first (nothing runs if one is invalid), then dispatches them
   * concurrently; outcomes come back in input order.
   */
  dispatchBatch(inputs: readonly unknown[]): Promise<Outcome[]>;
  /** Checks an action against the schema and the configured providers without dispatching it. */
  validate(input: unknown, field?: string): ActionInput;
  /** Dispatch for adapters that already validated the input with `validate`. */
  dispatchValidated(input: ActionInput): Promise<Outcome>;
  /** Called after every outcome; returns an unsubscribe function. */
  subscribe(listener: OutcomeListener): () => void;
  readonly config: ResolvedConfig;
  readonly metrics: GatewayMetrics;
  readonly providers: ProviderRegistry;
  /** Stops accepting actions, waits for in-flight ones (up to `timeoutMs`), closes providers. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Creates a gateway: the whole action pipeline in-process. The same engine serves HTTP, the CLI
 * and library callers.
 *
 * @example
 * const gw = createGateway({ providers: { hook: { type: 'webhook', url: 'http://127.0.0.1:9000/' } } });
 * const outcome = await gw.dispatch({ namespace: 'demo', tenant: 'acme', provider: 'hook',
 *   actionType: 'hello', payload: { to: 'world' } });
 * await gw.close();
 */
export function createGateway(
  config: ConfigInput | ResolvedConfig = {},
  options: GatewayOptions = {},
): Gateway {
  return new Pipeline(config, options);
}

function isResolved(config: ConfigInput | ResolvedConfig): config is ResolvedConfig {
  return (config as Partial<ResolvedConfig>).resolved === true;
}

/**
 * The pipeline: normalize → plan → gate → execute → record → publish. Each stage is a method so
 * later capabilities (rules, state gates, audit, streams) fill a stage without reshaping the rest.
 */
class Pipeline implements Gateway {
  readonly config: ResolvedConfig;
  readonly metrics: GatewayMetrics;
  readonly providers: ProviderRegistry;
  private readonly logger: Logger;
  private readonly executor: Executor;
  private readonly audit: AuditSink;
  private readonly abort = new AbortController();
  private listeners: OutcomeListener[] = [];
  private inFlight = 0;
  private closing = false;
  private drained: (() => void) | undefined;

  constructor(config: ConfigInput | ResolvedConfig, options: GatewayOptions) {
    this.config = isResolved(config)
      ? config
      : resolveConfig(
          config,
          options.providerTypes ? { providerTypes: options.providerTypes } : {},
        );
    this.logger = options.logger ?? silentLogger();
    this.metrics = options.metrics ?? new GatewayMetrics();
    this.audit = options.audit ?? noopAuditSink;
    this.providers = ProviderRegistry.fromConfig(
      this.config.providers,
      providerTypeMap(options.providerTypes),
      this.logger,
      options.providers,
    );
    this.executor = new Executor(this.metrics, this.logger, this.abort.signal);
  }

  validate(input: unknown, field = ''): ActionInput {
    const action = actionValidator.assert(input, field);
    if (this.providers.get(action.provider) === undefined) {
      const where = field === '' ? 'provider' : `${field}.provider`;
      throw new SyError(
        'SY_ERR_UNKNOWN_PROVIDER',
        `${where} "${action.provider}" is not a configured provider (configured: ${this.providers.names().join(', ')})`,
        { field: where, provider: action.provider },
      );
    }
    return action;
  }

  dispatch(input: unknown): Promise<Outcome> {
    try {
      return this.dispatchValidated(this.validate(input));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  dispatchBatch(inputs: readonly unknown[]): Promise<Outcome[]> {
    let valid: ActionInput[];
    try {
      valid = inputs.map((input, i) => this.validate(input, `[${i}]`));
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.all(valid.map((a) => this.dispatchValidated(a)));
  }

  async dispatchValidated(input: ActionInput): Promise<Outcome> {
    if (this.closing) {
      throw new SyError(
        'SY_ERR_SHUTTING_DOWN',
        'the gateway is shutting down and accepts no new actions',
      );
    }
    const startedAt = performance.now();
    this.inFlight++;
    this.metrics.inFlight.inc();
    try {
      const action = this.normalize(input);
      const plan = this.plan(action);
      // The gate stage is synchronous until a plan holds gates: no await where nothing waits.
      if (plan.gates.length > 0) await this.gate(action, plan);
      const outcome = await this.execute(action, plan, startedAt);
      this.record(action, outcome);
      this.publish(action, outcome);
      this.metrics.observeOutcome(
        outcome.provider,
        outcome.outcome,
        (performance.now() - startedAt) / 1000,
      );
      return outcome;
    } finally {
      this.inFlight--;
      this.metrics.inFlight.dec();
      if (this.inFlight === 0 && this.drained !== undefined) this.drained();
    }
  }

  /** 1. Give the action its id, defaults and receive time; one object shape for every action. */
  private normalize(input: ActionInput): Action {
    return {
      id: input.id ?? newId(),
      namespace: input.namespace,
      tenant: input.tenant,
      provider: input.provider,
      actionType: input.actionType,
      payload: input.payload,
      labels: input.labels ?? {},
      dedupKey: input.dedupKey,
      fingerprint: input.fingerprint,
      deliverAt: input.deliverAt,
      receivedAt: Date.now(),
    };
  }

  /** 2. Decide what the rules do with the action (the rule engine fills this in). */
  private plan(_action: Action): Plan {
    return EMPTY_PLAN;
  }

  /** 3. One state-store call for all of the plan's gates (dedup, throttle, idempotency). */
  private gate(_action: Action, _plan: Plan): Promise<void> {
    return Promise.resolve();
  }

  /** 4. Run the action on its provider under the executor's policies. */
  private execute(action: Action, _plan: Plan, startedAt: number): Promise<Outcome> {
    // validate() guarantees the provider exists; providers are fixed for the gateway's life.
    const provider = this.providers.get(action.provider) as Provider;
    return this.executor.run(action, provider, startedAt);
  }

  /** 5. Record the decision (batched off the hot path by the audit sink). */
  private record(action: Action, outcome: Outcome): void {
    this.audit.record(action, outcome);
  }

  /** 6. Tell subscribers (streams, tests). A throwing listener never breaks a dispatch. */
  private publish(action: Action, outcome: Outcome): void {
    const listeners = this.listeners;
    for (let i = 0; i < listeners.length; i++) {
      try {
        (listeners[i] as OutcomeListener)(outcome, action);
      } catch (err) {
        this.logger.error({ err, actionId: action.id }, 'outcome listener failed');
      }
    }
  }

  subscribe(listener: OutcomeListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  async close(timeoutMs = this.config.server.shutdownTimeoutMs): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.inFlight > 0) {
      const drained = new Promise<void>((resolve) => (this.drained = resolve));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      });
      const late = await Promise.race([drained.then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) {
        this.logger.warn(
          { inFlight: this.inFlight },
          'shutdown timeout: aborting in-flight actions',
        );
        this.abort.abort(new SyError('SY_ERR_SHUTTING_DOWN', 'aborted by shutdown timeout'));
      }
    }
    await this.audit.flush();
    await this.providers.closeAll();
  }
}
