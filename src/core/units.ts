/**
 * Durations and sizes as people write them in config: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"`
 * or a number of milliseconds; `"64KiB"`, `"1MiB"` or a number of bytes. Strict on purpose:
 * `"5 minutes"` or `"1.5.0s"` are errors, not guesses.
 */
const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const SIZE_RE = /^(\d+(?:\.\d+)?)(B|KiB|MiB|GiB|KB|MB|GB)$/;

/** Milliseconds for a duration, or undefined when the input is not a valid duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = DURATION_RE.exec(value.trim());
  if (m === null) return undefined;
  return Math.round(Number(m[1]) * (DURATION_UNITS[m[2] as string] as number));
}

/** Bytes for a size, or undefined when the input is not a valid size. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = SIZE_RE.exec(value.trim());
  if (m === null) return undefined;
  return Math.round(Number(m[1]) * (SIZE_UNITS[m[2] as string] as number));
}

/** JSON-schema pattern accepted for durations in config (numbers are accepted separately). */
export const DURATION_PATTERN = DURATION_RE.source;
export const SIZE_PATTERN = SIZE_RE.source;
