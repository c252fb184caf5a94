/**
 * Audit scenario ("audit": S7 of ../shared/BENCHMARKS.md, "audit store write cost", and the
 * targets of issue 6), in one process and one report:
 *
 * 1. Throughput: sequential in-process `gateway.dispatch`, memory state, no rules, provider `noop`
 *    (the S1 action), with `createGateway({ audit: { backend, mode } })` for every audit backend —
 *    `none` (the ceiling, in the same run), memory, sqlite (a temp file), postgres (a unique table
 *    prefix, dropped at the end) — in `batched` and `strict` mode; and strict mode (group commit)
 *    with 64 dispatches in flight. Throughput is reported without and with the final
 *    `gateway.close()` (which flushes the writer's buffer), per-dispatch p50/p99, the ratio to
 *    `none` in the same run, and the records found in the store afterwards (counted with a fresh
 *    store on the same file / prefix), which must be dispatches × records per dispatch.
 * 2. Queries on a large store (1,000,000 records; --quick 100,000), sqlite and postgres: filled
 *    through `store.append` in batches of 5,000 (50 tenants, 10 namespaces, 30 days; the fill is
 *    timed), postgres ANALYZEd, then (a) tenant + 1-day range, limit 50, desc; (b) history(actionId);
 *    (c) actionType only (no index: a common type, a rare one, an absent one = a full scan);
 *    (d) the second page of (a) through its cursor. Targets: (a) and (b) < 50 ms.
 *
 * Usage: npx tsx bench/audit.ts [--quick] [--parts throughput,query] [--backends memory,sqlite,postgres]
 *          [--runs N] [--records N] [--query-runs N] [--concurrency 64] [--max-run-seconds 10]
 * Prints one JSON object on stdout; progress goes to stderr.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Histogram } from 'hdr-histogram-js';
import { createGateway, type ActionInput, type ConfigInput, type Gateway } from '../src/index.js';
import { payloadHashOf, type AuditRecord } from '../src/audit/record.js';
import type { AuditQuery, AuditStore } from '../src/audit/store.js';
import { PostgresAuditStore } from '../src/audit/postgres/store.js';
import { SqliteAuditStore } from '../src/audit/sqlite/store.js';
import { dropPostgresPrefix, POSTGRES_URL } from '../test/helpers/services.js';
import { cpuDelta, sampleCpu, type CpuDelta } from './lib/cpu.js';
import { fullGc } from './lib/full-gc.js';
import { GcWatcher } from './lib/gc.js';
import { measureJitter } from './lib/jitter.js';
import { describeMachine } from './lib/machine.js';
import { sourceVersion } from './lib/source.js';
import { latencyUs, median, newLatencyHistogram, round, spread } from './lib/stats.js';

const TARGETS = {
  sqliteBatchedPerSec: 100_000,
  postgresBatchedPerSec: 80_000,
  queryMs: 50,
} as const;

const BACKENDS = ['memory', 'sqlite', 'postgres'] as const;
type StoreBackend = (typeof BACKENDS)[number];
type AuditBackend = 'none' | StoreBackend;
type Mode = 'batched' | 'strict';
type AuditConfigInput = NonNullable<ConfigInput['audit']>;
const PARTS = ['throughput', 'query'] as const;
type Part = (typeof PARTS)[number];

const USAGE =
  'usage: npx tsx bench/audit.ts [--quick] [--parts throughput,query] [--backends memory,sqlite,postgres]' +
  ' [--runs N (3; quick 2)] [--records N (1000000; quick 100000)] [--query-runs N (50; quick 20)]' +
  ' [--concurrency N (64)] [--max-run-seconds S (10; quick 3)]';

/** One throughput configuration: an audit backend, a mode, sequential or N in flight. */
interface Config {
  readonly id: string;
  readonly backend: AuditBackend;
  readonly mode: Mode | undefined;
  readonly concurrent: boolean;
  /** Dispatches per pass (before the time limit). */
  readonly count: number;
  /**
   * `split`: an untimed pass for throughput and a timed pass for the histogram (in-process
   * work, where ~45 ns of clock per dispatch would show); `timed`: one timed pass (a round trip
   * per dispatch, or many in flight).
   */
  readonly passes: 'split' | 'timed';
}

/** Dispatches per pass: ~0.5–3 s a pass on these VMs, capped by --max-run-seconds anyway. */
const COUNTS = {
  full: {
    none: 200_000,
    memoryBatched: 200_000,
    memoryStrict: 100_000,
    sqliteBatched: 200_000,
    sqliteStrict: 20_000,
    postgresBatched: 200_000,
    postgresStrict: 2_000,
    noneConcurrent: 200_000,
    memoryConcurrent: 100_000,
    sqliteConcurrent: 100_000,
    postgresConcurrent: 30_000,
  },
  quick: {
    none: 50_000,
    memoryBatched: 50_000,
    memoryStrict: 30_000,
    sqliteBatched: 50_000,
    sqliteStrict: 5_000,
    postgresBatched: 30_000,
    postgresStrict: 300,
    noneConcurrent: 50_000,
    memoryConcurrent: 30_000,
    sqliteConcurrent: 30_000,
    postgresConcurrent: 8_000,
  },
} as const;

