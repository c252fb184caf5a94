/**
 * Executor isolation ("bulkheads"): a slow provider at its concurrency limit does not raise the
 * latency of another provider. Not one of the S1–S18 scenarios of ../shared/BENCHMARKS.md; its
 * id here is `executor-isolation`, and its ceiling is the fast provider measured alone in the
 * same run.
 *
 * In-process gateway (createGateway, memory state, no rules, no audit) and two loopback HTTP
 * receivers in this process: `fast` answers at once, `slow` answers after --slow-ms (200 ms).
 * Webhook providers with one attempt (no retries) and no circuit breaker.
 *
 * - (a) `alone`: N sequential dispatches to `fast`, nothing else running.
 * - (b) `withSlowBacklog`: the same N while `slow` (concurrency { limit: 4, queue: 10000 }) holds
 *   4 running and --backlog − 4 (996) queued; each slow dispatch that completes is replaced by a
 *   new one, so the backlog stays at --backlog for the whole measurement.
 * - (c) `noBulkhead`: `slow` with no limit of its own (limit 100000) but the executor's global
 *   `concurrency: 8`: the 1,000 slow calls now wait for global slots, and a `fast` call queues
 *   behind all of them (FIFO): it would wait about backlog / 8 × slow-ms (~25 s), but a wait for
 *   a slot is bounded by `executor.deadline` (10 s), after which the dispatch answers `retrying`
 *   (counted in notExecuted). So (c) takes only --c-samples sequential dispatches (3; --quick 1),
 *   bounded by --c-max-seconds, once.
 *
 * (a) and (b) run --runs times after one discarded warm-up run (order alternating), each run with
 * a fresh gateway; percentiles come from HDR histograms (ns), ratios per run, then their median.
 *
 * Usage: npx tsx bench/executor.ts [--runs 5] [--count 2000] [--backlog 1000] [--slow-ms 200]
 *          [--c-samples 3] [--c-max-seconds 120] [--max-run-seconds 10] [--quick]
 * Prints one JSON object on stdout; progress goes to stderr.
 */
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Histogram } from 'hdr-histogram-js';
import { createGateway, type ConfigInput, type Gateway } from '../src/index.js';
import { measureJitter } from './lib/jitter.js';
import { describeMachine } from './lib/machine.js';
import { sourceVersion } from './lib/source.js';
import { latencyUs, newLatencyHistogram, round, spread } from './lib/stats.js';

/** Ours, not BENCHMARKS.md's: "does not raise the latency" read as ≤ 1.5x p50 and ≤ 2x p99. */
const TARGET = { maxP50Ratio: 1.5, maxP99Ratio: 2 } as const;
const SLOW_LIMIT = 4;
const GLOBAL_LIMIT_C = 8;

const USAGE =
  'usage: npx tsx bench/executor.ts [--runs N (5; quick 2)] [--count N (2000; quick 500)]' +
  ' [--backlog N (1000)] [--slow-ms MS (200)] [--c-samples N (3; quick 1; 0 skips c)]' +
  ' [--c-max-seconds S (120)] [--max-run-seconds S (10)] [--quick]';

interface Settings {
  runs: number;
  count: number;
  backlog: number;
  slowMs: number;
  cSamples: number;
  cMaxMs: number;
  maxRunMs: number;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      count: { type: 'string' },
      backlog: { type: 'string' },
      'slow-ms': { type: 'string' },
      'c-samples': { type: 'string' },
      'c-max-seconds': { type: 'string' },
      'max-run-seconds': { type: 'string' },
      quick: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const int = (name: string, raw: string | undefined, fallback: number, min = 1): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw.replace(/_/g, ''));
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const quick = values.quick === true;
  const backlog = int('backlog', values.backlog, 1000);
  if (backlog <= SLOW_LIMIT) throw new Error(`--backlog must be more than ${SLOW_LIMIT}`);
  return {
    runs: int('runs', values.runs, quick ? 2 : 5),
    count: int('count', values.count, quick ? 500 : 2000),
    backlog,
    slowMs: int('slow-ms', values['slow-ms'], 200),
    cSamples: int('c-samples', values['c-samples'], quick ? 1 : 3, 0),
    cMaxMs: int('c-max-seconds', values['c-max-seconds'], 120) * 1000,
    maxRunMs: int('max-run-seconds', values['max-run-seconds'], 10) * 1000,
  };
}

