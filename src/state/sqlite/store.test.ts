import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type BetterSqlite3 from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SyError } from '../../core/errors.js';
import { MemoryStateStore } from '../memory/store.js';
import type { GateOp, SettleOp } from '../store.js';
import { MIGRATIONS } from './schema.js';
import { SqliteStateStore } from './store.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const STORE_URL = pathToFileURL(fileURLToPath(new URL('./store.ts', import.meta.url))).href;
const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

const dedup = (key: string, actionId: string, ttlMs = 60_000): GateOp => ({
  kind: 'dedup',
  key,
  ttlMs,
  actionId,
});
const idem = (key: string, actionId: string): GateOp => ({
  kind: 'idempotency',
  key,
  ttlMs: 60_000,
  actionId,
});
const throttle = (key: string, limit: number, windowMs: number): GateOp => ({
  kind: 'throttle',
  key,
  limits: [{ limit, windowMs }],
});

const dir = mkdtempSync(join(tmpdir(), 'switchyard-sqlite-'));
let files = 0;
const freshPath = (): string => join(dir, `state-${++files}.db`);
const open: SqliteStateStore[] = [];
const store = (path: string, prefix?: string, migrate?: boolean): SqliteStateStore => {
  const s = new SqliteStateStore({ path, prefix, migrate });
  open.push(s);
  return s;
};

afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The SyError a synchronous call throws. */
function thrown(fn: () => unknown): SyError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SyError);
    return err as SyError;
  }
  throw new Error('expected an error');
}

describe('SqliteStateStore durability', () => {
  it('restarting the gateway keeps dedup keys, throttle windows and due items', async () => {
    const path = freshPath();
    const before = new SqliteStateStore({ path });
    expect(before.gate([dedup('d', 'a1')], T0)).toEqual({ pass: true });
    before.settle(
      [{ op: 'commit', gate: 'dedup', key: 'd', actionId: 'a1', outcome: undefined }],
      T0,
    );
    expect(before.gate([dedup('running', 'r1')], T0)).toEqual({ pass: true });
    expect(before.gate([idem('i1', 'i1')], T0)).toEqual({ pass: true });
    before.settle(
      [{ op: 'commit', gate: 'idempotency', key: 'i1', actionId: 'i1', outcome: '{"o":1}' }],
      T0,
    );
    expect(before.gate([throttle('t', 2, 10_000)], T0).pass).toBe(true);
    expect(before.gate([throttle('t', 2, 10_000)], T0 + 1000).pass).toBe(true);
    before.putDue('q', 'later', T0 + 5000, 'payload');
    const lease = before.acquireLease('l', 'A', 1000, T0);
    expect(before.set('k', 'v', {}, T0)).toBe(1);
    await before.close();

    const after = store(path);
    expect(after.gate([dedup('d', 'a2')], T0 + 2000)).toEqual({
      pass: false,
      index: 0,
      kind: 'dedup',
      inFlight: false,
      holder: 'a1',
      stored: undefined,
    });
    expect(after.gate([dedup('running', 'r2')], T0 + 2000)).toMatchObject({
      inFlight: true,
      holder: 'r1',
    });
    expect(after.gate([idem('i1', 'i1')], T0 + 2000)).toMatchObject({
      inFlight: false,
      stored: '{"o":1}',
    });
    expect(after.gate([throttle('t', 2, 10_000)], T0 + 2000)).toEqual({
      pass: false,
      index: 0,
      kind: 'throttle',
      retryAfterMs: 8000,
      limit: 2,
      windowMs: 10_000,
    });
    expect(after.claimDue('q', 10, 'w', 1000, T0 + 4999)).toEqual([]);
    expect(after.claimDue('q', 10, 'w', 1000, T0 + 5000)).toEqual([
      { queue: 'q', id: 'later', dueAt: T0 + 5000, payload: 'payload', attempts: 1 },
    ]);
    expect(after.acquireLease('l', 'B', 1000, T0 + 1000)?.token).toBe(lease!.token + 1);
    expect(after.get('k', T0)).toEqual({ value: 'v', version: 1, expiresAt: null });
  });

  it('creates the file in a directory that does not exist yet', () => {
    const path = join(dir, 'missing', 'nested', 'state.db');
    const s = store(path);
    expect(s.gate([dedup('k', 'a')], T0)).toEqual({ pass: true });
    expect(existsSync(path)).toBe(true);
  });

  it('opens the file in WAL mode', () => {
    const path = freshPath();
    store(path);
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
  });
});