interface Settings {
  parts: Part[];
  backends: StoreBackend[];
  runs: number;
  quick: boolean;
  records: number;
  queryRuns: number;
  concurrency: number;
  maxRunMs: number;
  warmup: number;
  configs: Config[];
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      parts: { type: 'string' },
      backends: { type: 'string' },
      runs: { type: 'string' },
      records: { type: 'string' },
      'query-runs': { type: 'string' },
      concurrency: { type: 'string' },
      'max-run-seconds': { type: 'string' },
    },
    strict: true,
  });
  const positive = (name: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw.replace(/_/g, ''));
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  const list = <T extends string>(name: string, raw: string | undefined, known: readonly T[]) => {
    if (raw === undefined) return [...known];
    const names = raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const unknown = names.filter((n) => !(known as readonly string[]).includes(n));
    if (unknown.length > 0) {
      throw new Error(`--${name}: unknown ${unknown.join(', ')} (known: ${known.join(', ')})`);
    }
    return known.filter((k) => names.includes(k));
  };
  const quick = values.quick;
  const backends = list('backends', values.backends, BACKENDS);
  const concurrency = positive('concurrency', values.concurrency, 64);
  const c = quick ? COUNTS.quick : COUNTS.full;
  const configs: Config[] = [
    {
      id: 'none',
      backend: 'none',
      mode: undefined,
      concurrent: false,
      count: c.none,
      passes: 'split',
    },
  ];
  const seq: Record<StoreBackend, Record<Mode, number>> = {
    memory: { batched: c.memoryBatched, strict: c.memoryStrict },
    sqlite: { batched: c.sqliteBatched, strict: c.sqliteStrict },
    postgres: { batched: c.postgresBatched, strict: c.postgresStrict },
  };
  for (const b of backends) {
    for (const mode of ['batched', 'strict'] as const) {
      configs.push({
        id: `${b}.${mode}`,
        backend: b,
        mode,
        concurrent: false,
        count: seq[b][mode],
        // A strict sqlite / postgres dispatch waits for its own transaction (hundreds of µs or
        // more): the clock is noise there.
        passes: b !== 'memory' && mode === 'strict' ? 'timed' : 'split',
      });
    }
  }
  const conc: Record<StoreBackend, number> = {
    memory: c.memoryConcurrent,
    sqlite: c.sqliteConcurrent,
    postgres: c.postgresConcurrent,
  };
  configs.push({
    id: `none.inFlight${concurrency}`,
    backend: 'none',
    mode: undefined,
    concurrent: true,
    count: c.noneConcurrent,
    passes: 'timed',
  });
  for (const b of backends) {
    configs.push({
      id: `${b}.strict.inFlight${concurrency}`,
      backend: b,
      mode: 'strict',
      concurrent: true,
      count: conc[b],
      passes: 'timed',
    });
  }
  return {
    parts: list('parts', values.parts, PARTS),
    backends,
    runs: positive('runs', values.runs, quick ? 2 : 3),
    quick,
    records: positive('records', values.records, quick ? 100_000 : 1_000_000),
    queryRuns: positive('query-runs', values['query-runs'], quick ? 20 : 50),
    concurrency,
    maxRunMs: positive('max-run-seconds', values['max-run-seconds'], quick ? 3 : 10) * 1000,
    warmup: quick ? 500 : 2_000,
    configs,
  };
}

// ---------------------------------------------------------------------------------------------
// Part 1: dispatch throughput with the audit trail

/** A unique `payload.i` over the whole process. */
let sequence = 0;

// The S1 action, fresh per dispatch (a fresh payload object: the writer hashes each one).
function nextAction(): ActionInput {
  return {
    namespace: 'bench',
    tenant: 't1',
    provider: 'noop',
    actionType: 'ping',
    payload: { i: sequence++ },
  };
}

interface RawPass {
  completed: number;
  elapsedMs: number;
  notExecuted: number;
  start: number;
}
interface Pass extends RawPass {
  cpu: CpuDelta;
}

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

/** `concurrency` workers over one fixed count: at most `concurrency` dispatches in flight. */
async function concurrentPass(
  gw: Gateway,
  concurrency: number,
  count: number,
  maxMs: number,
  h: Histogram,
): Promise<RawPass> {
  const start = performance.now();
  const s: Shared = { issued: 0, completed: 0, notExecuted: 0, count, deadline: start + maxMs, h };
  await Promise.all(Array.from({ length: concurrency }, () => dispatchWorker(gw, s)));
  return {
    completed: s.completed,
    elapsedMs: performance.now() - start,
    notExecuted: s.notExecuted,
    start,
  };
}

async function withCpu(backend: AuditBackend, run: () => Promise<RawPass>): Promise<Pass> {
  const names = backend === 'postgres' ? ['postgres'] : [];
  const before = sampleCpu(names, 'before');
  const raw = await run();
  const after = sampleCpu(names, 'after');
  return { ...raw, cpu: cpuDelta(before, after, raw.completed) };
}

/** The writer's counters, when the gateway's sink has them (diagnostics only). */
interface WriterStats {
  buffered: number;
  written: number;
  failedAppends: number;
  backpressureWaits: number;
}
function writerStats(gw: Gateway): WriterStats | undefined {
  // The gateway keeps its sink private; reading it here is for the report, never for control.
  const sink = (gw as unknown as { audit?: { stats?: () => WriterStats } }).audit;
  return typeof sink?.stats === 'function' ? sink.stats() : undefined;
}

/** What one configuration measured in one run. */
interface RunResult {
  /** The pass throughput is judged on (the last one before close). */
  throughput: Pass;
  latency: Pass;
  h: Histogram;
  /** `await gateway.close()` right after the throughput pass (flushes the writer). */
  closeMs: number;
  perSec: number;
  perSecWithClose: number;
  dispatches: number;
  recordsPerDispatch: number;
  recordKinds: string[];
  recordsFound: number | undefined;
  writer: WriterStats | undefined;
}

