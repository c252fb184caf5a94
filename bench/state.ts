/**
 * State-backend scenarios of ../shared/BENCHMARKS.md, in one process and one report:
 *
 * - S2 (memory, the baseline of the same run), S3 (sqlite), S4 (redis), S5 (postgres): sequential
 *   in-process `gateway.dispatch`, provider `noop`, no audit, ONE `deduplicate` rule with a unique
 *   key per action (`{{payload.i}}`, ttl 1h): one gate (and one settle) per dispatch.
 * - Each backend's raw ceiling, with its client library directly, in the same run right before or
 *   after the gateway (order alternating from run to run): sqlite an autocommit single-row INSERT
 *   (WAL, synchronous=NORMAL), redis a sequential EVALSHA doing SET NX + INCR, postgres a
 *   sequential durable `INSERT .. ON CONFLICT DO NOTHING`.
 * - S6 (redis, postgres): the same dispatch with 64 in flight (a pool of 64 async workers over a
 *   fixed count), and the ceilings with 64 in flight (redis: one connection, as the store has;
 *   postgres: a pool as large as the store's).
 *
 * Every run uses fresh state: a new gateway per backend on a temp sqlite file, a random redis key
 * prefix, a random postgres table prefix; all are removed at the end (SCAN + DEL, DROP).
 *
 * Usage: npx tsx bench/state.ts [--backends sqlite,redis,postgres] [--quick] [--runs N]
 *          [--scale F] [--concurrency 64] [--max-run-seconds 10] [--no-breakdown]
 * Prints one JSON object on stdout; progress goes to stderr.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Histogram } from 'hdr-histogram-js';
import { createGateway, type ActionInput, type Gateway } from '../src/index.js';
import type { GateOp, StateStore } from '../src/state/store.js';
import { dropPostgresPrefix, POSTGRES_URL, REDIS_URL } from '../test/helpers/services.js';
import {
  openPostgresCeiling,
  openRedisCeiling,
  openSqliteCeiling,
  REDIS_CEILING_LUA,
  type PostgresCeiling,
  type RedisCeiling,
  type SqliteCeiling,
} from './lib/ceilings.js';
import { cpuDelta, sampleCpu, type CpuDelta } from './lib/cpu.js';
import { fullGc } from './lib/full-gc.js';
import { GcWatcher } from './lib/gc.js';
import { measureJitter } from './lib/jitter.js';
import { describeMachine } from './lib/machine.js';
import { dedupRule } from './lib/rule-sets.js';
import { sourceVersion } from './lib/source.js';
import { latencyUs, newLatencyHistogram, round, spread, type Spread } from './lib/stats.js';

const TARGETS = {
  S2: { minPerSec: 120_000 },
  S3: { minPerSec: 30_000, minRatioToCeiling: 0.5 },
  S4: { minRatioToCeiling: 0.75 },
  S5: { minRatioToCeiling: 0.75 },
  S6: {
    redis: { minPerSec: 40_000, minRatioToSequential: 3 },
    postgres: { minPerSec: 8_000, minRatioToSequential: 3 },
  },
} as const;

const PUBLISHED = {
  source: 'published by Acteon, their machine',
  method: '200 sequential in-process actions, no rules (ours: one dedup gate per dispatch)',
  perSec: { memory: 50_000, redis: 2_000, postgres: 850 },
} as const;

/** Ceilings measured on these machines (../shared/BENCHMARKS.md), for a sanity check by eye. */
const REFERENCE_CEILINGS = {
  source: '../shared/BENCHMARKS.md, these machines, medians of several runs',
  sqliteAutocommitInsertPerSec: '48k–65k',
  redisSequentialEvalshaPerSec: '6.1k–7.7k',
  postgresSequentialDurableInsertPerSec: '~1.8k–1.9k (unlogged 3.3k–6.6k)',
} as const;

const BACKENDS = ['sqlite', 'redis', 'postgres'] as const;
type Backend = (typeof BACKENDS)[number];
type AnyBackend = 'memory' | Backend;

const USAGE =
  'usage: npx tsx bench/state.ts [--backends sqlite,redis,postgres] [--quick] [--runs N (5; quick 2)]' +
  ' [--scale F (1)] [--concurrency N (64)] [--max-run-seconds S (10)] [--no-breakdown]';

/** Dispatches (or ceiling ops) per pass, per backend: sized for ~0.5–2 s a pass on these VMs. */
const COUNTS = {
  full: {
    memory: 100_000,
    sqlite: 30_000,
    redis: 8_000,
    postgres: 3_000,
    redisConcurrent: 20_000,
    postgresConcurrent: 6_000,
  },
  quick: {
    memory: 30_000,
    sqlite: 20_000,
    redis: 3_000,
    postgres: 1_000,
    redisConcurrent: 8_000,
    postgresConcurrent: 2_000,
  },
} as const;
type Counts = { -readonly [K in keyof (typeof COUNTS)['full']]: number };

interface Settings {
  backends: Backend[];
  runs: number;
  quick: boolean;
  scale: number;
  concurrency: number;
  maxRunMs: number;
  breakdown: boolean;
  counts: Counts;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      backends: { type: 'string' },
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      scale: { type: 'string' },
      concurrency: { type: 'string' },
      'max-run-seconds': { type: 'string' },
      'no-breakdown': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const positive = (name: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw.replace(/_/g, ''));
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  let backends: Backend[] = [...BACKENDS];
  if (values.backends !== undefined) {
    const names = values.backends
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '' && s !== 'memory');
    const unknown = names.filter((n) => !(BACKENDS as readonly string[]).includes(n));
    if (unknown.length > 0) {
      throw new Error(`--backends: unknown ${unknown.join(', ')} (known: ${BACKENDS.join(', ')})`);
    }
    backends = BACKENDS.filter((b) => names.includes(b));
  }
  const scale = values.scale === undefined ? 1 : Number(values.scale);
  if (!(scale > 0 && scale <= 100)) throw new Error('--scale must be a number in (0, 100]');
  const base = values.quick ? COUNTS.quick : COUNTS.full;
  const counts = Object.fromEntries(
    Object.entries(base).map(([k, v]) => [k, Math.max(100, Math.round(v * scale))]),
  ) as Counts;
  return {
    backends,
    runs: positive('runs', values.runs, values.quick ? 2 : 5),
    quick: values.quick,
    scale,
    concurrency: positive('concurrency', values.concurrency, 64),
    maxRunMs: positive('max-run-seconds', values['max-run-seconds'], 10) * 1000,
    breakdown: !values['no-breakdown'],
    counts,
  };
}

