/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and
 * Jitter"): a uniform random delay in [0, min(max, base * 2^(retry-1))]. `retry` is 1 before the
 * first retry. Full jitter spreads a burst of failing clients best.
 */
export function backoffMs(
  retry: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(retry - 1, 52));
  return Math.floor(random() * ceiling);
}
