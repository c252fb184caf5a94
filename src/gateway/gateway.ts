import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { ActionInputSchema, type Action, type ActionInput } from '../core/action.js';
import {
  succeeded,
  type DeduplicatedOutcome,
  type SuppressedOutcome,
  type ThrottledOutcome,
  type Outcome,
} from '../core/outcome.js';
import { SyError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { silentLogger } from '../core/logger.js';
import { compileAssert } from '../core/validate.js';
import { resolveConfig } from '../config/load.js';
import type { ConfigInput, ResolvedConfig } from '../config/schema.js';
import {
  Executor,
  type AttemptInfo,
  type Job,
  type RunOutcome,
  type SettleContext,
} from '../executor/executor.js';
import { ProviderRegistry, providerTypeMap } from '../providers/registry.js';
import type { Provider, ProviderPreview, ProviderType } from '../providers/provider.js';
import { noopAuditSink, type AuditSink } from '../audit/sink.js';
import { createAuditStore, createAuditWriter } from '../audit/create.js';
import { startRetention } from '../audit/retention.js';
import type { AuditStore } from '../audit/store.js';
import { hostname } from 'node:os';
import { GatewayMetrics } from './metrics.js';
import { RuleEngine, type RuleExplanation } from '../rules/engine.js';
import type { Plan } from '../rules/planner.js';
import { createStateStore } from '../state/create.js';
import type { GateOp, GateResult, MaybePromise, SettleOp, StateStore } from '../state/store.js';
import { systemClock, type Clock } from '../core/clock.js';
import { isSyError } from '../core/errors.js';
import { blocked, suppressed, withReroute } from './outcomes.js';

const actionValidator = compileAssert<ActionInput>(ActionInputSchema);

export type OutcomeListener = (outcome: Outcome, action: Action) => void;

export interface Evaluation {
  /** The action as the provider would receive it (after modify/label/reroute). */
  action: Action;
  /** Each evaluated rule: matched or not, and every predicate with the value it saw. */
  rules: RuleExplanation['rules'];
  matchedRules: readonly string[];
  /** The state gates the plan would check, and what the store says about them now. */
  gates: { kind: string; rule: string | undefined }[];
  /** What dispatch would answer now (an "executed" here is a prediction: the provider may fail). */
  outcome:
    | { outcome: 'executed'; provider: string }
    | { outcome: 'rerouted'; provider: string; originalProvider: string; rule: string }
    | Omit<SuppressedOutcome | DeduplicatedOutcome | ThrottledOutcome, 'actionId' | 'durationMs'>
    | { outcome: 'replayed'; stored: Outcome };
}

export interface ProviderPreviewResult {
  provider: string;
  type: string;
  /** The action as the provider would get it (after modify/label rules). */
  action: Action;
  preview: ProviderPreview;
}

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
  /** The state store for gates. Default: the one `config.state` names, owned (and closed) by the gateway. */
  state?: StateStore;
  /** Time source. Default: the system clock; tests pass a ManualClock. */
  clock?: Clock;
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
  /**
   * The dry run: which rules match the action and why, the action after transforms, and the
   * outcome it would get now — with no side effect and no state consumed.
   */
  evaluate(input: ActionInput): Promise<Evaluation>;
  /**
   * What provider `name` would send for an action (rule transforms applied, secrets masked),
   * without sending it. Throws SyError on bad input or a template that does not render.
   */
  preview(name: string, input: unknown): Promise<ProviderPreviewResult>;
  /** Called after every outcome; returns an unsubscribe function. */
  subscribe(listener: OutcomeListener): () => void;
  readonly config: ResolvedConfig;
  readonly metrics: GatewayMetrics;
  readonly providers: ProviderRegistry;
  readonly rules: RuleEngine;
  readonly state: StateStore;
  /** Retries, breakers, limits and the dead-letter queue. */
  readonly executor: Executor;
  /** The audit store `config.audit` names (undefined for `none` or a custom sink). */
  readonly auditStore: AuditStore | undefined;
  /** This node's id (in audit records and retry-queue claims). */
  readonly nodeId: string;
  /** Connects the state store and applies its migrations; rejects with SY_ERR_STATE_UNAVAILABLE. */
  ready(): Promise<void>;
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
  readonly rules: RuleEngine;
  readonly state: StateStore;
  private readonly ownsState: boolean;
  readonly nodeId: string;
  readonly auditStore: AuditStore | undefined;
  private readonly retention: { stop(): Promise<void> } | undefined;
  private readonly clock: Clock;
  private readonly logger: Logger;
  readonly executor: Executor;
  private readonly audit: AuditSink;
  /** Idempotent actions running in this process, by key: a repeat waits for the same outcome. */
  private readonly running = new Map<string, Promise<Outcome>>();
  private readonly cleanupTimer: NodeJS.Timeout;
  /** Dedup commits sent and not yet acknowledged (see settle). */
  private readonly settling = new Set<Promise<void>>();
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
    this.clock = options.clock ?? systemClock;
    this.nodeId = `${hostname()}:${process.pid}:${newId().slice(-6)}`;
    this.ownsState = options.state === undefined;
    this.state = options.state ?? createStateStore(this.config.state);
    if (options.audit !== undefined) {
      this.audit = options.audit;
    } else {
      this.auditStore = createAuditStore(this.config.audit);
      this.audit =
        this.auditStore === undefined
          ? noopAuditSink
          : createAuditWriter(this.config.audit, this.auditStore, {
              nodeId: this.nodeId,
              logger: this.logger,
              clock: this.clock,
            });
      if (this.auditStore !== undefined) {
        // Old records are deleted by one node at a time (a lease in the state store).
        this.retention = startRetention({
          store: this.auditStore,
          state: this.state,
          retentionMs: this.config.audit.retentionMs,
          holder: this.nodeId,
          clock: this.clock,
          logger: this.logger,
        });
      }
    }
    this.providers = ProviderRegistry.fromConfig(
      this.config.providers,
      providerTypeMap(options.providerTypes),
      {
        logger: this.logger,
        state: this.state,
        clock: this.clock,
        count: (metric, provider, n) => this.metrics.countProvider(metric, provider, n),
      },
      options.providers,
    );
    this.metrics.trackInFlight(() => this.inFlight);
    this.executor = new Executor(
      {
        providers: this.providers,
        providerConfigs: this.config.providers,
        state: this.state,
        clock: this.clock,
        logger: this.logger,
        observer: this.metrics,
        config: this.config.executor,
        nodeId: this.nodeId,
        complete: (job, outcome, kind) => this.complete(job, outcome, kind),
        onAttempt: this.audit === noopAuditSink ? undefined : (a) => this.recordAttempt(a),
      },
      this.abort.signal,
    );
    // Retries due from the state store (this node's or a crashed node's) run here.
    this.executor.start();
    // Expired reservations, keys and windows are deleted in the background; every node may do
    // it (it is idempotent and backends skip rows another node is working on).
    this.cleanupTimer = setInterval(() => this.cleanup(), CLEANUP_EVERY_MS);
    this.cleanupTimer.unref();
    this.rules = new RuleEngine({
      directory: this.config.rules.directory,
      inline: this.config.rules.inline,
      locateInline: this.config.locate,
      providers: new Set(this.providers.names()),
      watch: this.config.rules.watch,
      logger: this.logger,
    });
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
    try {
      const action = this.normalize(input);
      // Only a client-supplied id can repeat; generated ids skip idempotency entirely.
      if (input.id === undefined) return await this.process(action, undefined, startedAt);
      const key = idempotencyKeyOf(action);
      const running = this.running.get(key);
      if (running !== undefined) return await running;
      const pending = this.process(action, key, startedAt);
      this.running.set(key, pending);
      try {
        return await pending;
      } finally {
        this.running.delete(key);
      }
    } finally {
      this.inFlight--;
      if (this.inFlight === 0 && this.drained !== undefined) this.drained();
    }
  }

  /** Stages 2–6 for one normalized action. */
  private async process(
    action: Action,
    idempotencyKey: string | undefined,
    startedAt: number,
  ): Promise<Outcome> {
    const plan = this.plan(action);
    const final = plan.action ?? action;
    if (plan.suppressed !== undefined) {
      const { rule, reason } = plan.suppressed;
      return this.finish(
        final,
        suppressed(final, rule, reason, elapsed(startedAt)),
        startedAt,
        plan.matched,
        action.provider,
      );
    }
    let ops = plan.gates;
    if (idempotencyKey !== undefined) {
      ops = [this.idempotencyOp(action, idempotencyKey), ...ops];
    }
    if (ops.length > 0) {
      const pending = this.gate(ops, action.receivedAt);
      const result = pending instanceof Promise ? await pending : pending;
      if (!result.pass) {
        if (result.kind === 'idempotency' && result.stored !== undefined) {
          // The same id again: the first outcome, not a second execution.
          this.metrics.countReplay();
          return JSON.parse(result.stored) as Outcome;
        }
        const offset = idempotencyKey === undefined ? 0 : 1;
        const rule = plan.gateRules[result.index - offset];
        return this.finish(
          final,
          blocked(final, result, rule, elapsed(startedAt)),
          startedAt,
          plan.matched,
          action.provider,
        );
      }
    }
    const settle: SettleContext = {
      scope: `${action.namespace}|${action.tenant}`,
      dedups: plan.dedups as SettleContext['dedups'],
      idempotencyKey,
      reroute: plan.reroute,
      rules: plan.matched,
      originalProvider: action.provider,
    };
    let ran: RunOutcome;
    try {
      ran = await this.execute(final, settle, startedAt);
    } catch (err) {
      // Nothing ran (the executor is overloaded): free the reservations, then answer 503.
      if (ops.length > 0) await this.settle(settle, final.id, undefined);
      throw err;
    }
    const outcome = withReroute(ran, settle.reroute);
    // A retrying action keeps its reservations until its final outcome (see complete()).
    if (ops.length > 0 && outcome.outcome !== 'retrying') {
      const settled = this.settle(settle, final.id, outcome);
      if (settled !== undefined) await settled;
    }
    return this.finish(final, outcome, startedAt, plan.matched, action.provider);
  }

  /** A retried or replayed action reached its final outcome off the request path. */
  private complete(job: Job, ran: RunOutcome, kind: 'decision' | 'replay'): void {
    const outcome = withReroute(ran, job.settle.reroute);
    const settled = this.settle(job.settle, job.action.id, outcome);
    if (settled !== undefined) {
      this.settling.add(settled);
      void settled.finally(() => this.settling.delete(settled));
    }
    const recorded = this.record(
      job.action,
      outcome,
      job.settle.rules ?? [],
      job.settle.originalProvider ?? job.action.provider,
      kind,
    );
    if (recorded !== undefined) {
      recorded.catch((err: unknown) =>
        this.logger.error({ err, actionId: job.action.id }, 'audit record failed'),
      );
    }
    this.publish(job.action, outcome);
    this.metrics.observeOutcome(outcome.provider, outcome.outcome, outcome.durationMs / 1000);
  }

  /** An attempt finished (executor hook): one audit record per attempt. */
  private recordAttempt(a: AttemptInfo): void {
    // A first attempt that succeeded or failed for good is also the action's decision: its
    // record (attempt 1, status, error) says it all. Attempts get records of their own once
    // there is more than one (a transient first failure leads to a retry or a fallback).
    if (a.job.attempts === 1 && a.result !== 'transient') return;
    const action = a.job.action;
    const provider = this.providers.get(a.provider);
    const recorded = this.audit.record({
      kind: 'attempt',
      action: a.provider === action.provider ? action : { ...action, provider: a.provider },
      originalProvider: a.job.settle.originalProvider ?? action.provider,
      provider: a.provider,
      outcome: a.result,
      rules: a.job.settle.rules ?? [],
      reason: a.error?.message,
      attempt: a.job.attempts,
      status: a.status,
      errorCode: a.error?.code,
      destination: destinationOf(provider, action),
      decidedAt: a.at,
      executedAt: a.at - a.durationMs,
      durationMs: a.durationMs,
    });
    if (recorded !== undefined) {
      recorded.catch((err: unknown) =>
        this.logger.error({ err, actionId: action.id }, 'audit record failed'),
      );
    }
  }

  /** The gate op that reserves a client-supplied action id (same id → first outcome). */
  private idempotencyOp(action: Action, key: string): GateOp {
    return {
      kind: 'idempotency',
      scope: `${action.namespace}|${action.tenant}`,
      key,
      ttlMs: this.config.state.idempotencyTtlMs,
      actionId: action.id,
    };
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
      receivedAt: this.clock.now(),
    };
  }

  /** 2. Decide what the rules do with the action: pure, synchronous, no state read. */
  private plan(action: Action): Plan {
    return this.rules.plan(action);
  }

  /** 3. One state-store call for all of the plan's gates (dedup, throttle, idempotency). */
  private gate(ops: readonly GateOp[], now: number): MaybePromise<GateResult> {
    const backend = this.state.backend;
    try {
      // The memory store answers synchronously: no promise where nothing waits.
      const result = this.state.gate(ops, now);
      if (result instanceof Promise) {
        return result.catch((err: unknown) => {
          throw unavailable(backend, 'gate', err);
        });
      }
      return result;
    } catch (err) {
      throw unavailable(backend, 'gate', err);
    }
  }

  /** 4. Run the action on its provider under the executor's policies. */
  private execute(action: Action, settle: SettleContext, startedAt: number): Promise<RunOutcome> {
    // validate() checked the named provider and the rule loader checked reroute targets.
    return this.executor.run(action, settle, startedAt);
  }

  /**
   * After execution: commit dedup reservations on success, release them on failure (unless the
   * rule says onFailure: keep) so a failed send can be retried; remember an idempotent action's
   * outcome, or forget its id when it failed. `outcome` undefined: nothing ran, release all.
   */
  private settle(
    ctx: SettleContext,
    actionId: string,
    outcome: Outcome | undefined,
  ): Promise<void> | undefined {
    const ok = outcome !== undefined && succeeded(outcome);
    const scope = ctx.scope;
    const ops: SettleOp[] = [];
    for (const d of ctx.dedups) {
      const op = ok || (outcome !== undefined && d.onFailure === 'keep') ? 'commit' : 'release';
      ops.push({ op, scope, gate: 'dedup', key: d.key, actionId, outcome: undefined });
    }
    const idempotencyKey = ctx.idempotencyKey;
    if (idempotencyKey !== undefined) {
      ops.push(
        ok
          ? {
              op: 'commit',
              scope,
              gate: 'idempotency',
              key: idempotencyKey,
              actionId,
              outcome: JSON.stringify(outcome),
            }
          : {
              op: 'release',
              scope,
              gate: 'idempotency',
              key: idempotencyKey,
              actionId,
              outcome: undefined,
            },
      );
    }
    if (ops.length === 0) return undefined;
    // The action already ran: a failure here is reported, and the reservations expire by TTL.
    const failed = (err: unknown): void =>
      this.logger.error({ err, actionId, backend: this.state.backend }, 'state settle failed');
    try {
      const done = this.state.settle(ops, this.clock.now());
      if (!(done instanceof Promise)) return undefined;
      const settled = done.catch(failed);
      // Only dedup commits (the success path): answer without waiting for them, so a dispatch
      // costs one round trip to a remote store, not two. Until the commit lands a duplicate is
      // still deduplicated (reported in flight); if the process dies first, the key stays
      // reserved until its TTL. Releases and idempotency records change what a retry gets:
      // those are awaited. close() waits for commits still on their way.
      if (ops.every((o) => o.op === 'commit' && o.gate === 'dedup')) {
        this.settling.add(settled);
        void settled.finally(() => this.settling.delete(settled));
        return undefined;
      }
      return settled;
    } catch (err) {
      failed(err);
      return undefined;
    }
  }

  /**
   * 5 + 6: record, publish and count an outcome. Answers at once unless the audit sink asks to
   * wait (strict mode: until the record is durable; batched: only when its buffer is full).
   */
  private finish(
    action: Action,
    outcome: Outcome,
    startedAt: number,
    rules: readonly string[],
    originalProvider: string,
  ): Outcome | Promise<Outcome> {
    const recorded = this.record(action, outcome, rules, originalProvider, 'decision');
    this.publish(action, outcome);
    this.metrics.observeOutcome(
      outcome.provider,
      outcome.outcome,
      (performance.now() - startedAt) / 1000,
    );
    if (recorded === undefined) return outcome;
    return recorded.then(
      () => outcome,
      (err: unknown) => {
        throw new SyError(
          'SY_ERR_AUDIT_UNAVAILABLE',
          `the action's outcome could not be recorded in the audit store: ${(err as Error).message}`,
          { backend: this.config.audit.backend, outcome: outcome.outcome, retryAfterMs: 1000 },
          { cause: err },
        );
      },
    );
  }

  /** 5. Record the decision (batched off the hot path by the audit sink). */
  private record(
    action: Action,
    outcome: Outcome,
    rules: readonly string[],
    originalProvider: string,
    kind: 'decision' | 'replay',
  ): void | Promise<void> {
    if (this.audit === noopAuditSink) return undefined;
    return this.audit.record({
      kind,
      action,
      originalProvider,
      provider: outcome.provider,
      outcome: outcome.outcome,
      rules,
      ...auditDetails(outcome),
      destination: destinationOf(this.providers.get(outcome.provider), action),
      decidedAt: this.clock.now(),
      durationMs: outcome.durationMs,
    });
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

  private cleanup(): void {
    const failed = (err: unknown): void =>
      this.logger.warn({ err, backend: this.state.backend }, 'state cleanup failed');
    try {
      const result = this.state.cleanup(this.clock.now());
      if (result instanceof Promise) result.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  async ready(): Promise<void> {
    try {
      await this.state.init?.();
    } catch (err) {
      throw unavailable(this.state.backend, 'init', err);
    }
    try {
      await this.auditStore?.init?.();
    } catch (err) {
      throw new SyError(
        'SY_ERR_AUDIT_UNAVAILABLE',
        `the ${this.config.audit.backend} audit store is unavailable (init): ${(err as Error).message}`,
        { backend: this.config.audit.backend, operation: 'init', retryAfterMs: 1000 },
        { cause: err },
      );
    }
  }

  async evaluate(input: ActionInput): Promise<Evaluation> {
    const action = this.normalize(input);
    const { rules, plan } = this.rules.explain(action);
    const final = plan.action ?? action;
    const ops: GateOp[] = [];
    const owners: (string | undefined)[] = [];
    if (input.id !== undefined) {
      ops.push(this.idempotencyOp(action, idempotencyKeyOf(action)));
      owners.push(undefined);
    }
    ops.push(...plan.gates);
    owners.push(...plan.gateRules);
    const base = { action: final, rules, matchedRules: plan.matched };
    const gates = ops.map((op, i) => ({ kind: op.kind, rule: owners[i] }));
    if (plan.suppressed !== undefined) {
      const {
        actionId: _id,
        durationMs: _d,
        ...outcome
      } = suppressed(final, plan.suppressed.rule, plan.suppressed.reason, 0);
      return { ...base, gates, outcome };
    }
    if (ops.length > 0) {
      let result: GateResult;
      try {
        const pending = this.state.gate(ops, action.receivedAt, true);
        result = pending instanceof Promise ? await pending : pending;
      } catch (err) {
        throw unavailable(this.state.backend, 'gate (dry run)', err);
      }
      if (!result.pass) {
        if (result.kind === 'idempotency' && result.stored !== undefined) {
          return {
            ...base,
            gates,
            outcome: { outcome: 'replayed', stored: JSON.parse(result.stored) as Outcome },
          };
        }
        const {
          actionId: _id,
          durationMs: _d,
          ...outcome
        } = blocked(final, result, owners[result.index], 0);
        return { ...base, gates, outcome };
      }
    }
    const outcome: Evaluation['outcome'] =
      plan.reroute === undefined
        ? { outcome: 'executed', provider: final.provider }
        : {
            outcome: 'rerouted',
            provider: final.provider,
            originalProvider: plan.reroute.from,
            rule: plan.reroute.rule,
          };
    return { ...base, gates, outcome };
  }

  async preview(name: string, input: unknown): Promise<ProviderPreviewResult> {
    const body = (input !== null && typeof input === 'object' ? input : {}) as Record<
      string,
      unknown
    >;
    const valid = this.validate({ ...body, provider: name });
    const action = this.normalize(valid);
    const plan = this.plan(action);
    // The preview is for this provider: transforms apply, a reroute does not.
    const final = { ...(plan.action ?? action), provider: name };
    const provider = this.providers.get(name) as Provider;
    const preview: ProviderPreview =
      provider.preview === undefined
        ? { kind: 'none', description: `provider type "${provider.type}" has no preview` }
        : await provider.preview(final);
    return { provider: name, type: provider.type, action: final, preview };
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
    // Sleeping retries park in the retry queue at once; the poller stops.
    const executorClosed = this.executor.close();
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
        // The aborted actions still get their outcome, and its audit record, before the audit
        // writer closes (bounded: a provider that ignores the abort is not waited for long).
        if (this.inFlight > 0) {
          await Promise.race([drained, new Promise((r) => setTimeout(r, 2000).unref())]);
        }
      }
    }
    await executorClosed;
    this.rules.close();
    clearInterval(this.cleanupTimer);
    await this.retention?.stop();
    // Every decision is written before the process may exit.
    if (this.auditStore !== undefined) await this.audit.close?.();
    else await this.audit.flush();
    await this.providers.closeAll();
    await Promise.all(this.settling);
    if (this.ownsState) await this.state.close();
  }
}

