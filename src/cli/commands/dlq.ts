import type {
  DeadLetterEntry,
  DeadLetterFilter,
  DeadLetterPage,
  DeadLetterSummary,
} from '../../client/client.js';
import { EXIT_OK, usage } from '../output.js';
import { clientFrom } from '../server-flags.js';
import { table } from '../table.js';
import { describe, exitCode } from './dispatch.js';

type Flags = Record<string, unknown>;

const print = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
const json = (v: unknown): void => print(JSON.stringify(v, null, 2));
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

const REASONS = ['exhausted', 'terminal', 'timeout'] as const;
const FILTER_FLAGS = [
  ['provider', '--provider'],
  ['tenant', '--tenant'],
  ['namespace', '--namespace'],
  ['actionType', '--action-type'],
  ['reason', '--reason'],
] as const;

/** The filter flags that were given; a flag without a value, or given twice, is bad usage. */
function filterFrom(flags: Flags): DeadLetterFilter {
  const filter: Record<string, string> = {};
  for (const [key, flag] of FILTER_FLAGS) {
    const v = flags[key];
    if (v === undefined) continue;
    if (v === true || v === '' || Array.isArray(v)) usage(`${flag} needs exactly one value`);
    filter[key] = String(v);
  }
  if (filter.reason !== undefined && !(REASONS as readonly string[]).includes(filter.reason)) {
    usage(`--reason must be one of ${REASONS.join(', ')}, got "${filter.reason}"`);
  }
  return filter as DeadLetterFilter;
}

const hasFilter = (f: DeadLetterFilter): boolean => Object.keys(f).length > 0;

function limitFrom(flag: unknown, fallback: number): number {
  if (flag === undefined) return fallback;
  const n = Number(flag);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    usage(`--limit must be an integer from 1 to 1000, got "${String(flag)}"`);
  }
  return n;
}

function row(e: DeadLetterSummary): string[] {
  return [
    e.id,
    e.failedAt,
    e.provider,
    e.reason,
    String(e.attempts),
    e.error.code,
    e.action.id,
    e.action.actionType,
  ];
}

/**
 * `switchyard dlq list`: one page (`--limit`, `--cursor`), or with `--all` every page, following
 * `nextCursor` to the end of the queue.
 */
export async function dlqListCommand(flags: Flags): Promise<number> {
  const client = clientFrom(flags);
  const filter = filterFrom(flags);
  const all = flags.all === true;
  if (all && flags.cursor !== undefined) usage('--all reads every page: drop --cursor');
  const limit = limitFrom(flags.limit, all ? 1000 : 50);
  let cursor = flags.cursor === undefined ? undefined : String(flags.cursor);
  let page: DeadLetterPage = await client.deadLetters({ ...filter, limit, cursor });
  const items = [...page.items];
  while (all && page.nextCursor !== null) {
    cursor = page.nextCursor;
    page = await client.deadLetters({ ...filter, limit, cursor });
    items.push(...page.items);
  }
  const result: DeadLetterPage = { items, nextCursor: page.nextCursor, total: page.total };
  if (flags.json) {
    json(result);
    return EXIT_OK;
  }
  if (items.length > 0) {
    print(
      table(
        ['ID', 'FAILED AT', 'PROVIDER', 'REASON', 'ATTEMPTS', 'ERROR', 'ACTION', 'TYPE'],
        items.map(row),
      ),
    );
  }
  const entries = `${items.length} ${items.length === 1 ? 'entry' : 'entries'}`;
  const shown = hasFilter(filter) ? `${entries} matching` : entries;
  const more = result.nextCursor === null ? '' : `; more: --all, or --cursor ${result.nextCursor}`;
  print(`${shown}; ${result.total} in the queue${more}`);
  return EXIT_OK;
}

