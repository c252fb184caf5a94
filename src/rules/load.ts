import { readdirSync } from 'node:fs';
import { readText } from '../core/read-text.js';
import { join } from 'node:path';
import { Type } from 'typebox';
import { SyError } from '../core/errors.js';
import { ajv } from '../core/validate.js';
import { formatPath } from '../core/validate.js';
import { NO_LOCATION, parseYamlSource, schemaError, type Locate } from '../core/yaml-source.js';
import { compileCondition, parseCondition, type Condition, type Test } from './conditions.js';
import { compileEffect, type Effect } from './effects.js';
import { checkTimeZone } from './fields.js';
import { RulePathError } from './condition-error.js';

export const RULE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]*$';

const RuleSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, pattern: RULE_NAME_PATTERN }),
    description: Type.Optional(Type.String({ maxLength: 2048 })),
    priority: Type.Optional(Type.Integer({ minimum: -1_000_000, maximum: 1_000_000 })),
    enabled: Type.Optional(Type.Boolean()),
    final: Type.Optional(Type.Boolean()),
    timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    condition: Type.Optional(Type.Unknown()),
    effects: Type.Unknown(),
  },
  { additionalProperties: false },
);
const checkRule = ajv.compile(RuleSchema);
const checkFile = ajv.compile(
  Type.Object(
    { rules: Type.Array(Type.Unknown(), { maxItems: 10_000 }) },
    { additionalProperties: false },
  ),
);

export const DEFAULT_PRIORITY = 100;
const MAX_EFFECTS = 32;

/** A rule ready to run: its condition is one closure, its effects are compiled. */
export interface CompiledRule {
  readonly name: string;
  readonly description: string;
  readonly priority: number;
  /** Position in load order (inline rules first, then files by name): breaks priority ties. */
  readonly order: number;
  readonly enabled: boolean;
  readonly final: boolean;
  readonly timeZone: string | undefined;
  readonly condition: Condition | undefined;
  readonly test: Test;
  readonly effects: readonly Effect[];
  /** The rule as written (for GET /v1/rules). */
  readonly definition: Record<string, unknown>;
  /** "file:line:col" of the rule, or undefined for rules built in code. */
  readonly source: string | undefined;
}

export interface CompileContext {
  /** Configured provider names: `reroute` must name one. Undefined skips that check (lint). */
  readonly providers: ReadonlySet<string> | undefined;
}

/** One rule from its raw form; `path`/`locate` place errors in the file. */
export function compileRule(
  raw: unknown,
  order: number,
  ctx: CompileContext,
  path: (string | number)[] = [],
  locate: Locate = NO_LOCATION,
): CompiledRule {
  if (!checkRule(raw)) {
    const name =
      raw !== null &&
      typeof raw === 'object' &&
      typeof (raw as { name?: unknown }).name === 'string'
        ? (raw as { name: string }).name
        : undefined;
    const err = schemaError(
      'SY_ERR_RULE_INVALID',
      checkRule.errors?.[0],
      path,
      locate,
      name === undefined ? {} : { rule: name },
    );
    if (name === undefined) throw err;
    // Name the rule in the sentence too, like every other rule error.
    const at = err.message.match(/^(.*?:\d+:\d+: )/)?.[1] ?? '';
    throw new SyError(
      'SY_ERR_RULE_INVALID',
      `${at}rule "${name}": ${err.message.slice(at.length)}`,
      err.details,
    );
  }
  const r = raw as {
    name: string;
    description?: string;
    priority?: number;
    enabled?: boolean;
    final?: boolean;
    timezone?: string;
    condition?: unknown;
    effects: unknown;
  };
  const fail = (err: RulePathError): never => {
    const full = [...path, ...err.path];
    throw new SyError(
      'SY_ERR_RULE_INVALID',
      `${locate(full)}rule "${r.name}": ${formatPath(full)} ${err.message}`,
      { rule: r.name, field: formatPath(full) },
    );
  };
  try {
    if (r.timezone !== undefined) {
      const problem = checkTimeZone(r.timezone);
      if (problem !== undefined) throw new RulePathError(['timezone'], problem);
    }
    const condition =
      r.condition === undefined
        ? undefined
        : withPrefix('condition', () => parseCondition(r.condition, r.timezone));
    const list = Array.isArray(r.effects) ? r.effects : [r.effects];
    if (list.length === 0 || list.length > MAX_EFFECTS) {
      throw new RulePathError(['effects'], `must list 1 to ${MAX_EFFECTS} effects`);
    }
    const effects = list.map((e, i) =>
      compileEffect(e, Array.isArray(r.effects) ? ['effects', i] : ['effects'], {
        timeZone: r.timezone,
        providers: ctx.providers,
      }),
    );
    return {
      name: r.name,
      description: r.description ?? '',
      priority: r.priority ?? DEFAULT_PRIORITY,
      order,
      enabled: r.enabled ?? true,
      final: r.final ?? false,
      timeZone: r.timezone,
      condition,
      test: compileCondition(condition, r.timezone),
      effects,
      definition: r as Record<string, unknown>,
      source: locate === NO_LOCATION ? undefined : locate(path).replace(/: $/, ''),
    };
  } catch (err) {
    if (err instanceof RulePathError) return fail(err);
    throw err;
  }
}

