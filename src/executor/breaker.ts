import type { BreakerPolicy } from './policy.js';

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface BreakerSnapshot {
  state: CircuitState;
  /** Failures in a row (closed) since the last success. */
  consecutiveFailures: number;
  /** Calls and failures in the current rate window. */
  windowCalls: number;
  windowFailures: number;
  /** When the breaker last opened (epoch ms), if it is open or half-open. */
  openedAt: number | undefined;
  /** When an open breaker lets the first probe through (epoch ms). */
  probeAt: number | undefined;
}

/**
 * A circuit breaker for one provider on one node. Closed: calls pass; it opens after
 * `failures` failures in a row, or when the failure ratio over `window` reaches `failureRate`
 * with at least `minRequests` calls. Open: calls are refused until `openFor` has passed. Then
 * half-open: up to `halfOpenProbes` calls pass at once as probes; that many successes close it,
 * any probe failure opens it again for another `openFor`.
 *
 * Time comes in as arguments (no timers), so tests drive it with a fake clock.
 */
export class CircuitBreaker {
  private state: CircuitState = 'closed';
  private consecutive = 0;
  private windowStart = 0;
  private windowCalls = 0;
  private windowFailures = 0;
  private openedAt: number | undefined;
  private probesInFlight = 0;
  private probeSuccesses = 0;

  constructor(
    private readonly policy: BreakerPolicy,
    private readonly onChange: (to: CircuitState, from: CircuitState) => void = () => {},
  ) {}

  /** True when a call may go ahead now. A true in half-open state reserves a probe slot. */
  allow(now: number): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') {
      if (now < (this.openedAt as number) + this.policy.openForMs) return false;
      this.transition('half_open');
      this.probesInFlight = 0;
      this.probeSuccesses = 0;
    }
    if (this.probesInFlight >= this.policy.halfOpenProbes) return false;
    this.probesInFlight++;
    return true;
  }

  /** Milliseconds until `allow` may say yes again (0 when it would now). */
  retryAfterMs(now: number): number {
    if (this.state !== 'open') return 0;
    return Math.max(0, (this.openedAt as number) + this.policy.openForMs - now);
  }

  success(now: number): void {
    if (this.state === 'half_open') {
      this.probesInFlight = Math.max(0, this.probesInFlight - 1);
      if (++this.probeSuccesses >= this.policy.halfOpenProbes) this.close(now);
      return;
    }
    this.consecutive = 0;
    this.count(now, false);
  }

  failure(now: number): void {
    if (this.state === 'half_open') {
      this.probesInFlight = Math.max(0, this.probesInFlight - 1);
      this.open(now);
      return;
    }
    if (this.state === 'open') return;
    this.consecutive++;
    this.count(now, true);
    const p = this.policy;
    const rateTripped =
      p.failureRate !== undefined &&
      this.windowCalls >= p.minRequests &&
      this.windowFailures / this.windowCalls >= p.failureRate;
    if (this.consecutive >= p.failures || rateTripped) this.open(now);
  }

  /** A call that was allowed but never ran (e.g. refused by a queue): frees its probe slot. */
  cancel(): void {
    if (this.state === 'half_open') this.probesInFlight = Math.max(0, this.probesInFlight - 1);
  }

  /** Closes the breaker by hand (`POST /v1/providers/{name}/circuit/reset`). */
  reset(now: number): void {
    this.close(now);
  }

  /** Opens the breaker by hand (tests, maintenance). */
  trip(now: number): void {
    this.open(now);
  }

  snapshot(now: number): BreakerSnapshot {
    // An open breaker whose time is up reports half-open: the next call will probe.
    const due = this.state === 'open' && this.retryAfterMs(now) === 0;
    return {
      state: due ? 'half_open' : this.state,
      consecutiveFailures: this.consecutive,
      windowCalls: this.windowCalls,
      windowFailures: this.windowFailures,
      openedAt: this.openedAt,
      probeAt:
        this.state === 'open' ? (this.openedAt as number) + this.policy.openForMs : undefined,
    };
  }

  get current(): CircuitState {
    return this.state;
  }

  private count(now: number, failed: boolean): void {
    if (this.policy.failureRate === undefined) return;
    if (now - this.windowStart >= this.policy.windowMs) {
      this.windowStart = now;
      this.windowCalls = 0;
      this.windowFailures = 0;
    }
    this.windowCalls++;
    if (failed) this.windowFailures++;
  }

  private open(now: number): void {
    this.openedAt = now;
    this.transition('open');
  }

  private close(now: number): void {
    this.consecutive = 0;
    this.windowStart = now;
    this.windowCalls = 0;
    this.windowFailures = 0;
    this.openedAt = undefined;
    this.probesInFlight = 0;
    this.probeSuccesses = 0;
    this.transition('closed');
  }

  private transition(to: CircuitState): void {
    const from = this.state;
    this.state = to;
    if (from !== to) this.onChange(to, from);
  }
}
