import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline/promises';
import type { Writable } from 'node:stream';
import {
  AUDIT_KINDS,
  type AuditFilter,
  type AuditPage,
  type AuditRecordView,
  type AuditVerifyResult,
} from '../../client/client.js';
import { parseDuration } from '../../core/units.js';
import { EXIT_FAILED, EXIT_OK, usage } from '../output.js';
import { clientFrom } from '../server-flags.js';
import { table } from '../table.js';

type Flags = Record<string, unknown>;

const print = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
const json = (v: unknown): void => print(JSON.stringify(v, null, 2));
const note = (s: string): void => void process.stderr.write(`${s}\n`);
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

const ORDERS = ['asc', 'desc'] as const;
const FORMATS = ['jsonl', 'csv'] as const;
/** Export pages: the API's maximum, so a large export makes as few round trips as it can. */
const EXPORT_PAGE = 1000;

/** A flag's one value as a string; a flag without a value, or given twice, is bad usage. */
function one(flags: Flags, key: string, flag: string): string | undefined {
  const v = flags[key];
  if (v === undefined) return undefined;
  if (v === true || v === '' || Array.isArray(v)) usage(`${flag} needs exactly one value`);
  return String(v);
}

function oneOf<T extends string>(
  flags: Flags,
  key: string,
  flag: string,
  allowed: readonly T[],
): T | undefined {
  const v = one(flags, key, flag);
  if (v !== undefined && !(allowed as readonly string[]).includes(v)) {
    usage(`${flag} must be one of ${allowed.join(', ')}, got "${v}"`);
  }
  return v as T | undefined;
}

const RFC3339 =
  /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2}))?$/;

/**
 * `--from` / `--to`: an RFC 3339 time (a date alone is midnight UTC), or a duration ("24h",
 * "7d") meaning that long before `now`. Sent to the server as RFC 3339 in UTC.
 */
export function parseTimeFlag(value: string, flag: string, now: number): string {
  const ago = parseDuration(value);
  if (ago !== undefined) return new Date(now - ago).toISOString();
  const t = RFC3339.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(t)) {
    usage(
      `${flag} must be an RFC 3339 time (2026-12-01T00:00:00Z) or a duration ago (30m, 24h, 7d), got "${value}"`,
    );
  }
  return new Date(t).toISOString();
}

const FILTER_FLAGS = [
  ['tenant', '--tenant'],
  ['namespace', '--namespace'],
  ['provider', '--provider'],
  ['actionType', '--action-type'],
  ['outcome', '--outcome'],
  ['rule', '--rule'],
  ['q', '--q'],
] as const;

/** The audit filters given as flags, checked here so a typo is exit 2, not a server error. */
export function auditFilterFrom(flags: Flags, now = Date.now()): AuditFilter {
  const filter: AuditFilter = {};
  for (const [key, flag] of FILTER_FLAGS) {
    const v = one(flags, key, flag);
    if (v !== undefined) filter[key] = v;
  }
  const kind = oneOf(flags, 'kind', '--kind', AUDIT_KINDS);
  if (kind !== undefined) filter.kind = kind;
  const order = oneOf(flags, 'order', '--order', ORDERS);
  if (order !== undefined) filter.order = order;
  const label = one(flags, 'label', '--label');
  if (label !== undefined) {
    if (label.indexOf('=') <= 0) usage(`--label must look like key=value, got "${label}"`);
    filter.label = label;
  }
  const from = one(flags, 'from', '--from');
  if (from !== undefined) filter.from = parseTimeFlag(from, '--from', now);
  const to = one(flags, 'to', '--to');
  if (to !== undefined) filter.to = parseTimeFlag(to, '--to', now);
  if (filter.from !== undefined && filter.to !== undefined && filter.from >= filter.to) {
    usage(`--from (${filter.from}) must be before --to (${filter.to})`);
  }
  return filter;
}

