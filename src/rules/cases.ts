import { readText } from '../core/read-text.js';
import { Type, type Static } from 'typebox';
import { ActionInputSchema, type Action, type ActionInput } from '../core/action.js';
import { ManualClock } from '../core/clock.js';
import { isSyError } from '../core/errors.js';
import {
  DeduplicatedOutcomeSchema,
  ExecutedOutcomeSchema,
  FailedOutcomeSchema,
  ReroutedOutcomeSchema,
  SuppressedOutcomeSchema,
  ThrottledOutcomeSchema,
  type Outcome,
  type ProviderResponse,
} from '../core/outcome.js';
import { Duration } from '../core/schema-types.js';
import { parseDuration } from '../core/units.js';
import { ajv } from '../core/validate.js';
import { parseYamlSource, schemaError } from '../core/yaml-source.js';
import { resolveConfig } from '../config/load.js';
import type { ResolvedConfig } from '../config/schema.js';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import type { Provider } from '../providers/provider.js';
import { ProviderRegistry } from '../providers/registry.js';
import { jsonEqual } from './conditions.js';
import { loadRules } from './load.js';

/*
 * Rule unit tests (like `promtool test rules`): a YAML file of cases, each a sequence of actions
 * dispatched through a real gateway — real rule loading, planning and state gates — on a fake
 * clock, with every provider replaced by a recorder so nothing is sent anywhere.
 */

const OUTCOME_VARIANTS = [
  ExecutedOutcomeSchema,
  FailedOutcomeSchema,
  ReroutedOutcomeSchema,
  SuppressedOutcomeSchema,
  DeduplicatedOutcomeSchema,
  ThrottledOutcomeSchema,
];

/** `expect` names outcome fields only, so a typo (`rulle:`) is an error, not a silent pass. */
const ExpectSchema = Type.Object(
  Object.fromEntries(
    [...new Set(OUTCOME_VARIANTS.flatMap((s) => Object.keys(s.properties)))].map((key) => [
      key,
      key === 'outcome'
        ? Type.Optional(Type.Enum(OUTCOME_VARIANTS.map((s) => s.properties.outcome.const)))
        : Type.Optional(Type.Unknown()),
    ]),
  ),
  { additionalProperties: false, minProperties: 1 },
);

const DELIVERED_KEYS = [
  'id',
  'namespace',
  'tenant',
  'provider',
  'actionType',
  'payload',
  'labels',
  'dedupKey',
  'fingerprint',
] as const;

const DeliveredSchema = Type.Object(
  Object.fromEntries(DELIVERED_KEYS.map((k) => [k, Type.Optional(Type.Unknown())])),
  { additionalProperties: false, minProperties: 1 },
);

const StepSchema = Type.Object(
  {
    after: Type.Optional(Duration('Advance the fake clock by this much before the action.')),
    repeat: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 10_000, description: 'Dispatch the action N times.' }),
    ),
    action: ActionInputSchema,
    expect: Type.Optional(ExpectSchema),
    delivered: Type.Optional(DeliveredSchema),
  },
  { additionalProperties: false },
);

const CaseSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 512 }),
    at: Type.Optional(Type.String({ format: 'date-time' })),
    actions: Type.Array(StepSchema, { minItems: 1, maxItems: 10_000 }),
  },
  { additionalProperties: false },
);

const CasesFileSchema = Type.Object(
  { cases: Type.Array(CaseSchema, { minItems: 1, maxItems: 10_000 }) },
  { additionalProperties: false },
);
const checkCasesFile = ajv.compile(CasesFileSchema);

export type RuleCaseStep = Static<typeof StepSchema>;
export type RuleCase = Static<typeof CaseSchema>;

/** A validated cases file; `locate*` give "file:line:col" for messages. */
export interface RuleCases {
  readonly file: string;
  readonly cases: readonly RuleCase[];
  /** "file:line:col" of case `i`, step `j` (or of the case itself without `j`). */
  locate(i: number, j?: number): string;
}

/**
 * Parses and validates a cases file. Errors are SyErrors naming file:line:col and the key:
 * SY_ERR_CONFIG_PARSE for bad YAML, SY_ERR_CONFIG_INVALID for a schema violation.
 */
