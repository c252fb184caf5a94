import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitState } from './breaker.js';
import type { BreakerPolicy } from './policy.js';

const policy = (over: Partial<BreakerPolicy> = {}): BreakerPolicy => ({
  failures: 3,
  failureRate: undefined,
  minRequests: 4,
  windowMs: 1000,
  openForMs: 500,
  halfOpenProbes: 1,
  ...over,
});

describe('CircuitBreaker', () => {
  it('opens after N failures in a row; a success in between resets the count', () => {
    const b = new CircuitBreaker(policy());
    b.failure(0);
    b.failure(0);
    b.success(0);
    b.failure(0);
    b.failure(0);
    expect(b.current).toBe('closed');
    b.failure(0);
    expect(b.current).toBe('open');
    expect(b.allow(100)).toBe(false);
    expect(b.retryAfterMs(100)).toBe(400);
  });

  it('opens on the failure rate over the window, once minRequests calls were seen', () => {
    const b = new CircuitBreaker(policy({ failures: 100, failureRate: 0.5, minRequests: 4 }));
    b.success(0);
    b.failure(10);
    b.success(20);
    expect(b.current).toBe('closed'); // 3 calls: below minRequests
    b.failure(30); // 2 of 4 failed = 0.5
    expect(b.current).toBe('open');
  });

  it('forgets the rate window after it passes', () => {
    const b = new CircuitBreaker(policy({ failures: 100, failureRate: 0.5, minRequests: 4 }));
    b.failure(0);
    b.failure(0);
    b.failure(0);
    b.success(2000); // a new window
    b.failure(2001);
    expect(b.current).toBe('closed');
  });

  it('half-open lets `halfOpenProbes` probes through; their success closes it', () => {
    const changes: CircuitState[] = [];
    const b = new CircuitBreaker(policy({ halfOpenProbes: 2 }), (to) => changes.push(to));
    for (let i = 0; i < 3; i++) b.failure(0);
    expect(b.allow(499)).toBe(false);
    expect(b.allow(500)).toBe(true);
    expect(b.current).toBe('half_open');
    expect(b.allow(500)).toBe(true);
    expect(b.allow(500)).toBe(false); // both probe slots taken
    b.success(510);
    expect(b.current).toBe('half_open');
    b.success(520);
    expect(b.current).toBe('closed');
    expect(changes).toEqual(['open', 'half_open', 'closed']);
  });

  it('a failed probe opens it again for another openFor', () => {
    const b = new CircuitBreaker(policy());
    for (let i = 0; i < 3; i++) b.failure(0);
    expect(b.allow(600)).toBe(true);
    b.failure(650);
    expect(b.current).toBe('open');
    expect(b.allow(1000)).toBe(false);
    expect(b.allow(1150)).toBe(true);
  });

  it('a cancelled probe frees its slot; reset closes it by hand', () => {
    const b = new CircuitBreaker(policy());
    for (let i = 0; i < 3; i++) b.failure(0);
    expect(b.allow(600)).toBe(true);
    expect(b.allow(600)).toBe(false);
    b.cancel();
    expect(b.allow(600)).toBe(true);
    b.reset(700);
    expect(b.current).toBe('closed');
    expect(b.snapshot(700)).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
  });
});