describe('SqliteStateStore migrations', () => {
  it('are applied once, recorded, and a second open or migrate applies nothing', () => {
    const path = freshPath();
    const first = store(path);
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT version, name FROM switchyard_migrations').all()).toEqual(
      MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
    );
    raw.close();
    // What opening applied is reported once (so `switchyard migrate` on a new file lists it).
    expect(first.migrate()).toEqual(MIGRATIONS.map((m) => m.name));
    expect(first.migrate()).toEqual([]);
    const second = store(path);
    expect(second.migrate()).toEqual([]);
    expect(second.gate([dedup('k', 'a')], T0)).toEqual({ pass: true });
  });

  it('with migrate: false, a file that needs migrations is refused and left untouched', () => {
    const path = freshPath();
    const err = thrown(() => new SqliteStateStore({ path, migrate: false }));
    expect(err.code).toBe('SY_ERR_STATE_UNAVAILABLE');
    expect(err.message).toContain(`needs migrations ${MIGRATIONS[0]!.name}`);
    expect(err.message).toContain('switchyard migrate');
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT name FROM sqlite_master').all()).toEqual([]);
    raw.close();
    store(path);
    const s = store(path, undefined, false);
    expect(s.migrate()).toEqual([]);
    expect(s.gate([dedup('k', 'a')], T0)).toEqual({ pass: true });
  });
});

describe('SqliteStateStore sharing a file', () => {
  it('prefixes keep stores on one file apart', () => {
    const path = freshPath();
    const a = store(path, 'a:');
    const b = store(path, 'b:');
    expect(a.gate([dedup('k', 'x')], T0)).toEqual({ pass: true });
    expect(b.gate([dedup('k', 'y')], T0)).toEqual({ pass: true });
    a.putDue('q', 'i', T0, '');
    expect(b.claimDue('q', 10, 'w', 1000, T0)).toEqual([]);
    expect(a.claimDue('q', 10, 'w', 1000, T0)).toMatchObject([{ queue: 'q', id: 'i' }]);
  });

  it('two connections to one file see each other at once', () => {
    const path = freshPath();
    const a = store(path);
    const b = store(path);
    expect(a.gate([dedup('k', 'a')], T0)).toEqual({ pass: true });
    expect(b.gate([dedup('k', 'b')], T0)).toMatchObject({ pass: false, holder: 'a' });
  });

  it('answers synchronously: the hot path awaits nothing', () => {
    const s = store(freshPath());
    expect(s.gate([dedup('k', 'a')], T0)).not.toBeInstanceOf(Promise);
    expect(s.settle([], T0)).toBeUndefined();
  });
});

