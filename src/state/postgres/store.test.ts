import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type * as PG from 'pg';
import type { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { POSTGRES_URL, serviceAvailable } from '../../../test/helpers/services.js';
import type { GateOp } from '../store.js';
import { MIGRATIONS } from './schema.js';
import { PostgresStateStore } from './store.js';

const available = await serviceAvailable('postgres');
const pg = createRequire(import.meta.url)('pg') as typeof PG;
// Everything this file creates lives in this schema (and `${schema}_m`), dropped in afterAll.
const schema = `sy_test_${randomBytes(5).toString('hex')}`;
const root = fileURLToPath(new URL('../../../', import.meta.url));
const storePath = fileURLToPath(new URL('./store.ts', import.meta.url));

const dedup = (key: string, actionId: string): GateOp => ({
  kind: 'dedup',
  key,
  ttlMs: 60_000,
  actionId,
});
const throttle = (key: string, limit: number, windowMs: number): GateOp => ({
  kind: 'throttle',
  key,
  limits: [{ limit, windowMs }],
});

let prefixes = 0;
const open: PostgresStateStore[] = [];
function store(
  options: Partial<ConstructorParameters<typeof PostgresStateStore>[0]> = {},
): PostgresStateStore {
  const s = new PostgresStateStore({
    url: POSTGRES_URL,
    schema,
    tablePrefix: `p${++prefixes}_`,
    ...options,
  });
  open.push(s);
  return s;
}

/**
 * A gateway process stand-in: opens a store on the same tables and answers one JSON command
 * per stdin line with one JSON line, so the test can start the same race in 3 processes at once.
 */
const WORKER = `
import { createInterface } from 'node:readline';
const { PostgresStateStore } = await import(process.env.SY_STORE);
const store = new PostgresStateStore(JSON.parse(process.env.SY_OPTIONS));
await store.init();
const me = 'w' + process.pid;
const passes = async (n, ops) => (await Promise.all(
  Array.from({ length: n }, (_, i) => store.gate(ops(i), Date.now())))).filter((r) => r.pass).length;
const commands = {
  dedup: (c) => passes(c.n, (i) => [{ kind: 'dedup', key: c.key, ttlMs: 60000, actionId: me + '-' + i }]),
  throttle: (c) => passes(c.n, () => [{ kind: 'throttle', key: c.key, limits: [{ limit: c.limit, windowMs: 60000 }] }]),
  claim: async (c) => (await store.claimDue(c.queue, c.limit, me, c.leaseMs, Date.now())).map((i) => i.id),
  drain: async (c) => {
    const done = [];
    for (;;) {
      const items = await store.claimDue(c.queue, c.batch, me, 30000, Date.now());
      if (items.length === 0) return done;
      for (const item of items) if (await store.ackDue(c.queue, item.id, me)) done.push(item.id);
    }
  },
};
console.log(JSON.stringify({ ready: true }));
for await (const line of createInterface({ input: process.stdin })) {
  const c = JSON.parse(line);
  if (c.cmd === 'exit') break;
  console.log(JSON.stringify({ result: await commands[c.cmd](c) }));
}
await store.close();
process.exit(0);
`;

class Worker {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;

  constructor(tablePrefix: string) {
    this.child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', WORKER], {
      cwd: root,
      env: {
        ...process.env,
        SY_STORE: storePath,
        SY_OPTIONS: JSON.stringify({ url: POSTGRES_URL, schema, tablePrefix }),
      },
    });
    this.child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    this.child.stdin.on('error', () => {}); // a killed worker's pipe
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async next(): Promise<unknown> {
    const { value, done } = await this.lines.next();
    if (done === true) throw new Error(`worker ${this.child.pid} exited`);
    return JSON.parse(value as string);
  }

  async send<T>(command: Record<string, unknown>): Promise<T> {
    this.child.stdin.write(`${JSON.stringify(command)}\n`);
    return ((await this.next()) as { result: T }).result;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end(`${JSON.stringify({ cmd: 'exit' })}\n`);
    await exited;
  }
}

async function workers(n: number, tablePrefix: string): Promise<Worker[]> {
  const ws = Array.from({ length: n }, () => new Worker(tablePrefix));
  await Promise.all(ws.map((w) => w.next()));
  return ws;
}