function limitFrom(flag: unknown): number | undefined {
  if (flag === undefined) return undefined;
  const n = Number(flag);
  if (flag === true || !Number.isInteger(n) || n < 1 || n > 1000) {
    usage(`--limit must be an integer from 1 to 1000, got "${String(flag)}"`);
  }
  return n;
}

const short = (s: string, max = 60): string => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);

/** What went wrong or why: the error code and message, or the rules' reason. */
function detail(r: AuditRecordView): string {
  if (r.errorCode !== null) return r.reason === null ? r.errorCode : `${r.errorCode}: ${r.reason}`;
  return r.reason ?? '';
}

const dash = (v: string | number | null): string => (v === null || v === '' ? '-' : String(v));

/** `switchyard audit query`: one page as a table, with the cursor of the next. */
export async function auditQueryCommand(flags: Flags): Promise<number> {
  const filter = auditFilterFrom(flags);
  const limit = limitFrom(flags.limit);
  const cursor = one(flags, 'cursor', '--cursor');
  const page = await clientFrom(flags).auditQuery({ ...filter, limit, cursor });
  if (flags.json) {
    json(page);
    return EXIT_OK;
  }
  if (page.items.length > 0) {
    const rows = page.items.map((r) => [
      dash(r.decidedAt),
      r.kind,
      r.outcome,
      dash(r.actionId),
      dash(r.tenant),
      dash(r.provider),
      dash(r.attempt),
      short(detail(r)),
    ]);
    print(
      table(
        ['DECIDED AT', 'KIND', 'OUTCOME', 'ACTION', 'TENANT', 'PROVIDER', 'ATTEMPT', 'DETAIL'],
        rows,
      ),
    );
  }
  const more = page.nextCursor === null ? '' : `; more: --cursor ${page.nextCursor}`;
  print(`${plural(page.items.length, 'record')}${more}`);
  return EXIT_OK;
}

function timelineResult(r: AuditRecordView): string {
  const parts: string[] = [];
  if (r.status !== null) parts.push(`status=${r.status}`);
  const d = detail(r);
  if (d !== '') parts.push(d);
  if (r.kind === 'decision' && r.rules.length > 0) parts.push(`rules=${r.rules.join(',')}`);
  return parts.join('  ');
}