export function parseRuleCases(text: string, file: string): RuleCases {
  const source = parseYamlSource(text, file, 'SY_ERR_CONFIG_PARSE');
  const value: unknown = source.doc.toJS() ?? {};
  if (!checkCasesFile(value)) {
    throw schemaError('SY_ERR_CONFIG_INVALID', checkCasesFile.errors?.[0], [], source.locate);
  }
  return {
    file,
    cases: (value as Static<typeof CasesFileSchema>).cases,
    locate: (i, j) =>
      source.locate(j === undefined ? ['cases', i] : ['cases', i, 'actions', j]).replace(/: $/, ''),
  };
}

/** Reads a cases file (SY_ERR_CONFIG_READ when it cannot be read). */
export function loadRuleCases(file: string): RuleCases {
  return parseRuleCases(readText(file, 'SY_ERR_CONFIG_READ', 'cases file'), file);
}

/** One `expect`/`delivered` key whose value differs. */
export interface Mismatch {
  /** `outcome`, `rule`, … or `delivered.payload`, … */
  readonly field: string;
  readonly expected: unknown;
  /** undefined when the outcome (or delivered action) has no such field. */
  readonly actual: unknown;
}

/** The first step of a case that did not go as expected (later steps are not run). */
export interface StepFailure {
  /** 1-based index in the case's `actions`. */
  readonly step: number;
  /** 1-based repetition, when the step has `repeat`. */
  readonly repetition: number | undefined;
  /** "file:line:col" of the step. */
  readonly location: string;
  /** The fake clock when the action was dispatched (RFC 3339). */
  readonly time: string;
  readonly mismatches: readonly Mismatch[];
  /** Set when dispatch threw (an unknown provider, say) instead of answering an outcome. */
  readonly error: { readonly code: string; readonly message: string } | undefined;
  readonly outcome: Outcome | undefined;
  /** What the provider received (after modify/label/reroute); undefined if nothing ran. */
  readonly delivered: Action | undefined;
  /** The rules that matched the action, in evaluation order. */
  readonly matchedRules: readonly string[];
}

export interface CaseResult {
  readonly name: string;
  readonly location: string;
  readonly ok: boolean;
  /** Actions dispatched (repetitions count). */
  readonly dispatched: number;
  readonly failure: StepFailure | undefined;
}

export interface CasesReport {
  readonly ok: boolean;
  readonly passed: number;
  readonly failed: number;
  readonly results: readonly CaseResult[];
}

export interface RunCasesOptions {
  /** The rules directory under test. */
  readonly directory: string;
  /**
   * The config the rules will run with. Its provider names become recorders (so reroute targets
   * and action providers are checked against them, as in production); its own rules and provider
   * settings are not used. Without it, every provider an action or a reroute names is a recorder.
   */
  readonly config?: ResolvedConfig | undefined;
}

/** Succeeds at once and remembers what it was asked to send. */
class RecordingProvider implements Provider {
  readonly type = 'recorder';
  constructor(
    readonly name: string,
    private readonly sent: Action[],
  ) {}

  execute(action: Action): Promise<ProviderResponse> {
    this.sent.push(structuredClone(action));
    return Promise.resolve({});
  }
}

/** Provider names the recorders stand in for. */
function providerNames(cases: RuleCases, options: RunCasesOptions, directory: string): string[] {
  const names = new Set(new ProviderRegistry().names());
  if (options.config !== undefined) {
    for (const name of Object.keys(options.config.providers)) names.add(name);
    return [...names];
  }
  for (const c of cases.cases) for (const s of c.actions) names.add(s.action.provider);
  // Compiled without a provider check only to find the reroute targets; a broken rule throws here.
  const { rules } = loadRules({ directory }, { providers: undefined });
  for (const rule of rules) {
    for (const effect of rule.effects) if (effect.kind === 'reroute') names.add(effect.provider);
  }
  return [...names];
}

function compare(
  expected: Record<string, unknown> | undefined,
  actual: Record<string, unknown> | undefined,
  prefix: string,
): Mismatch[] {
  if (expected === undefined) return [];
  const out: Mismatch[] = [];
  for (const [key, want] of Object.entries(expected)) {
    const got = actual === undefined ? undefined : actual[key];
    if (!jsonEqual(got, want)) out.push({ field: prefix + key, expected: want, actual: got });
  }
  return out;
}