// ---------------------------------------------------------------------------------------------
// Actions and loops

/** A unique `payload.i` (and ceiling key) over the whole process: no dedup key ever repeats. */
let sequence = 0;

// The S1 action, fresh per dispatch, as in bench/rules.ts (S2).
function nextAction(): ActionInput {
  return {
    namespace: 'bench',
    tenant: 't1',
    provider: 'noop',
    actionType: 'ping',
    payload: { i: sequence++ },
  };
}

/** What one pass did. */
interface Pass {
  completed: number;
  elapsedMs: number;
  /** Dispatches not `executed`; ceiling ops that did not write a new row/key. */
  notExecuted: number;
  start: number;
  cpu: CpuDelta;
}
type RawPass = Omit<Pass, 'cpu'>;

// One loop function per kind of callee, so each call site stays monomorphic.

async function dispatchLoop(
  gw: Gateway,
  count: number,
  maxMs: number,
  h?: Histogram,
): Promise<RawPass> {
  let notExecuted = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  while (i < count) {
    const input = nextAction();
    if (h === undefined) {
      if ((await gw.dispatch(input)).outcome !== 'executed') notExecuted++;
    } else {
      const t0 = performance.now();
      const outcome = await gw.dispatch(input);
      h.recordValue(Math.round((performance.now() - t0) * 1e6));
      if (outcome.outcome !== 'executed') notExecuted++;
    }
    if ((++i & 255) === 0 && performance.now() > deadline) break;
  }
  return { completed: i, elapsedMs: performance.now() - start, notExecuted, start };
}

/** better-sqlite3 is synchronous: the ceiling loop awaits nothing. */
function syncOpLoop(
  op: (i: number) => boolean,
  count: number,
  maxMs: number,
  h?: Histogram,
): RawPass {
  let notExecuted = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  while (i < count) {
    const k = sequence++;
    if (h === undefined) {
      if (!op(k)) notExecuted++;
    } else {
      const t0 = performance.now();
      const ok = op(k);
      h.recordValue(Math.round((performance.now() - t0) * 1e6));
      if (!ok) notExecuted++;
    }
    if ((++i & 255) === 0 && performance.now() > deadline) break;
  }
  return { completed: i, elapsedMs: performance.now() - start, notExecuted, start };
}

async function asyncOpLoop(
  op: (i: number) => Promise<boolean>,
  count: number,
  maxMs: number,
  h: Histogram,
): Promise<RawPass> {
  let notExecuted = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  while (i < count) {
    const k = sequence++;
    const t0 = performance.now();
    const ok = await op(k);
    h.recordValue(Math.round((performance.now() - t0) * 1e6));
    if (!ok) notExecuted++;
    if ((++i & 255) === 0 && performance.now() > deadline) break;
  }
  return { completed: i, elapsedMs: performance.now() - start, notExecuted, start };
}

/** Shared by the workers of one concurrent pass. */
interface Shared {
  issued: number;
  completed: number;
  notExecuted: number;
  readonly count: number;
  readonly deadline: number;
  readonly h: Histogram;
}

async function dispatchWorker(gw: Gateway, s: Shared): Promise<void> {
  while (s.issued < s.count) {
    const t0 = performance.now();
    if (t0 > s.deadline) return;
    s.issued++;
    const outcome = await gw.dispatch(nextAction());
    s.h.recordValue(Math.round((performance.now() - t0) * 1e6));
    s.completed++;
    if (outcome.outcome !== 'executed') s.notExecuted++;
  }
}

async function opWorker(op: (i: number) => Promise<boolean>, s: Shared): Promise<void> {
  while (s.issued < s.count) {
    const t0 = performance.now();
    if (t0 > s.deadline) return;
    s.issued++;
    const ok = await op(sequence++);
    s.h.recordValue(Math.round((performance.now() - t0) * 1e6));
    s.completed++;
    if (!ok) s.notExecuted++;
  }
}

/** `concurrency` workers over one fixed count: at most `concurrency` calls in flight. */
async function concurrentPass(
  worker: (s: Shared) => Promise<void>,
  concurrency: number,
  count: number,
  maxMs: number,
  h: Histogram,
): Promise<RawPass> {
  const start = performance.now();
  const s: Shared = { issued: 0, completed: 0, notExecuted: 0, count, deadline: start + maxMs, h };
  await Promise.all(Array.from({ length: concurrency }, () => worker(s)));
  return {
    completed: s.completed,
    elapsedMs: performance.now() - start,
    notExecuted: s.notExecuted,
    start,
  };
}

// ---------------------------------------------------------------------------------------------
// Backends: one fresh gateway (and ceiling) per run

type VariantName = 'dispatch' | 'ceiling' | 'dispatchConcurrent' | 'ceilingConcurrent';

/** One variant's passes: the throughput pass, and the latency pass (the same one if timed). */
interface Measured {
  throughput: Pass;
  latency: Pass;
  h: Histogram;
  count: number;
}

