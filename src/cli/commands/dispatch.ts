import { readFileSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import type { ActionInput } from '../../core/action.js';
import type { Outcome } from '../../core/outcome.js';
import { clientFrom } from '../server-flags.js';
import { EXIT_FAILED, EXIT_OK, usage } from '../output.js';

type Flags = Record<string, unknown>;

/** Reads a JSON document from a file or (`-`) standard input; bad input is a usage error. */
export async function readInput(file: string): Promise<unknown> {
  let raw: string;
  try {
    raw = file === '-' ? await text(process.stdin) : readFileSync(file, 'utf8');
  } catch (err) {
    return usage(
      `cannot read ${file === '-' ? 'standard input' : file}: ${(err as Error).message}`,
    );
  }
  try {
    return JSON.parse(raw);
  } catch (err) {
    return usage(
      `${file === '-' ? 'standard input' : file} is not valid JSON: ${(err as Error).message}`,
    );
  }
}

function labelsFrom(flag: unknown): Record<string, string> | undefined {
  if (flag === undefined) return undefined;
  const labels: Record<string, string> = {};
  for (const item of Array.isArray(flag) ? flag : [flag]) {
    const s = String(item);
    const eq = s.indexOf('=');
    if (eq <= 0) usage(`--label must look like key=value, got "${s}"`);
    labels[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return labels;
}

/** Fields given as flags, which override the same fields of a file's action. */
export function fromFlags(flags: Flags): Partial<ActionInput> {
  const out: Record<string, unknown> = {};
  const str = (v: unknown): string | undefined => (v === undefined ? undefined : String(v));
  const map: [keyof ActionInput, unknown][] = [
    ['provider', str(flags.provider)],
    ['actionType', str(flags.actionType)],
    ['namespace', str(flags.namespace)],
    ['tenant', str(flags.tenant)],
    ['dedupKey', str(flags.dedupKey)],
    ['id', str(flags.id)],
    ['labels', labelsFrom(flags.label)],
  ];
  for (const [key, value] of map) if (value !== undefined) out[key] = value;
  if (flags.payload !== undefined) {
    try {
      out.payload = JSON.parse(String(flags.payload));
    } catch (err) {
      usage(`--payload is not valid JSON: ${(err as Error).message}`);
    }
  }
  return out as Partial<ActionInput>;
}

/** One summary line per outcome (plus the error or response on a second line). */
export function describe(outcome: Outcome): string {
  const head = `${outcome.outcome}  provider=${outcome.provider}  action=${outcome.actionId}  ${outcome.durationMs}ms`;
  switch (outcome.outcome) {
    case 'failed': {
      const dlq = outcome.deadLetterId === undefined ? '' : `  deadLetter=${outcome.deadLetterId}`;
      const tries = outcome.attempts === undefined ? '' : `  attempts=${outcome.attempts}`;
      return `${head}${tries}${dlq}\n  ${outcome.error.code}: ${outcome.error.message}`;
    }
    case 'retrying':
      return `${head}  attempts=${outcome.attempts}  nextAttemptAt=${outcome.nextAttemptAt}${outcome.error === undefined ? '' : `\n  ${outcome.error.code}: ${outcome.error.message}`}`;
    case 'circuit_open':
      return `${head}  retryAfterMs=${outcome.retryAfterMs}\n  ${outcome.error.code}: ${outcome.error.message}`;
    case 'suppressed':
      return `${head}  rule=${outcome.rule}\n  ${outcome.reason}`;
    case 'deduplicated':
      return `${head}  duplicateOf=${outcome.duplicateOf}${outcome.inFlight ? '  (in flight)' : ''}`;
    case 'throttled':
      return `${head}  ${outcome.rule === undefined ? `budget=${outcome.budget ?? ''}` : `rule=${outcome.rule}`}  retryAfterMs=${outcome.retryAfterMs}`;
    case 'executed':
    case 'rerouted': {
      const from =
        (outcome.outcome === 'rerouted' ? `  from=${outcome.originalProvider}` : '') +
        (outcome.fallbackFrom === undefined ? '' : `  fallbackFrom=${outcome.fallbackFrom}`);
      const { status, body } = outcome.response;
      const line = `${head}${from}${status === undefined ? '' : `  status=${status}`}`;
      return body === undefined ? line : `${line}\n  ${JSON.stringify(body)}`;
    }
  }
}

/**
 * Failed, throttled or circuit-open actions did not happen: exit 1. Suppressed or deduplicated
 * ones were meant not to; a retrying one is accepted and will be retried.
 */
export function exitCode(outcomes: Outcome[]): number {
  return outcomes.some(
    (o) => o.outcome === 'failed' || o.outcome === 'throttled' || o.outcome === 'circuit_open',
  )
    ? EXIT_FAILED
    : EXIT_OK;
}

/** `switchyard dispatch`: returns the exit code (1 when any action failed or was throttled). */
export async function dispatchCommand(file: string | undefined, flags: Flags): Promise<number> {
  const overrides = fromFlags(flags);
  let body: unknown;
  if (file !== undefined) {
    const input = await readInput(file);
    body = Array.isArray(input)
      ? input.map((a: unknown) => ({ ...(a as object), ...overrides }))
      : { ...(input as object), ...overrides };
  } else {
    const missing = (['provider', 'actionType', 'namespace', 'tenant'] as const)
      .filter((k) => overrides[k] === undefined)
      .map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    if (missing.length > 0)
      usage(`missing ${missing.join(', ')} (or give a JSON file, or - for stdin)`);
    body = { payload: {}, ...overrides };
  }
  const client = clientFrom(flags);
  const outcomes = Array.isArray(body)
    ? await client.dispatchBatch(body as ActionInput[])
    : [await client.dispatch(body as ActionInput)];
  if (flags.json) {
    process.stdout.write(
      JSON.stringify(Array.isArray(body) ? outcomes : outcomes[0], null, 2) + '\n',
    );
  } else {
    for (const o of outcomes) process.stdout.write(describe(o) + '\n');
  }
  return exitCode(outcomes);
}
