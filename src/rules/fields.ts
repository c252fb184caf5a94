import type { Action } from '../core/action.js';

/** Reads one field of an action. Never throws; a missing field is `undefined`. */
export type FieldGetter = (action: Action) => unknown;

const TOP_LEVEL = new Set([
  'id',
  'namespace',
  'tenant',
  'provider',
  'actionType',
  'dedupKey',
  'fingerprint',
]);
const TIME_PARTS = new Set(['hour', 'minute', 'weekday', 'day', 'month', 'year']);
export const MAX_PATH_SEGMENTS = 16;
const MAX_SEGMENT_LENGTH = 128;

/**
 * Checks a field path and returns an error sentence, or undefined when it is valid. Paths:
 * `id`, `namespace`, `tenant`, `provider`, `actionType`, `dedupKey`, `fingerprint`,
 * `labels.<name>`, `payload.<a>.<b>...` (a numeric segment indexes an array) and
 * `time.hour|minute|weekday|day|month|year` (in the rule's time zone).
 */
export function checkFieldPath(path: string): string | undefined {
  const segments = path.split('.');
  const head = segments[0] as string;
  if (segments.length > MAX_PATH_SEGMENTS) return `has more than ${MAX_PATH_SEGMENTS} segments`;
  if (segments.some((s) => s === '' || s.length > MAX_SEGMENT_LENGTH)) {
    return `has an empty segment or one longer than ${MAX_SEGMENT_LENGTH} characters`;
  }
  if (TOP_LEVEL.has(head)) return segments.length === 1 ? undefined : `${head} has no sub-fields`;
  if (head === 'labels') return segments.length === 2 ? undefined : 'must be labels.<name>';
  if (head === 'payload') return undefined;
  if (head === 'time') {
    return segments.length === 2 && TIME_PARTS.has(segments[1] as string)
      ? undefined
      : `must be time.${[...TIME_PARTS].join('|time.')}`;
  }
  return `must start with one of ${[...TOP_LEVEL, 'labels', 'payload', 'time'].join(', ')}`;
}

function own(value: unknown, key: string): unknown {
  if (value === null || typeof value !== 'object') return undefined;
  // Own properties only: `payload.constructor` or `payload.__proto__` must not reach prototypes.
  return Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
}

/** Compiles a (valid) field path to a getter; `timeZone` applies to `time.*`. */
export function compileField(path: string, timeZone: string | undefined): FieldGetter {
  const segments = path.split('.');
  const head = segments[0] as string;
  if (TOP_LEVEL.has(head)) {
    const key = head as keyof Action;
    return (a) => a[key];
  }
  if (head === 'labels') {
    const name = segments[1] as string;
    return (a) => own(a.labels, name);
  }
  if (head === 'time') {
    const part = segments[1] as TimePart;
    const clock = wallClock(timeZone ?? 'UTC');
    return (a) => clock(a.receivedAt)[part];
  }
  const rest = segments.slice(1);
  if (rest.length === 1) {
    const k = rest[0] as string;
    return (a) => own(a.payload, k);
  }
  if (rest.length === 2) {
    const [k1, k2] = rest as [string, string];
    return (a) => own(own(a.payload, k1), k2);
  }
  return (a) => {
    let v: unknown = a.payload;
    for (let i = 0; i < rest.length && v !== undefined; i++) v = own(v, rest[i] as string);
    return v;
  };
}

type TimePart = 'hour' | 'minute' | 'weekday' | 'day' | 'month' | 'year';
type WallTime = Record<TimePart, number>;

const WEEKDAYS: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };

/** Checks an IANA time zone name; returns an error sentence or undefined. */
export function checkTimeZone(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return undefined;
  } catch {
    return `"${zone}" is not a known IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)`;
  }
}

/**
 * Wall-clock parts of an instant in a time zone; weekday is ISO (1 = Monday … 7 = Sunday).
 * Intl formatting costs microseconds, so the result is cached for the current minute.
 */
function wallClock(timeZone: string): (epochMs: number) => WallTime {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    weekday: 'short',
  });
  let cachedMinute = Number.NaN;
  let cached: WallTime = { hour: 0, minute: 0, weekday: 0, day: 0, month: 0, year: 0 };
  return (epochMs) => {
    const minute = Math.floor(epochMs / 60_000);
    if (minute === cachedMinute) return cached;
    const parts: Record<string, string> = {};
    for (const p of format.formatToParts(epochMs)) parts[p.type] = p.value;
    cached = {
      hour: Number(parts.hour),
      minute: Number(parts.minute),
      weekday: WEEKDAYS[parts.weekday ?? ''] ?? 0,
      day: Number(parts.day),
      month: Number(parts.month),
      year: Number(parts.year),
    };
    cachedMinute = minute;
    return cached;
  };
}