interface RunContext {
  readonly gw: Gateway;
  /** The variants of this backend, by name; each measures one untimed and/or one timed pass. */
  readonly variants: Partial<Record<VariantName, () => Promise<Measured>>>;
  /** The raw ceiling op, for the breakdown. */
  readonly ceilingOp?: (i: number) => boolean | Promise<boolean>;
  close(): Promise<void>;
}

interface Env {
  readonly settings: Settings;
  readonly tag: string;
  readonly tmpDir: string;
}

const SERVER_PROCESSES: Record<AnyBackend, string[]> = {
  memory: [],
  sqlite: [],
  redis: ['redis-server'],
  postgres: ['postgres'],
};

/** Runs a pass between two CPU samples. */
async function withCpu(backend: AnyBackend, run: () => RawPass | Promise<RawPass>): Promise<Pass> {
  const names = SERVER_PROCESSES[backend];
  const before = sampleCpu(names, 'before');
  const raw = await run();
  const after = sampleCpu(names, 'after');
  return { ...raw, cpu: cpuDelta(before, after, raw.completed) };
}

/**
 * In-process backends (memory, sqlite): an untimed pass for throughput, then a timed pass for
 * the histogram (the clock, ~45 ns a read, would be 0.5–1.5% of a dispatch here).
 */
async function splitPasses(
  backend: AnyBackend,
  count: number,
  run: (h?: Histogram) => RawPass | Promise<RawPass>,
): Promise<Measured> {
  const throughput = await withCpu(backend, () => run());
  const h = newLatencyHistogram();
  const latency = await withCpu(backend, () => run(h));
  return { throughput, latency, h, count };
}

/** Round-trip backends: one timed pass (the clock is < 0.1% of a round trip). */
async function timedPass(
  backend: AnyBackend,
  count: number,
  run: (h: Histogram) => Promise<RawPass>,
): Promise<Measured> {
  const h = newLatencyHistogram();
  const pass = await withCpu(backend, () => run(h));
  return { throughput: pass, latency: pass, h, count };
}

function gatewayConfig(state: Record<string, unknown>): Parameters<typeof createGateway>[0] {
  return { state: state as never, rules: { inline: [dedupRule()] } };
}

/** Checks the dedup rule gates on this backend (executed, then deduplicated), then warms up. */
async function prepareGateway(gw: Gateway, backend: AnyBackend): Promise<void> {
  await gw.ready();
  const probe = { ...nextAction(), payload: { i: `sanity-${sequence}` } };
  const first = await gw.dispatch(probe);
  const again = await gw.dispatch(probe);
  if (first.outcome !== 'executed' || again.outcome !== 'deduplicated') {
    throw new Error(`${backend}: the dedup rule does not gate: ${JSON.stringify([first, again])}`);
  }
  for (let k = 0; k < 50; k++) await gw.dispatch(nextAction());
}

/** An untimed burst at full concurrency: opens pool connections, parses statements. */
async function warmConcurrent(gw: Gateway, env: Env): Promise<void> {
  const c = env.settings.concurrency;
  await concurrentPass((s) => dispatchWorker(gw, s), c, 2 * c, 5000, newLatencyHistogram());
}

interface Opened {
  ctx: RunContext;
  server: Record<string, string>;
}

async function openMemory(env: Env): Promise<Opened> {
  const { counts, maxRunMs } = env.settings;
  const gw = createGateway(gatewayConfig({ backend: 'memory' }));
  await prepareGateway(gw, 'memory');
  return {
    server: {},
    ctx: {
      gw,
      variants: {
        dispatch: () =>
          splitPasses('memory', counts.memory, (h) => dispatchLoop(gw, counts.memory, maxRunMs, h)),
      },
      close: () => gw.close(),
    },
  };
}

async function openSqlite(env: Env, run: number): Promise<Opened> {
  const { counts, maxRunMs } = env.settings;
  const path = join(env.tmpDir, `state-r${run}.db`);
  const ceilingPath = join(env.tmpDir, `ceiling-r${run}.db`);
  const ceiling: SqliteCeiling = openSqliteCeiling(ceilingPath);
  let gw: Gateway | undefined;
  try {
    gw = createGateway(gatewayConfig({ backend: 'sqlite', path }));
    await prepareGateway(gw, 'sqlite');
  } catch (err) {
    ceiling.close();
    await gw?.close();
    throw err;
  }
  const g = gw;
  for (let k = 0; k < 50; k++) ceiling.op(sequence++);
  const n = counts.sqlite;
  return {
    server: { sqlite_version: ceiling.version, file: 'a new file per run in os.tmpdir()' },
    ctx: {
      gw: g,
      ceilingOp: ceiling.op,
      variants: {
        dispatch: () => splitPasses('sqlite', n, (h) => dispatchLoop(g, n, maxRunMs, h)),
        ceiling: () => splitPasses('sqlite', n, (h) => syncOpLoop(ceiling.op, n, maxRunMs, h)),
      },
      close: async () => {
        await g.close();
        ceiling.close();
        for (const f of [path, ceilingPath]) {
          for (const suffix of ['', '-wal', '-shm']) rmSync(f + suffix, { force: true });
        }
      },
    },
  };
}

function redisPrefix(env: Env, run: number): string {
  return `sybench:${env.tag}:r${run}:`;
}

