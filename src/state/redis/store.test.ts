import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { REDIS_URL, serviceAvailable } from '../../../test/helpers/services.js';
import type { GateOp } from '../store.js';
import { GC_GRACE_MS, SCRIPTS } from './scripts.js';
import { RedisStateStore } from './store.js';

const available = await serviceAvailable('redis');
/** The outage tests start and kill a private redis-server, so they need the binary. */
const redisServerBinary = spawnSync('redis-server', ['--version']).status === 0;
if (available && !redisServerBinary) {
  const message = 'redis-server is not installed; the Redis outage tests cannot run';
  if (process.env.CI === 'true')
    throw new Error(`${message} (CI=true: failing instead of skipping)`);
  console.warn(`\n!!! SKIPPED: ${message}. !!!\n`);
}
const ROOT = resolve(import.meta.dirname, '../../..');
const STORE_URL = pathToFileURL(resolve(import.meta.dirname, 'store.ts')).href;
const run = `sy-test:${randomBytes(6).toString('hex')}:`;
let prefixes = 0;

const dedup = (key: string, actionId: string, scope?: string): GateOp => ({
  kind: 'dedup',
  key,
  ttlMs: 60_000,
  actionId,
  ...(scope === undefined ? {} : { scope }),
});

/** The ioredis client inside a store (tests only: to observe what goes over the wire). */
const clientOf = (store: RedisStateStore): Redis => (store as unknown as { client: Redis }).client;

/** The Redis Cluster hash tag of a key: the text between the first `{` and the next `}`. */
function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open === -1 || close <= open + 1 ? undefined : key.slice(open + 1, close);
}

