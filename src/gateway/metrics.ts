import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import {
  LiveCounter,
  LiveHistogram,
  type CounterSeries,
  type HistogramSeries,
} from './live-metrics.js';
import type { OutcomeKind } from '../core/outcome.js';
import type { ProviderCounter } from '../providers/provider.js';
import type { CircuitState } from '../executor/breaker.js';
import type { ProviderStatus } from '../executor/executor.js';

const PROVIDER_COUNTER_HELP: Record<ProviderCounter, string> = {
  llm_cache_hits: 'LLM requests answered from the response cache.',
  llm_cache_misses: 'LLM requests that missed the response cache and were sent.',
  llm_tokens: 'LLM tokens used (prompt + completion), as the API reported them.',
};

interface ProviderSeries {
  dispatches: Partial<Record<OutcomeKind, CounterSeries>>;
  dispatchSeconds: Partial<Record<OutcomeKind, HistogramSeries>>;
  providerSeconds: Partial<Record<OutcomeKind, HistogramSeries>>;
}

const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  30,
];

/**
 * The gateway's Prometheus metrics, in a registry of its own (two gateways in one process do not
 * collide). Per-dispatch series are plain numbers (live-metrics.ts) found through a per-provider
 * cache, so recording an outcome allocates nothing and hashes no labels.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly dispatches = new LiveCounter(
    'switchyard_dispatches_total',
    'Actions dispatched, by final outcome and provider.',
  );
  private readonly dispatchSeconds = new LiveHistogram(
    'switchyard_dispatch_duration_seconds',
    'Time from accepting an action to its outcome, by outcome and provider.',
    LATENCY_BUCKETS,
  );
  private readonly providerSeconds = new LiveHistogram(
    'switchyard_provider_duration_seconds',
    'Time a provider took to execute an action, by provider and result.',
    LATENCY_BUCKETS,
  );
  private readonly rejected = new Counter({
    name: 'switchyard_rejected_requests_total',
    help: 'Requests or actions rejected before dispatch, by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  private readonly replays = new Counter({
    name: 'switchyard_idempotent_replays_total',
    help: 'Repeated action ids answered with the stored first outcome.',
    registers: [this.registry],
  });
  private readonly byProvider = new Map<string, ProviderSeries>();

  constructor() {
    for (const m of [this.dispatches, this.dispatchSeconds, this.providerSeconds, this.attempts]) {
      this.registry.registerMetric(m as unknown as Metric);
    }
  }

  private readonly inFlightReaders: (() => number)[] = [];

  /** Reports the sum of `read()`s as switchyard_actions_in_flight at scrape time (no per-dispatch work). */
  trackInFlight(read: () => number): void {
    const readers = this.inFlightReaders;
    readers.push(read);
    if (readers.length > 1) return;
    new Gauge({
      name: 'switchyard_actions_in_flight',
      help: 'Actions accepted and not yet answered.',
      registers: [this.registry],
      collect() {
        let n = 0;
        for (const r of readers) n += r();
        this.set(n);
      },
    });
  }

  /** Adds process_* and nodejs_* metrics (CPU, memory, event loop lag); the server enables it. */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry });
  }

  observeOutcome(provider: string, outcome: OutcomeKind, gatewaySeconds: number): void {
    const c = this.series(provider);
    (c.dispatches[outcome] ??= this.dispatches.at({ outcome, provider })).value++;
    (c.dispatchSeconds[outcome] ??= this.dispatchSeconds.at({ outcome, provider })).observe(
      gatewaySeconds,
    );
  }

  observeProvider(provider: string, outcome: OutcomeKind, seconds: number): void {
    const c = this.series(provider);
    (c.providerSeconds[outcome] ??= this.providerSeconds.at({ provider, outcome })).observe(
      seconds,
    );
  }

  countRejected(code: string): void {
    this.rejected.labels(code).inc();
  }

  /** Per dispatch: a live series (no label hashing), cached per provider and result. */
  private readonly attempts = new LiveCounter(
    'switchyard_provider_attempts_total',
    'Provider attempts, by provider and result (success, transient or terminal failure).',
  );
  private readonly attemptSeries = new Map<string, Record<string, CounterSeries>>();
  private readonly retries = new Counter({
    name: 'switchyard_retries_scheduled_total',
    help: 'Retries scheduled after a transient failure, by provider.',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  private readonly deadLetters = new Counter({
    name: 'switchyard_dead_letters_total',
    help: 'Actions moved to the dead-letter queue, by provider.',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  private readonly overloaded = new Counter({
    name: 'switchyard_overloaded_total',
    help: 'Calls refused or deferred because a concurrency queue was full, by provider.',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  private readonly circuitTransitions = new Counter({
    name: 'switchyard_circuit_transitions_total',
    help: 'Circuit breaker state changes, by provider and new state.',
    labelNames: ['provider', 'to'] as const,
    registers: [this.registry],
  });

  countAttempt(provider: string, result: 'success' | 'transient' | 'terminal'): void {
    let byResult = this.attemptSeries.get(provider);
    if (byResult === undefined) {
      byResult = {};
      this.attemptSeries.set(provider, byResult);
    }
    (byResult[result] ??= this.attempts.at({ provider, result })).value++;
  }

  countRetryScheduled(provider: string): void {
    this.retries.labels(provider).inc();
  }

  countDeadLetter(provider: string): void {
    this.deadLetters.labels(provider).inc();
  }

  countOverloaded(provider: string): void {
    this.overloaded.labels(provider).inc();
  }

  circuitChanged(provider: string, to: CircuitState): void {
    this.circuitTransitions.labels(provider, to).inc();
  }

  /** Circuit state and concurrency gauges, read from the executor at scrape time. */
  trackExecutor(read: () => ProviderStatus[]): void {
    const state = { closed: 0, half_open: 1, open: 2 } as const;
    new Gauge({
      name: 'switchyard_circuit_state',
      help: 'Circuit breaker state by provider: 0 closed, 1 half-open, 2 open.',
      labelNames: ['provider'] as const,
      registers: [this.registry],
      collect() {
        for (const p of read()) if (p.circuit) this.labels(p.name).set(state[p.circuit.state]);
      },
    });
    new Gauge({
      name: 'switchyard_provider_running',
      help: 'Provider calls running now, by provider.',
      labelNames: ['provider'] as const,
      registers: [this.registry],
      collect() {
        for (const p of read()) this.labels(p.name).set(p.concurrency.running);
      },
    });
    new Gauge({
      name: 'switchyard_provider_queued',
      help: 'Provider calls waiting for a concurrency slot, by provider.',
      labelNames: ['provider'] as const,
      registers: [this.registry],
      collect() {
        for (const p of read()) this.labels(p.name).set(p.concurrency.queued);
      },
    });
  }

  private readonly providerCounters = new Map<string, Counter<'provider'>>();

  /** `switchyard_provider_<metric>_total{provider}`: counters providers bump (cache hits, ...). */
  countProvider(metric: ProviderCounter, provider: string, n = 1): void {
    let c = this.providerCounters.get(metric);
    if (c === undefined) {
      c = new Counter({
        name: `switchyard_provider_${metric}_total`,
        help: PROVIDER_COUNTER_HELP[metric],
        labelNames: ['provider'] as const,
        registers: [this.registry],
      });
      this.providerCounters.set(metric, c);
    }
    c.labels(provider).inc(n);
  }

  countReplay(): void {
    this.replays.inc();
  }

  private series(provider: string): ProviderSeries {
    let c = this.byProvider.get(provider);
    if (c === undefined) {
      c = { dispatches: {}, dispatchSeconds: {}, providerSeconds: {} };
      this.byProvider.set(provider, c);
    }
    return c;
  }
}
