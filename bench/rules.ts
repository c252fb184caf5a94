/**
 * Rule scenarios of ../shared/BENCHMARKS.md, in one process and one report:
 *
 * - S8: the cost of `plan()` per action, called directly on a compiled rule list in a tight
 *   synchronous loop over a pool of 100 pre-built actions: 0, 10 and 100 field-predicate rules
 *   (none matching, 1 action in 10 matching one rule, every action matching 10 rules) and 10 CEL
 *   rules (none matching, 1 in 10). Ceiling: the same loop calling a trivial function.
 *   Targets: ≤ 2 µs per action with 100 field-predicate rules, ≤ 10 µs with 10 CEL rules.
 * - S2: sequential in-process `gateway.dispatch` (provider noop, memory state, no audit) with one
 *   `deduplicate` rule and a unique key per action (one gate per dispatch): ≥ 120,000/s; and the
 *   issue-3 check, 10 field rules (no gate, none matching): ≥ 100,000/s. Baselines in the same run:
 *   S1 (createGateway(), no rules) and the ceiling (a trivial async function).
 *
 * Every variant runs twice per run: untimed for the throughput / cost figure, then with a clock
 * read around each call for the HDR histogram. Variant order rotates from run to run.
 *
 * Usage: npx tsx bench/rules.ts [--runs 5] [--count 100000] [--pass-ms 120] [--quick]
 * Prints one JSON object on stdout; progress goes to stderr.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Histogram } from 'hdr-histogram-js';
import { createGateway, type Action, type ActionInput, type Gateway } from '../src/index.js';
import type { CompiledRule } from '../src/rules/load.js';
import { plan, EMPTY_PLAN, type Plan } from '../src/rules/planner.js';
import { GcWatcher } from './lib/gc.js';
import { measureJitter } from './lib/jitter.js';
import { describeMachine } from './lib/machine.js';
import {
  alertInput,
  celRules,
  compileRuleSet,
  dedupRule,
  fieldRules,
  normalized,
  TEAMS,
} from './lib/rule-sets.js';
import { latencyUs, newLatencyHistogram, round, spread } from './lib/stats.js';

const TARGETS = {
  field100MaxUs: 2,
  cel10MaxUs: 10,
  dedupMinPerSec: 120_000,
  rules10MinPerSec: 100_000,
} as const;

const USAGE =
  'usage: npx tsx bench/rules.ts [--runs N (5)] [--count N (100000)] [--max-run-seconds S (10)]' +
  ' [--pass-ms MS (120)] [--only NAME,NAME] [--quick (2 runs, 50000, 50 ms)]';

interface Settings {
  runs: number;
  /** S2: dispatches per pass. */
  count: number;
  /** S2: a pass stops after this long even if `count` is not reached. */
  maxRunMs: number;
  /** S8: length of one pass (the loop runs whole batches of 1024 actions until it is over). */
  passMs: number;
  /** Run only these variants (for profiling one configuration in a process of its own). */
  only: ReadonlySet<string> | undefined;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      count: { type: 'string' },
      'max-run-seconds': { type: 'string' },
      'pass-ms': { type: 'string' },
      only: { type: 'string' },
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
  const only = values.only === undefined ? undefined : new Set(values.only.split(','));
  if (only !== undefined) {
    const known = new Set<string>([...S8_NAMES, ...S2_NAMES]);
    const unknown = [...only].filter((n) => !known.has(n));
    if (unknown.length > 0) {
      throw new Error(`--only: unknown variant ${unknown.join(', ')} (known: ${[...known]})`);
    }
  }
  return {
    runs: positive('runs', values.runs, values.quick ? 2 : 5),
    count: positive('count', values.count, values.quick ? 50_000 : 100_000),
    maxRunMs: positive('max-run-seconds', values['max-run-seconds'], 10) * 1000,
    passMs: positive('pass-ms', values['pass-ms'], values.quick ? 50 : 120),
    only,
  };
}

// ---------------------------------------------------------------------------------------------
// S8: plan() in a tight loop

const POOL_SIZE = 100;

/**
 * Actions no rule matches (the common case): most have an action type no field rule names; one in
 * five has a rule's type but team "z", so that rule evaluates both predicates and fails. Teams are
 * a/b/c/z (never a CEL rule's t0..t9); half are critical, so CEL evaluates both clauses.
 */
