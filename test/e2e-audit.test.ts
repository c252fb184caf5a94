import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { canonicalJson, sha256 } from '../src/audit/record.js';
import {
  CLI,
  postJson,
  startServerProcess,
  stopServerProcess,
  type ServerProcess,
} from './helpers/process.js';
import { behave, startProgrammableReceiver } from './helpers/programmable-receiver.js';
import { POSTGRES_URL, dropPostgresPrefix, serviceAvailable } from './helpers/services.js';

/*
 * The audit trail end to end: real `switchyard serve` processes writing real SQLite files (read
 * back directly with better-sqlite3, behind the server's back) and a real PostgreSQL store.
 * Batched mode loses nothing on SIGTERM, strict mode loses no answered action on SIGKILL, the
 * hash chain names edited and deleted records, redacted values never reach the disk, the query
 * API pages stably, erasure keeps the chain valid, and two gateways share one chain.
 */

interface Outcome {
  outcome: string;
  actionId: string;
}

interface ApiRecord {
  id: string;
  kind: string;
  actionId: string;
  tenant: string;
  outcome: string;
  labels: Record<string, string>;
  attempt: number | null;
  status: number | null;
  decidedAt: string;
  payload: unknown;
  payloadHash: string;
  chainSeq: number | null;
  nodeId: string;
}

interface Page {
  items: ApiRecord[];
  nextCursor: string | null;
}

interface Problem {
  tenant: string;
  recordId: string | undefined;
  chainSeq: number;
  problem: string;
  message: string;
}

interface VerifyResult {
  ok: boolean;
  problems: Problem[];
}

/** A row of audit_records as better-sqlite3 returns it (the columns these tests read). */
interface Row {
  id: string;
  kind: string;
  action_id: string;
  tenant: string;
  outcome: string;
  payload: string | null;
  payload_hash: string;
  chain_seq: number | null;
}

const AUDIT_DB = (dir: string): string => join(dir, 'switchyard-data', 'audit.db');

const newDir = (name: string): string => mkdtempSync(join(tmpdir(), `sy-audit-${name}-`));

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

async function dispatch(url: string, action: unknown): Promise<Outcome> {
  const res = await postJson(`${url}/v1/dispatch`, action);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as Outcome;
}

/** SIGTERM, and the graceful shutdown must end with exit code 0. */
async function terminate(server: ServerProcess): Promise<void> {
  server.kill('SIGTERM');
  const exit = await server.exited;
  expect(exit, server.output()).toEqual({ code: 0, signal: null });
}

/** Opens the server's audit.db directly (read-only unless told otherwise). */
function openDb(dir: string, readonly = true): Database.Database {
  return new Database(AUDIT_DB(dir), { readonly, fileMustExist: true });
}

function verify(url: string): Promise<VerifyResult> {
  return getJson<VerifyResult>(`${url}/v1/audit/verify`).then((r) => {
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  });
}

