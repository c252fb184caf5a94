import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI,
  postJson,
  startServerProcess,
  stopServerProcess,
  type ServerProcess,
} from './helpers/process.js';

/*
 * `switchyard audit …` (the built dist/cli.js) against a real `switchyard serve` process with a
 * strict (hash-chained) sqlite audit trail: 30 actions for two tenants, one suppressed by a rule.
 */

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli.js ...args` with stdin a pipe (not a TTY); SWITCHYARD_* env removed. */
function runCli(args: readonly string[], input = ''): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const name of Object.keys(env)) if (name.startsWith('SWITCHYARD_')) delete env[name];
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

interface AuditRecord {
  id: string;
  kind: string;
  actionId: string;
  tenant: string;
  outcome: string;
  labels: Record<string, string>;
  rules: string[];
  payload: unknown;
}

interface Page {
  items: AuditRecord[];
  nextCursor: string | null;
}

/** RFC 4180 CSV (quoted fields may hold commas, doubled quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else {
      field += c;
    }
  }
  expect(quoted, 'an unterminated quoted field').toBe(false);
  expect(field === '' && row.length === 0, 'the last row ends with CRLF').toBe(true);
  return rows;
}

const TENANTS = ['acme', 'globex'] as const;
const ACTIONS = 30;
/** Every third action has the label team=sre. */
const labelled = (n: number): boolean => n % 3 === 0;

describe('switchyard audit CLI', () => {
  let server: ServerProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sy-audit-cli-'));
  const url = (): string => (server as ServerProcess).url;
  const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--url', url()]);
  const ids = new Map<number, { actionId: string; tenant: string }>();
  let suppressedId = '';

  /** Every record, straight from the API (the reference for the CLI's answers). */
  async function allRecords(): Promise<AuditRecord[]> {
    const items: AuditRecord[] = [];
    let cursor: string | null = null;
    do {
      const qs: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const res = await fetch(`${url()}/v1/audit?limit=1000${qs}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as Page;
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return items;
  }

  beforeAll(async () => {
    server = await startServerProcess(
      `
audit:
  backend: sqlite
  path: audit.db
  mode: strict
rules:
  inline:
    - name: drop-noise
      condition: { field: payload.noise, eq: true }
      effects:
        suppress: { reason: noise is dropped }
`,
      {},
      dir,
    );
    for (let n = 0; n < ACTIONS; n++) {
      const tenant = TENANTS[n % 2] as string;
      const res = await postJson(`${url()}/v1/dispatch`, {
        namespace: 'billing',
        tenant,
        provider: 'noop',
        actionType: 'invoice',
        payload: { n, email: `user${n}@example.com`, note: `line 1, "quoted"\nline 2` },
        labels: labelled(n) ? { team: 'sre' } : {},
      });
      expect(res.body).toMatchObject({ outcome: 'executed' });
      ids.set(n, { actionId: (res.body as { actionId: string }).actionId, tenant });
    }
    const noise = await postJson(`${url()}/v1/dispatch`, {
      namespace: 'billing',
      tenant: 'acme',
      provider: 'noop',
      actionType: 'invoice',
      payload: { noise: true },
    });
    expect(noise.body).toMatchObject({ outcome: 'suppressed' });
    suppressedId = (noise.body as { actionId: string }).actionId;
  });

  afterAll(async () => {
    await stopServerProcess(server);
  });

  it('query --json filters by tenant, label, kind, outcome and time; pages with --cursor', async () => {
    const q = async (...args: string[]): Promise<Page> => {
      const res = await cli('audit', 'query', '--json', ...args);
      expect(res.code, res.stderr).toBe(0);
      return JSON.parse(res.stdout) as Page;
    };

    const globex = await q('--tenant', 'globex', '--kind', 'decision', '--limit', '1000');
    expect(globex.items).toHaveLength(ACTIONS / 2);
    expect(globex.items.every((r) => r.tenant === 'globex' && r.kind === 'decision')).toBe(true);
    expect(globex.nextCursor).toBeNull();

    const sre = await q('--label', 'team=sre', '--kind', 'decision', '--limit', '1000');
    expect(sre.items).toHaveLength([...ids.keys()].filter(labelled).length);
    expect(sre.items.every((r) => r.labels.team === 'sre')).toBe(true);

    const suppressed = await q('--outcome', 'suppressed');
    expect(suppressed.items.map((r) => r.actionId)).toEqual([suppressedId]);
    expect(JSON.stringify(suppressed.items[0]?.rules)).toContain('drop-noise');

    // Relative times: everything was recorded within the last hour, nothing before it.
    const recent = await q('--from', '1h', '--limit', '1000');
    expect(recent.items.length).toBe((await allRecords()).length);
    expect((await q('--to', '1h')).items).toEqual([]);

    // Two pages of 5 follow each other without overlap, newest first.
    const first = await q('--limit', '5', '--order', 'desc');
    expect(first.items).toHaveLength(5);
    expect(first.nextCursor).not.toBeNull();
    const second = await q('--limit', '5', '--cursor', first.nextCursor as string);
    expect(second.items).toHaveLength(5);
    const seen = new Set(first.items.map((r) => r.id));
    expect(second.items.some((r) => seen.has(r.id))).toBe(false);

    const human = await cli('audit', 'query', '--tenant', 'acme', '--limit', '3');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^DECIDED AT +KIND +OUTCOME +ACTION +TENANT +PROVIDER/);
    expect(human.stdout).toMatch(/3 records; more: --cursor \S+\n$/);
  });

  it('show prints one action as a timeline, then its payload', async () => {
    const { actionId } = ids.get(4) as { actionId: string };
    const json = await cli('audit', 'show', actionId, '--json');
    expect(json.code, json.stderr).toBe(0);
    const history = JSON.parse(json.stdout) as { actionId: string; items: AuditRecord[] };
    expect(history.actionId).toBe(actionId);
    // Oldest first: the attempt is recorded before the decision that reports its outcome.
    expect(history.items.filter((r) => r.kind === 'decision')).toMatchObject([
      { kind: 'decision', outcome: 'executed' },
    ]);
    expect(history.items.every((r) => r.actionId === actionId)).toBe(true);

    const human = await cli(
      'audit',
      'show',
      actionId,
      '--namespace',
      'billing',
      '--tenant',
      'acme',
    );
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toMatch(/^TIME +KIND +OUTCOME +PROVIDER +ATTEMPT +RESULT$/);
    const timeline = lines.filter((l) => /^\d{4}-/.test(l));
    expect(timeline).toHaveLength(history.items.length);
    expect(timeline.filter((l) => /^\S+Z +decision +executed +noop /.test(l))).toHaveLength(1);
    expect(human.stdout).toContain('\naction:      ' + actionId + '\n');
    expect(human.stdout).toContain('"email": "user4@example.com"');

    const missing = await cli('audit', 'show', 'no-such-action');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('SY_ERR_NOT_FOUND');
  });

  it('verify reports every chain intact', async () => {
    const res = await cli('audit', 'verify');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^ok: \d+ records in 2 tenant chains\n$/);
    const json = await cli('audit', 'verify', '--tenant', 'globex', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, tenants: 1, problems: [] });
  });

  it('export writes every record as JSON lines and as CSV', async () => {
    const all = await allRecords();
    expect(all.length).toBeGreaterThanOrEqual(ACTIONS + 1);

    const jsonl = join(dir, 'audit.jsonl');
    const a = await cli('audit', 'export', '--output', jsonl);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toBe(`exported ${all.length} records (1 page) to ${jsonl}\n`);
    const lines = readFileSync(jsonl, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    const exported = lines.map((l) => JSON.parse(l) as AuditRecord);
    expect(exported.map((r) => r.id).sort()).toEqual(all.map((r) => r.id).sort());

    const csv = join(dir, 'audit.csv');
    const c = await cli('audit', 'export', '--format', 'csv', '--output', csv, '--tenant', 'acme');
    expect(c.code, c.stderr).toBe(0);
    const acme = all.filter((r) => r.tenant === 'acme');
    const rows = parseCsv(readFileSync(csv, 'utf8'));
    const header = rows.shift() as string[];
    expect(header.slice(0, 5)).toEqual(['id', 'kind', 'actionId', 'namespace', 'tenant']);
    expect(rows).toHaveLength(acme.length);
    const col = (name: string): number => header.indexOf(name);
    for (const row of rows) {
      expect(row).toHaveLength(header.length);
      const record = acme.find((r) => r.id === row[col('id')]) as AuditRecord;
      expect(record).toBeDefined();
      expect(JSON.parse(row[col('labels')] as string)).toEqual(record.labels);
      expect(JSON.parse(row[col('rules')] as string)).toEqual(record.rules);
      const payload = row[col('payload')] as string;
      expect(payload === '' ? null : JSON.parse(payload)).toEqual(record.payload);
    }

    // To standard output by default; the summary goes to stderr only.
    const out = await cli('audit', 'export', '--tenant', 'globex', '--kind', 'decision');
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.trimEnd().split('\n')).toHaveLength(ACTIONS / 2);
    expect(out.stderr).toContain(`exported ${ACTIONS / 2} records (1 page) to standard output`);
  });

  it('erase drops the payloads of one action; the chains stay valid', async () => {
    const { actionId } = ids.get(6) as { actionId: string };
    const refused = await cli('audit', 'erase', '--where', `actionId=${actionId}`);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');

    const res = await cli(
      'audit',
      'erase',
      '--where',
      `actionId=${actionId}`,
      '--reason',
      'privacy request',
      '--yes',
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^erased [1-9]\d* payloads? \(record \S+\)\n$/);

    const shown = await cli('audit', 'show', actionId);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('payload: none');
    expect(shown.stdout).not.toContain('user6@example.com');
    const json = await cli('audit', 'show', actionId, '--json');
    const items = (JSON.parse(json.stdout) as { items: AuditRecord[] }).items;
    expect(items.every((r) => r.payload === null)).toBe(true);

    const erasures = await cli('audit', 'query', '--kind', 'erasure', '--json');
    expect((JSON.parse(erasures.stdout) as Page).items).toHaveLength(1);

    const verify = await cli('audit', 'verify');
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^ok: /);
  });

  it.each([
    [['query', '--kind', 'nope'], '--kind must be one of decision, attempt, replay, erasure'],
    [['query', '--order', 'up'], '--order must be one of asc, desc'],
    [['query', '--from', 'yesterday'], '--from must be an RFC 3339 time'],
    [['query', '--label', 'team'], '--label must look like key=value'],
    [['query', '--limit', '5000'], '--limit must be an integer from 1 to 1000'],
    [['export', '--format', 'xml'], '--format must be one of jsonl, csv'],
    [['erase', '--where', 'actionId', '--yes'], '--where must look like <field>=<value>'],
    [['erase', '--where', 'email=a@b.c', '--yes'], '--where field must be actionId'],
    [['show', 'x', '--tenant', 'acme'], 'give both --namespace and --tenant'],
  ])('audit %j is bad usage: exit 2', async (args, message) => {
    const res = await cli('audit', ...args);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('SY_ERR_CLI_USAGE');
    expect(res.stderr).toContain(message);
  });
});
