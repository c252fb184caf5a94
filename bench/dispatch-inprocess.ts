/**
 * Scenario S1 (../shared/BENCHMARKS.md): sequential in-process dispatches, no rules, the built-in
 * `noop` provider, memory state, no audit. Target: ≥ 150,000 actions/s and p99 ≤ 50 µs.
 *
 * Each run measures three loops in the same process, in an order rotated per run:
 * - `ceiling`: the same loop awaiting a trivial async function (what an await costs),
 * - `dispatchValidated`: the pipeline without the schema check,
 * - `dispatch`: the public entry point (ajv check + pipeline); the target is judged on this one.
 * Every loop runs twice per run: untimed for throughput, then with a clock read around each call
 * for the latency histogram (so the clock never inflates the throughput figure).
 *
 * Usage: npx tsx bench/dispatch-inprocess.ts [--runs 5] [--count 200000] [--quick]
 * Prints one JSON object on stdout; progress goes to stderr.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Histogram } from 'hdr-histogram-js';
import { createGateway, type ActionInput, type Gateway } from '../src/index.js';
import { GcWatcher } from './lib/gc.js';
import { measureJitter } from './lib/jitter.js';
import { describeMachine } from './lib/machine.js';
import { latencyUs, newLatencyHistogram, round, spread } from './lib/stats.js';

const TARGET = { minPerSec: 150_000, maxP99Us: 50 } as const;

const USAGE =
  'usage: npx tsx bench/dispatch-inprocess.ts [--runs N (5)] [--count N (200000)]' +
  ' [--max-run-seconds S (10)] [--quick (2 runs of 50000)]';

interface Settings {
  runs: number;
  count: number;
  maxRunMs: number;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      count: { type: 'string' },
      'max-run-seconds': { type: 'string' },
      quick: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const positive = (name: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw.replace(/_/g, ''));
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  return {
    runs: positive('runs', values.runs, values.quick ? 2 : 5),
    count: positive('count', values.count, values.quick ? 50_000 : 200_000),
    maxRunMs: positive('max-run-seconds', values['max-run-seconds'], 10) * 1000,
  };
}

/** What one untimed or timed pass of a loop did. */
interface Pass {
  completed: number;
  elapsedMs: number;
  notExecuted: number;
  start: number;
}

// The action of the scenario. A fresh object per dispatch, built the same way in every loop.
function action(i: number): ActionInput {
  return { namespace: 'bench', tenant: 't1', provider: 'noop', actionType: 'ping', payload: { i } };
}

const CONSTANT = Object.freeze({ outcome: 'executed' as const });
async function trivial(_input: ActionInput): Promise<typeof CONSTANT> {
  return CONSTANT;
}

// One loop function per variant, on purpose: a shared loop taking the callee as a parameter would
// make its call site polymorphic and slow every variant down in a way the real caller never sees.
// With a histogram the call is timed; the branch costs the same in every loop.

async function ceilingLoop(count: number, maxMs: number, h?: Histogram): Promise<Pass> {
  let notExecuted = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  while (i < count) {
    const input = action(i);
    if (h === undefined) {
      if ((await trivial(input)).outcome !== 'executed') notExecuted++;
    } else {
      const t0 = performance.now();
      const outcome = await trivial(input);
      h.recordValue(Math.round((performance.now() - t0) * 1e6));
      if (outcome.outcome !== 'executed') notExecuted++;
    }
    if ((++i & 1023) === 0 && performance.now() > deadline) break;
  }
  return { completed: i, elapsedMs: performance.now() - start, notExecuted, start };
}

async function validatedLoop(
  gw: Gateway,
  count: number,
  maxMs: number,
  h?: Histogram,
): Promise<Pass> {
  let notExecuted = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  while (i < count) {
    const input = action(i);
    if (h === undefined) {
      if ((await gw.dispatchValidated(input)).outcome !== 'executed') notExecuted++;
    } else {
      const t0 = performance.now();
      const outcome = await gw.dispatchValidated(input);
      h.recordValue(Math.round((performance.now() - t0) * 1e6));
      if (outcome.outcome !== 'executed') notExecuted++;
    }
    if ((++i & 1023) === 0 && performance.now() > deadline) break;
  }
  return { completed: i, elapsedMs: performance.now() - start, notExecuted, start };
}

async function dispatchLoop(
  gw: Gateway,
  count: number,
  maxMs: number,
  h?: Histogram,
): Promise<Pass> {
  let notExecuted = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  while (i < count) {
    const input = action(i);
    if (h === undefined) {
      if ((await gw.dispatch(input)).outcome !== 'executed') notExecuted++;
    } else {
      const t0 = performance.now();
      const outcome = await gw.dispatch(input);
      h.recordValue(Math.round((performance.now() - t0) * 1e6));
      if (outcome.outcome !== 'executed') notExecuted++;
    }
    if ((++i & 1023) === 0 && performance.now() > deadline) break;
  }
  return { completed: i, elapsedMs: performance.now() - start, notExecuted, start };
}

type VariantName = 'ceiling' | 'dispatchValidated' | 'dispatch';

/** Everything measured for one variant across the measured runs. */
class Tally {
  readonly perSec: number[] = [];
  readonly p99UsByRun: number[] = [];
  readonly histogram = newLatencyHistogram();
  readonly windows: [number, number][] = [];
  notExecuted = 0;
  cappedPasses = 0;