// -------------------------------------------------------------------------------------------------
// Receivers

interface Receiver {
  url: string;
  calls: number;
  /** Requests the slow receiver is holding right now. */
  held: number;
  /** From now on answer at once, and answer every held request now (to drain a backlog fast). */
  drain(): void;
  /** Back to answering after `delayMs`. */
  undrain(): void;
  close(): Promise<void>;
}

async function startReceiver(delayMs: number): Promise<Receiver> {
  let draining = false;
  const held = new Map<ServerResponse, NodeJS.Timeout>();
  const answer = (res: ServerResponse): void => {
    const t = held.get(res);
    if (t !== undefined) clearTimeout(t);
    held.delete(res);
    if (!res.destroyed && !res.writableEnded) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    }
  };
  const r: Receiver = {
    url: '',
    calls: 0,
    get held() {
      return held.size;
    },
    drain: () => {
      draining = true;
      for (const res of [...held.keys()]) answer(res);
    },
    undrain: () => (draining = false),
    close: () =>
      new Promise<void>((done) => {
        for (const t of held.values()) clearTimeout(t);
        held.clear();
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      r.calls++;
      if (delayMs === 0 || draining) return answer(res);
      held.set(
        res,
        setTimeout(() => answer(res), delayMs),
      );
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return r;
}

// -------------------------------------------------------------------------------------------------
// Gateway and load

function gatewayConfig(fast: Receiver, slow: Receiver, bulkhead: boolean): ConfigInput {
  const common = {
    type: 'webhook',
    allowPrivateNetworks: true,
    retry: { attempts: 1 },
    circuitBreaker: false as const,
    timeout: '30s',
  };
  return {
    state: { backend: 'memory' },
    executor: bulkhead ? {} : { concurrency: GLOBAL_LIMIT_C, queue: 1_000_000 },
    providers: {
      fast: { ...common, url: `${fast.url}/fast` },
      slow: {
        ...common,
        url: `${slow.url}/slow`,
        concurrency: bulkhead
          ? { limit: SLOW_LIMIT, queue: 10_000 }
          : { limit: 100_000, queue: 1_000_000 },
      },
    },
  };
}

function fastAction(i: number) {
  return { namespace: 'bench', tenant: 't1', provider: 'fast', actionType: 'ping', payload: { i } };
}

/** Keeps `size` dispatches to `slow` outstanding: each one that ends is replaced at once. */
class Backlog {
  private readonly outstanding = new Set<Promise<void>>();
  private keeping = true;
  started = 0;
  executed = 0;
  other = 0;
  errors = 0;
  private i = 0;

  constructor(
    private readonly gw: Gateway,
    private readonly size: number,
  ) {
    for (let k = 0; k < size; k++) this.one();
  }

  private one(): void {
    this.started++;
    const p: Promise<void> = this.gw
      .dispatch({
        namespace: 'bench',
        tenant: 't1',
        provider: 'slow',
        actionType: 'slow',
        payload: { i: this.i++ },
      })
      .then(
        (o) => {
          if (o.outcome === 'executed') this.executed++;
          else this.other++;
        },
        () => {
          this.errors++;
        },
      )
      .finally(() => {
        this.outstanding.delete(p);
        if (this.keeping) this.one();
      });
    this.outstanding.add(p);
  }

  /** Stops refilling and waits for what is outstanding. */
  async stop(): Promise<void> {
    this.keeping = false;
    while (this.outstanding.size > 0) await Promise.all([...this.outstanding]);
  }
}

function slowStatus(gw: Gateway): { running: number; queued: number } {
  const s = gw.executor.status().find((p) => p.name === 'slow');
  return { running: s?.concurrency.running ?? 0, queued: s?.concurrency.queued ?? 0 };
}

async function waitUntil(what: string, cond: () => boolean, maxMs = 10_000): Promise<void> {
  const end = performance.now() + maxMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Pass {
  completed: number;
  notExecuted: number;
  elapsedMs: number;
}

/** N sequential dispatches to `fast`, each timed into `h`; stops at `maxMs`. */
async function fastLoop(gw: Gateway, count: number, maxMs: number, h: Histogram): Promise<Pass> {
  let notExecuted = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  while (i < count) {
    const t0 = performance.now();
    const outcome = await gw.dispatch(fastAction(i));
    h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1e6)));
    if (outcome.outcome !== 'executed') notExecuted++;
    i++;
    if (performance.now() > deadline) break;
  }
  return { completed: i, notExecuted, elapsedMs: performance.now() - start };
}