interface Env {
  readonly settings: Settings;
  readonly tag: string;
  readonly tmpDir: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until the store holds `expected` records (the batched writer has caught up). */
async function drain(store: AuditStore | undefined, expected: number, what: string): Promise<void> {
  if (store === undefined) return;
  const deadline = performance.now() + 120_000;
  let n = await store.count();
  while (n < expected) {
    if (performance.now() > deadline) {
      throw new Error(`${what}: the audit writer did not catch up (${n} of ${expected} records)`);
    }
    await sleep(n === 0 ? 5 : 20);
    n = await store.count();
  }
}

/** The records the gateway's store holds after close, counted through a fresh store. */
async function countAfterClose(
  cfg: Config,
  gw: Gateway,
  where: { path: string; prefix: string },
): Promise<number | undefined> {
  switch (cfg.backend) {
    case 'none':
      return undefined;
    case 'memory':
      // Memory's close() keeps the records: the gateway's own store answers.
      return gw.auditStore?.count();
    case 'sqlite': {
      const s = new SqliteAuditStore({ path: where.path, migrate: false });
      try {
        return await s.count();
      } finally {
        await s.close();
      }
    }
    case 'postgres': {
      const s = new PostgresAuditStore({ url: POSTGRES_URL, prefix: where.prefix, migrate: false });
      try {
        return await s.count();
      } finally {
        await s.close();
      }
    }
  }
}

function auditConfig(cfg: Config, where: { path: string; prefix: string }): AuditConfigInput {
  switch (cfg.backend) {
    case 'none':
      return { backend: 'none' };
    case 'memory':
      return { backend: 'memory', mode: cfg.mode };
    case 'sqlite':
      return { backend: 'sqlite', mode: cfg.mode, path: where.path };
    case 'postgres':
      return { backend: 'postgres', mode: cfg.mode, url: POSTGRES_URL, prefix: where.prefix };
  }
}

/** One configuration, one run: a fresh gateway (and store), measured, closed, counted, removed. */
async function measureConfig(cfg: Config, env: Env, run: number): Promise<RunResult> {
  const { maxRunMs, concurrency, warmup } = env.settings;
  const slug = cfg.id.replace(/[^a-z0-9]/gi, '_').toLowerCase();
  // Short and unique per configuration (the store allows 40 characters): `sybench_audit_<tag>_r1_psc_`.
  const short = `${cfg.backend[0]}${cfg.mode?.[0] ?? ''}${cfg.concurrent ? 'c' : ''}`;
  const where = {
    path: join(env.tmpDir, `${slug}-r${run}.db`),
    prefix: `sybench_audit_${env.tag}_r${run}_${short}_`,
  };
  const gw = createGateway({ audit: auditConfig(cfg, where) });
  let closed = false;
  try {
    await gw.ready();
    const store = gw.auditStore;
    if ((store?.backend ?? 'none') !== cfg.backend) {
      throw new Error(`${cfg.id}: the gateway built a ${store?.backend ?? 'none'} audit store`);
    }
    // Sanity: the noop dispatch executes, and its records reach the store (how many per dispatch).
    const probe = nextAction();
    const first = await gw.dispatch(probe);
    if (first.outcome !== 'executed') {
      throw new Error(`${cfg.id}: noop dispatch did not execute: ${JSON.stringify(first)}`);
    }
    let recordsPerDispatch = 0;
    let recordKinds: string[] = [];
    if (store !== undefined) {
      await sleep(cfg.mode === 'batched' ? gw.config.audit.flushIntervalMs + 40 : 5);
      const history = await store.history(first.actionId);
      recordsPerDispatch = history.length;
      recordKinds = history.map((r) => r.kind);
      if (recordsPerDispatch === 0) throw new Error(`${cfg.id}: no audit record for the probe`);
    }
    let dispatches = 1;
    const expected = (): number => dispatches * recordsPerDispatch;

    // Warm-up (JIT, prepared statements, pool connections), then let the writer catch up.
    const h0 = newLatencyHistogram();
    const warm = cfg.concurrent
      ? await concurrentPass(gw, concurrency, Math.max(warmup, 4 * concurrency), 30_000, h0)
      : await dispatchLoop(gw, cfg.passes === 'timed' ? Math.min(warmup, 200) : warmup, 30_000);
    dispatches += warm.completed;
    await drain(store, expected(), cfg.id);

    const pass = (h?: Histogram): Promise<RawPass> =>
      cfg.concurrent
        ? concurrentPass(gw, concurrency, cfg.count, maxRunMs, h ?? newLatencyHistogram())
        : dispatchLoop(gw, cfg.count, maxRunMs, h);
    const h = newLatencyHistogram();
    let latency: Pass | undefined;
    if (cfg.passes === 'split') {
      latency = await withCpu(cfg.backend, () => pass(h));
      dispatches += latency.completed;
      await drain(store, expected(), cfg.id);
    }
    // The throughput pass goes last: close() right after it flushes what it left buffered.
    const throughput = await withCpu(cfg.backend, () =>
      cfg.passes === 'split' ? pass() : pass(h),
    );
    dispatches += throughput.completed;
    const writer = writerStats(gw);
    const t0 = performance.now();
    await gw.close();
    const closeMs = performance.now() - t0;
    closed = true;
    if (latency === undefined) latency = throughput;
    const recordsFound = await countAfterClose(cfg, gw, where);
    return {
      throughput,
      latency,
      h,
      closeMs,
      perSec: (throughput.completed / throughput.elapsedMs) * 1000,
      perSecWithClose: (throughput.completed / (throughput.elapsedMs + closeMs)) * 1000,
      dispatches,
      recordsPerDispatch,
      recordKinds,
      recordsFound,
      writer,
    };
  } finally {
    if (!closed) await gw.close().catch(() => {});
    if (cfg.backend === 'sqlite') {
      for (const suffix of ['', '-wal', '-shm']) rmSync(where.path + suffix, { force: true });
    }
    if (cfg.backend === 'postgres') await dropPostgresPrefix(where.prefix).catch(() => {});
  }
}

class Tally {
  readonly perSec: number[] = [];
  readonly perSecWithClose: number[] = [];
  readonly closeMs: number[] = [];
  readonly p50UsByRun: number[] = [];
  readonly p99UsByRun: number[] = [];
  /** Per run, the run's index (to pair with `none` of the same run). */
  readonly runs: number[] = [];
  readonly histogram = newLatencyHistogram();
  readonly windows: [number, number][] = [];
  readonly cpu: CpuDelta[] = [];
  readonly writer: (WriterStats | undefined)[] = [];
  notExecuted = 0;
  cappedPasses = 0;
  dispatches = 0;
  records = 0;
  /** Runs whose store did not hold dispatches × recordsPerDispatch records. */
  readonly recordMismatches: string[] = [];
  recordsPerDispatch: number | undefined;
  recordKinds: string[] = [];