const CLEANUP_EVERY_MS = 60_000;

/** Action ids are scoped by namespace and tenant: one tenant's id never answers another's. */
function idempotencyKeyOf(action: Action): string {
  return `idem|${action.namespace}|${action.tenant}|${action.id}`;
}

function elapsed(startedAt: number): number {
  return Math.round(performance.now() - startedAt);
}

function unavailable(backend: string, operation: string, err: unknown): SyError {
  // Always re-issued here: clients get the same details from every backend (and never a
  // backend's internals such as a file path); the original stays as `cause` for the logs.
  const message =
    isSyError(err) && err.code === 'SY_ERR_STATE_UNAVAILABLE'
      ? err.message
      : `the ${backend} state store is unavailable (${operation}): ${(err as Error).message}`;
  return new SyError(
    'SY_ERR_STATE_UNAVAILABLE',
    message,
    { backend, operation, retryAfterMs: 1000 },
    { cause: err },
  );
}

/** A provider's destination for the audit trail; a throwing provider never breaks a dispatch. */
function destinationOf(provider: Provider | undefined, action: Action): string | undefined {
  try {
    return provider?.destination?.(action);
  } catch {
    return undefined;
  }
}

/** The outcome's why, status and error code, for the audit record. */
function auditDetails(o: Outcome): {
  reason?: string;
  status?: number;
  errorCode?: string;
  attempt?: number;
} {
  switch (o.outcome) {
    case 'executed':
    case 'rerouted':
      return { status: o.response.status, attempt: o.attempts ?? 1 };
    case 'failed':
      return {
        reason: o.error.message,
        status: o.error.status,
        errorCode: o.error.code,
        attempt: o.attempts,
      };
    case 'retrying':
      return { reason: o.error?.message, errorCode: o.error?.code, attempt: o.attempts };
    case 'circuit_open':
      return { reason: o.error.message, errorCode: o.error.code };
    case 'suppressed':
      return { reason: o.reason };
    case 'deduplicated':
      return { reason: `duplicate of ${o.duplicateOf}${o.inFlight ? ' (in flight)' : ''}` };
    case 'throttled':
      return {
        reason: `${o.rule === undefined ? `budget ${o.budget ?? ''}` : `rule ${o.rule}`}: ${o.limit} per ${o.windowMs}ms`,
      };
  }
}