async function openRedis(env: Env, run: number): Promise<Opened> {
  const { counts, maxRunMs, concurrency } = env.settings;
  const prefix = redisPrefix(env, run);
  const ceiling: RedisCeiling = await openRedisCeiling(REDIS_URL, prefix);
  let gw: Gateway | undefined;
  try {
    gw = createGateway(gatewayConfig({ backend: 'redis', url: REDIS_URL, prefix }));
    await prepareGateway(gw, 'redis');
  } catch (err) {
    await ceiling.close();
    await gw?.close();
    throw err;
  }
  const g = gw;
  for (let k = 0; k < 50; k++) await ceiling.op(sequence++);
  const [aof, save] = await Promise.all([
    ceiling.client.config('GET', 'appendonly') as Promise<string[]>,
    ceiling.client.config('GET', 'save') as Promise<string[]>,
  ]);
  const n = counts.redis;
  const nc = counts.redisConcurrent;
  return {
    server: {
      redis_version: ceiling.version,
      appendonly: aof[1] ?? '?',
      save: save[1] ?? '?',
      connections: 'one ioredis connection for the store, one for the ceiling',
    },
    ctx: {
      gw: g,
      ceilingOp: ceiling.op,
      variants: {
        dispatch: () => timedPass('redis', n, (h) => dispatchLoop(g, n, maxRunMs, h)),
        ceiling: () => timedPass('redis', n, (h) => asyncOpLoop(ceiling.op, n, maxRunMs, h)),
        dispatchConcurrent: async () => {
          await warmConcurrent(g, env);
          return timedPass('redis', nc, (h) =>
            concurrentPass((s) => dispatchWorker(g, s), concurrency, nc, maxRunMs, h),
          );
        },
        ceilingConcurrent: () =>
          timedPass('redis', nc, (h) =>
            concurrentPass((s) => opWorker(ceiling.op, s), concurrency, nc, maxRunMs, h),
          ),
      },
      close: async () => {
        await g.close();
        await ceiling.close();
      },
    },
  };
}

function postgresPrefix(env: Env, run: number): string {
  return `sybench_${env.tag}_r${run}_`;
}

async function openPostgres(env: Env, run: number): Promise<Opened> {
  const { counts, maxRunMs, concurrency } = env.settings;
  const prefix = postgresPrefix(env, run);
  let gw: Gateway | undefined;
  let ceiling: PostgresCeiling | undefined;
  try {
    gw = createGateway(gatewayConfig({ backend: 'postgres', url: POSTGRES_URL, prefix }));
    await prepareGateway(gw, 'postgres');
    // The concurrent ceiling gets as many connections as the store's pool.
    ceiling = await openPostgresCeiling(POSTGRES_URL, prefix, gw.config.state.pool);
  } catch (err) {
    await gw?.close();
    await ceiling?.close();
    throw err;
  }
  const g = gw;
  const c = ceiling;
  for (let k = 0; k < 50; k++) await c.op(sequence++);
  const n = counts.postgres;
  const nc = counts.postgresConcurrent;
  return {
    server: {
      server_version: c.version,
      ...c.settings,
      storePool: String(g.config.state.pool),
      connections: `the store's pool (${g.config.state.pool}); the ceiling: 1 connection sequential, a pool of ${c.poolSize} concurrent`,
    },
    ctx: {
      gw: g,
      ceilingOp: c.op,
      variants: {
        dispatch: () => timedPass('postgres', n, (h) => dispatchLoop(g, n, maxRunMs, h)),
        ceiling: () => timedPass('postgres', n, (h) => asyncOpLoop(c.op, n, maxRunMs, h)),
        dispatchConcurrent: async () => {
          await warmConcurrent(g, env);
          return timedPass('postgres', nc, (h) =>
            concurrentPass((s) => dispatchWorker(g, s), concurrency, nc, maxRunMs, h),
          );
        },
        ceilingConcurrent: () =>
          timedPass('postgres', nc, (h) =>
            concurrentPass((s) => opWorker(c.poolOp, s), concurrency, nc, maxRunMs, h),
          ),
      },
      close: async () => {
        await g.close();
        await c.close();
      },
    },
  };
}

function open(backend: AnyBackend, env: Env, run: number): Promise<Opened> {
  switch (backend) {
    case 'memory':
      return openMemory(env);
    case 'sqlite':
      return openSqlite(env, run);
    case 'redis':
      return openRedis(env, run);
    case 'postgres':
      return openPostgres(env, run);
  }
}