describe.skipIf(!available)('RedisStateStore', () => {
  const stores: RedisStateStore[] = [];
  const newStore = (options: { url?: string; prefix?: string } = {}): RedisStateStore => {
    const store = new RedisStateStore({
      url: options.url ?? REDIS_URL,
      prefix: options.prefix ?? `${run}${++prefixes}:`,
    });
    stores.push(store);
    return store;
  };

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    const admin = newStore({ prefix: run });
    await admin.init();
    const client = clientOf(admin);
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${run}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
    await admin.close();
  });

  describe('one round trip', () => {
    it('one gate() call is exactly one EVALSHA, and all its keys share the scope hash tag', async () => {
      const store = newStore();
      await store.init();
      const client = clientOf(store);
      // ioredis sends the full script (EVAL) the first time on a connection: warm it up.
      expect(await store.gate([dedup('warm', 'w')], Date.now())).toEqual({ pass: true });
      const info = await client.client('INFO');
      const addr = /\baddr=(\S+)/.exec(String(info))?.[1];
      expect(addr).toBeDefined();

      const admin = new Redis(REDIS_URL);
      const monitor = await admin.monitor();
      const seen: string[][] = [];
      const marker = `marker-${randomBytes(4).toString('hex')}`;
      const markerSeen = new Promise<void>((done) => {
        monitor.on('monitor', (_time: string, args: string[], source: string) => {
          if (source === addr) seen.push(args);
          if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) done();
        });
      });
      try {
        const now = Date.now();
        const ops: GateOp[] = [
          { kind: 'idempotency', scope: 'ns|t1', key: 'id-1', ttlMs: 60_000, actionId: 'id-1' },
          {
            kind: 'throttle',
            scope: 'ns|t1',
            key: 'th',
            limits: [
              { limit: 5, windowMs: 1000 },
              { limit: 50, windowMs: 60_000 },
            ],
          },
          dedup('dd', 'id-1', 'ns|t1'),
        ];
        expect(await store.gate(ops, now)).toEqual({ pass: true });
        // A blocked call is one call too.
        expect(await store.gate(ops, now)).toMatchObject({ pass: false, index: 0 });
        await admin.echo(marker);
        await markerSeen;
      } finally {
        monitor.disconnect();
        admin.disconnect();
      }

      expect(seen.map((args) => args[0]?.toLowerCase())).toEqual(['evalsha', 'evalsha']);
      const [, , numKeys, ...rest] = seen[0] as string[];
      const keys = rest.slice(0, Number(numKeys));
      expect(keys).toHaveLength(4); // idempotency, two throttle windows, dedup
      expect(keys.map(hashTag)).toEqual(['ns|t1', 'ns|t1', 'ns|t1', 'ns|t1']);
      // The keys really are in Redis under that tag (and nothing else was written).
      const stored = await client.keys(`${prefixOf(store)}*`);
      expect(new Set(stored.map(hashTag))).toEqual(new Set(['_', 'ns|t1']));
      expect(stored.filter((k) => hashTag(k) === 'ns|t1').sort()).toEqual([...keys].sort());
    });

    it('without init() the first call connects; only the holder can settle', async () => {
      const store = newStore();
      const now = Date.now();
      // No init(): the first call connects.
      expect(await store.gate([dedup('k', 'a1', 's')], now)).toEqual({ pass: true });
      await store.settle(
        [
          {
            op: 'release',
            scope: 's',
            gate: 'dedup',
            key: 'k',
            actionId: 'a2',
            outcome: undefined,
          },
        ],
        now,
      );
      expect(await store.gate([dedup('k', 'a3', 's')], now)).toMatchObject({ holder: 'a1' });
      await store.settle(
        [
          {
            op: 'release',
            scope: 's',
            gate: 'dedup',
            key: 'k',
            actionId: 'a1',
            outcome: undefined,
          },
        ],
        now,
      );
      expect(await store.gate([dedup('k', 'a3', 's')], now)).toEqual({ pass: true });
    });

    it('the same key in another scope is another key', async () => {
      const store = newStore();
      const now = Date.now();
      expect(await store.gate([dedup('k', 'a1', 'ns|t1')], now)).toEqual({ pass: true });
      expect(await store.gate([dedup('k', 'a2', 'ns|t2')], now)).toEqual({ pass: true });
      expect(await store.gate([dedup('k', 'a3', 'ns|t1')], now)).toMatchObject({ holder: 'a1' });
    });
  });

  describe('keys and expiry', () => {
    it('Redis expiry only collects garbage: logical expiry plus a grace period', async () => {
      const store = newStore();
      await store.init();
      const client = clientOf(store);
      const p = prefixOf(store);
      const now = Date.now();
      await store.gate(
        [
          dedup('d', 'a', 's'),
          { kind: 'throttle', scope: 's', key: 't', limits: [{ limit: 3, windowMs: 10_000 }] },
        ],
        now,
      );
      await store.set('kv', 'v', { ttlMs: 30_000 }, now);
      await store.set('forever', 'v', {}, now);
      expect(await client.pexpiretime(`${p}{s}:d:d`)).toBe(now + 60_000 + GC_GRACE_MS);
      expect(await client.pexpiretime(`${p}{s}:t:10000:t`)).toBe(now + 10_000 + GC_GRACE_MS);
      expect(await client.pexpiretime(`${p}kv:kv`)).toBe(now + 30_000 + GC_GRACE_MS);
      expect(await client.pexpiretime(`${p}kv:forever`)).toBe(-1);
    });

    it('a dry run writes no key', async () => {
      const store = newStore();
      await store.init();
      const ops: GateOp[] = [
        dedup('d', 'a', 's'),
        { kind: 'idempotency', scope: 's', key: 'i', ttlMs: 1000, actionId: 'a' },
        { kind: 'throttle', scope: 's', key: 't', limits: [{ limit: 1, windowMs: 1000 }] },
      ];
      expect(await store.gate(ops, Date.now(), true)).toEqual({ pass: true });
      expect(await clientOf(store).keys(`${prefixOf(store)}*`)).toEqual([]);
    });

    it('fencing tokens keep increasing after a release, and after Redis dropped the lease', async () => {
      const store = newStore();
      const now = Date.now();
      const a = await store.acquireLease('l', 'A', 1000, now);
      expect(await store.releaseLease('l', 'A', a!.token)).toBe(true);
      const b = await store.acquireLease('l', 'A', 1000, now);
      expect(b!.token).toBeGreaterThan(a!.token);
      // The lease hash is garbage (it expires); the token counter is not.
      await clientOf(store).del(`${prefixOf(store)}{lease:l}:holder`);
      const c = await store.acquireLease('l', 'B', 1000, now);
      expect(c!.token).toBeGreaterThan(b!.token);
      // Renewing by the holder keeps the token.
      expect(await store.acquireLease('l', 'B', 1000, now + 10)).toMatchObject({
        token: c!.token,
      });
    });
  });

  describe('across OS processes', () => {
    let dir: string;
    const children: ChildProcess[] = [];

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'sy-redis-test-'));
      writeFileSync(join(dir, 'worker.mts'), WORKER);
    });
    afterAll(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    /** Starts worker processes, lets them all start at once, and collects their results. */
    async function race<T>(configs: Record<string, unknown>[]): Promise<T[]> {
      const workers = configs.map((c) => startWorker(c));
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.child.stdin?.write('go\n');
      return (await Promise.all(workers.map((w) => w.result))) as T[];
    }

    function startWorker(config: Record<string, unknown>): {
      child: ChildProcess;
      ready: Promise<void>;
      result: Promise<unknown>;
    } {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(dir, 'worker.mts'),
          STORE_URL,
          JSON.stringify({ url: REDIS_URL, ...config }),
        ],
        { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
      );
      children.push(child);
      let out = '';
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      const line = (prefix: string): Promise<string> =>
        new Promise((resolveLine, reject) => {
          const onData = (): void => {
            const hit = out.split('\n').find((l) => l.startsWith(prefix));
            if (hit === undefined) return;
            child.stdout?.off('data', onData);
            resolveLine(hit.slice(prefix.length));
          };
          child.stdout?.on('data', onData);
          child.once('exit', (code, signal) =>
            reject(new Error(`worker exited (${code ?? signal}) before "${prefix}":\n${err}`)),
          );
        });
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      return {
        child,
        ready: line('ready').then(() => undefined),
        result: line('result ').then((json) => JSON.parse(json) as unknown),
      };
    }

    it('3 processes × 20 concurrent calls on one dedup key, 100 rounds: exactly one passes per round', async () => {
      const prefix = `${run}${++prefixes}:`;
      const results = await race<number[]>(
        [1, 2, 3].map((p) => ({ mode: 'dedup', prefix, rounds: 100, concurrency: 20, p })),
      );
      const perRound = Array.from({ length: 100 }, (_, r) =>
        results.reduce((sum, passes) => sum + (passes[r] as number), 0),
      );
      expect(perRound).toEqual(Array.from({ length: 100 }, () => 1));
    });

    it('throttle limit 30, 120 concurrent attempts from 3 processes: exactly 30 pass', async () => {
      const prefix = `${run}${++prefixes}:`;
      const results = await race<number>(
        [40, 40, 40].map((attempts) => ({ mode: 'throttle', prefix, attempts, limit: 30 })),
      );
      expect(results.reduce((a, b) => a + b, 0)).toBe(30);
    });

    it('3 processes claiming the same 1,000 due items process each exactly once', async () => {
      const prefix = `${run}${++prefixes}:`;
      const store = newStore({ prefix });
      const now = Date.now();
      await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          store.putDue('jobs', `job-${String(i).padStart(4, '0')}`, now - 1000 + i, `p${i}`),
        ),
      );
      const results = await race<string[]>(
        ['w1', 'w2', 'w3'].map((holder) => ({ mode: 'due', prefix, holder, batch: 25 })),
      );
      const all = results.flat();
      expect(all).toHaveLength(1000);
      expect(new Set(all).size).toBe(1000);
      // Every worker got some of the work (they really raced).
      expect(results.every((ids) => ids.length > 0)).toBe(true);
      expect(await store.claimDue('jobs', 10, 'late', 60_000, Date.now())).toEqual([]);
    });

    it('a SIGKILLed holder’s items are picked up by another once its claim expires', async () => {
      const prefix = `${run}${++prefixes}:`;
      const store = newStore({ prefix });
      const t0 = Date.now();
      for (let i = 0; i < 10; i++) await store.putDue('jobs', `job-${i}`, t0, `p${i}`);
      const victim = startWorker({
        mode: 'hold',
        prefix,
        holder: 'victim',
        now: t0,
        leaseMs: 1000,
      });
      await victim.ready;
      victim.child.stdin?.write('go\n');
      const held = (await victim.result) as string[];
      expect(held).toHaveLength(10);
      const exited = once(victim.child, 'exit');
      victim.child.kill('SIGKILL');
      await exited;

      expect(await store.claimDue('jobs', 100, 'rescuer', 1000, t0 + 999)).toEqual([]);
      const rescued = await store.claimDue('jobs', 100, 'rescuer', 1000, t0 + 1000);
      expect(rescued.map((i) => i.id).sort()).toEqual([...held].sort());
      expect(rescued.every((i) => i.attempts === 2)).toBe(true);
      expect(await store.ackDue('jobs', 'job-0', 'victim')).toBe(false);
      expect(await store.ackDue('jobs', 'job-0', 'rescuer')).toBe(true);
    });
  });

  describe.skipIf(!redisServerBinary)('outage', () => {
    let server: ChildProcess | undefined;
    afterEach(() => {
      if (server !== undefined && server.exitCode === null && server.signalCode === null) {
        server.kill('SIGKILL');
      }
      vi.restoreAllMocks();
    });

    it('fails fast with SY_ERR_STATE_UNAVAILABLE while Redis is down and recovers by itself', async () => {
      const errors = vi.spyOn(console, 'error');
      const port = await freePort();
      server = await startRedis(port);
      const store = newStore({ url: `redis://127.0.0.1:${port}` });
      await store.init();
      expect(await store.gate([dedup('a', 'a1')], Date.now())).toEqual({ pass: true });

      // Calls in flight when the server dies fail too: they are not left hanging.
      const inFlight = Array.from({ length: 20 }, (_, i) =>
        Promise.resolve(store.gate([dedup(`f${i}`, 'x')], Date.now())).then(
          () => 'ok',
          (err: { code?: string }) => err.code,
        ),
      );
      const exited = once(server, 'exit');
      server.kill('SIGKILL');
      await exited;
      const settled = await Promise.all(inFlight);
      expect(settled.every((s) => s === 'ok' || s === 'SY_ERR_STATE_UNAVAILABLE')).toBe(true);

      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        await expect(
          Promise.resolve(store.gate([dedup('b', `b${i}`)], Date.now())),
        ).rejects.toMatchObject({
          code: 'SY_ERR_STATE_UNAVAILABLE',
          details: { backend: 'redis', operation: 'gate' },
        });
        expect(Date.now() - started).toBeLessThan(500);
      }
      await expect(store.claimDue('q', 1, 'w', 1000, Date.now())).rejects.toMatchObject({
        code: 'SY_ERR_STATE_UNAVAILABLE',
        details: { operation: 'claimDue' },
      });

      server = await startRedis(port);
      const restarted = Date.now();
      await vi.waitFor(
        async () =>
          expect(await store.gate([dedup('c', 'c1')], Date.now())).toEqual({ pass: true }),
        { timeout: 5000, interval: 50 },
      );
      expect(Date.now() - restarted).toBeLessThan(3000);
      // No 'error' event ever went unhandled (ioredis prints those with console.error).
      expect(errors.mock.calls.filter((c) => String(c[0]).includes('ioredis'))).toEqual([]);
    });

    it('init fails fast when nothing listens; later calls fail fast too', async () => {
      const port = await freePort();
      const store = newStore({ url: `redis://127.0.0.1:${port}` });
      const started = Date.now();
      await expect(store.init()).rejects.toMatchObject({
        code: 'SY_ERR_STATE_UNAVAILABLE',
        details: { operation: 'init' },
      });
      await expect(store.get('k', Date.now())).rejects.toMatchObject({
        code: 'SY_ERR_STATE_UNAVAILABLE',
      });
      expect(Date.now() - started).toBeLessThan(1000);
    });

    it('a closed store refuses calls with SY_ERR_STATE_UNAVAILABLE', async () => {
      const store = newStore();
      await store.init();
      await store.close();
      await expect(
        Promise.resolve(store.gate([dedup('k', 'a')], Date.now())),
      ).rejects.toMatchObject({ code: 'SY_ERR_STATE_UNAVAILABLE' });
    });
  });

  it('loads every script on init (SCRIPT EXISTS)', async () => {
    const store = newStore();
    await store.init();
    const client = clientOf(store);
    const shas = Object.keys(SCRIPTS).map(
      (name) =>
        (client as unknown as { scriptsSet: Record<string, { sha: string }> }).scriptsSet[name]
          ?.sha ?? '',
    );
    expect(await client.script('EXISTS', ...shas)).toEqual(shas.map(() => 1));
  });
});

