import { performance } from 'node:perf_hooks';
import { latencyUs, newLatencyHistogram, round, type LatencyUs } from './stats.js';

export interface Jitter {
  probe: string;
  latencyUs: LatencyUs;
  /** Samples 20 µs or more over the probe's length: stalls the code under test did not cause. */
  stallsPerSec: number;
}

let sink = 0;
function busy(iterations: number): void {
  let x = sink;
  for (let j = 0; j < iterations; j++) x = (x * 31 + j) | 0;
  sink = x;
}

/**
 * The tail latency floor of this machine right now: an allocation-free synchronous loop of
 * about `targetUs`, timed exactly like a dispatch. On shared VMs, interrupts and neighbours stall
 * any code a few hundred times a second; a dispatch's p99.9 can be no better than this probe's.
 */
export function measureJitter(durationMs = 1000, targetUs = 3): Jitter {
  let iterations = 500;
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    for (let i = 0; i < 2000; i++) busy(iterations);
    const perCallUs = ((performance.now() - t0) * 1000) / 2000;
    iterations = Math.max(1, Math.round((iterations * targetUs) / perCallUs));
  }
  const stallMs = (targetUs + 20) / 1000;
  const h = newLatencyHistogram();
  let stalls = 0;
  const start = performance.now();
  const end = start + durationMs;
  let now = start;
  while (now < end) {
    const t0 = performance.now();
    busy(iterations);
    now = performance.now();
    const ms = now - t0;
    h.recordValue(Math.round(ms * 1e6));
    if (ms >= stallMs) stalls++;
  }
  return {
    probe: `allocation-free busy loop of ~${targetUs} µs (${iterations} iterations), timed like a dispatch`,
    latencyUs: latencyUs(h),
    stallsPerSec: round((stalls / (now - start)) * 1000),
  };
}