async function warmUp(gw: Gateway, n = 300): Promise<void> {
  for (let i = 0; i < n; i++) {
    const o = await gw.dispatch(fastAction(-1 - i));
    if (o.outcome !== 'executed') throw new Error(`warm-up dispatch: ${JSON.stringify(o)}`);
  }
}

interface LoadedPass extends Pass {
  histogram: Histogram;
  slowAtStart: { running: number; queued: number };
  slowAtEnd: { running: number; queued: number };
  backlog: { started: number; executed: number; other: number; errors: number };
}

/** Fills the slow backlog, measures `fast` under it (`count` or `samples`), then drains. */
async function underBacklog(
  gw: Gateway,
  slow: Receiver,
  s: Settings,
  count: number,
  maxMs: number,
  ready: () => boolean,
): Promise<LoadedPass> {
  slow.undrain();
  const backlog = new Backlog(gw, s.backlog);
  await waitUntil('the slow backlog to fill', ready);
  const slowAtStart = slowStatus(gw);
  const histogram = newLatencyHistogram();
  const pass = await fastLoop(gw, count, maxMs, histogram);
  const slowAtEnd = slowStatus(gw);
  slow.drain();
  await backlog.stop();
  return {
    ...pass,
    histogram,
    slowAtStart,
    slowAtEnd,
    backlog: {
      started: backlog.started,
      executed: backlog.executed,
      other: backlog.other,
      errors: backlog.errors,
    },
  };
}

