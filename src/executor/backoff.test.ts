import { describe, expect, it } from 'vitest';
import { backoffMs } from './backoff.js';

describe('backoffMs (full jitter)', () => {
  it('stays within [0, min(max, base * 2^(n-1))]', () => {
    expect(backoffMs(1, 100, 10_000, () => 0.999)).toBe(99);
    expect(backoffMs(3, 100, 10_000, () => 0.999)).toBe(399);
    expect(backoffMs(20, 100, 10_000, () => 0.999)).toBe(9990);
    expect(backoffMs(5, 100, 10_000, () => 0)).toBe(0);
    expect(backoffMs(10_000, 100, 10_000, () => 0.5)).toBe(5000); // no overflow
  });
});