function noMatchAction(k: number): Action {
  const team = ['a', 'b', 'c', 'z'][k % 4] as string;
  const severity = k % 2 === 0 ? 'critical' : 'warning';
  return k % 5 === 0
    ? normalized(alertInput(k, `type-${k % 100}`, 'z', severity))
    : normalized(alertInput(k, `evt-${k % 5}`, team, severity));
}

const POOLS = {
  noMatch: () => Array.from({ length: POOL_SIZE }, (_, k) => noMatchAction(k)),
  /** 1 action in 10 matches exactly one of the 100 field rules (and gets its label). */
  field1in10: () =>
    Array.from({ length: POOL_SIZE }, (_, k) =>
      k % 10 === 3 ? normalized(alertInput(k, `type-${k}`, 'a', 'warning')) : noMatchAction(k),
    ),
  /** Every action matches 10 of the 100 rules of `fieldRules(100, 10)`. */
  field10each: () =>
    Array.from({ length: POOL_SIZE }, (_, k) =>
      normalized(alertInput(k, `type-${k % 10}`, TEAMS[k % 3] as string, 'warning')),
    ),
  /** 1 action in 10 matches exactly one of the 10 CEL rules. */
  cel1in10: () =>
    Array.from({ length: POOL_SIZE }, (_, k) =>
      k % 10 === 3
        ? normalized(alertInput(k, 'evt-0', `t${Math.floor(k / 10)}`, 'critical'))
        : noMatchAction(k),
    ),
} as const;

interface S8Variant {
  name: string;
  description: string;
  rules: CompiledRule[];
  pool: Action[];
  /** Matched rules per action the pool must produce (a check that the variant measures what it says). */
  expectMatchedPerAction: number;
  target?: { maxUs: number; label: string };
}

const S8_NAMES = [
  'ceiling',
  'rules0',
  'field10',
  'field100',
  'field100_1in10',
  'field100_10each',
  'cel10',
  'cel10_1in10',
] as const;
type S8Name = (typeof S8_NAMES)[number];

function s8Variants(): Record<S8Name, S8Variant> {
  const field100 = compileRuleSet(fieldRules(100));
  const cel10 = compileRuleSet(celRules(10));
  const noMatch = POOLS.noMatch();
  const f100 = { maxUs: TARGETS.field100MaxUs, label: 'S8 100 field-predicate rules' };
  const c10 = { maxUs: TARGETS.cel10MaxUs, label: 'S8 10 CEL rules' };
  return {
    ceiling: {
      name: 'ceiling',
      description: 'the same loop calling a trivial function (reads one field, returns a constant)',
      rules: [],
      pool: noMatch,
      expectMatchedPerAction: 0,
    },
    rules0: {
      name: 'rules0',
      description: 'plan() with no rules',
      rules: [],
      pool: noMatch,
      expectMatchedPerAction: 0,
    },
    field10: {
      name: 'field10',
      description: '10 field rules, no action matches',
      rules: compileRuleSet(fieldRules(10)),
      pool: noMatch,
      expectMatchedPerAction: 0,
    },
    field100: {
      name: 'field100',
      description: '100 field rules, no action matches (the common case)',
      rules: field100,
      pool: noMatch,
      expectMatchedPerAction: 0,
      target: f100,
    },
    field100_1in10: {
      name: 'field100_1in10',
      description: '100 field rules, 1 action in 10 matches one rule (label effect: copy-on-write)',
      rules: field100,
      pool: POOLS.field1in10(),
      expectMatchedPerAction: 0.1,
      target: f100,
    },
    field100_10each: {
      name: 'field100_10each',
      description: '100 field rules testing type-<i mod 10>: every action matches 10 of them',
      rules: compileRuleSet(fieldRules(100, 10)),
      pool: POOLS.field10each(),
      expectMatchedPerAction: 10,
      target: f100,
    },
    cel10: {
      name: 'cel10',
      description: '10 CEL rules, no action matches (half are critical: both clauses evaluated)',
      rules: cel10,
      pool: noMatch,
      expectMatchedPerAction: 0,
      target: c10,
    },
    cel10_1in10: {
      name: 'cel10_1in10',
      description: '10 CEL rules, 1 action in 10 matches one rule',
      rules: cel10,
      pool: POOLS.cel1in10(),
      expectMatchedPerAction: 0.1,
      target: c10,
    },
  };
}

interface PlanPass {
  calls: number;
  matched: number;
  elapsedMs: number;
  start: number;
}

const BATCH = 1024;
const NOT_EMPTY: Plan = { ...EMPTY_PLAN, matched: ['x'] };