describe('SqliteStateStore failures', () => {
  it('a file that cannot be opened is SY_ERR_STATE_UNAVAILABLE with the cause', () => {
    const path = join(dir, 'a-directory');
    mkdirSync(path);
    const err = thrown(() => new SqliteStateStore({ path }));
    expect(err.code).toBe('SY_ERR_STATE_UNAVAILABLE');
    expect(err.details).toEqual({ backend: 'sqlite', operation: 'open', path });
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('a write lock held past the busy timeout fails the gate and applies nothing', () => {
    const path = freshPath();
    const s = new SqliteStateStore({ path, busyTimeoutMs: 50 });
    open.push(s);
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      const err = thrown(() => s.gate([throttle('t', 1, 60_000), dedup('k', 'a')], T0));
      expect(err.code).toBe('SY_ERR_STATE_UNAVAILABLE');
      expect(err.details).toMatchObject({ backend: 'sqlite', operation: 'gate' });
      expect((err.cause as { code?: string }).code).toBe('SQLITE_BUSY');
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(s.gate([throttle('t', 1, 60_000), dedup('k', 'b')], T0)).toEqual({ pass: true });
  });

  it('a closed store fails with SY_ERR_STATE_UNAVAILABLE', async () => {
    const s = new SqliteStateStore({ path: freshPath() });
    await s.close();
    await s.close();
    expect(thrown(() => s.gate([dedup('k', 'a')], T0)).code).toBe('SY_ERR_STATE_UNAVAILABLE');
    expect(thrown(() => s.claimDue('q', 1, 'w', 1000, T0)).code).toBe('SY_ERR_STATE_UNAVAILABLE');
  });
});

describe('SqliteStateStore cleanup', () => {
  it('removes expired reservations, throttle entries and keys, and nothing live', () => {
    const s = store(freshPath());
    s.gate([dedup('old', 'a', 10), throttle('t', 5, 10), idem('i', 'i')], T0);
    s.set('gone', 'v', { ttlMs: 10 }, T0);
    s.set('kept', 'v', {}, T0);
    s.putDue('q', 'x', T0, '');
    expect(s.cleanup(T0 + 10)).toBe(3);
    expect(s.cleanup(T0 + 10)).toBe(0);
    expect(s.gate([idem('i', 'i')], T0 + 10)).toMatchObject({ pass: false, holder: 'i' });
    expect(s.get('kept', T0 + 10)?.value).toBe('v');
    expect(s.claimDue('q', 1, 'w', 1000, T0 + 10)).toHaveLength(1);
  });
});

describe('SqliteStateStore against the memory store', () => {
  // Small key and id sets so that steps collide: duplicates, takeovers, full windows, fencing.
  const key = fc.constantFrom('a', 'b');
  const id = fc.constantFrom('x', 'y', 'z');
  const gateOp: fc.Arbitrary<GateOp> = fc.oneof(
    fc.record({
      kind: fc.constantFrom('dedup' as const, 'idempotency' as const),
      key,
      ttlMs: fc.constantFrom(500, 2000),
      actionId: id,
    }),
    fc.record({
      kind: fc.constant('throttle' as const),
      key,
      limits: fc.array(
        fc.record({ limit: fc.integer({ min: 1, max: 3 }), windowMs: fc.constantFrom(1000, 3000) }),
        { minLength: 1, maxLength: 2 },
      ),
    }),
  );
  const settleOp: fc.Arbitrary<SettleOp> = fc.record({
    op: fc.constantFrom('commit' as const, 'release' as const),
    gate: fc.constantFrom('dedup' as const, 'idempotency' as const),
    key,
    actionId: id,
    outcome: fc.option(fc.constant('{"outcome":"executed"}'), { nil: undefined }),
  });
  const step = fc.record({
    advanceMs: fc.constantFrom(0, 0, 1, 250, 999, 1000, 2500),
    action: fc.oneof(
      fc.record({
        gate: fc.array(gateOp, { minLength: 1, maxLength: 3 }),
        dryRun: fc.boolean(),
      }),
      fc.record({ settle: fc.array(settleOp, { minLength: 1, maxLength: 2 }) }),
    ),
  });

  it('answers every gate and settle sequence exactly as the memory store does', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
        const sqlite = new SqliteStateStore({ path: ':memory:' });
        const memory = new MemoryStateStore();
        try {
          let now = T0;
          for (const { advanceMs, action } of steps) {
            now += advanceMs;
            if ('gate' in action) {
              expect(sqlite.gate(action.gate, now, action.dryRun)).toEqual(
                memory.gate(action.gate, now, action.dryRun),
              );
            } else {
              sqlite.settle(action.settle, now);
              memory.settle(action.settle);
            }
          }
        } finally {
          void sqlite.close();
        }
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Several OS processes on one file: the exactly-once invariants must hold across processes.

/**
 * The child: opens the store, prints "ready", then runs one step per "go" line on stdin and
 * prints its result as one JSON line. The parent sends "go" to every child at once and waits for
 * all of their answers before the next step: every round is a real race, without sleeps.
 */
const CHILD = `
import { createInterface } from 'node:readline';
import { SqliteStateStore } from ${JSON.stringify(STORE_URL)};
const [mode, path] = process.argv.slice(2);
const store = new SqliteStateStore({ path });
const me = 'p' + process.pid;
const steps = {
  // 20 concurrent duplicates of this round's key.
  async dedup(round) {
    const calls = Array.from({ length: 20 }, (_, i) =>
      Promise.resolve(store.gate(
        [{ kind: 'dedup', key: 'round-' + round, ttlMs: 600000, actionId: me + '-' + i }],
        Date.now(),
      )).then((r) => (r.pass ? me + '-' + i : undefined)),
    );
    return (await Promise.all(calls)).filter((id) => id !== undefined);
  },
  // Claim (and ack) until the queue has nothing left for us.
  async due() {
    const claimed = [];
    for (;;) {
      const batch = store.claimDue('q', 10, me, 600000, Date.now());
      if (batch.length === 0) return claimed;
      for (const item of batch) {
        claimed.push(item.id);
        if (!store.ackDue('q', item.id, me)) throw new Error('lost ' + item.id);
      }
    }
  },
};
process.stdout.write('ready\\n');
let step = 0;
for await (const _ of createInterface({ input: process.stdin })) {
  process.stdout.write(JSON.stringify(await steps[mode](step++)) + '\\n');
}
await store.close();
`;

/** A child process speaking the line protocol above. */
class Child {
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  private readonly exited: Promise<void>;
  private readonly proc: ChildProcessWithoutNullStreams;

  constructor(script: string, args: string[]) {
    const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT });
    this.proc = proc;
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const waiter = this.waiting;
      this.waiting = undefined;
      if (waiter !== undefined) waiter(line);
      else this.lines.push(line);
    });
    this.exited = new Promise((resolve, reject) => {
      proc.on('error', reject);
      proc.on('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`child exited with ${code}: ${stderr}`)),
      );
    });
    // A child that dies must fail the test, not leave it waiting for a line.
    this.exited.catch(() => {});
  }

  /** The next line the child prints (rejects if it exits first). */
  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return Promise.race([
      new Promise<string>((resolve) => (this.waiting = resolve)),
      this.exited.then(() => Promise.reject(new Error('child exited early'))),
    ]);
  }

  go(): void {
    this.proc.stdin.write('go\n');
  }

  async end(): Promise<void> {
    this.proc.stdin.end();
    await this.exited;
  }
}