/** Every page of a query, following nextCursor; also checks newest-first order inside pages. */
async function allPages(url: string, query: string): Promise<ApiRecord[]> {
  const items: ApiRecord[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 10_000; pages++) {
    const q: string = cursor === null ? query : `${query}&cursor=${encodeURIComponent(cursor)}`;
    const res = await getJson<Page>(`${url}/v1/audit?${q}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
    if (cursor === null) return items;
  }
  throw new Error('paging never ended');
}

/**
 * The tests run side by side, at most LANES at a time (each starts and hammers real server
 * processes; more at once only starves them of CPU). A test's servers are ended (SIGKILL unless
 * already exited) before its lane is handed on.
 */
const LANES = 3;
const TIMEOUT = 60_000;
let freeLanes = LANES;
const waitingForLane: (() => void)[] = [];

type Start = (yaml: string, dir: string) => Promise<ServerProcess>;

function inLane(body: (start: Start) => Promise<void>): () => Promise<void> {
  return async () => {
    if (freeLanes > 0) freeLanes--;
    else await new Promise<void>((resolve) => waitingForLane.push(resolve));
    const servers: ServerProcess[] = [];
    try {
      await body(async (yaml, dir) => {
        const server = await startServerProcess(yaml, {}, dir);
        servers.push(server);
        return server;
      });
    } finally {
      await Promise.all(servers.map((s) => stopServerProcess(s)));
      const next = waitingForLane.shift();
      if (next === undefined) freeLanes++;
      else next();
    }
  };
}

const sqliteBatched = `
audit:
  backend: sqlite
  mode: batched
`;
const sqliteStrict = `
audit:
  backend: sqlite
  mode: strict
`;

const postgres = await serviceAvailable('postgres');

// Independent servers in their own folders (and table prefix): the tests run side by side.
describe.concurrent('audit trail, end to end', () => {
  describe('batched mode, sqlite', () => {
    it(
      'writes all 10,000 decisions of a burst before a SIGTERM exit, each once',
      inLane(async (start) => {
        const dir = newDir('batched');
        const server = await start(sqliteBatched, dir);
        const N = 10_000;
        const BATCH = 500;
        const answered: string[] = [];
        const batches = Array.from({ length: N / BATCH }, (_, b) =>
          Array.from({ length: BATCH }, (_, j) => {
            const i = b * BATCH + j;
            return {
              namespace: 'load',
              tenant: i % 2 === 0 ? 'a' : 'b',
              provider: 'noop',
              actionType: 'ping',
              labels: { team: i % 3 === 0 ? 'sre' : 'web', n: String(i) },
              payload: { n: i },
            };
          }),
        );
        // Four batches in flight at a time.
        let next = 0;
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (next < batches.length) {
              const body = batches[next++];
              const res = await postJson(`${server.url}/v1/dispatch/batch`, body);
              expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
              for (const o of (res.body as { outcomes: Outcome[] }).outcomes) {
                expect(o.outcome).toBe('executed');
                answered.push(o.actionId);
              }
            }
          }),
        );
        expect(new Set(answered).size).toBe(N);

        // Right away: whatever is still buffered must be written by the graceful shutdown.
        await terminate(server);

        const db = openDb(dir);
        try {
          const total = db
            .prepare("SELECT count(*) FROM audit_records WHERE kind = 'decision'")
            .pluck()
            .get() as number;
          expect(total).toBe(N);
          const perAction = db
            .prepare(
              "SELECT action_id, count(*) AS n FROM audit_records WHERE kind = 'decision' GROUP BY action_id",
            )
            .all() as { action_id: string; n: number }[];
          expect(perAction).toHaveLength(N);
          expect(perAction.filter((r) => r.n !== 1)).toEqual([]);
          const stored = new Set(perAction.map((r) => r.action_id));
          expect(answered.filter((id) => !stored.has(id))).toEqual([]);
          const tenants = db
            .prepare(
              "SELECT tenant, count(*) AS n FROM audit_records WHERE kind = 'decision' GROUP BY tenant ORDER BY tenant",
            )
            .all();
          expect(tenants).toEqual([
            { tenant: 'a', n: N / 2 },
            { tenant: 'b', n: N / 2 },
          ]);
          // Batched records are not chained.
          const chained = db
            .prepare('SELECT count(*) FROM audit_records WHERE chain_seq IS NOT NULL')
            .pluck()
            .get();
          expect(chained).toBe(0);
        } finally {
          db.close();
        }
      }),
      TIMEOUT,
    );
  });

  describe('strict mode, sqlite', () => {
    it(
      'has the decision of every answered action after a SIGKILL mid-burst; the chain verifies',
      inLane(async (start) => {
        const dir = newDir('strict');
        const server = await start(sqliteStrict, dir);
        const N = 2000;
        const KILL_AT = 1000;
        const answered: string[] = [];
        let next = 0;
        let killed = false;
        await Promise.all(
          Array.from({ length: 10 }, async (_, w) => {
            while (next < N) {
              const i = next++;
              if (!killed && answered.length >= KILL_AT) {
                // Kill while the other workers' requests are in flight; keep dispatching.
                killed = true;
                server.kill('SIGKILL');
              }
              try {
                const res = await postJson(`${server.url}/v1/dispatch`, {
                  namespace: 'strict',
                  tenant: w % 2 === 0 ? 'a' : 'b',
                  provider: 'noop',
                  actionType: 'ping',
                  payload: { i },
                });
                if (res.status === 200) answered.push((res.body as Outcome).actionId);
                else if (!killed)
                  throw new Error(`status ${res.status}: ${JSON.stringify(res.body)}`);
              } catch (err) {
                if (!killed) throw err;
                // The server is gone: nothing more will be answered.
                return;
              }
            }
          }),
        );
        expect(killed).toBe(true);
        expect(await server.exited).toEqual({ code: null, signal: 'SIGKILL' });
        expect(answered.length).toBeGreaterThanOrEqual(KILL_AT);

        const db = openDb(dir);
        try {
          const stored = new Set(
            db
              .prepare("SELECT action_id FROM audit_records WHERE kind = 'decision'")
              .pluck()
              .all() as string[],
          );
          expect(answered.filter((id) => !stored.has(id))).toEqual([]);
          // Strict records are chained.
          const unchained = db
            .prepare(
              "SELECT count(*) FROM audit_records WHERE kind = 'decision' AND chain_seq IS NULL",
            )
            .pluck()
            .get();
          expect(unchained).toBe(0);
        } finally {
          db.close();
        }

        const again = await start(sqliteStrict, dir);
        expect(await verify(again.url)).toMatchObject({ ok: true, problems: [] });
      }),
      TIMEOUT,
    );

    it(
      'verify names an edited record and a deleted one (API, and the CLI when it exists)',
      inLane(async (start) => {
        const dir = newDir('tamper');
        let server = await start(sqliteStrict, dir);
        for (let i = 0; i < 20; i++) {
          await dispatch(server.url, {
            namespace: 'ops',
            tenant: 'acme',
            provider: 'noop',
            actionType: 'ping',
            payload: { i },
          });
        }
        expect(await verify(server.url)).toMatchObject({ ok: true, problems: [] });
        await terminate(server);

        const rowAt = (seq: number): Row => {
          const db = openDb(dir);
          try {
            const row = db
              .prepare("SELECT * FROM audit_records WHERE tenant = 'acme' AND chain_seq = ?")
              .get(seq) as Row | undefined;
            if (row === undefined) throw new Error(`no record at seq ${seq}`);
            return row;
          } finally {
            db.close();
          }
        };
        const write = (sql: string, ...args: unknown[]): void => {
          const db = openDb(dir, false);
          try {
            expect(db.prepare(sql).run(...args).changes).toBe(1);
          } finally {
            db.close();
          }
        };

        // A decision (attempt records are chained too: seq alternates between the two kinds).
        const edited = [5, 6].map(rowAt).find((r) => r.kind === 'decision') as Row;
        expect(edited.outcome).toBe('executed');
        write('UPDATE audit_records SET outcome = ? WHERE id = ?', 'failed', edited.id);
        server = await start(sqliteStrict, dir);
        const afterEdit = await verify(server.url);
        expect(afterEdit.ok).toBe(false);
        expect(afterEdit.problems).toEqual([
          expect.objectContaining({ tenant: 'acme', recordId: edited.id, problem: 'edited' }),
        ]);

        // Deleted behind the running server's back (WAL: its next read sees it).
        const deleted = rowAt(12);
        const after = rowAt(13);
        write('DELETE FROM audit_records WHERE id = ?', deleted.id);
        const afterDelete = await verify(server.url);
        expect(afterDelete.ok).toBe(false);
        const problems = afterDelete.problems.filter((p) => p.problem !== 'edited');
        // The gap: seq 12 is missing.
        expect(problems, JSON.stringify(afterDelete)).toContainEqual(
          expect.objectContaining({ tenant: 'acme', problem: 'deleted' }),
        );
        const gap = problems.find((p) => p.problem === 'deleted') as Problem;
        expect(gap.chainSeq).toBe(12);
        // The message names the record the chain resumes at.
        expect(gap.message).toContain(after.id);
        // The edited record is still reported; nothing else is (the chain after the gap is intact).
        expect(afterDelete.problems.filter((p) => p.problem === 'edited')).toEqual([
          expect.objectContaining({ recordId: edited.id }),
        ]);
        expect(problems.filter((p) => p.problem !== 'deleted')).toEqual([]);

        // The CLI (a client of the running server), if this build has it: exit code 1, both named.
        if (readFileSync(CLI, 'utf8').includes('audit verify')) {
          const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
            execFile(
              process.execPath,
              [CLI, 'audit', 'verify', '--url', server.url],
              { cwd: dir },
              (err, stdout, stderr) =>
                resolve({
                  code: err === null ? 0 : typeof err.code === 'number' ? err.code : null,
                  out: stdout + stderr,
                }),
            );
          });
          expect(result.code, result.out).toBe(1);
          expect(result.out).toContain(edited.id);
          expect(result.out).toContain('deleted');
        }
        await terminate(server);
      }),
      TIMEOUT,
    );
  });

  describe('redaction and storePayload', () => {
    const payload = {
      card: { number: '4111111111111111', exp: '12/30' },
      password: 'hunter2',
      note: 'ok',
    };
    const action = {
      namespace: 'billing',
      tenant: 'acme',
      provider: 'noop',
      actionType: 'charge',
      payload,
    };

    it(
      'redacted values never reach the database file',
      inLane(async (start) => {
        const dir = newDir('redact');
        const server = await start(
          `
audit:
  backend: sqlite
  redact: [payload.card.number, payload.password]
`,
          dir,
        );
        const { actionId } = await dispatch(server.url, action);
        await terminate(server);

        for (const file of [AUDIT_DB(dir), `${AUDIT_DB(dir)}-wal`]) {
          if (!existsSync(file)) continue;
          const bytes = readFileSync(file);
          expect(bytes.includes('4111111111111111'), file).toBe(false);
          expect(bytes.includes('hunter2'), file).toBe(false);
        }
        const db = openDb(dir);
        try {
          const rows = db
            .prepare('SELECT * FROM audit_records WHERE action_id = ?')
            .all(actionId) as Row[];
          const decision = rows.find((r) => r.kind === 'decision');
          expect(decision).toBeDefined();
          for (const row of rows) {
            expect(row.payload).not.toBeNull();
            const stored = JSON.parse(row.payload as string) as unknown;
            expect(stored).toEqual({
              card: { number: '[REDACTED]', exp: '12/30' },
              password: '[REDACTED]',
              note: 'ok',
            });
            // The hash is of the payload as stored (the redacted one).
            expect(row.payload_hash).toBe(sha256(canonicalJson(stored)));
          }
        } finally {
          db.close();
        }
      }),
      TIMEOUT,
    );

    it(
      'storePayload: false stores only the hash',
      inLane(async (start) => {
        const dir = newDir('nopayload');
        const server = await start(
          `
audit:
  backend: sqlite
  storePayload: false
`,
          dir,
        );
        const { actionId } = await dispatch(server.url, action);
        await terminate(server);
        for (const file of [AUDIT_DB(dir), `${AUDIT_DB(dir)}-wal`]) {
          if (!existsSync(file)) continue;
          expect(readFileSync(file).includes('4111111111111111'), file).toBe(false);
        }
        const db = openDb(dir);
        try {
          const rows = db
            .prepare('SELECT * FROM audit_records WHERE action_id = ?')
            .all(actionId) as Row[];
          expect(rows.some((r) => r.kind === 'decision')).toBe(true);
          for (const row of rows) {
            expect(row.payload).toBeNull();
            // docs/audit.md, docs/configuration.md: false "keeps only metadata and the payload's
            // hash" (no redact list here: the hash of the payload as sent).
            expect(row.payload_hash, 'storePayload: false must still store the payload hash').toBe(
              sha256(canonicalJson(payload)),
            );
          }
        } finally {
          db.close();
        }
      }),
      TIMEOUT,
    );
  });

  describe('query API (batched, sqlite)', () => {
    it(
      'pages, filters and shows one action history',
      inLane(async (start) => {
        const receiver = await startProgrammableReceiver(behave.failFirst(2, 503));
        try {
          const dir = newDir('query');
          const server = await start(
            `
audit:
  backend: sqlite
  mode: batched
  flushInterval: 20ms
rules:
  inline:
    - name: hold
      condition: { field: payload.hold, eq: true }
      effects:
        suppress: { reason: held for review }
providers:
  flaky:
    type: webhook
    allowPrivateNetworks: true
    url: ${receiver.url}/hook
    retry: { attempts: 3, baseMs: 10ms, maxMs: 20ms }
`,
            dir,
          );
          const sent: { id: string; tenant: string; team: string; outcome: string }[] = [];
          for (let i = 0; i < 40; i++) {
            const tenant = i % 4 === 3 ? 'b' : 'a';
            const team = i % 3 === 0 ? 'sre' : 'web';
            const hold = i % 5 === 0;
            const o = await dispatch(server.url, {
              namespace: 'q',
              tenant,
              provider: 'noop',
              actionType: 'ping',
              labels: { team },
              payload: { i, hold },
            });
            expect(o.outcome).toBe(hold ? 'suppressed' : 'executed');
            sent.push({ id: o.actionId, tenant, team, outcome: o.outcome });
          }
          const hook = await dispatch(server.url, {
            namespace: 'q',
            tenant: 'c',
            provider: 'flaky',
            actionType: 'notify',
            payload: { hello: 'world' },
          });
          expect(hook.outcome).toBe('executed');

          const tenantA = sent.filter((s) => s.tenant === 'a');
          // Batched: wait for the writer's flush.
          await vi.waitFor(
            async () => {
              const all = await getJson<Page>(`${server.url}/v1/audit?kind=decision&limit=1000`);
              expect(all.body.items.length).toBe(sent.length + 1);
            },
            { timeout: 5000, interval: 50 },
          );

          // Paging tenant a by 7: every record exactly once, newest first.
          const full = await getJson<Page>(`${server.url}/v1/audit?tenant=a&limit=1000`);
          expect(full.body.nextCursor).toBeNull();
          const paged = await allPages(server.url, 'tenant=a&limit=7');
          expect(paged.map((r) => r.id)).toEqual(full.body.items.map((r) => r.id));
          expect(new Set(paged.map((r) => r.id)).size).toBe(paged.length);
          expect(paged.every((r) => r.tenant === 'a')).toBe(true);
          const times = paged.map((r) => Date.parse(r.decidedAt));
          expect(times).toEqual([...times].sort((x, y) => y - x));
          const decisionsA = paged.filter((r) => r.kind === 'decision').map((r) => r.actionId);
          expect([...decisionsA].sort()).toEqual(tenantA.map((s) => s.id).sort());
          // Ascending order pages the same set.
          const asc = await allPages(server.url, 'tenant=a&limit=7&order=asc');
          expect(asc.map((r) => r.id)).toEqual([...full.body.items.map((r) => r.id)].reverse());

          // kind
          const decisions = await allPages(server.url, 'kind=decision&limit=1000');
          expect(decisions.every((r) => r.kind === 'decision')).toBe(true);
          expect(decisions).toHaveLength(sent.length + 1);
          // outcome
          const suppressed = await allPages(server.url, 'outcome=suppressed&limit=5');
          expect(suppressed.map((r) => r.actionId).sort()).toEqual(
            sent
              .filter((s) => s.outcome === 'suppressed')
              .map((s) => s.id)
              .sort(),
          );
          expect(suppressed.every((r) => r.kind === 'decision')).toBe(true);
          // rule
          const byRule = await allPages(server.url, 'rule=hold&kind=decision&limit=1000');
          expect(byRule.map((r) => r.actionId).sort()).toEqual(
            suppressed.map((r) => r.actionId).sort(),
          );
          // label
          const sre = await allPages(server.url, 'label=team%3Dsre&kind=decision&limit=4');
          expect(sre.map((r) => r.actionId).sort()).toEqual(
            sent
              .filter((s) => s.team === 'sre')
              .map((s) => s.id)
              .sort(),
          );
          expect(sre.every((r) => r.labels.team === 'sre')).toBe(true);
          // from / to: a split at one record's decidedAt partitions tenant a's records.
          const middle = full.body.items[Math.floor(full.body.items.length / 2)] as ApiRecord;
          const t = encodeURIComponent(middle.decidedAt);
          const from = await allPages(server.url, `tenant=a&from=${t}&limit=1000`);
          const to = await allPages(server.url, `tenant=a&to=${t}&limit=1000`);
          const split = Date.parse(middle.decidedAt);
          expect(from.every((r) => Date.parse(r.decidedAt) >= split)).toBe(true);
          expect(to.every((r) => Date.parse(r.decidedAt) < split)).toBe(true);
          expect(from.map((r) => r.id)).toContain(middle.id);
          expect([...from, ...to].map((r) => r.id).sort()).toEqual(
            full.body.items.map((r) => r.id).sort(),
          );
          const badTime = await getJson<unknown>(`${server.url}/v1/audit?from=yesterday`);
          expect(badTime.status).toBe(400);

          // One action's history: failed twice, then succeeded; oldest first.
          const history = await getJson<{ actionId: string; items: ApiRecord[] }>(
            `${server.url}/v1/audit/${hook.actionId}`,
          );
          expect(history.status).toBe(200);
          const items = history.body.items;
          const attempts = items.filter((r) => r.kind === 'attempt');
          expect(attempts.map((r) => [r.outcome, r.attempt, r.status])).toEqual([
            ['transient', 1, 503],
            ['transient', 2, 503],
            ['success', 3, 200],
          ]);
          const decisionsOfHook = items.filter((r) => r.kind === 'decision');
          expect(decisionsOfHook.map((r) => r.outcome)).toEqual(['executed']);
          expect(items).toHaveLength(4);
          const itemTimes = items.map((r) => Date.parse(r.decidedAt));
          expect(itemTimes).toEqual([...itemTimes].sort((x, y) => x - y));
          expect(receiver.callsFor(hook.actionId)).toHaveLength(3);

          const missing = await getJson<{ error: { code: string } }>(
            `${server.url}/v1/audit/${randomUUID()}`,
          );
          expect(missing.status).toBe(404);
        } finally {
          await receiver.close();
        }
      }),
      TIMEOUT,
    );
  });

  describe('erasure (strict, sqlite)', () => {
    it(
      'drops the payload, keeps its hash, records itself, and the chain still verifies',
      inLane(async (start) => {
        const dir = newDir('erase');
        const server = await start(sqliteStrict, dir);
        const { actionId } = await dispatch(server.url, {
          namespace: 'crm',
          tenant: 'acme',
          provider: 'noop',
          actionType: 'update',
          labels: { customer: 'c-123' },
          payload: { email: 'jane@example.com' },
        });
        const other = await dispatch(server.url, {
          namespace: 'crm',
          tenant: 'acme',
          provider: 'noop',
          actionType: 'update',
          payload: { email: 'joe@example.com' },
        });
        const before = await getJson<{ items: ApiRecord[] }>(`${server.url}/v1/audit/${actionId}`);
        const decisionBefore = before.body.items.find((r) => r.kind === 'decision') as ApiRecord;
        expect(decisionBefore.payload).toEqual({ email: 'jane@example.com' });

        const erased = await postJson(`${server.url}/v1/audit/erase`, {
          field: 'actionId',
          value: actionId,
          reason: 'GDPR request',
        });
        expect(erased.status, JSON.stringify(erased.body)).toBe(200);
        const { erased: count, recordId } = erased.body as { erased: number; recordId: string };
        expect(count).toBeGreaterThanOrEqual(1);

        const after = await getJson<{ items: ApiRecord[] }>(`${server.url}/v1/audit/${actionId}`);
        const decisionAfter = after.body.items.find((r) => r.id === decisionBefore.id) as ApiRecord;
        expect(decisionAfter.payload).toBeNull();
        expect(decisionAfter.payloadHash).toBe(decisionBefore.payloadHash);
        expect(decisionAfter.chainSeq).toBe(decisionBefore.chainSeq);
        for (const r of after.body.items) expect(r.payload).toBeNull();
        // The erasure is part of the trail; other actions keep their payloads.
        expect(after.body.items.map((r) => r.id)).toContain(recordId);
        const otherHistory = await getJson<{ items: ApiRecord[] }>(
          `${server.url}/v1/audit/${other.actionId}`,
        );
        expect(otherHistory.body.items.find((r) => r.kind === 'decision')?.payload).toEqual({
          email: 'joe@example.com',
        });
        const erasures = await getJson<Page>(`${server.url}/v1/audit?kind=erasure`);
        expect(erasures.body.items.map((r) => r.id)).toEqual([recordId]);

        expect(await verify(server.url)).toMatchObject({ ok: true, problems: [] });

        // And on disk: no payload, and the address is gone from the file.
        await terminate(server);
        const db = openDb(dir);
        try {
          const rows = db
            .prepare("SELECT * FROM audit_records WHERE action_id = ? AND kind <> 'erasure'")
            .all(actionId) as Row[];
          expect(rows.length).toBeGreaterThanOrEqual(1);
          for (const row of rows) expect(row.payload).toBeNull();
        } finally {
          db.close();
        }
      }),
      TIMEOUT,
    );
  });

  describe.skipIf(!postgres)('strict mode, postgres, two gateways', () => {
    const prefix = `t${randomUUID().replace(/-/g, '').slice(0, 10)}_`;

    afterAll(async () => {
      await dropPostgresPrefix(prefix);
    });

    it(
      'forms one gap-free chain per tenant from two server processes',
      inLane(async (start) => {
        const yaml = `
audit:
  backend: postgres
  url: ${POSTGRES_URL}
  prefix: ${prefix}
  mode: strict
`;
        // Both start (and migrate) at once.
        const [one, two] = await Promise.all([
          start(yaml, newDir('pg1')),
          start(yaml, newDir('pg2')),
        ]);
        const PER = 200;
        const ids: string[] = [];
        const burst = async (server: ServerProcess): Promise<void> => {
          let next = 0;
          await Promise.all(
            Array.from({ length: 10 }, async () => {
              while (next < PER) {
                const i = next++;
                const o = await dispatch(server.url, {
                  namespace: 'pg',
                  tenant: 'shared',
                  provider: 'noop',
                  actionType: 'ping',
                  payload: { i },
                });
                ids.push(o.actionId);
              }
            }),
          );
        };
        await Promise.all([burst(one), burst(two)]);
        expect(new Set(ids).size).toBe(2 * PER);

        const result = await verify(one.url);
        expect(result).toMatchObject({ ok: true, problems: [] });
        expect(await verify(two.url)).toMatchObject({ ok: true, problems: [] });

        const { default: pg } = await import('pg');
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        try {
          const rows = await client.query<{
            chain_seq: string;
            action_id: string;
            kind: string;
            node_id: string;
          }>(
            `select chain_seq, action_id, kind, node_id from public."${prefix}audit_records"
         where tenant = 'shared' order by chain_seq`,
          );
          const seqs = rows.rows.map((r) => Number(r.chain_seq));
          expect(seqs.length).toBeGreaterThanOrEqual(2 * PER);
          expect(seqs).toEqual(seqs.map((_, i) => i + 1));
          const decided = new Set(
            rows.rows.filter((r) => r.kind === 'decision').map((r) => r.action_id),
          );
          expect(ids.filter((id) => !decided.has(id))).toEqual([]);
          // Both gateways wrote into the one chain.
          expect(new Set(rows.rows.map((r) => r.node_id)).size).toBe(2);
        } finally {
          await client.end();
        }
      }),
      TIMEOUT,
    );
  });
});