function describeEntry(e: DeadLetterEntry): string {
  const a = e.action;
  const err = (x: { code: string; message: string; status?: number; transient: boolean }) =>
    `${x.code}${x.status === undefined ? '' : ` (status ${x.status})`}${x.transient ? '' : ' [terminal]'}: ${x.message}`;
  const lines: [string, string][] = [
    ['id', e.id],
    ['reason', e.reason],
    ['failedAt', e.failedAt],
    ['provider', e.provider],
    ['attempts', String(e.attempts)],
    ['replays', String(e.replays)],
    ['error', err(e.error)],
    ['action', a.id],
    ['  namespace', a.namespace],
    ['  tenant', a.tenant],
    ['  provider', a.provider],
    ['  actionType', a.actionType],
    ['  receivedAt', a.receivedAt],
  ];
  if (Object.keys(a.labels).length > 0) lines.push(['  labels', JSON.stringify(a.labels)]);
  if (a.dedupKey !== undefined) lines.push(['  dedupKey', a.dedupKey]);
  if (a.fingerprint !== undefined) lines.push(['  fingerprint', a.fingerprint]);
  lines.push(['  payload', JSON.stringify(a.payload)]);
  const width = Math.max(...lines.map(([k]) => k.length)) + 1;
  const out = lines.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${v}`);
  out.push(`errors (${e.errors.length}):`);
  for (const x of e.errors) out.push(`  #${x.attempt}  ${x.at}  ${x.provider}  ${err(x)}`);
  return out.join('\n');
}

/** `switchyard dlq show <id>`. */
export async function dlqShowCommand(id: string, flags: Flags): Promise<number> {
  const entry = await clientFrom(flags).deadLetter(id);
  if (flags.json) json(entry);
  else print(describeEntry(entry));
  return EXIT_OK;
}

/** An id, or filters, or `--all`: exactly one way of naming the entries. */
function target(verb: 'replay' | 'discard', id: string | undefined, flags: Flags) {
  const filter = filterFrom(flags);
  const all = flags.all === true;
  if (id !== undefined && (hasFilter(filter) || all)) {
    usage(`dlq ${verb} takes an id or filters/--all, not both`);
  }
  if (all && hasFilter(filter)) {
    usage(`--all ${verb}s the whole queue: drop it or the filters`);
  }
  if (id === undefined && !all && !hasFilter(filter)) {
    usage(
      verb === 'discard'
        ? 'dlq discard needs an id, a filter (--provider, --tenant, --namespace, --action-type, --reason), or --all to discard the whole queue'
        : 'dlq replay needs an id, a filter (--provider, --tenant, --namespace, --action-type, --reason), or --all to replay the whole queue',
    );
  }
  return { filter, all };
}

/**
 * `switchyard dlq replay <id>`: the new outcome, exit 1 when it failed again (or the breaker or
 * a limit refused it). `dlq replay --provider p` / `--all`: hands every match to the retry queue.
 */
export async function dlqReplayCommand(id: string | undefined, flags: Flags): Promise<number> {
  const { filter } = target('replay', id, flags);
  const client = clientFrom(flags);
  if (id === undefined) {
    const res = await client.replayDeadLetters(filter);
    if (flags.json) json(res);
    else
      print(`replayed ${plural(res.replayed, 'dead letter')} (they run through the retry queue)`);
    return EXIT_OK;
  }
  const outcome = await client.replayDeadLetter(id);
  if (flags.json) {
    json(outcome);
  } else {
    print(describe(outcome));
    if (outcome.outcome === 'retrying') {
      print(
        `still failing: retries continue in the background (next attempt at ${outcome.nextAttemptAt})`,
      );
    }
  }
  return exitCode([outcome]);
}

/** `switchyard dlq discard <id>` / `--provider p …` / `--all`: prints how many were removed. */
export async function dlqDiscardCommand(id: string | undefined, flags: Flags): Promise<number> {
  const { filter, all } = target('discard', id, flags);
  const client = clientFrom(flags);
  const res =
    id === undefined
      ? await client.discardDeadLetters(all ? { all: true } : filter)
      : await client.discardDeadLetter(id);
  if (flags.json) json(res);
  else print(`discarded ${plural(res.discarded, 'dead letter')}`);
  return EXIT_OK;
}