  add(throughput: Pass, latency: Pass, runHistogram: Histogram, count: number): void {
    this.perSec.push((throughput.completed / throughput.elapsedMs) * 1000);
    this.p99UsByRun.push(round(runHistogram.getValueAtPercentile(99) / 1000, 2));
    this.histogram.add(runHistogram);
    for (const p of [throughput, latency]) {
      this.windows.push([p.start, p.start + p.elapsedMs]);
      this.notExecuted += p.notExecuted;
      if (p.completed < count) this.cappedPasses++;
    }
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
  const date = new Date().toISOString();
  const machine = describeMachine();
  const gw = createGateway();

  const sanity = await gw.dispatch(action(-1));
  if (sanity.outcome !== 'executed' || sanity.provider !== 'noop') {
    throw new Error(`noop dispatch did not execute: ${JSON.stringify(sanity)}`);
  }

  const { count, maxRunMs } = settings;
  const loops: Record<VariantName, (h?: Histogram) => Promise<Pass>> = {
    ceiling: (h) => ceilingLoop(count, maxRunMs, h),
    dispatchValidated: (h) => validatedLoop(gw, count, maxRunMs, h),
    dispatch: (h) => dispatchLoop(gw, count, maxRunMs, h),
  };
  const names: VariantName[] = ['ceiling', 'dispatchValidated', 'dispatch'];
  const tallies: Record<VariantName, Tally> = {
    ceiling: new Tally(),
    dispatchValidated: new Tally(),
    dispatch: new Tally(),
  };
  const gc = new GcWatcher();

  log(`S1: ${settings.runs} runs of ${count} dispatches per loop (+1 warm-up run)`);
  for (let run = 0; run <= settings.runs; run++) {
    const warmup = run === 0;
    // Rotate the order so that drift over a run (GC debt, a noisy neighbour) hits every variant.
    const order = names.map((_, k) => names[(k + run) % names.length] as VariantName);
    const line: string[] = [];
    for (const name of order) {
      const throughput = await loops[name]();
      const runHistogram = newLatencyHistogram();
      const latency = await loops[name](runHistogram);
      if (!warmup) tallies[name].add(throughput, latency, runHistogram, count);
      line.push(
        `${name} ${fmt((throughput.completed / throughput.elapsedMs) * 1000)}/s` +
          ` p99 ${round(runHistogram.getValueAtPercentile(99) / 1000, 2)}µs`,
      );
    }
    log(`${warmup ? 'warm-up' : `run ${run}/${settings.runs}`}: ${line.join(', ')}`);
  }
  await gc.stop();
  await gw.close();
  // Last, so it sees the same machine state as the runs: the floor for the tail percentiles.
  const environment = measureJitter();
  log(
    `environment: probe p99.9 ${environment.latencyUs.p99_9}µs, ${environment.stallsPerSec} stalls/s`,
  );

  const ceiling = tallies.ceiling.perSec;
  const report = (name: VariantName): Record<string, unknown> => {
    const t = tallies[name];
    const out: Record<string, unknown> = {
      perSec: spread(t.perSec),
      perSecByRun: t.perSec.map((v) => Math.round(v)),
    };
    if (name !== 'ceiling') {
      // Per run, against the ceiling measured in that same run.
      out.ratioToCeiling = spread(
        t.perSec.map((v, r) => v / (ceiling[r] as number)),
        4,
      );
      out.costOverCeilingUs = spread(
        t.perSec.map((v, r) => 1e6 / v - 1e6 / (ceiling[r] as number)),
        3,
      );
    }
    out.latencyUs = latencyUs(t.histogram);
    out.p99UsByRun = t.p99UsByRun;
    out.gc = t.windows.length > 0 ? gc.within(t.windows) : { count: 0, pauseMs: 0 };
    out.notExecuted = t.notExecuted;
    out.cappedPasses = t.cappedPasses;
    return out;
  };

  const judged = tallies.dispatch;
  const perSec = spread(judged.perSec).median;
  const p99 = latencyUs(judged.histogram).p99;
  const checks = {
    throughput: {
      value: perSec,
      target: `>= ${TARGET.minPerSec}`,
      met: perSec >= TARGET.minPerSec,
    },
    p99Us: { value: p99, target: `<= ${TARGET.maxP99Us}`, met: p99 <= TARGET.maxP99Us },
    allExecuted: {
      value: judged.notExecuted,
      target: '0 not executed',
      met: judged.notExecuted === 0,
    },
  };

  const result = {
    scenario: 'S1',
    description:
      'in-process, sequential, no rules, no-op provider, memory state, no audit (createGateway(), provider "noop")',
    target: { minPerSec: TARGET.minPerSec, maxP99Us: TARGET.maxP99Us },
    met: Object.values(checks).every((c) => c.met),
    judgedOn:
      'dispatch (public entry point, ajv validation included); throughput median of runs, p99 over all runs',
    checks,
    variants: {
      dispatch: report('dispatch'),
      dispatchValidated: report('dispatchValidated'),
      ceiling: report('ceiling'),
    },
    validationCostUs: spread(
      judged.perSec.map((v, r) => 1e6 / v - 1e6 / (tallies.dispatchValidated.perSec[r] as number)),
      3,
    ),
    settings: {
      ...settings,
      warmupRuns: 1,
      action: action(0),
      clock: 'performance.now() around each await, latency pass only',
      histogram: 'hdr-histogram-js, ns, 3 significant digits',
    },
    environment,
    machine,
    date,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function fmt(perSec: number): string {
  return perSec >= 1e6 ? `${(perSec / 1e6).toFixed(2)}M` : `${Math.round(perSec / 1000)}k`;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