/** The ceiling's callee: the same arguments as plan(), one field read, a constant result. */
function trivialPlan(_rules: readonly CompiledRule[], a: Action): Plan {
  return a.receivedAt < 0 ? NOT_EMPTY : EMPTY_PLAN;
}

// Four loop functions on purpose (untimed/timed × plan/trivial): each call site stays monomorphic.

function planLoop(rules: readonly CompiledRule[], pool: readonly Action[], ms: number): PlanPass {
  const n = pool.length;
  let j = 0;
  let calls = 0;
  let matched = 0;
  const start = performance.now();
  const deadline = start + ms;
  do {
    for (let b = 0; b < BATCH; b++) {
      matched += plan(rules, pool[j] as Action).matched.length;
      if (++j === n) j = 0;
    }
    calls += BATCH;
  } while (performance.now() < deadline);
  return { calls, matched, elapsedMs: performance.now() - start, start };
}

function planLoopTimed(
  rules: readonly CompiledRule[],
  pool: readonly Action[],
  ms: number,
  h: Histogram,
): PlanPass {
  const n = pool.length;
  let j = 0;
  let calls = 0;
  let matched = 0;
  const start = performance.now();
  const deadline = start + ms;
  do {
    for (let b = 0; b < BATCH; b++) {
      const t0 = performance.now();
      const p = plan(rules, pool[j] as Action);
      h.recordValue(Math.round((performance.now() - t0) * 1e6));
      matched += p.matched.length;
      if (++j === n) j = 0;
    }
    calls += BATCH;
  } while (performance.now() < deadline);
  return { calls, matched, elapsedMs: performance.now() - start, start };
}

function trivialLoop(
  rules: readonly CompiledRule[],
  pool: readonly Action[],
  ms: number,
): PlanPass {
  const n = pool.length;
  let j = 0;
  let calls = 0;
  let matched = 0;
  const start = performance.now();
  const deadline = start + ms;
  do {
    for (let b = 0; b < BATCH; b++) {
      matched += trivialPlan(rules, pool[j] as Action).matched.length;
      if (++j === n) j = 0;
    }
    calls += BATCH;
  } while (performance.now() < deadline);
  return { calls, matched, elapsedMs: performance.now() - start, start };
}

function trivialLoopTimed(
  rules: readonly CompiledRule[],
  pool: readonly Action[],
  ms: number,
  h: Histogram,
): PlanPass {
  const n = pool.length;
  let j = 0;
  let calls = 0;
  let matched = 0;
  const start = performance.now();
  const deadline = start + ms;
  do {
    for (let b = 0; b < BATCH; b++) {
      const t0 = performance.now();
      const p = trivialPlan(rules, pool[j] as Action);
      h.recordValue(Math.round((performance.now() - t0) * 1e6));
      matched += p.matched.length;
      if (++j === n) j = 0;
    }
    calls += BATCH;
  } while (performance.now() < deadline);
  return { calls, matched, elapsedMs: performance.now() - start, start };
}

class S8Tally {
  readonly nsPerAction: number[] = [];
  readonly histogram = newLatencyHistogram();
  readonly p99UsByRun: number[] = [];
  readonly windows: [number, number][] = [];
  calls = 0;
  matched = 0;