function withPrefix<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RulePathError) throw new RulePathError([prefix, ...err.path], err.message);
    throw err;
  }
}

/** Every rule of one YAML rule file (`rules: [...]`). */
export function compileRuleFile(
  text: string,
  file: string,
  firstOrder: number,
  ctx: CompileContext,
): CompiledRule[] {
  const source = parseYamlSource(text, file, 'SY_ERR_RULE_PARSE');
  const value: unknown = source.doc.toJS() ?? { rules: [] };
  if (!checkFile(value)) {
    throw schemaError('SY_ERR_RULE_INVALID', checkFile.errors?.[0], [], source.locate);
  }
  return (value as { rules: unknown[] }).rules.map((raw, i) =>
    compileRule(raw, firstOrder + i, ctx, ['rules', i], source.locate),
  );
}

/** The rule files of a directory: every *.yaml / *.yml, sorted by name. */
export function ruleFiles(directory: string): string[] {
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch (err) {
    throw new SyError(
      'SY_ERR_RULE_READ',
      `cannot read rules directory ${directory}: ${(err as Error).message}`,
      { directory },
      { cause: err },
    );
  }
  return names
    .filter((n) => /\.ya?ml$/.test(n))
    .sort()
    .map((n) => join(directory, n));
}

export interface RuleSources {
  readonly directory?: string | undefined;
  readonly inline?: readonly unknown[] | undefined;
  /** Where inline rules sit in the config file (for error positions). */
  readonly locateInline?: Locate | undefined;
}

/**
 * Loads and compiles every rule (inline first, then the directory's files in name order),
 * checks that names are unique, and returns them sorted for evaluation: by priority, then
 * load order. Throws the first error (a SyError naming file, line, rule and key).
 */
export function loadRules(
  sources: RuleSources,
  ctx: CompileContext,
): { rules: CompiledRule[]; files: string[] } {
  const rules: CompiledRule[] = [];
  (sources.inline ?? []).forEach((raw, i) => {
    rules.push(
      compileRule(
        raw,
        rules.length,
        ctx,
        ['rules', 'inline', i],
        sources.locateInline ?? NO_LOCATION,
      ),
    );
  });
  const files = sources.directory === undefined ? [] : ruleFiles(sources.directory);
  for (const file of files) {
    const text = readText(file, 'SY_ERR_RULE_READ', 'rule file');
    rules.push(...compileRuleFile(text, file, rules.length, ctx));
  }
  const seen = new Map<string, CompiledRule>();
  for (const rule of rules) {
    const first = seen.get(rule.name);
    if (first !== undefined) {
      throw new SyError(
        'SY_ERR_RULE_INVALID',
        `${rule.source ?? ''}${rule.source ? ': ' : ''}rule "${rule.name}" is defined twice (first at ${first.source ?? 'inline'})`,
        { rule: rule.name, field: 'name' },
      );
    }
    seen.set(rule.name, rule);
  }
  return { rules: sortRules(rules), files };
}

export function sortRules(rules: CompiledRule[]): CompiledRule[] {
  return rules.sort((a, b) => a.priority - b.priority || a.order - b.order);
}