/** Whether a backend can run here; the reason when it cannot. */
async function probe(backend: Backend, env: Env): Promise<string | undefined> {
  try {
    if (backend === 'sqlite') {
      openSqliteCeiling(':memory:').close();
    } else if (backend === 'redis') {
      await (await openRedisCeiling(REDIS_URL, `sybench:${env.tag}:probe:`)).close();
    } else {
      const { default: pg } = await import('pg');
      const client = new pg.Client({
        connectionString: POSTGRES_URL,
        connectionTimeoutMillis: 1500,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('select 1');
      } finally {
        await client.end().catch(() => {});
      }
    }
    return undefined;
  } catch (err) {
    const where =
      backend === 'sqlite'
        ? 'better-sqlite3'
        : backend === 'redis'
          ? redacted(REDIS_URL)
          : redacted(POSTGRES_URL);
    return `${where}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function redacted(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}

// ---------------------------------------------------------------------------------------------
// Tallies and the per-dispatch breakdown

class Tally {
  readonly perSec: number[] = [];
  readonly p99UsByRun: number[] = [];
  readonly histogram = newLatencyHistogram();
  readonly windows: [number, number][] = [];
  readonly cpu: CpuDelta[] = [];
  notExecuted = 0;
  cappedPasses = 0;
  completed = 0;

  add(m: Measured): void {
    const { throughput, latency, h, count } = m;
    this.perSec.push((throughput.completed / throughput.elapsedMs) * 1000);
    this.p99UsByRun.push(round(h.getValueAtPercentile(99) / 1000, 2));
    this.histogram.add(h);
    this.cpu.push(throughput.cpu);
    for (const p of throughput === latency ? [throughput] : [throughput, latency]) {
      this.windows.push([p.start, p.start + p.elapsedMs]);
      this.notExecuted += p.notExecuted;
      this.completed += p.completed;
      if (p.completed < count) this.cappedPasses++;
    }
  }
}

interface Breakdown {
  note: string;
  dispatches: number;
  /** Mean wall time per dispatch (clock reads included). */
  dispatchUs: number;
  /** gate(): from the call to its result (a promise's resolution for the network stores). */
  gateUs: number;
  /** settle() calls the dispatch waited for: time per dispatch, and calls per dispatch. */
  settleAwaitedUs: number;
  settleAwaitedPerDispatch: number;
  /** settle() calls still running when their dispatch had answered (not on its path). */
  settleInBackgroundPerDispatch: number;
  settleInBackgroundUs: number | undefined;
  /** dispatchUs − gateUs − settleAwaitedUs: validation, plan, provider, outcome, awaits. */
  otherUs: number;
  /** store.gate() alone, sequential, unique keys (no gateway, no settle). */
  storeGateAloneUs: number;
  /** The backend's raw ceiling op, sequential. */
  ceilingUs: number | undefined;
  nodeCpuUsPerDispatch: number;
  serverCpuUsPerDispatch: number | undefined;
}

const BREAKDOWN_BLOCKS = 4;

/**
 * Where a sequential dispatch's time goes, on a fresh gateway whose store's gate() and settle()
 * are wrapped with a clock (from the call to its result: a promise's resolution for the network
 * stores). A settle that resolves after its dispatch answered counts as background work, not as
 * part of the dispatch. Interleaved with it, in blocks (so that drift hits all three alike): the
 * store's gate() called alone, and the raw ceiling op. Clock reads and wrappers cost ~0.3 µs per
 * dispatch: this is for the shape; the throughput figures come from the passes above.
 */
async function breakdown(backend: AnyBackend, env: Env, run: number): Promise<Breakdown> {
  fullGc();
  const { ctx } = await open(backend, env, run);
  try {
    const store = ctx.gw.state as StateStore;
    let gateMs = 0;
    let settleAwaitedMs = 0;
    let settlesAwaited = 0;
    let settleBackgroundMs = 0;
    let settlesInBackground = 0;
    // A settle resolving after its own dispatch answered ran in the background.
    let started = 0;
    let answered = 0;
    const pending = new Set<Promise<void>>();
    const gate = store.gate.bind(store);
    const settle = store.settle.bind(store);
    let timing = false;
    store.gate = (ops, now, dryRun) => {
      const t0 = performance.now();
      const r = gate(ops, now, dryRun);
      if (!(r instanceof Promise)) {
        if (timing) gateMs += performance.now() - t0;
        return r;
      }
      return r.then((v) => {
        if (timing) gateMs += performance.now() - t0;
        return v;
      });
    };
    const settled = (t0: number, dispatch: number): void => {
      const ms = performance.now() - t0;
      if (answered < dispatch) {
        settleAwaitedMs += ms;
        settlesAwaited++;
      } else {
        settleBackgroundMs += ms;
        settlesInBackground++;
      }
    };
    store.settle = (ops, now) => {
      const t0 = performance.now();
      const r = settle(ops, now);
      const dispatch = started;
      if (!(r instanceof Promise)) {
        settled(t0, dispatch);
        return r;
      }
      const p = r.then(() => settled(t0, dispatch));
      pending.add(p);
      void p.finally(() => pending.delete(p));
      return p;
    };
    const names = SERVER_PROCESSES[backend];
    const perBlock = Math.max(1, Math.floor(env.settings.counts[backend] / BREAKDOWN_BLOCKS));
    const deadline = performance.now() + env.settings.maxRunMs;
    let dispatchMs = 0;
    let dispatches = 0;
    let selfUs = 0;
    let serverUs: number | undefined = 0;
    let aloneMs = 0;
    let alone = 0;
    let ceilingMs = 0;
    let ceilingOps = 0;
    for (let block = 0; block < BREAKDOWN_BLOCKS && performance.now() < deadline; block++) {
      // 1. dispatches through the wrapped store
      const before = sampleCpu(names, 'before');
      timing = true;
      const t0 = performance.now();
      for (let k = 0; k < perBlock; k++) {
        started++;
        const outcome = await ctx.gw.dispatch(nextAction());
        answered++;
        if (outcome.outcome !== 'executed') throw new Error(`not executed: ${outcome.outcome}`);
      }
      dispatchMs += performance.now() - t0;
      timing = false;
      const after = sampleCpu(names, 'after');
      dispatches += perBlock;
      selfUs += after.selfUs - before.selfUs;
      serverUs =
        serverUs === undefined || after.serverUs === undefined || before.serverUs === undefined
          ? undefined
          : serverUs + after.serverUs - before.serverUs;
      await Promise.all(pending);
      // 2. the store's gate alone: no gateway, no settle
      const t1 = performance.now();
      for (let k = 0; k < perBlock; k++) {
        const op: GateOp = {
          kind: 'dedup',
          scope: 'bench|t1',
          key: `dedup|breakdown|bench|t1|${sequence++}`,
          ttlMs: 3_600_000,
          actionId: '01900000-0000-7000-8000-000000000000',
        };
        const r = gate([op], Date.now());
        const result = r instanceof Promise ? await r : r;
        if (!result.pass) throw new Error('gate alone: a unique key was blocked');
      }
      aloneMs += performance.now() - t1;
      alone += perBlock;
      // 3. the raw ceiling op
      if (ctx.ceilingOp !== undefined) {
        const op = ctx.ceilingOp;
        const t2 = performance.now();
        for (let k = 0; k < perBlock; k++) {
          const r = op(sequence++);
          if (r instanceof Promise) await r;
        }
        ceilingMs += performance.now() - t2;
        ceilingOps += perBlock;
      }
    }
    const per = (ms: number, n: number): number => round((ms * 1000) / n, 2);
    const dispatchUs = (dispatchMs * 1000) / dispatches;
    return {
      note: `${BREAKDOWN_BLOCKS} blocks of ${perBlock}: dispatches (store gate/settle wrapped with a clock), then store.gate() alone, then the ceiling op; mean µs per call`,
      dispatches,
      dispatchUs: round(dispatchUs, 2),
      gateUs: per(gateMs, dispatches),
      settleAwaitedUs: per(settleAwaitedMs, dispatches),
      settleAwaitedPerDispatch: round(settlesAwaited / dispatches, 3),
      settleInBackgroundPerDispatch: round(settlesInBackground / dispatches, 3),
      settleInBackgroundUs:
        settlesInBackground === 0 ? undefined : per(settleBackgroundMs, settlesInBackground),
      otherUs: round(
        dispatchUs - (gateMs * 1000) / dispatches - (settleAwaitedMs * 1000) / dispatches,
        2,
      ),
      storeGateAloneUs: per(aloneMs, alone),
      ceilingUs: ceilingOps === 0 ? undefined : per(ceilingMs, ceilingOps),
      nodeCpuUsPerDispatch: round(selfUs / dispatches, 2),
      serverCpuUsPerDispatch: serverUs === undefined ? undefined : round(serverUs / dispatches, 2),
    };
  } finally {
    await ctx.close();
  }
}

// ---------------------------------------------------------------------------------------------

const VARIANTS: Record<AnyBackend, VariantName[][]> = {
  memory: [['dispatch']],
  sqlite: [['ceiling', 'dispatch']],
  redis: [
    ['ceiling', 'dispatch'],
    ['ceilingConcurrent', 'dispatchConcurrent'],
  ],
  postgres: [
    ['ceiling', 'dispatch'],
    ['ceilingConcurrent', 'dispatchConcurrent'],
  ],
};

/** Ceiling and gateway adjacent; which goes first alternates per run, and so do the pairs. */
function order(backend: AnyBackend, run: number): VariantName[] {
  const pairs = VARIANTS[backend].map((p) => (run % 2 === 1 ? [...p].reverse() : p));
  if (run % 4 >= 2) pairs.reverse();
  return pairs.flat();
}

async function main(): Promise<void> {
  let settings: Settings;
  try {
    settings = parseSettings(process.argv.slice(2));
  } catch (err) {
    log(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const date = new Date().toISOString();
  const machine = describeMachine();
  const loadAverageAtStart = os.loadavg().map((v) => round(v, 2));
  const wallStart = performance.now();
  const env: Env = {
    settings,
    tag: randomBytes(4).toString('hex'),
    tmpDir: mkdtempSync(join(os.tmpdir(), 'switchyard-bench-state-')),
  };

  const skipped: Partial<Record<Backend, string>> = {};
  const failed: Partial<Record<AnyBackend, string>> = {};
  for (const b of settings.backends) {
    const reason = await probe(b, env);
    if (reason !== undefined) {
      skipped[b] = reason;
      log(`${b}: SKIPPED (${reason})`);
    }
  }
  const active: AnyBackend[] = ['memory', ...settings.backends.filter((b) => !skipped[b])];
  const tallies = new Map<string, Tally>();
  const tally = (b: AnyBackend, v: VariantName): Tally => {
    const key = `${b}.${v}`;
    let t = tallies.get(key);
    if (t === undefined) tallies.set(key, (t = new Tally()));
    return t;
  };
  const servers: Partial<Record<AnyBackend, Record<string, string>>> = {};
  const breakdowns: Partial<Record<AnyBackend, Breakdown | { error: string }>> = {};
  const gc = new GcWatcher();
  let redisKeysDeleted: number | undefined;

  log(
    `S2–S6: backends ${active.join(', ')}; ${settings.runs} runs (+1 warm-up), ` +
      `${settings.concurrency} in flight for S6; counts ${JSON.stringify(settings.counts)}`,
  );
  try {
    for (let run = 0; run <= settings.runs; run++) {
      const warmup = run === 0;
      const tag = warmup ? 'warm-up' : `run ${run}/${settings.runs}`;
      for (const backend of active) {
        if (failed[backend] !== undefined) continue;
        let opened: Opened | undefined;
        const line: string[] = [];
        try {
          opened = await open(backend, env, run);
          servers[backend] ??= opened.server;
          for (const name of order(backend, run)) {
            const m = await (opened.ctx.variants[name] as () => Promise<Measured>)();
            if (!warmup) tally(backend, name).add(m);
            line.push(
              `${name} ${fmt((m.throughput.completed / m.throughput.elapsedMs) * 1000)}/s` +
                ` p99 ${round(m.h.getValueAtPercentile(99) / 1000, 1)}µs`,
            );
          }
        } catch (err) {
          failed[backend] = err instanceof Error ? err.message : String(err);
          log(`${tag} ${backend}: FAILED (${failed[backend]}); not measured further`);
        } finally {
          await opened?.ctx
            .close()
            .catch((err: unknown) => log(`${backend} close: ${String(err)}`));
          // The next backend starts on a clean heap (memory S2 leaves 2 × count keys behind).
          fullGc();
        }
        if (line.length > 0) log(`${tag} ${backend}: ${line.join(', ')}`);
      }
    }
    if (settings.breakdown) {
      for (const backend of active) {
        if (failed[backend] !== undefined) continue;
        try {
          const b = await breakdown(backend, env, settings.runs + 1);
          breakdowns[backend] = b;
          log(
            `breakdown ${backend}: dispatch ${b.dispatchUs}µs = gate ${b.gateUs} + settle ${b.settleAwaitedUs}` +
              ` + other ${b.otherUs} (settles in background: ${b.settleInBackgroundPerDispatch}/dispatch);` +
              ` store gate alone ${b.storeGateAloneUs}µs, ceiling op ${b.ceilingUs ?? '-'}µs`,
          );
        } catch (err) {
          breakdowns[backend] = { error: err instanceof Error ? err.message : String(err) };
        }
      }
    }
  } finally {
    await gc.stop();
    rmSync(env.tmpDir, { recursive: true, force: true });
    if (active.includes('redis')) {
      try {
        const admin = await openRedisCeiling(REDIS_URL, `sybench:${env.tag}:cleanup:`);
        redisKeysDeleted = await admin.deleteMatching(`sybench:${env.tag}:*`);
        await admin.close();
      } catch (err) {
        log(`redis cleanup failed: ${String(err)}`);
      }
    }
    if (active.includes('postgres')) {
      await dropPostgresPrefix(`sybench_${env.tag}_`).catch((err: unknown) =>
        log(`postgres cleanup failed: ${String(err)}`),
      );
    }
  }
  const environment = measureJitter();

  // ---- report
  const perSec = (b: AnyBackend, v: VariantName): number[] =>
    tallies.get(`${b}.${v}`)?.perSec ?? [];
  const variantReport = (b: AnyBackend, v: VariantName): Record<string, unknown> | undefined => {
    const t = tallies.get(`${b}.${v}`);
    if (t === undefined || t.perSec.length === 0) return undefined;
    const cpu = (f: (c: CpuDelta) => number | undefined, digits: number): Spread | undefined => {
      const vals = t.cpu.map(f).filter((x): x is number => x !== undefined);
      return vals.length === 0 ? undefined : spread(vals, digits);
    };
    return {
      perSec: spread(t.perSec),
      perSecByRun: t.perSec.map((x) => Math.round(x)),
      latencyUs: latencyUs(t.histogram),
      p99UsByRun: t.p99UsByRun,
      cpu: {
        nodeUsPerOp: cpu((c) => c.selfUsPerOp, 2),
        nodeCores: cpu((c) => c.selfCores, 2),
        serverUsPerOp: cpu((c) => c.serverUsPerOp, 2),
        machineBusyCores: cpu((c) => c.machineBusyCores, 2),
      },
      gc: t.windows.length > 0 ? gc.within(t.windows) : { count: 0, pauseMs: 0 },
      completed: t.completed,
      notExecuted: t.notExecuted,
      cappedPasses: t.cappedPasses,
    };
  };
  /** Per run: a / b, paired by run index. */
  const paired = (a: number[], b: number[], f: (x: number, y: number) => number, digits: number) =>
    a.length > 0 && a.length === b.length
      ? spread(
          a.map((x, r) => f(x, b[r] as number)),
          digits,
        )
      : undefined;
  const ratio = (x: number, y: number): number => x / y;
  const costUs = (x: number, y: number): number => 1e6 / x - 1e6 / y;

  const memory = perSec('memory', 'dispatch');
  const backends: Record<string, unknown> = {};
  for (const b of ['memory', ...BACKENDS] as AnyBackend[]) {
    if (b !== 'memory' && !settings.backends.includes(b)) continue;
    if (b !== 'memory' && skipped[b] !== undefined) {
      backends[b] = { skipped: true, reason: skipped[b] };
      continue;
    }
    const seq = perSec(b, 'dispatch');
    const out: Record<string, unknown> = {
      scenario: { memory: 'S2', sqlite: 'S3', redis: 'S4 + S6', postgres: 'S5 + S6' }[b],
    };
    if (failed[b] !== undefined) out.failed = failed[b];
    out.server = servers[b];
    const sequential: Record<string, unknown> = { dispatch: variantReport(b, 'dispatch') };
    if (b !== 'memory') {
      const ceil = perSec(b, 'ceiling');
      sequential.ceiling = variantReport(b, 'ceiling');
      sequential.ratioToCeiling = paired(seq, ceil, ratio, 3);
      sequential.costOverCeilingUs = paired(seq, ceil, costUs, 2);
      sequential.costOverMemoryS2Us = paired(seq, memory, costUs, 2);
    }
    out.sequential = sequential;
    if (b === 'redis' || b === 'postgres') {
      const conc = perSec(b, 'dispatchConcurrent');
      const concCeil = perSec(b, 'ceilingConcurrent');
      out.concurrent = {
        inFlight: settings.concurrency,
        dispatch: variantReport(b, 'dispatchConcurrent'),
        ceiling: variantReport(b, 'ceilingConcurrent'),
        ratioToSequential: paired(conc, seq, ratio, 2),
        ratioToCeiling: paired(conc, concCeil, ratio, 3),
        ceilingRatioToSequentialCeiling: paired(concCeil, perSec(b, 'ceiling'), ratio, 2),
      };
    }
    if (breakdowns[b] !== undefined) out.breakdown = breakdowns[b];
    if (b === 'memory' || b === 'redis' || b === 'postgres') {
      const theirs = PUBLISHED.perSec[b];
      const ours = spread(seq).median;
      out.published = {
        perSec: theirs,
        label: PUBLISHED.source,
        oursSequentialMedian: seq.length > 0 ? ours : undefined,
      };
    }
    backends[b] = out;
  }

  // ---- checks: medians over the runs; ratios per run (paired with the same run's ceiling)
  type Check = { value: number | null; unit: string; target: string; met: boolean | null };
  const checks: Record<string, Check | { skipped: string; met: null }> = {};
  const median = (values: number[]): number | null =>
    values.length > 0 ? spread(values).median : null;
  const pairedMedian = (a: number[], b: number[], digits: number): number | null =>
    paired(a, b, ratio, digits)?.median ?? null;
  const specs: [
    name: string,
    b: AnyBackend,
    unit: string,
    min: number,
    value: () => number | null,
  ][] = [
    [
      'S2.memory.perSec',
      'memory',
      'dispatches/s',
      TARGETS.S2.minPerSec,
      () => median(perSec('memory', 'dispatch')),
    ],
    [
      'S3.sqlite.perSec',
      'sqlite',
      'dispatches/s',
      TARGETS.S3.minPerSec,
      () => median(perSec('sqlite', 'dispatch')),
    ],
    [
      'S3.sqlite.ratioToCeiling',
      'sqlite',
      'ours / INSERT ceiling',
      TARGETS.S3.minRatioToCeiling,
      () => pairedMedian(perSec('sqlite', 'dispatch'), perSec('sqlite', 'ceiling'), 3),
    ],
    [
      'S4.redis.ratioToCeiling',
      'redis',
      'ours / EVALSHA ceiling',
      TARGETS.S4.minRatioToCeiling,
      () => pairedMedian(perSec('redis', 'dispatch'), perSec('redis', 'ceiling'), 3),
    ],
    [
      'S5.postgres.ratioToCeiling',
      'postgres',
      'ours / INSERT ceiling',
      TARGETS.S5.minRatioToCeiling,
      () => pairedMedian(perSec('postgres', 'dispatch'), perSec('postgres', 'ceiling'), 3),
    ],
  ];
  for (const b of ['redis', 'postgres'] as const) {
    const t = TARGETS.S6[b];
    specs.push(
      [
        `S6.${b}.perSec`,
        b,
        'dispatches/s',
        t.minPerSec,
        () => median(perSec(b, 'dispatchConcurrent')),
      ],
      [
        `S6.${b}.ratioToSequential`,
        b,
        'concurrent / sequential',
        t.minRatioToSequential,
        () => pairedMedian(perSec(b, 'dispatchConcurrent'), perSec(b, 'dispatch'), 2),
      ],
    );
  }
  for (const [name, b, unit, min, value] of specs) {
    if (b !== 'memory' && !settings.backends.includes(b)) continue;
    const reason = b === 'memory' ? undefined : skipped[b];
    if (reason !== undefined) {
      checks[name] = { skipped: reason, met: null };
      continue;
    }
    const v = value();
    checks[name] = { value: v, unit, target: `>= ${min}`, met: v !== null && v >= min };
  }
  for (const b of active) {
    let notExecuted = 0;
    for (const v of ['dispatch', 'dispatchConcurrent'] as const) {
      notExecuted += tallies.get(`${b}.${v}`)?.notExecuted ?? 0;
    }
    checks[`${b}.allExecuted`] = {
      value: notExecuted,
      unit: 'dispatches not executed',
      target: '== 0',
      met: failed[b] === undefined && notExecuted === 0,
    };
  }
  const judged = Object.values(checks).filter((c) => c.met !== null);

  const result = {
    scenario: 'S2–S6',
    description:
      'sequential in-process gateway.dispatch with one deduplicate rule (unique key per action: one gate + one settle per dispatch), noop provider, no audit, on memory (S2), sqlite (S3), redis (S4), postgres (S5); 64 in flight on redis and postgres (S6); each backend against its raw ceiling in the same run',
    met:
      judged.length > 0 && judged.every((c) => c.met === true) && Object.keys(skipped).length === 0,
    metOfMeasured: judged.length > 0 && judged.every((c) => c.met === true),
    judgedOn:
      'medians over the measured runs; ratios are per run (ours / the ceiling measured right before or after it) and their median',
    checks,
    skipped: Object.keys(skipped).length > 0 ? skipped : undefined,
    failed: Object.keys(failed).length > 0 ? failed : undefined,
    backends,
    published: {
      label: PUBLISHED.source,
      method: PUBLISHED.method,
      perSec: PUBLISHED.perSec,
    },
    referenceCeilings: REFERENCE_CEILINGS,
    settings: {
      runs: settings.runs,
      warmupRuns: 1,
      quick: settings.quick,
      scale: settings.scale,
      counts: settings.counts,
      concurrency: settings.concurrency,
      maxRunMs: settings.maxRunMs,
      action: { ...nextAction(), payload: { i: '<unique per dispatch>' } },
      dedupRule: dedupRule(),
      gateways:
        'createGateway({ state, rules: { inline: [dedupRule] } }), fresh per backend per run, ready() + a sanity check (executed, then deduplicated) + 50 warm-up dispatches before measuring',
      passes:
        'memory, sqlite: an untimed pass for throughput then a timed pass for latency; redis, postgres: one timed pass (the clock is < 0.1% of a round trip); concurrent: one timed pass, latency per dispatch including waiting for a connection',
      ceilings: {
        sqlite:
          'better-sqlite3, WAL + synchronous=NORMAL, autocommit INSERT of one row into a WITHOUT ROWID table shaped like switchyard_dedup',
        redis: `ioredis EVALSHA, one connection: ${REDIS_CEILING_LUA.trim().replace(/\s*\n\s*/g, '; ')}`,
        postgres:
          "pg, named prepared `insert .. values ('dedup', $1, $2, $3) on conflict do nothing` into a table shaped like the store's reservations, autocommit (durable as the server's synchronous_commit)",
      },
      cpu: 'process.cpuUsage() for this process; /proc/<pid>/stat of redis-server / postgres processes for the server; /proc/stat for the machine (busy excludes idle, iowait, steal)',
      clock: 'performance.now() around each await',
      histogram: 'hdr-histogram-js, ns, 3 significant digits',
      gcBetweenBackends: 'a full GC after each backend of a run (outside the timed passes)',
      note: "all four stores live in one process, so the gateway's state.gate() call site is megamorphic (a few ns, < 0.5% of S2)",
      wallSeconds: round((performance.now() - wallStart) / 1000, 1),
    },
    environment,
    source: sourceVersion(),
    machine,
    loadAverageAtStart,
    loadAverage1mAtEnd: round(os.loadavg()[0] ?? 0, 2),
    date,
    ...(redisKeysDeleted === undefined ? {} : { cleanup: { redisKeysDeleted } }),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  // Anything left open by a failed backend must not keep the process alive.
  setTimeout(() => process.exit(), 5000).unref();
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function fmt(perSec: number): string {
  return perSec >= 1e6
    ? `${(perSec / 1e6).toFixed(2)}M`
    : perSec >= 10_000
      ? `${Math.round(perSec / 1000)}k`
      : `${(perSec / 1000).toFixed(2)}k`;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
