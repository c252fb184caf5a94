import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { OutcomeKind } from '../core/outcome.js';

type Child<T> = ReturnType<
  T extends Counter<string> ? Counter<string>['labels'] : Histogram<string>['labels']
>;

interface ProviderChildren {
  dispatches: Partial<Record<OutcomeKind, Child<Counter<string>>>>;
  dispatchSeconds: Partial<Record<OutcomeKind, Child<Histogram<string>>>>;
  providerSeconds: Partial<Record<OutcomeKind, Child<Histogram<string>>>>;
}

const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  30,
];

/**
 * The gateway's Prometheus metrics, in a registry of its own (two gateways in one process do not
 * collide). Labelled children are cached per provider and outcome so that recording an outcome
 * costs no label hashing on the hot path.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly dispatches = new Counter({
    name: 'switchyard_dispatches_total',
    help: 'Actions dispatched, by final outcome and provider.',
    labelNames: ['outcome', 'provider'] as const,
    registers: [this.registry],
  });
  private readonly dispatchSeconds = new Histogram({
    name: 'switchyard_dispatch_duration_seconds',
    help: 'Time from accepting an action to its outcome, by outcome and provider.',
    labelNames: ['outcome', 'provider'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly providerSeconds = new Histogram({
    name: 'switchyard_provider_duration_seconds',
    help: 'Time a provider took to execute an action, by provider and result.',
    labelNames: ['provider', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'switchyard_actions_in_flight',
    help: 'Actions accepted and not yet answered.',
    registers: [this.registry],
  });
  private readonly rejected = new Counter({
    name: 'switchyard_rejected_requests_total',
    help: 'Requests or actions rejected before dispatch, by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  private readonly byProvider = new Map<string, ProviderChildren>();

  /** Adds process_* and nodejs_* metrics (CPU, memory, event loop lag); the server enables it. */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry });
  }

  observeOutcome(provider: string, outcome: OutcomeKind, gatewaySeconds: number): void {
    const c = this.children(provider);
    (c.dispatches[outcome] ??= this.dispatches.labels(outcome, provider)).inc();
    (c.dispatchSeconds[outcome] ??= this.dispatchSeconds.labels(outcome, provider)).observe(
      gatewaySeconds,
    );
  }

  observeProvider(provider: string, outcome: OutcomeKind, seconds: number): void {
    const c = this.children(provider);
    (c.providerSeconds[outcome] ??= this.providerSeconds.labels(provider, outcome)).observe(
      seconds,
    );
  }

  private readonly replays = new Counter({
    name: 'switchyard_idempotent_replays_total',
    help: 'Repeated action ids answered with the stored first outcome.',
    registers: [this.registry],
  });

  countReplay(): void {
    this.replays.inc();
  }

  countRejected(code: string): void {
    this.rejected.labels(code).inc();
  }

  private children(provider: string): ProviderChildren {
    let c = this.byProvider.get(provider);
    if (c === undefined) {
      c = { dispatches: {}, dispatchSeconds: {}, providerSeconds: {} };
      this.byProvider.set(provider, c);
    }
    return c;
  }
}