/** The history as a timeline, then the decision's action and payload. */
function describeHistory(items: readonly AuditRecordView[]): string {
  const out = [
    table(
      ['TIME', 'KIND', 'OUTCOME', 'PROVIDER', 'ATTEMPT', 'RESULT'],
      items.map((r) => [
        dash(r.decidedAt),
        r.kind,
        r.outcome,
        dash(r.provider),
        dash(r.attempt),
        timelineResult(r),
      ]),
    ).trimEnd(),
  ];
  const decision = items.find((r) => r.kind === 'decision') ?? items[0];
  if (decision !== undefined) {
    const lines: [string, string][] = [
      ['action', decision.actionId],
      ['namespace', decision.namespace],
      ['tenant', decision.tenant],
      ['actionType', decision.actionType],
    ];
    if (decision.originalProvider !== '' && decision.originalProvider !== decision.provider) {
      lines.push(['provider', `${decision.provider} (named ${decision.originalProvider})`]);
    }
    if (Object.keys(decision.labels).length > 0) {
      lines.push(['labels', JSON.stringify(decision.labels)]);
    }
    if (decision.dedupKey !== null) lines.push(['dedupKey', decision.dedupKey]);
    const width = Math.max(...lines.map(([k]) => k.length)) + 1;
    out.push('', ...lines.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${v}`));
    out.push(
      decision.payload === null
        ? 'payload: none (erased, or not stored)'
        : `payload:\n${JSON.stringify(decision.payload, null, 2)}`,
    );
  }
  return out.join('\n');
}

/** `switchyard audit show <actionId>`: every record of one action, oldest first. */
export async function auditShowCommand(actionId: string, flags: Flags): Promise<number> {
  const namespace = one(flags, 'namespace', '--namespace');
  const tenant = one(flags, 'tenant', '--tenant');
  if ((namespace === undefined) !== (tenant === undefined)) {
    usage('give both --namespace and --tenant, or neither');
  }
  const scope = namespace === undefined || tenant === undefined ? undefined : { namespace, tenant };
  const history = await clientFrom(flags).auditHistory(actionId, scope);
  if (flags.json) json(history);
  else print(describeHistory(history.items));
  return EXIT_OK;
}

const countOf = (v: unknown): number =>
  typeof v === 'number' ? v : Array.isArray(v) ? v.length : 0;

/** `switchyard audit verify`: exit 0 when every chain is intact, 1 when a problem was found. */
export async function auditVerifyCommand(flags: Flags): Promise<number> {
  const tenant = one(flags, 'tenant', '--tenant');
  const result: AuditVerifyResult = await clientFrom(flags).auditVerify(tenant);
  const code = result.ok ? EXIT_OK : EXIT_FAILED;
  if (flags.json) {
    json(result);
    return code;
  }
  const records = plural(countOf(result.records), 'record');
  const chains = plural(countOf(result.tenants), 'tenant chain');
  if (result.ok) {
    print(`ok: ${records} in ${chains}`);
    return code;
  }
  print(
    table(
      ['TENANT', 'RECORD', 'SEQ', 'PROBLEM', 'MESSAGE'],
      result.problems.map((p) => [
        p.tenant,
        dash(p.recordId ?? null),
        String(p.chainSeq),
        p.problem,
        p.message,
      ]),
    ),
  );
  print(`FAILED: ${plural(result.problems.length, 'problem')} (${records} in ${chains} checked)`);
  return code;
}

/* ---------- export ---------- */

const CSV_COLUMNS = [
  'id',
  'kind',
  'actionId',
  'namespace',
  'tenant',
  'provider',
  'originalProvider',
  'destination',
  'actionType',
  'labels',
  'outcome',
  'rules',
  'reason',
  'attempt',
  'status',
  'errorCode',
  'dedupKey',
  'receivedAt',
  'decidedAt',
  'executedAt',
  'durationMs',
  'nodeId',
  'traceId',
  'payload',
  'payloadHash',
  'chainSeq',
  'prevHash',
  'hash',
] as const satisfies readonly (keyof AuditRecordView)[];

/** RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. */
export function csvField(value: unknown): string {
  const text =
    value === null || value === undefined
      ? ''
      : typeof value === 'object'
        ? JSON.stringify(value)
        : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export const csvHeader = (): string => `${CSV_COLUMNS.join(',')}\r\n`;

export function csvRow(r: AuditRecordView): string {
  return `${CSV_COLUMNS.map((c) => csvField(r[c])).join(',')}\r\n`;
}

/** Writes and waits for 'drain' when the stream's buffer is full; rejects on a stream error. */
async function write(out: Writable, chunk: string, failed: () => Error | undefined): Promise<void> {
  const error = failed();
  if (error !== undefined) throw error;
  if (!out.write(chunk)) await once(out, 'drain');
}

interface Progress {
  update(records: number, pages: number): void;
  stop(): void;
}

/** A cli-progress line on stderr, only on a terminal (the total is not known in advance). */
async function progress(): Promise<Progress> {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      format: 'exporting {value} records, {pages} pages ({duration_formatted})',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(0, 0, { pages: 0 });
  return {
    update: (records, pages) => {
      bar.setTotal(records);
      bar.update(records, { pages });
    },
    stop: () => bar.stop(),
  };
}

/**
 * `switchyard audit export`: every matching record, page by page (1000 a page), to standard
 * output or `--output`, as JSON lines or CSV. Only one page is held at a time, and a page is
 * not requested before the previous one has been handed to the stream (backpressure).
 */
export async function auditExportCommand(flags: Flags): Promise<number> {
  const filter = auditFilterFrom(flags);
  const format = oneOf(flags, 'format', '--format', FORMATS) ?? 'jsonl';
  const file = one(flags, 'output', '--output');
  const client = clientFrom(flags);

  let error: Error | undefined;
  const out: Writable = file === undefined ? process.stdout : createWriteStream(file);
  const onError = (err: Error): void => void (error ??= err);
  out.on('error', onError);
  if (file !== undefined) {
    // Fail on an unwritable path before asking the server for anything.
    await once(out, 'ready').catch((err: unknown) =>
      usage(`cannot write --output ${file}: ${(err as Error).message}`),
    );
  }
  const failed = (): Error | undefined => error;

  const bar = await progress();
  let records = 0;
  let pages = 0;
  try {
    if (format === 'csv') await write(out, csvHeader(), failed);
    for await (const page of client.auditPages({ ...filter, limit: EXPORT_PAGE })) {
      await write(out, render(page, format), failed);
      records += page.items.length;
      pages += 1;
      bar.update(records, pages);
    }
    if (file !== undefined) {
      out.end();
      await once(out, 'finish');
    }
    const late = failed();
    if (late !== undefined) throw late;
  } catch (err) {
    // The reader of standard output went away (`| head`): stop quietly, as other tools do.
    if (file === undefined && (err as { code?: string }).code === 'EPIPE') return EXIT_OK;
    throw err;
  } finally {
    bar.stop();
  }
  note(
    `exported ${plural(records, 'record')} (${plural(pages, 'page')}) to ${file ?? 'standard output'}`,
  );
  return EXIT_OK;
}

function render(page: AuditPage, format: 'jsonl' | 'csv'): string {
  let chunk = '';
  for (const r of page.items) chunk += format === 'csv' ? csvRow(r) : `${JSON.stringify(r)}\n`;
  return chunk;
}

/* ---------- erase ---------- */

/** The fields the server erases by (POST /v1/audit/erase). */
const ERASE_FIELD =
  /^(actionId|tenant|namespace|dedupKey|labels\.[A-Za-z0-9_.:-]{1,128}|payload\.[A-Za-z0-9_-]{1,128})$/;

export function whereFrom(flags: Flags): { field: string; value: string } {
  const where = one(flags, 'where', '--where');
  if (where === undefined) {
    usage('audit erase needs --where <field>=<value>, e.g. --where tenant=acme');
  }
  const eq = where.indexOf('=');
  const field = eq < 0 ? where : where.slice(0, eq);
  const value = eq < 0 ? '' : where.slice(eq + 1);
  if (eq <= 0 || value === '') {
    usage(`--where must look like <field>=<value>, e.g. --where tenant=acme, got "${where}"`);
  }
  if (!ERASE_FIELD.test(field)) {
    usage(
      `--where field must be actionId, tenant, namespace, dedupKey, labels.<key> or payload.<key>, got "${field}"`,
    );
  }
  return { field, value };
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/**
 * `switchyard audit erase --where field=value`: drops the payloads of the matching records (the
 * records and their chain stay). Asks first on a terminal; elsewhere it needs `--yes`.
 */
export async function auditEraseCommand(flags: Flags): Promise<number> {
  const { field, value } = whereFrom(flags);
  const reason = one(flags, 'reason', '--reason');
  const client = clientFrom(flags);
  if (flags.yes !== true) {
    if (!process.stdin.isTTY) {
      usage(
        'audit erase cannot ask for confirmation (standard input is not a terminal): pass --yes',
      );
    }
    if (!(await confirm(`erase payloads of records where ${field}=${value}?`))) {
      note('nothing erased');
      return EXIT_FAILED;
    }
  }
  const res = await client.auditErase(field, value, reason);
  if (flags.json) json(res);
  else print(`erased ${plural(res.erased, 'payload')} (record ${res.recordId})`);
  return EXIT_OK;
}