/** Runs `steps` steps in `n` children at once, all starting each step together. */
async function race(n: number, args: string[], steps: number): Promise<unknown[][]> {
  const script = join(dir, 'child.mts');
  writeFileSync(script, CHILD);
  const children = Array.from({ length: n }, () => new Child(script, args));
  try {
    for (const c of children) expect(await c.next()).toBe('ready');
    const results: unknown[][] = [];
    for (let step = 0; step < steps; step++) {
      for (const c of children) c.go();
      results.push(
        await Promise.all(children.map(async (c) => JSON.parse(await c.next()) as unknown)),
      );
    }
    await Promise.all(children.map((c) => c.end()));
    return results;
  } catch (err) {
    for (const c of children) void c.end().catch(() => {});
    throw err;
  }
}

describe('SqliteStateStore across processes', () => {
  it('3 processes x 20 concurrent duplicates x 100 rounds: exactly one pass per round', async () => {
    const path = freshPath();
    store(path); // migrate before the race, so the children only gate
    const rounds = (await race(3, ['dedup', path], 100)) as string[][][];
    const check = store(path);
    for (const [round, perProcess] of rounds.entries()) {
      const passed = perProcess.flat();
      expect(passed, `round ${round}`).toHaveLength(1);
      // The one that passed is the one the file says holds the key.
      expect(check.gate([dedup(`round-${round}`, 'late')], Date.now())).toMatchObject({
        pass: false,
        holder: passed[0],
      });
    }
  }, 60_000);

  it('3 processes claiming 1,000 due items process each exactly once', async () => {
    const path = freshPath();
    const s = store(path);
    const now = Date.now();
    for (let i = 0; i < 1000; i++) s.putDue('q', `item-${i}`, now - 1000 + (i % 100), `p${i}`);
    const [claimed] = (await race(3, ['due', path], 1)) as string[][][];
    const ids = claimed!.flat();
    expect(ids).toHaveLength(1000);
    expect(new Set(ids).size).toBe(1000);
    expect(s.claimDue('q', 10, 'late', 1000, Date.now() + 3_600_000)).toEqual([]);
  }, 60_000);
});

describe('SqliteStateStore loading', () => {
  it('importing the module does not load better-sqlite3', async () => {
    const script = join(dir, 'import-only.mts');
    writeFileSync(
      script,
      `import { createRequire } from 'node:module';
       await import(${JSON.stringify(STORE_URL)});
       const cache = Object.keys(createRequire(import.meta.url).cache);
       process.stdout.write(JSON.stringify(cache.filter((k) => k.includes('better-sqlite3'))));`,
    );
    const proc = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const code = await new Promise((resolve) => proc.on('close', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual([]);
  }, 30_000);
});