  add(r: RunResult, run: number, cfg: Config): void {
    this.runs.push(run);
    this.perSec.push(r.perSec);
    this.perSecWithClose.push(r.perSecWithClose);
    this.closeMs.push(r.closeMs);
    this.p50UsByRun.push(round(r.h.getValueAtPercentile(50) / 1000, 2));
    this.p99UsByRun.push(round(r.h.getValueAtPercentile(99) / 1000, 2));
    this.histogram.add(r.h);
    this.cpu.push(r.throughput.cpu);
    this.writer.push(r.writer);
    for (const p of r.throughput === r.latency ? [r.throughput] : [r.throughput, r.latency]) {
      this.windows.push([p.start, p.start + p.elapsedMs]);
      this.notExecuted += p.notExecuted;
      if (p.completed < cfg.count) this.cappedPasses++;
    }
    this.dispatches += r.dispatches;
    this.recordsPerDispatch = r.recordsPerDispatch;
    this.recordKinds = r.recordKinds;
    if (r.recordsFound !== undefined) {
      this.records += r.recordsFound;
      const want = r.dispatches * r.recordsPerDispatch;
      if (r.recordsFound !== want) {
        this.recordMismatches.push(`run ${run}: ${r.recordsFound} records, expected ${want}`);
      }
    }
  }
}

interface ThroughputResult {
  tallies: Map<string, Tally>;
  failed: Record<string, string>;
  gc: GcWatcher;
}

async function runThroughput(env: Env): Promise<ThroughputResult> {
  const { settings } = env;
  const tallies = new Map<string, Tally>(settings.configs.map((c) => [c.id, new Tally()]));
  const failed: Record<string, string> = {};
  const gc = new GcWatcher();
  const configs = settings.configs;
  log(
    `throughput: ${settings.runs} runs (+1 warm-up) of ${configs.length} configurations: ${configs.map((c) => c.id).join(', ')}`,
  );
  for (let run = 0; run <= settings.runs; run++) {
    const warmup = run === 0;
    // Rotate the order so that drift over a run (a noisy neighbour, a checkpoint) hits all.
    const order = configs.map((_, k) => configs[(k + run) % configs.length] as Config);
    const line: string[] = [];
    for (const cfg of order) {
      if (failed[cfg.id] !== undefined) continue;
      fullGc();
      let r: RunResult;
      try {
        r = await measureConfig(cfg, env, run);
      } catch (err) {
        failed[cfg.id] = err instanceof Error ? err.message : String(err);
        log(`  ${cfg.id}: FAILED: ${failed[cfg.id]}`);
        continue;
      }
      if (!warmup) (tallies.get(cfg.id) as Tally).add(r, run, cfg);
      line.push(
        `${cfg.id} ${fmt(r.perSec)}/s (${fmt(r.perSecWithClose)}/s with close)` +
          ` p99 ${round(r.h.getValueAtPercentile(99) / 1000, 1)}µs` +
          (r.recordsFound === undefined ? '' : ` ${r.recordsFound} rec`),
      );
    }
    log(`${warmup ? 'warm-up' : `run ${run}/${settings.runs}`}: ${line.join('; ')}`);
  }
  await gc.stop();
  return { tallies, failed, gc };
}

function throughputReport(env: Env, t: ThroughputResult): Record<string, unknown> {
  const none = t.tallies.get('none') as Tally;
  const noneConc = t.tallies.get(`none.inFlight${env.settings.concurrency}`) as Tally;
  const out: Record<string, unknown> = {};
  for (const cfg of env.settings.configs) {
    const tally = t.tallies.get(cfg.id) as Tally;
    if (tally.perSec.length === 0) {
      out[cfg.id] = { failed: t.failed[cfg.id] ?? 'not measured' };
      continue;
    }
    const base = cfg.concurrent ? noneConc : none;
    /** Per run, ours / the none of the same run. */
    const ratio = (values: number[]): ReturnType<typeof spread> | undefined => {
      const pairs = values
        .map((v, k) => {
          const at = base.runs.indexOf(tally.runs[k] as number);
          return at < 0 ? undefined : v / (base.perSec[at] as number);
        })
        .filter((v): v is number => v !== undefined);
      return pairs.length > 0 ? spread(pairs, 3) : undefined;
    };
    const costUs = tally.perSec
      .map((v, k) => {
        const at = base.runs.indexOf(tally.runs[k] as number);
        return at < 0 ? undefined : 1e6 / v - 1e6 / (base.perSec[at] as number);
      })
      .filter((v): v is number => v !== undefined);
    const cpu = (pick: (c: CpuDelta) => number | undefined, digits: number) => {
      const v = tally.cpu.map(pick).filter((x): x is number => x !== undefined);
      return v.length > 0 ? round(median(v), digits) : undefined;
    };
    out[cfg.id] = {
      backend: cfg.backend,
      mode: cfg.mode ?? null,
      inFlight: cfg.concurrent ? env.settings.concurrency : 1,
      perSec: spread(tally.perSec),
      perSecByRun: tally.perSec.map((v) => Math.round(v)),
      perSecWithClose: spread(tally.perSecWithClose),
      closeMs: spread(tally.closeMs, 1),
      ratioToNone: cfg.backend === 'none' ? undefined : ratio(tally.perSec),
      ratioToNoneWithClose: cfg.backend === 'none' ? undefined : ratio(tally.perSecWithClose),
      costOverNoneUs: cfg.backend === 'none' || costUs.length === 0 ? undefined : spread(costUs, 2),
      latencyUs: latencyUs(tally.histogram),
      p50UsByRun: tally.p50UsByRun,
      p99UsByRun: tally.p99UsByRun,
      cpu: {
        nodeUsPerDispatch: cpu((c) => c.selfUsPerOp, 2),
        nodeCores: cpu((c) => c.selfCores, 2),
        serverUsPerDispatch: cpu((c) => c.serverUsPerOp, 2),
        machineBusyCores: cpu((c) => c.machineBusyCores, 2),
      },
      gc: tally.windows.length > 0 ? t.gc.within(tally.windows) : { count: 0, pauseMs: 0 },
      writerAtEndOfPass: tally.writer,
      notExecuted: tally.notExecuted,
      cappedPasses: tally.cappedPasses,
      records:
        cfg.backend === 'none'
          ? undefined
          : {
              perDispatch: tally.recordsPerDispatch,
              kinds: tally.recordKinds,
              dispatches: tally.dispatches,
              found: tally.records,
              expected: tally.dispatches * (tally.recordsPerDispatch ?? 0),
              mismatches: tally.recordMismatches,
            },
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Part 2: queries on a large store

const DAY_MS = 86_400_000;
const DAYS = 30;
const TENANTS = 50;
const NAMESPACES = 10;
const ACTION_TYPES = 20;
const FILL_BATCH = 5_000;
/** One action in RARE_EVERY has the rare action type. */
const RARE_EVERY = 1_000;
const RARE_TYPE = 'type-rare';
const ABSENT_TYPE = 'type-absent';
const PROVIDERS = ['webhook', 'email', 'slack', 'llm', 'log'] as const;

/** A small deterministic PRNG (mulberry32), so every fill holds the same data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

/** A UUIDv7-shaped id for time `ms`, unique by `n` (its last 12 hex digits). */
function uuid7(ms: number, n: number, rnd: () => number): string {
  const t = hex(ms, 12);
  const a = hex(Math.floor(rnd() * 0x1000), 3);
  const b = hex(0x8000 | Math.floor(rnd() * 0x4000), 4);
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${a}-${b}-${hex(n, 12)}`;
}

interface FillPlan {
  readonly records: number;
  readonly start: number;
  readonly end: number;
  /** Some action ids and how many records each has, for history(). */
  readonly sampleActions: { id: string; records: number }[];
}

/** One action in RETRIED_EVERY failed its first attempt: an attempt record + its decision. */
const RETRIED_EVERY = 10;

/** How many actions make `records` records. */
function actionsFor(records: number): number {
  return Math.ceil(records / (1 + 1 / RETRIED_EVERY));
}

/**
 * The synthetic trail, in time order, yielded in batches: actions spread evenly over 30 days,
 * each one decision record (as the gateway writes for a first attempt that succeeded: attempt 1,
 * status 200), and one action in RETRIED_EVERY also a transient attempt record before it.
 */
function* syntheticBatches(plan: FillPlan, seed: number): Generator<AuditRecord[]> {
  const rnd = prng(seed);
  const actions = actionsFor(plan.records);
  const span = plan.end - plan.start;
  const step = span / actions;
  const sampleEvery = Math.max(1, Math.floor(actions / 2000));
  let batch: AuditRecord[] = [];
  let made = 0;
  for (let j = 0; made < plan.records; j++) {
    const decidedAt = Math.floor(plan.start + Math.min(j, actions - 1) * step + rnd() * step);
    const tenant = `tenant-${Math.floor(rnd() * TENANTS)}`;
    const namespace = `ns-${Math.floor(rnd() * NAMESPACES)}`;
    const actionType =
      j % RARE_EVERY === RARE_EVERY - 1 ? RARE_TYPE : `type-${Math.floor(rnd() * ACTION_TYPES)}`;
    const provider = PROVIDERS[j % PROVIDERS.length] as string;
    const actionId = uuid7(decidedAt - 5, j, rnd);
    const retried = j % RETRIED_EVERY === 0 && plan.records - made >= 2;
    if (j % sampleEvery === 0) plan.sampleActions.push({ id: actionId, records: retried ? 2 : 1 });
    const payload = {
      orderId: `o-${j}`,
      amount: j % 1000,
      currency: 'EUR',
      customer: { id: `c-${j % 9973}`, email: `c${j % 9973}@example.com` },
    };
    const common = {
      actionId,
      namespace,
      tenant,
      provider,
      originalProvider: provider,
      destination: `https://hooks.example.com/${namespace}`,
      actionType,
      labels: { team: `team-${j % 7}`, env: 'prod' },
      rules: j % 5 === 0 ? ['dedup-orders'] : [],
      errorCode: undefined,
      dedupKey: j % 5 === 0 ? `order-${j}` : undefined,
      receivedAt: decidedAt - 6,
      nodeId: 'bench-node-1',
      traceId: undefined,
      payload,
      payloadHash: payloadHashOf(payload),
      chainSeq: undefined,
      prevHash: undefined,
      hash: undefined,
    };
    if (retried) {
      batch.push({
        ...common,
        id: uuid7(decidedAt - 3, 2 * j, rnd),
        kind: 'attempt',
        outcome: 'transient',
        reason: 'connect ECONNREFUSED',
        attempt: 1,
        status: undefined,
        decidedAt: decidedAt - 3,
        executedAt: decidedAt - 4,
        durationMs: 1,
      });
      made++;
    }
    batch.push({
      ...common,
      id: uuid7(decidedAt, 2 * j + 1, rnd),
      kind: 'decision',
      outcome: j % 50 === 1 ? 'deduplicated' : 'executed',
      reason: undefined,
      attempt: retried ? 2 : 1,
      status: 200,
      decidedAt,
      executedAt: decidedAt - 1,
      durationMs: 3,
    });
    made++;
    if (batch.length >= FILL_BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

interface QueryStats {
  runs: number;
  ms: { median: number; p90: number; p99: number; min: number; max: number; mean: number };
  rowsReturned: { min: number; max: number };
  wrongResults: number;
}

function statsOf(samples: number[], rows: number[], wrong: number): QueryStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number): number =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ??
    Number.NaN;
  return {
    runs: samples.length,
    ms: {
      median: round(median(samples), 3),
      p90: round(rank(90), 3),
      p99: round(rank(99), 3),
      min: round(sorted[0] ?? Number.NaN, 3),
      max: round(sorted[sorted.length - 1] ?? Number.NaN, 3),
      mean: round(samples.reduce((s, v) => s + v, 0) / Math.max(1, samples.length), 3),
    },
    rowsReturned: { min: Math.min(...rows), max: Math.max(...rows) },
    wrongResults: wrong,
  };
}

type QueryName =
  | 'a_tenantDay'
  | 'b_history'
  | 'c_actionTypeCommon'
  | 'c_actionTypeRare'
  | 'c_actionTypeAbsent'
  | 'd_secondPage';

const QUERY_DESCRIPTIONS: Record<QueryName, string> = {
  a_tenantDay:
    'query({ tenant, from: day start, to: +1 day, limit: 50, order: desc }): index (tenant, decided_at, id)',
  b_history: `history(actionId) of an existing action (1 record; 2 for the 1 in ${RETRIED_EVERY} retried): index (action_id)`,
  c_actionTypeCommon: `query({ actionType: one of ${ACTION_TYPES} common types, limit: 50 }): no index on action_type; rows read newest first until 50 match (~${Math.round(ACTION_TYPES * 50 * 1.1)} rows)`,
  c_actionTypeRare: `query({ actionType: a type on 1 action in ${RARE_EVERY}, limit: 50 }): no index; ~${Math.round(RARE_EVERY * 50 * 1.1).toLocaleString('en')} rows read newest first`,
  c_actionTypeAbsent:
    'query({ actionType: a type no record has, limit: 50 }): no index; every record read (the worst case)',
  d_secondPage: 'the (a) query with the nextCursor of its first page (read untimed just before)',
};

interface QueryBackendResult {
  store: Record<string, unknown>;
  fill: Record<string, unknown>;
  queries: Record<QueryName, QueryStats>;
}

async function runQueries(backend: 'sqlite' | 'postgres', env: Env): Promise<QueryBackendResult> {
  const { records, queryRuns } = env.settings;
  const path = join(env.tmpDir, 'query.db');
  const prefix = `sybench_auditq_${env.tag}_`;
  const store: AuditStore =
    backend === 'sqlite'
      ? new SqliteAuditStore({ path })
      : new PostgresAuditStore({ url: POSTGRES_URL, prefix });
  try {
    await store.init?.();
    const end = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const plan: FillPlan = { records, start: end - DAYS * DAY_MS, end, sampleActions: [] };

    // ---- fill: only the append calls are timed (generating the records is not the store's cost)
    log(
      `query/${backend}: filling ${records.toLocaleString('en')} records in batches of ${FILL_BATCH}`,
    );
    const batchMs: number[] = [];
    const fillStart = performance.now();
    let appended = 0;
    for (const batch of syntheticBatches(plan, 42)) {
      const t0 = performance.now();
      await store.append(batch, { chain: false });
      batchMs.push(performance.now() - t0);
      appended += batch.length;
      if (batchMs.length % 40 === 0) {
        log(
          `  ${appended.toLocaleString('en')} records, last batch ${round(batchMs[batchMs.length - 1] as number, 1)} ms`,
        );
      }
    }
    const fillWallMs = performance.now() - fillStart;
    const appendMs = batchMs.reduce((s, v) => s + v, 0);
    const tenth = Math.max(1, Math.floor(batchMs.length / 10));
    const fill: Record<string, unknown> = {
      records: appended,
      batches: batchMs.length,
      batchSize: FILL_BATCH,
      appendSeconds: round(appendMs / 1000, 2),
      recordsPerSecAppend: Math.round((appended / appendMs) * 1000),
      wallSecondsWithGeneration: round(fillWallMs / 1000, 2),
      batchMs: {
        median: round(median(batchMs), 1),
        firstTenthMedian: round(median(batchMs.slice(0, tenth)), 1),
        lastTenthMedian: round(median(batchMs.slice(-tenth)), 1),
        max: round(Math.max(...batchMs), 1),
      },
    };
    const found = await store.count();
    if (found !== appended)
      throw new Error(`${backend}: ${found} records after the fill, expected ${appended}`);

    const storeInfo: Record<string, unknown> = { backend };
    if (backend === 'postgres') {
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const table = `public."${prefix}audit_records"`;
        const t0 = performance.now();
        await client.query(`analyze ${table}`);
        fill.analyzeSeconds = round((performance.now() - t0) / 1000, 2);
        const size = await client.query<{ table: string; indexes: string; version: string }>(
          `select pg_table_size('${table}')::text as table, pg_indexes_size('${table}')::text as indexes, current_setting('server_version') as version`,
        );
        const row = size.rows[0];
        storeInfo.server_version = row?.version;
        storeInfo.tableMB = round(Number(row?.table) / 2 ** 20, 1);
        storeInfo.indexesMB = round(Number(row?.indexes) / 2 ** 20, 1);
        const settings = await client.query<{ name: string; setting: string }>(
          "select name, setting from pg_settings where name in ('shared_buffers', 'synchronous_commit', 'work_mem', 'max_parallel_workers_per_gather')",
        );
        for (const s of settings.rows) storeInfo[s.name] = s.setting;
      } finally {
        await client.end();
      }
    } else {
      const mb = (f: string): number => {
        try {
          return statSync(f).size / 2 ** 20;
        } catch {
          return 0;
        }
      };
      storeInfo.fileMB = round(mb(path), 1);
      storeInfo.walMB = round(mb(`${path}-wal`), 1);
      storeInfo.note =
        'no ANALYZE (the store does not run one); the page cache is warm after the fill';
    }

    // ---- queries, interleaved round by round; each kind stops at its run count or time budget
    const rnd = prng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const tenantDay = (): AuditQuery => {
      const day = plan.start + Math.floor(rnd() * DAYS) * DAY_MS;
      return {
        tenant: `tenant-${Math.floor(rnd() * TENANTS)}`,
        from: day,
        to: day + DAY_MS,
        limit: 50,
        order: 'desc',
      };
    };
    const slowRuns = Math.max(3, Math.min(queryRuns, env.settings.quick ? 5 : 10));
    const kinds: {
      name: QueryName;
      runs: number;
      budgetMs: number;
      /** Untimed preparation, then the timed call; returns rows and whether they are right. */
      prepare: () => Promise<() => Promise<[rows: number, ok: boolean]>>;
    }[] = [
      {
        name: 'a_tenantDay',
        runs: queryRuns,
        budgetMs: 60_000,
        prepare: () => {
          const q = tenantDay();
          return Promise.resolve(async () => {
            const page = await store.query(q);
            const ok = page.items.every(
              (r) =>
                r.tenant === q.tenant &&
                r.decidedAt >= (q.from as number) &&
                r.decidedAt < (q.to as number),
            );
            // A full page, or a short last one (a quiet tenant-day).
            const full = page.items.length === 50 || page.nextCursor === null;
            return [page.items.length, ok && full && page.items.length <= 50];
          });
        },
      },
      {
        name: 'b_history',
        runs: queryRuns,
        budgetMs: 60_000,
        prepare: () => {
          const { id, records: n } = pick(plan.sampleActions);
          return Promise.resolve(async () => {
            const items = await store.history(id);
            return [items.length, items.length === n && items.every((r) => r.actionId === id)];
          });
        },
      },
      {
        name: 'd_secondPage',
        runs: queryRuns,
        budgetMs: 60_000,
        prepare: async () => {
          // A tenant-day with a second page (with --records 100000 a few have fewer than 51).
          let q = tenantDay();
          let first = await store.query(q);
          for (let k = 0; k < 20 && first.nextCursor === null; k++) {
            q = tenantDay();
            first = await store.query(q);
          }
          if (first.nextCursor === null) {
            // A tiny fill (--records): the tenant over all 30 days instead.
            q = { ...q, from: plan.start, to: plan.end };
            first = await store.query(q);
          }
          const cursor = first.nextCursor ?? undefined;
          const last = first.items[first.items.length - 1];
          return async () => {
            const page = await store.query({ ...q, cursor });
            const ok =
              cursor !== undefined &&
              last !== undefined &&
              page.items.every(
                (r) =>
                  r.tenant === q.tenant &&
                  (r.decidedAt < last.decidedAt ||
                    (r.decidedAt === last.decidedAt && r.id < last.id)),
              );
            return [page.items.length, ok && page.items.length > 0];
          };
        },
      },
      {
        name: 'c_actionTypeCommon',
        runs: queryRuns,
        budgetMs: 60_000,
        prepare: () => {
          const type = `type-${Math.floor(rnd() * ACTION_TYPES)}`;
          return Promise.resolve(async () => {
            const page = await store.query({ actionType: type, limit: 50, order: 'desc' });
            return [
              page.items.length,
              page.items.length === 50 && page.items.every((r) => r.actionType === type),
            ];
          });
        },
      },
      {
        name: 'c_actionTypeRare',
        runs: slowRuns,
        budgetMs: 30_000,
        prepare: () =>
          Promise.resolve(async () => {
            const page = await store.query({ actionType: RARE_TYPE, limit: 50, order: 'desc' });
            const want = Math.min(50, Math.floor(actionsFor(records) / RARE_EVERY));
            return [
              page.items.length,
              page.items.length === want && page.items.every((r) => r.actionType === RARE_TYPE),
            ];
          }),
      },
      {
        name: 'c_actionTypeAbsent',
        runs: slowRuns,
        budgetMs: 30_000,
        prepare: () =>
          Promise.resolve(async () => {
            const page = await store.query({ actionType: ABSENT_TYPE, limit: 50, order: 'desc' });
            return [page.items.length, page.items.length === 0];
          }),
      },
    ];
    const samples = new Map<
      QueryName,
      { ms: number[]; rows: number[]; wrong: number; spent: number }
    >(kinds.map((k) => [k.name, { ms: [], rows: [], wrong: 0, spent: 0 }]));
    // Warm-up: 3 of each, discarded (statement preparation, first touches of index pages).
    for (let w = 0; w < 3; w++) {
      for (const k of kinds) await (await k.prepare())();
    }
    const rounds = Math.max(...kinds.map((k) => k.runs));
    for (let r = 0; r < rounds; r++) {
      for (const k of kinds) {
        const s = samples.get(k.name) as {
          ms: number[];
          rows: number[];
          wrong: number;
          spent: number;
        };
        if (s.ms.length >= k.runs || s.spent > k.budgetMs) continue;
        const call = await k.prepare();
        const t0 = performance.now();
        const [rows, ok] = await call();
        const ms = performance.now() - t0;
        s.ms.push(ms);
        s.spent += ms;
        s.rows.push(rows);
        if (!ok) s.wrong++;
      }
    }
    const queries = {} as Record<QueryName, QueryStats>;
    for (const k of kinds) {
      const s = samples.get(k.name) as { ms: number[]; rows: number[]; wrong: number };
      queries[k.name] = statsOf(s.ms, s.rows, s.wrong);
    }
    log(
      `query/${backend}: ${kinds
        .map(
          (k) => `${k.name} p50 ${queries[k.name].ms.median} ms p99 ${queries[k.name].ms.p99} ms`,
        )
        .join('; ')}`,
    );
    return { store: storeInfo, fill, queries };
  } finally {
    await store.close().catch(() => {});
    if (backend === 'sqlite') {
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
    } else {
      await dropPostgresPrefix(prefix).catch(() => {});
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function postgresReachable(): Promise<string | undefined> {
  try {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 1500 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('select 1');
    } finally {
      await client.end().catch(() => {});
    }
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
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
  const wallStart = performance.now();
  const date = new Date().toISOString();
  const machine = describeMachine();
  const loadAverageAtStart = os.loadavg().map((v) => round(v, 2));
  const skipped: Record<string, string> = {};
  if (settings.backends.includes('postgres')) {
    const reason = await postgresReachable();
    if (reason !== undefined) {
      skipped.postgres = `${new URL(POSTGRES_URL).host}: ${reason}`;
      settings.backends = settings.backends.filter((b) => b !== 'postgres');
      settings.configs = settings.configs.filter((c) => c.backend !== 'postgres');
      log(`postgres skipped: ${skipped.postgres}`);
    }
  }
  const env: Env = {
    settings,
    tag: randomBytes(3).toString('hex'),
    tmpDir: mkdtempSync(join(os.tmpdir(), 'sybench-audit-')),
  };
  try {
    let throughput: Record<string, unknown> | undefined;
    let throughputFailed: Record<string, string> = {};
    if (settings.parts.includes('throughput')) {
      const t = await runThroughput(env);
      throughput = throughputReport(env, t);
      throughputFailed = t.failed;
    }
    const query: Record<string, unknown> = {};
    if (settings.parts.includes('query')) {
      for (const b of ['sqlite', 'postgres'] as const) {
        if (!settings.backends.includes(b)) continue;
        fullGc();
        try {
          query[b] = await runQueries(b, env);
        } catch (err) {
          query[b] = { failed: err instanceof Error ? err.message : String(err) };
          log(`query/${b}: FAILED: ${(query[b] as { failed: string }).failed}`);
        }
      }
    }
    const environment = measureJitter();

    // ---- checks
    type Check = { value: number | null; unit: string; target: string; met: boolean | null };
    const checks: Record<string, Check> = {};
    const tp = (id: string): Record<string, unknown> | undefined =>
      throughput?.[id] as Record<string, unknown> | undefined;
    const medianOf = (id: string, field: 'perSec' | 'perSecWithClose'): number | null =>
      (tp(id)?.[field] as { median: number } | undefined)?.median ?? null;
    if (throughput !== undefined) {
      for (const [b, min] of [
        ['sqlite', TARGETS.sqliteBatchedPerSec],
        ['postgres', TARGETS.postgresBatchedPerSec],
      ] as const) {
        if (!settings.backends.includes(b)) continue;
        const v = medianOf(`${b}.batched`, 'perSecWithClose');
        checks[`${b}.batched.perSecWithClose`] = {
          value: v,
          unit: 'dispatches/s, final close (flush) included',
          target: `>= ${min}`,
          met: v === null ? null : v >= min,
        };
      }
      for (const cfg of settings.configs) {
        if (cfg.backend === 'none') continue;
        const r = tp(cfg.id)?.records as
          { found: number; expected: number; mismatches: string[] } | undefined;
        checks[`${cfg.id}.allRecorded`] = {
          value: r?.found ?? null,
          unit: 'records in the store after close',
          target: `== ${r?.expected ?? '?'} (dispatches × records per dispatch)`,
          met: r === undefined ? null : r.mismatches.length === 0 && r.found === r.expected,
        };
      }
      for (const cfg of settings.configs) {
        const n = (tp(cfg.id)?.notExecuted as number | undefined) ?? null;
        checks[`${cfg.id}.allExecuted`] = {
          value: n,
          unit: 'dispatches not executed',
          target: '== 0',
          met: n === null ? null : n === 0,
        };
      }
    }
    for (const [b, r] of Object.entries(query)) {
      const q = (r as { queries?: Record<QueryName, QueryStats> }).queries;
      for (const name of ['a_tenantDay', 'b_history'] as const) {
        const v = q?.[name].ms.p99 ?? null;
        checks[`query.${b}.${name}.p99Ms`] = {
          value: v,
          unit: `ms, p99 of ${q?.[name].runs ?? 0} runs on ${settings.records.toLocaleString('en')} records`,
          target: `< ${TARGETS.queryMs}`,
          met: v === null ? null : v < TARGETS.queryMs,
        };
      }
      if (q !== undefined) {
        const wrong = Object.values(q).reduce((s, v) => s + v.wrongResults, 0);
        checks[`query.${b}.rightResults`] = {
          value: wrong,
          unit: 'queries whose result was not what the data holds',
          target: '== 0',
          met: wrong === 0,
        };
      }
    }
    const judged = Object.values(checks).filter((c) => c.met !== null);

    const result = {
      scenario: 'audit',
      covers: 'S7 of ../shared/BENCHMARKS.md (audit store write cost) and issue 6',
      description:
        'sequential in-process gateway.dispatch (memory state, no rules, noop provider) with the audit trail on none / memory / sqlite / postgres, batched and strict, and strict with N in flight; query latency on a large sqlite / postgres audit store',
      met:
        judged.length > 0 &&
        judged.every((c) => c.met === true) &&
        Object.keys(skipped).length === 0,
      metOfMeasured: judged.length > 0 && judged.every((c) => c.met === true),
      judgedOn:
        'throughput: median over runs of completed / (pass time + the final gateway.close(), which flushes the writer); queries: p99 by nearest rank (of 50 runs: the slowest)',
      checks,
      skipped: Object.keys(skipped).length > 0 ? skipped : undefined,
      failed: Object.keys(throughputFailed).length > 0 ? throughputFailed : undefined,
      throughput,
      query: settings.parts.includes('query')
        ? { descriptions: QUERY_DESCRIPTIONS, ...query }
        : undefined,
      settings: {
        parts: settings.parts,
        backends: settings.backends,
        runs: settings.runs,
        warmupRuns: 1,
        quick: settings.quick,
        concurrency: settings.concurrency,
        maxRunMs: settings.maxRunMs,
        counts: Object.fromEntries(settings.configs.map((c) => [c.id, c.count])),
        warmupDispatchesPerGateway: settings.warmup,
        action: { ...nextAction(), payload: { i: '<unique per dispatch>' } },
        gateways:
          'createGateway({ audit: { backend, mode, path | url + prefix } }) (memory state, no rules), fresh per configuration per run (a new sqlite file, a new postgres table prefix, removed after); ready(), one probe dispatch (its history() gives the records per dispatch), warm-up dispatches, then the writer drained (store.count() polled) before each pass',
        passes:
          'split: a timed pass (HDR histogram), drain, then an untimed pass for throughput; timed (sqlite and postgres strict, and every N-in-flight configuration): one timed pass. The throughput pass is the last one, and `await gateway.close()` right after it is timed: perSecWithClose = completed / (pass + close). Configurations rotate their order from run to run.',
        records:
          "counted after close with a fresh store on the same sqlite file / postgres prefix (memory: the gateway's store, whose close keeps them); expected = every dispatch of that gateway (probe + warm-up + passes) × records per dispatch",
        queryRecords: settings.records,
        queryRuns: settings.queryRuns,
        queryData: `${TENANTS} tenants, ${NAMESPACES} namespaces, ${ACTION_TYPES} action types (+ 1 on one action in ${RARE_EVERY}), ${DAYS} days, actions evenly spread in time, each one decision record, one in ${RETRIED_EVERY} also a transient attempt record before it; payload ~120 bytes of JSON; appended in time order in batches of ${FILL_BATCH} with chain: false`,
        queryMethod:
          'each kind warmed 3 times, then run round-robin with the others; wall time of the store call (SQL + row decoding); kinds on a full scan stop after fewer runs or 30 s',
        clock: 'performance.now()',
        histogram: 'hdr-histogram-js, ns, 3 significant digits',
        postgres: new URL(POSTGRES_URL).host,
        wallSeconds: round((performance.now() - wallStart) / 1000, 1),
      },
      environment,
      source: sourceVersion(),
      machine,
      loadAverageAtStart,
      loadAverage1mAtEnd: round(os.loadavg()[0] ?? 0, 2),
      date,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(env.tmpDir, { recursive: true, force: true });
  }
  // Anything left open by a failed configuration must not keep the process alive.
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