/**
 * Runs every case against the rules in `options.directory`: per case a fresh gateway (fresh
 * state, rules loaded from disk, a ManualClock at `at`), then each action in order, checking
 * its outcome against `expect` (every key given must deep-equal the outcome's) and what the
 * provider received against `delivered`. A case stops at its first failing step. Throws the
 * loader's SyError when a rule file is broken.
 *
 * @example
 * const report = await runRuleCases(loadRuleCases('rules.cases.yaml'), { directory: 'rules' });
 * if (!report.ok) console.log(report.results.filter((r) => !r.ok));
 */
export async function runRuleCases(
  cases: RuleCases,
  options: RunCasesOptions,
): Promise<CasesReport> {
  const directory = options.directory;
  const names = providerNames(cases, options, directory);
  const base = options.config ?? resolveConfig({});
  // No provider from the config is built: recorders take every name.
  // Cases run on fresh in-memory state: never on (or into) the config's real store.
  const config: ResolvedConfig = {
    ...base,
    providers: {},
    rules: { directory, watch: false, inline: [] },
    state: { ...base.state, backend: 'memory' },
  };
  const results: CaseResult[] = [];
  for (let i = 0; i < cases.cases.length; i++) {
    results.push(await runCase(cases, i, config, names));
  }
  const failed = results.filter((r) => !r.ok).length;
  return { ok: failed === 0, passed: results.length - failed, failed, results };
}

async function runCase(
  cases: RuleCases,
  index: number,
  config: ResolvedConfig,
  names: readonly string[],
): Promise<CaseResult> {
  const c = cases.cases[index] as RuleCase;
  const clock = c.at === undefined ? new ManualClock() : new ManualClock(Date.parse(c.at));
  const sent: Action[] = [];
  const providers = Object.fromEntries(names.map((n) => [n, new RecordingProvider(n, sent)]));
  const gateway = createGateway(config, { clock, providers });
  let dispatched = 0;
  try {
    for (let j = 0; j < c.actions.length; j++) {
      const step = c.actions[j] as RuleCaseStep;
      if (step.after !== undefined) clock.advance(parseDuration(step.after) as number);
      const times = step.repeat ?? 1;
      for (let k = 0; k < times; k++) {
        dispatched++;
        const failure = await runStep(gateway, step, sent, clock);
        if (failure !== undefined) {
          return {
            name: c.name,
            location: cases.locate(index),
            ok: false,
            dispatched,
            failure: {
              ...failure,
              step: j + 1,
              repetition: step.repeat === undefined ? undefined : k + 1,
              location: cases.locate(index, j),
            },
          };
        }
      }
    }
    return {
      name: c.name,
      location: cases.locate(index),
      ok: true,
      dispatched,
      failure: undefined,
    };
  } finally {
    await gateway.close(1000);
  }
}

type StepDetail = Omit<StepFailure, 'step' | 'repetition' | 'location'>;

async function runStep(
  gateway: Gateway,
  step: RuleCaseStep,
  sent: Action[],
  clock: ManualClock,
): Promise<StepDetail | undefined> {
  const time = new Date(clock.now()).toISOString();
  let input: ActionInput;
  let matchedRules: readonly string[] = [];
  let outcome: Outcome;
  const before = sent.length;
  try {
    input = gateway.validate(step.action);
    // The dry run first (it consumes no state), only to say which rules matched.
    matchedRules = (await gateway.evaluate(input)).matchedRules;
    outcome = await gateway.dispatchValidated(input);
  } catch (err) {
    if (!isSyError(err)) throw err;
    return {
      time,
      mismatches: [],
      error: { code: err.code, message: err.message },
      outcome: undefined,
      delivered: undefined,
      matchedRules,
    };
  }
  const delivered = sent.length > before ? sent[sent.length - 1] : undefined;
  const mismatches = compare(step.expect, outcome as unknown as Record<string, unknown>, '');
  if (step.delivered !== undefined && delivered === undefined) {
    mismatches.push({ field: 'delivered', expected: step.delivered, actual: undefined });
  } else if (step.delivered !== undefined) {
    const actual = delivered as unknown as Record<string, unknown>;
    mismatches.push(...compare(step.delivered, actual, 'delivered.'));
  }
  if (mismatches.length === 0) return undefined;
  return { time, mismatches, error: undefined, outcome, delivered, matchedRules };
}