function prefixOf(store: RedisStateStore): string {
  return (store as unknown as { prefix: string }).prefix;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** Starts a private redis-server (never the shared one) and resolves once it accepts connections. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((done) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => (socket.destroy(), done(true)));
      socket.once('error', () => (socket.destroy(), done(false)));
    });
    if (up) return child;
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not start on port ${port}`);
}

/**
 * A worker process: connects, prints "ready", waits for "go" on stdin (so that all workers
 * start together), does its part and prints "result <json>".
 */
const WORKER = `
import { createInterface } from 'node:readline';
const [storeUrl, json] = process.argv.slice(2);
const cfg = JSON.parse(json);
const { RedisStateStore } = await import(storeUrl);
const store = new RedisStateStore({ url: cfg.url, prefix: cfg.prefix });
await store.init();
const lines = createInterface({ input: process.stdin });
const go = new Promise((resolve) => lines.once('line', resolve));
console.log('ready');
await go;
let result;
if (cfg.mode === 'dedup') {
  result = [];
  for (let r = 0; r < cfg.rounds; r++) {
    const outcomes = await Promise.all(
      Array.from({ length: cfg.concurrency }, (_, i) =>
        store.gate([{ kind: 'dedup', scope: 'race', key: 'round-' + r, ttlMs: 60000, actionId: cfg.p + '-' + i }], Date.now()),
      ),
    );
    result.push(outcomes.filter((o) => o.pass).length);
  }
} else if (cfg.mode === 'throttle') {
  const op = { kind: 'throttle', scope: 'race', key: 'burst', limits: [{ limit: cfg.limit, windowMs: 60000 }] };
  const outcomes = await Promise.all(Array.from({ length: cfg.attempts }, () => store.gate([op], Date.now())));
  result = outcomes.filter((o) => o.pass).length;
} else if (cfg.mode === 'due') {
  result = [];
  for (;;) {
    const items = await store.claimDue('jobs', cfg.batch, cfg.holder, 60000, Date.now());
    if (items.length === 0) break;
    for (const item of items) {
      if (!(await store.ackDue('jobs', item.id, cfg.holder))) throw new Error('lost ' + item.id);
      result.push(item.id);
    }
  }
} else if (cfg.mode === 'hold') {
  result = (await store.claimDue('jobs', 100, cfg.holder, cfg.leaseMs, cfg.now)).map((i) => i.id);
  console.log('result ' + JSON.stringify(result));
  setInterval(() => {}, 1000); // holds its claims until it is killed
}
if (cfg.mode !== 'hold') {
  console.log('result ' + JSON.stringify(result));
  await store.close();
  process.exit(0);
}
`;