// -------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  let s: Settings;
  try {
    s = parseSettings(process.argv.slice(2));
  } catch (err) {
    log(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const date = new Date().toISOString();
  const machine = describeMachine();
  const loadAverageAtStart = os.loadavg().map((v) => round(v, 2));
  const fast = await startReceiver(0);
  const slow = await startReceiver(s.slowMs);

  const alone = { histogram: newLatencyHistogram(), p50: [] as number[], p99: [] as number[] };
  const loaded = { histogram: newLatencyHistogram(), p50: [] as number[], p99: [] as number[] };
  const ratioP50: number[] = [];
  const ratioP99: number[] = [];
  const loadedDetails: Omit<LoadedPass, 'histogram'>[] = [];
  let aloneNotExecuted = 0;
  let cappedPasses = 0;

  log(
    `executor-isolation: ${s.runs} runs of ${s.count} sequential dispatches to "fast", alone and` +
      ` with ${s.backlog} dispatches to "slow" (${s.slowMs} ms, limit ${SLOW_LIMIT}) outstanding`,
  );
  // Run 0 is a warm-up run (JIT, connection pools, heap growth), measured and discarded.
  for (let run = 0; run <= s.runs; run++) {
    const warmup = run === 0;
    const gw = createGateway(gatewayConfig(fast, slow, true));
    await gw.ready();
    await warmUp(gw);
    const measureAlone = async (): Promise<Histogram> => {
      const h = newLatencyHistogram();
      const pass = await fastLoop(gw, s.count, s.maxRunMs, h);
      if (!warmup) aloneNotExecuted += pass.notExecuted;
      if (!warmup && pass.completed < s.count) cappedPasses++;
      return h;
    };
    const measureLoaded = async (): Promise<LoadedPass> => {
      const pass = await underBacklog(gw, slow, s, s.count, s.maxRunMs, () => {
        const st = slowStatus(gw);
        return st.running === SLOW_LIMIT && st.queued === s.backlog - SLOW_LIMIT;
      });
      if (!warmup && pass.completed < s.count) cappedPasses++;
      return pass;
    };
    // Alternate the order so drift within a run hits both.
    let a: Histogram;
    let b: LoadedPass;
    if (run % 2 === 1) {
      a = await measureAlone();
      b = await measureLoaded();
    } else {
      b = await measureLoaded();
      a = await measureAlone();
    }
    await gw.close();
    const aP50 = a.getValueAtPercentile(50);
    const aP99 = a.getValueAtPercentile(99);
    const bP50 = b.histogram.getValueAtPercentile(50);
    const bP99 = b.histogram.getValueAtPercentile(99);
    const line =
      `alone p50 ${us(aP50)} p99 ${us(aP99)}; with slow backlog` +
      ` (${b.slowAtStart.running} running, ${b.slowAtStart.queued} queued → ${b.slowAtEnd.queued})` +
      ` p50 ${us(bP50)} p99 ${us(bP99)}; ratio p50 ${(bP50 / aP50).toFixed(2)} p99 ${(bP99 / aP99).toFixed(2)}`;
    if (warmup) {
      log(`warm-up: ${line}`);
      continue;
    }
    alone.histogram.add(a);
    loaded.histogram.add(b.histogram);
    alone.p50.push(round(aP50 / 1000, 1));
    alone.p99.push(round(aP99 / 1000, 1));
    loaded.p50.push(round(bP50 / 1000, 1));
    loaded.p99.push(round(bP99 / 1000, 1));
    ratioP50.push(bP50 / aP50);
    ratioP99.push(bP99 / aP99);
    const { histogram: _h, ...details } = b;
    loadedDetails.push(details);
    log(`run ${run}/${s.runs}: ${line}`);
  }

  // (c) no bulkhead: once, a few samples (each waits for the whole global queue).
  let noBulkhead: Record<string, unknown> = { skipped: '--c-samples 0' };
  if (s.cSamples > 0) {
    const expectedWaitMs = Math.round(((s.backlog - GLOBAL_LIMIT_C) / GLOBAL_LIMIT_C) * s.slowMs);
    log(
      `no bulkhead (slow unlimited, executor.concurrency ${GLOBAL_LIMIT_C}): ${s.cSamples}` +
        ` sequential dispatches to "fast", each expected to wait ~${expectedWaitMs} ms`,
    );
    const gw = createGateway(gatewayConfig(fast, slow, false));
    await gw.ready();
    await warmUp(gw);
    const pass = await underBacklog(gw, slow, s, s.cSamples, s.cMaxMs, () => {
      const st = slowStatus(gw);
      return st.running === s.backlog && slow.held === GLOBAL_LIMIT_C;
    });
    await gw.close();
    const c = latencyUs(pass.histogram);
    const aloneP50 = spread(alone.p50, 1).median;
    const { histogram: _h, ...details } = pass;
    noBulkhead = {
      config: {
        slow: { concurrency: { limit: 100_000, queue: 1_000_000 } },
        executor: { concurrency: GLOBAL_LIMIT_C, queue: 1_000_000 },
      },
      samples: pass.completed,
      latencyUs: c,
      expectedWaitMs,
      ratioToAloneP50: round(c.p50 / aloneP50, 0),
      ...details,
      note:
        'Without a limit of its own, every slow call holds a provider slot at once and queues for a' +
        ' global slot; the fast call joins the same FIFO behind all of them and waits for about' +
        ' (backlog − 8) / 8 × slow-ms. With the per-provider limit (b) the slow calls queue on' +
        " slow's own limiter, which is taken before the global one, and hold no global slot.",
    };
    log(`no bulkhead: p50 ${us(c.p50 * 1000)} max ${us(c.max * 1000)} over ${pass.completed}`);
  }

  await fast.close();
  await slow.close();
  const environment = measureJitter();

  const p50Ratio = spread(ratioP50, 3);
  const p99Ratio = spread(ratioP99, 3);
  const loadedNotExecuted = loadedDetails.reduce((n, d) => n + d.notExecuted, 0);
  const checks = {
    p50Ratio: {
      value: p50Ratio.median,
      target: `<= ${TARGET.maxP50Ratio}`,
      met: p50Ratio.median <= TARGET.maxP50Ratio,
    },
    p99Ratio: {
      value: p99Ratio.median,
      target: `<= ${TARGET.maxP99Ratio}`,
      met: p99Ratio.median <= TARGET.maxP99Ratio,
    },
    allExecuted: {
      value: aloneNotExecuted + loadedNotExecuted,
      target: '0 not executed',
      met: aloneNotExecuted + loadedNotExecuted === 0,
    },
    backlogHeld: {
      value: Math.min(...loadedDetails.map((d) => d.slowAtEnd.queued)),
      target: `slow still had >= ${Math.floor((s.backlog - SLOW_LIMIT) * 0.9)} queued at the end of every pass`,
      met: loadedDetails.every((d) => d.slowAtEnd.queued >= (s.backlog - SLOW_LIMIT) * 0.9),
    },
  };

  const result = {
    scenario: 'executor-isolation',
    description:
      'in-process gateway, memory state; sequential webhook dispatches to a loopback receiver that' +
      ' answers at once ("fast"), alone and while another provider ("slow", 200 ms per call,' +
      ' concurrency limit 4) has a steady backlog of 1,000 dispatches',
    claim: 'a slow provider at its limit does not raise the latency of another provider',
    target: {
      ...TARGET,
      source: 'ours (not in ../shared/BENCHMARKS.md): the ratio of (b) to (a), median of runs',
    },
    met: Object.values(checks).every((c) => c.met),
    checks,
    ceiling: '(a) alone: the same dispatches with nothing else running, same run, same gateway',
    variants: {
      alone: {
        latencyUs: latencyUs(alone.histogram),
        p50UsByRun: alone.p50,
        p99UsByRun: alone.p99,
        notExecuted: aloneNotExecuted,
      },
      withSlowBacklog: {
        latencyUs: latencyUs(loaded.histogram),
        p50UsByRun: loaded.p50,
        p99UsByRun: loaded.p99,
        ratioToAlone: { p50: p50Ratio, p99: p99Ratio },
        passes: loadedDetails,
      },
      noBulkhead,
    },
    cappedPasses,
    settings: {
      ...s,
      slowLimit: SLOW_LIMIT,
      slowQueue: 10_000,
      warmup: '1 discarded run of (a) + (b), and 300 dispatches to fast per gateway',
      providers: 'webhook, retry.attempts 1, circuitBreaker false, timeout 30s',
      receivers: 'node:http in this process, 127.0.0.1, keep-alive',
      clock: 'performance.now() around each await gw.dispatch()',
      histogram: 'hdr-histogram-js, ns, 3 significant digits',
    },
    environment,
    machine,
    loadAverageAtStart,
    source: sourceVersion(),
    date,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

function us(ns: number): string {
  return ns >= 1e6 ? `${(ns / 1e6).toFixed(2)}ms` : `${Math.round(ns / 1000)}µs`;
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