  add(untimed: PlanPass, timed: PlanPass, h: Histogram): void {
    this.nsPerAction.push((untimed.elapsedMs * 1e6) / untimed.calls);
    this.histogram.add(h);
    this.p99UsByRun.push(round(h.getValueAtPercentile(99) / 1000, 3));
    for (const p of [untimed, timed]) {
      this.windows.push([p.start, p.start + p.elapsedMs]);
      this.calls += p.calls;
      this.matched += p.matched;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// S2: sequential gateway.dispatch

const S2_NAMES = ['s2ceiling', 's1', 'dedup', 'rules10'] as const;
type S2Name = (typeof S2_NAMES)[number];

const S2_CONFIGS: Record<
  Exclude<S2Name, 's2ceiling'>,
  { description: string; rules: unknown[] }
> = {
  s1: { description: 'S1 baseline: createGateway(), no rules', rules: [] },
  dedup: {
    description:
      'S2: one deduplicate rule, key "{{payload.i}}" (unique per action), ttl 1h: one gate per dispatch',
    rules: [dedupRule()],
  },
  rules10: {
    description:
      'issue 3: 10 field rules (label effects, no gate); the action matches none of them',
    rules: fieldRules(10),
  },
};

/** A unique `payload.i` over the whole process, so no dedup key ever repeats. */
let sequence = 0;

// The S1 action, fresh per dispatch and built the same way in every loop.
function s2Action(): ActionInput {
  return {
    namespace: 'bench',
    tenant: 't1',
    provider: 'noop',
    actionType: 'ping',
    payload: { i: sequence++ },
  };
}

interface DispatchPass {
  completed: number;
  elapsedMs: number;
  notExecuted: number;
  start: number;
}

const CONSTANT = Object.freeze({ outcome: 'executed' as const });
async function trivialDispatch(_input: ActionInput): Promise<typeof CONSTANT> {
  return CONSTANT;
}

// One function for every gateway (gw.dispatch is the same method for all of them: monomorphic),
// one for the ceiling.
async function dispatchLoop(
  gw: Gateway,
  count: number,
  maxMs: number,
  h?: Histogram,
): Promise<DispatchPass> {
  let notExecuted = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  while (i < count) {
    const input = s2Action();
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

async function ceilingDispatchLoop(
  count: number,
  maxMs: number,
  h?: Histogram,
): Promise<DispatchPass> {
  let notExecuted = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  while (i < count) {
    const input = s2Action();
    if (h === undefined) {
      if ((await trivialDispatch(input)).outcome !== 'executed') notExecuted++;
    } else {
      const t0 = performance.now();
      const outcome = await trivialDispatch(input);
      h.recordValue(Math.round((performance.now() - t0) * 1e6));
      if (outcome.outcome !== 'executed') notExecuted++;
    }
    if ((++i & 1023) === 0 && performance.now() > deadline) break;
  }
  return { completed: i, elapsedMs: performance.now() - start, notExecuted, start };
}

class S2Tally {
  readonly perSec: number[] = [];
  readonly p99UsByRun: number[] = [];
  readonly histogram = newLatencyHistogram();
  readonly windows: [number, number][] = [];
  readonly completedByRun: number[] = [];
  notExecuted = 0;
  cappedPasses = 0;
  calls = 0;

  add(throughput: DispatchPass, latency: DispatchPass, h: Histogram, count: number): void {
    this.perSec.push((throughput.completed / throughput.elapsedMs) * 1000);
    this.completedByRun.push(throughput.completed + latency.completed);
    this.calls += throughput.completed + latency.completed;
    this.p99UsByRun.push(round(h.getValueAtPercentile(99) / 1000, 2));
    this.histogram.add(h);
    for (const p of [throughput, latency]) {
      this.windows.push([p.start, p.start + p.elapsedMs]);
      this.notExecuted += p.notExecuted;
      if (p.completed < count) this.cappedPasses++;
    }
  }
}

// ---------------------------------------------------------------------------------------------

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
  const wallStart = performance.now();
  const selected = <T extends string>(names: readonly T[]): T[] =>
    names.filter((n) => settings.only === undefined || settings.only.has(n));
  const s8Names = selected(S8_NAMES);
  const s2Names = selected(S2_NAMES);

  const variants = s8Variants();
  // Sanity: the rule sets and pools produce the match rates they claim.
  for (const name of s8Names) {
    const v = variants[name];
    if (name === 'ceiling') continue;
    let matched = 0;
    for (const a of v.pool) matched += plan(v.rules, a).matched.length;
    const perAction = matched / v.pool.length;
    if (perAction !== v.expectMatchedPerAction) {
      throw new Error(
        `${name}: ${perAction} matched rules per action, expected ${v.expectMatchedPerAction}`,
      );
    }
  }
  {
    const gw = createGateway({ rules: { inline: [dedupRule()] } });
    const first = await gw.dispatch({ ...s2Action(), payload: { i: -1 } });
    const again = await gw.dispatch({ ...s2Action(), payload: { i: -1 } });
    await gw.close();
    if (first.outcome !== 'executed' || again.outcome !== 'deduplicated') {
      throw new Error(`dedup rule does not gate: ${JSON.stringify([first, again])}`);
    }
  }

  const s8: Record<string, S8Tally> = Object.fromEntries(s8Names.map((n) => [n, new S8Tally()]));
  const s2: Record<string, S2Tally> = Object.fromEntries(s2Names.map((n) => [n, new S2Tally()]));
  const gc = new GcWatcher();
  const { count, maxRunMs, passMs } = settings;

  log(
    `S8: ${s8Names.length} variants × 2 passes of ${passMs} ms; S2: ${s2Names.length} variants × 2 passes of ` +
      `${count} dispatches; ${settings.runs} runs (+1 warm-up run)`,
  );
  for (let run = 0; run <= settings.runs; run++) {
    const warmup = run === 0;
    const tag = warmup ? 'warm-up' : `run ${run}/${settings.runs}`;

    // S8. Rotate the order so that drift over a run hits every variant.
    const s8Line: string[] = [];
    for (let k = 0; k < s8Names.length; k++) {
      const name = s8Names[(k + run) % s8Names.length] as S8Name;
      const v = variants[name];
      const h = newLatencyHistogram();
      const untimed =
        name === 'ceiling'
          ? trivialLoop(v.rules, v.pool, passMs)
          : planLoop(v.rules, v.pool, passMs);
      const timed =
        name === 'ceiling'
          ? trivialLoopTimed(v.rules, v.pool, passMs, h)
          : planLoopTimed(v.rules, v.pool, passMs, h);
      if (!warmup) (s8[name] as S8Tally).add(untimed, timed, h);
      s8Line.push(`${name} ${round((untimed.elapsedMs * 1e6) / untimed.calls)}ns`);
    }
    if (s8Line.length > 0) log(`${tag} S8: ${s8Line.join(', ')}`);

    // S2: fresh gateways per run (the dedup store holds one key per dispatch of the run).
    const gateways = new Map<S2Name, Gateway>();
    for (const name of s2Names) {
      if (name !== 's2ceiling') {
        gateways.set(name, createGateway({ rules: { inline: S2_CONFIGS[name].rules } }));
      }
    }
    const s2Line: string[] = [];
    for (let k = 0; k < s2Names.length; k++) {
      const name = s2Names[(k + run) % s2Names.length] as S2Name;
      const gw = gateways.get(name);
      const loop = (h?: Histogram): Promise<DispatchPass> =>
        gw === undefined
          ? ceilingDispatchLoop(count, maxRunMs, h)
          : dispatchLoop(gw, count, maxRunMs, h);
      const throughput = await loop();
      const h = newLatencyHistogram();
      const latency = await loop(h);
      if (!warmup) (s2[name] as S2Tally).add(throughput, latency, h, count);
      s2Line.push(
        `${name} ${fmt((throughput.completed / throughput.elapsedMs) * 1000)}/s` +
          ` p99 ${round(h.getValueAtPercentile(99) / 1000, 2)}µs`,
      );
    }
    for (const gw of gateways.values()) await gw.close();
    if (s2Line.length > 0) log(`${tag} S2: ${s2Line.join(', ')}`);
  }
  await gc.stop();
  const environment = measureJitter();
  log(
    `environment: probe p99.9 ${environment.latencyUs.p99_9}µs, ${environment.stallsPerSec} stalls/s`,
  );

  // ---- S8 report
  const s8Ceiling = s8.ceiling?.nsPerAction;
  const s8Report: Record<string, unknown> = {};
  for (const name of s8Names) {
    const t = s8[name] as S8Tally;
    const v = variants[name];
    const out: Record<string, unknown> = {
      description: v.description,
      rules: v.rules.length,
      nsPerAction: spread(t.nsPerAction),
      nsPerActionByRun: t.nsPerAction.map((x) => Math.round(x)),
      perSec: spread(t.nsPerAction.map((ns) => 1e9 / ns)),
    };
    if (s8Ceiling !== undefined && name !== 'ceiling') {
      out.costOverCeilingNs = spread(t.nsPerAction.map((ns, r) => ns - (s8Ceiling[r] as number)));
    }
    if (v.rules.length > 0) {
      out.nsPerRule = spread(
        t.nsPerAction.map((ns) => ns / v.rules.length),
        1,
      );
    }
    out.matchedRulesPerAction = round(t.matched / t.calls, 3);
    out.latencyUs = latencyUs(t.histogram);
    out.p99UsByRun = t.p99UsByRun;
    out.gc = gcPerCall(gc.within(t.windows), t.calls);
    s8Report[name] = out;
  }

  // ---- S2 report
  const s2Ceiling = s2.s2ceiling?.perSec;
  const s2Baseline = s2.s1?.perSec;
  const s2Report: Record<string, unknown> = {};
  for (const name of s2Names) {
    const t = s2[name] as S2Tally;
    const out: Record<string, unknown> = {
      description:
        name === 's2ceiling'
          ? 'the same loop awaiting a trivial async function'
          : S2_CONFIGS[name].description,
      perSec: spread(t.perSec),
      perSecByRun: t.perSec.map((x) => Math.round(x)),
    };
    if (s2Baseline !== undefined && name !== 's1' && name !== 's2ceiling') {
      out.ratioToS1 = spread(
        t.perSec.map((x, r) => x / (s2Baseline[r] as number)),
        4,
      );
      out.costOverS1Us = spread(
        t.perSec.map((x, r) => 1e6 / x - 1e6 / (s2Baseline[r] as number)),
        3,
      );
    }
    if (s2Ceiling !== undefined && name !== 's2ceiling') {
      out.ratioToCeiling = spread(
        t.perSec.map((x, r) => x / (s2Ceiling[r] as number)),
        4,
      );
    }
    out.latencyUs = latencyUs(t.histogram);
    out.p99UsByRun = t.p99UsByRun;
    out.gc = gcPerCall(gc.within(t.windows), t.calls);
    if (name === 'dedup') {
      // A unique key per dispatch, ttl 1h, fresh gateway per run: the store grows to this many.
      out.dedupKeysHeldAtEndOfRun = t.completedByRun;
    }
    out.notExecuted = t.notExecuted;
    out.cappedPasses = t.cappedPasses;
    s2Report[name] = out;
  }

  // ---- checks
  const checks: Record<string, { value: number; unit: string; target: string; met: boolean }> = {};
  for (const name of s8Names) {
    const target = variants[name].target;
    if (target === undefined) continue;
    const us = round(spread((s8[name] as S8Tally).nsPerAction).median / 1000, 3);
    checks[`S8.${name}`] = {
      value: us,
      unit: 'µs per action (median of runs)',
      target: `<= ${target.maxUs}`,
      met: us <= target.maxUs,
    };
  }
  const throughputCheck = (name: S2Name, label: string, min: number): void => {
    const t = s2[name];
    if (t === undefined) return;
    const perSec = spread(t.perSec).median;
    checks[label] = {
      value: perSec,
      unit: 'dispatches/s (median of runs)',
      target: `>= ${min}`,
      met: perSec >= min,
    };
    checks[`${label}.allExecuted`] = {
      value: t.notExecuted,
      unit: 'dispatches not executed',
      target: '0',
      met: t.notExecuted === 0,
    };
  };
  throughputCheck('dedup', 'S2.dedup', TARGETS.dedupMinPerSec);
  throughputCheck('rules10', 'issue3.rules10', TARGETS.rules10MinPerSec);

  const result = {
    scenario: 'S8+S2',
    description:
      'S8: plan() per action on compiled rule lists; S2: sequential in-process dispatch with one deduplicate rule (+ issue 3: 10 field rules), memory state, noop provider',
    target: TARGETS,
    met: Object.values(checks).every((c) => c.met),
    judgedOn:
      'S8: median over runs of the untimed pass (elapsed / calls), plan() itself, not minus the ceiling; S2: median dispatch throughput over runs',
    checks,
    S8: s8Report,
    S2: s2Report,
    settings: {
      runs: settings.runs,
      warmupRuns: 1,
      s8: {
        passMs,
        poolSize: POOL_SIZE,
        batch: BATCH,
        ruleExamples: {
          field: fieldRules(1)[0],
          cel: celRules(1)[0],
        },
        actionExample: variants.field100.pool[1],
      },
      s2: {
        count,
        maxRunMs,
        action: { ...s2Action(), payload: { i: '<unique per dispatch>' } },
        dedupRule: dedupRule(),
        fieldRuleExample: fieldRules(1)[0],
        gateways: 'fresh per run; createGateway({ rules: { inline } }), memory state, no audit',
      },
      only: settings.only === undefined ? undefined : [...settings.only],
      clock: 'performance.now() around each call, latency pass only',
      histogram: 'hdr-histogram-js, ns, 3 significant digits',
      wallSeconds: round((performance.now() - wallStart) / 1000, 1),
    },
    environment,
    source: sourceVersion(),
    machine,
    loadAverage1mAtEnd: round(os.loadavg()[0] ?? 0, 2),
    date,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/** The commit measured, and whether src/ had uncommitted changes (the engine is under work). */
function sourceVersion(): { commit: string; srcDirty: boolean } | undefined {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return {
      commit: git('rev-parse', '--short', 'HEAD'),
      srcDirty: git('status', '--porcelain', 'src') !== '',
    };
  } catch {
    return undefined;
  }
}

/** GC pauses that started in a variant's passes, and what they cost per call on average. */
function gcPerCall(
  totals: { count: number; pauseMs: number },
  calls: number,
): { count: number; pauseMs: number; nsPerCall: number } {
  return { ...totals, nsPerCall: calls > 0 ? round((totals.pauseMs * 1e6) / calls) : 0 };
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