/** A TCP proxy to the real server that the test can cut and restore, like a network outage. */
class Proxy {
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  /** While frozen, bytes are dropped both ways and new connections go nowhere: a hung network. */
  frozen = false;

  async start(): Promise<void> {
    const server = createServer((client) => {
      this.track(client);
      if (this.frozen) return;
      const upstream = createConnection({ port: 5432, host: '127.0.0.1' });
      this.track(upstream);
      client.on('data', (d: Buffer) => this.frozen || upstream.write(d));
      upstream.on('data', (d: Buffer) => this.frozen || client.write(d));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  stop(): void {
    this.server?.close();
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
  }

  get url(): string {
    const url = new URL(POSTGRES_URL);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }
}

describe.skipIf(!available)('PostgresStateStore', () => {
  let admin: Pool;
  beforeAll(() => {
    admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await admin.query(`drop schema if exists "${schema}" cascade`);
    await admin.query(`drop schema if exists "${schema}_m" cascade`);
    await admin.end();
  });

  describe('migrations', () => {
    it('3 stores migrating a fresh schema at once apply each migration exactly once', async () => {
      const stores = [0, 1, 2].map(() =>
        store({ schema: `${schema}_m`, tablePrefix: 'switchyard_' }),
      );
      const applied = await Promise.all(stores.map((s) => s.migrate()));
      expect(applied.flat().sort()).toEqual(MIGRATIONS.map((m) => m.name).sort());
      expect(await Promise.all(stores.map((s) => s.migrate()))).toEqual([[], [], []]);
      const rows = await admin.query(
        `select version, name from "${schema}_m".switchyard_migrations order by version`,
      );
      expect(rows.rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      expect(await stores[0]!.gate([dedup('k', 'a')], Date.now())).toEqual({ pass: true });
      expect((await stores[1]!.gate([dedup('k', 'b')], Date.now())).pass).toBe(false);
    });

    it('init is implied: a method called first connects and migrates by itself', async () => {
      const s = store();
      expect(await s.set('k', 'v', {}, Date.now())).toBe(1);
      await s.init();
      expect(await s.migrate()).toEqual([]);
    });

    it('rejects a schema or prefix that is not a plain identifier', () => {
      expect(() => new PostgresStateStore({ url: POSTGRES_URL, tablePrefix: 'x"; drop' })).toThrow(
        expect.objectContaining({ code: 'SY_ERR_CONFIG_INVALID' }),
      );
    });
  });

  it('one gate() is one query on the wire, whatever its ops', async () => {
    const s = store();
    await s.init();
    const t = Date.now();
    const ops = [
      { kind: 'idempotency', key: 'id', ttlMs: 1000, actionId: 'id' },
      throttle('t', 5, 1000),
      dedup('d', 'a'),
    ] as const satisfies GateOp[];
    await s.gate(ops, t); // warm-up: the first use of a connection also prepares the statement
    const spy = vi.spyOn(pg.Client.prototype, 'query');
    try {
      for (const [o, dry] of [
        [ops, false], // blocked by idempotency
        [[throttle('t2', 1, 1000), dedup('d2', 'a')], false], // passes, applies 2 ops
        [[throttle('t2', 1, 1000)], true], // dry run, blocked
      ] as const) {
        spy.mockClear();
        await s.gate(o, t, dry);
        expect(spy).toHaveBeenCalledTimes(1);
      }
    } finally {
      spy.mockRestore();
    }
  });

  describe('calls queued behind a busy pool', () => {
    it('share one query per batch and are each decided exactly', async () => {
      const s = store({ pool: 2 });
      await s.init();
      const t = Date.now();
      const spy = vi.spyOn(pg.Client.prototype, 'query');
      try {
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            s.gate([throttle('shared', 120, 60_000), dedup(`k${i % 50}`, `a${i}`)], t),
          ),
        );
        expect(spy.mock.calls.length).toBeLessThan(50);
        // Per key, exactly one of its 4 calls passes and the other 3 name it as the holder.
        for (let k = 0; k < 50; k++) {
          const mine = [k, k + 50, k + 100, k + 150].map((i) => results[i]!);
          const winners = [k, k + 50, k + 100, k + 150].filter((i) => results[i]!.pass);
          expect(winners).toHaveLength(1);
          expect(mine.filter((r) => !r.pass)).toEqual(
            Array(3).fill({
              pass: false,
              index: 1,
              kind: 'dedup',
              inFlight: true,
              holder: `a${winners[0]}`,
              stored: undefined,
            }),
          );
        }
        // Blocked calls spent no throttle budget: 70 of 120 remain.
        const more = await Promise.all(
          Array.from({ length: 80 }, () => s.gate([throttle('shared', 120, 60_000)], t)),
        );
        expect(more.filter((r) => r.pass)).toHaveLength(70);
      } finally {
        spy.mockRestore();
      }
    });

    it('a malformed call in a batch fails alone', async () => {
      const s = store({ pool: 1 });
      await s.init();
      const t = Date.now();
      const bad = { kind: 'dedup', key: 'bad', ttlMs: 'soon', actionId: 'x' } as unknown as GateOp;
      const settled = await Promise.allSettled([
        s.gate([dedup('first', 'a')], t),
        s.gate([dedup('b1', 'a')], t),
        s.gate([bad], t),
        s.gate([dedup('b2', 'a')], t),
      ]);
      expect(settled.map((r) => r.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({
        code: 'SY_ERR_STATE_UNAVAILABLE',
      });
      expect((await s.gate([dedup('b1', 'z'), dedup('b2', 'z')], t)).pass).toBe(false);
    });
  });

  describe('across 3 processes', () => {
    it('20 concurrent duplicates per process, 100 rounds: exactly one pass per round', async () => {
      const prefix = `x${++prefixes}_`;
      await store({ tablePrefix: prefix }).init();
      const ws = await workers(3, prefix);
      try {
        for (let round = 0; round < 100; round++) {
          const passes = await Promise.all(
            ws.map((w) => w.send<number>({ cmd: 'dedup', key: `round-${round}`, n: 20 })),
          );
          expect(
            passes.reduce((a, b) => a + b),
            `round ${round}`,
          ).toBe(1);
        }
      } finally {
        await Promise.all(ws.map((w) => w.exit()));
      }
    }, 60_000);

    it('throttle limit L with 4L concurrent attempts from 3 processes: exactly L pass', async () => {
      const prefix = `x${++prefixes}_`;
      const s = store({ tablePrefix: prefix });
      await s.init();
      const ws = await workers(3, prefix);
      try {
        for (const limit of [1, 7, 25]) {
          const key = `burst-${limit}`;
          const split = [0, 1, 2].map((i) => Math.floor((4 * limit + i) / 3));
          const passes = await Promise.all(
            ws.map((w, i) => w.send<number>({ cmd: 'throttle', key, limit, n: split[i] })),
          );
          expect(passes.reduce((a, b) => a + b)).toBe(limit);
          expect(await s.gate([throttle(key, limit, 60_000)], Date.now())).toMatchObject({
            pass: false,
            kind: 'throttle',
            limit,
          });
        }
      } finally {
        await Promise.all(ws.map((w) => w.exit()));
      }
    }, 60_000);

    it('3 processes draining 1,000 due items process each exactly once', async () => {
      const prefix = `x${++prefixes}_`;
      const s = store({ tablePrefix: prefix });
      const t = Date.now();
      const ids = Array.from({ length: 1000 }, (_, i) => `item-${i}`);
      for (let i = 0; i < ids.length; i += 100) {
        await Promise.all(ids.slice(i, i + 100).map((id, j) => s.putDue('q', id, t - j, id)));
      }
      const ws = await workers(3, prefix);
      try {
        const done = await Promise.all(
          ws.map((w) => w.send<string[]>({ cmd: 'drain', queue: 'q', batch: 20 })),
        );
        const all = done.flat();
        expect(all).toHaveLength(1000);
        expect(new Set(all)).toEqual(new Set(ids));
        expect(await s.claimDue('q', 10, 'late', 1000, Date.now())).toEqual([]);
      } finally {
        await Promise.all(ws.map((w) => w.exit()));
      }
    }, 60_000);

    it("a SIGKILLed holder's claims are picked up by another once they expire", async () => {
      const prefix = `x${++prefixes}_`;
      const s = store({ tablePrefix: prefix });
      for (let i = 0; i < 50; i++) await s.putDue('q', `i${i}`, Date.now(), '');
      const [w] = await workers(1, prefix);
      const claimed = await w!.send<string[]>({
        cmd: 'claim',
        queue: 'q',
        limit: 50,
        leaseMs: 1500,
      });
      expect(claimed).toHaveLength(50);
      w!.kill();
      expect(await s.claimDue('q', 50, 'rescuer', 60_000, Date.now())).toEqual([]);
      const rescued: { id: string; attempts: number }[] = [];
      await vi.waitFor(
        async () => {
          rescued.push(...(await s.claimDue('q', 50, 'rescuer', 60_000, Date.now())));
          expect(rescued).toHaveLength(50);
        },
        { timeout: 10_000, interval: 100 },
      );
      expect(new Set(rescued.map((i) => i.id))).toEqual(new Set(claimed));
      expect(rescued.every((i) => i.attempts === 2)).toBe(true);
    }, 30_000);
  });

  describe('outage', () => {
    const proxy = new Proxy();
    afterEach(() => {
      proxy.frozen = false;
      proxy.stop();
    });

    it('fails fast with SY_ERR_STATE_UNAVAILABLE while cut off, and recovers by itself', async () => {
      await proxy.start();
      const s = store({ url: proxy.url, statementTimeoutMs: 1000, connectTimeoutMs: 1000 });
      await s.init();
      // Several pooled connections, idle when the network goes: their errors must not crash us.
      const warm = await Promise.all(
        Array.from({ length: 8 }, (_, i) => s.gate([dedup(`warm-${i}`, 'a')], Date.now())),
      );
      expect(warm.every((r) => r.pass)).toBe(true);

      proxy.stop();
      for (let attempt = 0; attempt < 3; attempt++) {
        const started = Date.now();
        const err = await Promise.resolve(s.gate([dedup('k', 'a')], Date.now())).catch(
          (e: unknown) => e,
        );
        expect(err).toMatchObject({
          code: 'SY_ERR_STATE_UNAVAILABLE',
          details: { backend: 'postgres', operation: 'gate' },
        });
        expect((err as Error).cause).toBeInstanceOf(Error);
        expect(Date.now() - started).toBeLessThan(2500);
      }
      await expect(s.get('k', Date.now())).rejects.toMatchObject({
        code: 'SY_ERR_STATE_UNAVAILABLE',
        details: { operation: 'get' },
      });

      await proxy.start(); // same port
      await vi.waitFor(
        async () => expect(await s.gate([dedup('k', 'a')], Date.now())).toEqual({ pass: true }),
        { timeout: 10_000, interval: 100 },
      );
    }, 30_000);

    it('a hung network fails within the timeouts, and recovers by itself', async () => {
      await proxy.start();
      const s = store({ url: proxy.url, statementTimeoutMs: 500, connectTimeoutMs: 500 });
      await s.init();
      proxy.frozen = true;
      const started = Date.now();
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) => s.gate([dedup(`hung-${i}`, 'a')], Date.now())),
      );
      // 500 ms server-side timeout + 1 s client margin, then queued calls on fresh connections.
      expect(Date.now() - started).toBeLessThan(4000);
      for (const r of results) {
        expect(r).toMatchObject({
          status: 'rejected',
          reason: { code: 'SY_ERR_STATE_UNAVAILABLE' },
        });
      }
      proxy.frozen = false;
      await vi.waitFor(
        async () => expect((await s.gate([dedup('after', 'a')], Date.now())).pass).toBe(true),
        { timeout: 10_000, interval: 100 },
      );
    }, 30_000);

    it('a store that could never connect fails fast and connects once the server is back', async () => {
      await proxy.start();
      proxy.stop();
      const s = store({ url: proxy.url, connectTimeoutMs: 1000 });
      const started = Date.now();
      await expect(s.init()).rejects.toMatchObject({
        code: 'SY_ERR_STATE_UNAVAILABLE',
        details: { operation: 'migrate' },
      });
      expect(Date.now() - started).toBeLessThan(2500);
      await proxy.start();
      expect(await s.gate([dedup('k', 'a')], Date.now())).toEqual({ pass: true });
    });
  });
});
