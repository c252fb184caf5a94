import { statSync } from 'node:fs';
import { readText } from '../../core/read-text.js';
import { loadConfigFile } from '../../config/load.js';
import type { ResolvedConfig } from '../../config/schema.js';
import { SyError, isSyError } from '../../core/errors.js';
import { parseYamlSource } from '../../core/yaml-source.js';
import { ProviderRegistry } from '../../providers/registry.js';
import {
  compileRule,
  compileRuleFile,
  loadRules,
  ruleFiles,
  type CompileContext,
  type CompiledRule,
} from '../../rules/load.js';
import type { CasesReport, CaseResult } from '../../rules/cases.js';
import { EXIT_FAILED, EXIT_OK, usage } from '../output.js';

type Flags = Record<string, unknown>;

/** One problem found by `rules lint`; positions are null when the error has none. */
export interface LintError {
  readonly code: string;
  readonly message: string;
  readonly file: string | null;
  readonly line: number | null;
  readonly column: number | null;
  readonly rule: string | null;
  readonly field: string | null;
}

export interface LintReport {
  readonly ok: boolean;
  /** Rule files read. */
  readonly files: number;
  /** Rules that compiled. */
  readonly rules: number;
  readonly errors: LintError[];
}

function requireDirectory(dir: string): void {
  let isDirectory = false;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDirectory) usage(`rules directory ${dir} does not exist or is not a directory`);
}

function loadConfig(flag: unknown): ResolvedConfig | undefined {
  if (flag === undefined) return undefined;
  if (typeof flag !== 'string' || flag === '') usage('--config needs a file name');
  return loadConfigFile(flag, { env: process.env });
}

/** The provider names a server with this config would have: the built-ins plus its own. */
function providerNames(config: ResolvedConfig | undefined): ReadonlySet<string> | undefined {
  if (config === undefined) return undefined;
  return new Set([...new ProviderRegistry().names(), ...Object.keys(config.providers)]);
}

function lintError(err: SyError, file: string | null): LintError {
  let line: number | null = null;
  let column: number | null = null;
  if (file !== null && err.message.startsWith(`${file}:`)) {
    const m = /^(\d+):(\d+): /.exec(err.message.slice(file.length + 1));
    if (m !== null) {
      line = Number(m[1]);
      column = Number(m[2]);
    }
  }
  const details = err.details ?? {};
  return {
    code: err.code,
    message: err.message,
    file,
    line,
    column,
    rule: typeof details.rule === 'string' ? details.rule : null,
    field: typeof details.field === 'string' ? details.field : null,
  };
}

/** Puts `rule "name": ` after the location of a schema error, which does not name its rule. */
function naming(err: SyError, name: unknown): SyError {
  if (typeof name !== 'string' || err.details?.rule !== undefined) return err;
  const at = /^(.*?:\d+:\d+: )/.exec(err.message)?.[1] ?? '';
  return new SyError(
    err.code,
    `${at}rule "${name}": ${err.message.slice(at.length)}`,
    { ...err.details, rule: name },
    { cause: err.cause },
  );
}

/**
 * Every error of a file the loader rejected: the loader stops at the first broken rule, so each
 * rule is compiled again on its own. Returns the rules that compile (for the duplicate check).
 */
function fileErrors(
  text: string,
  file: string,
  first: SyError,
  ctx: CompileContext,
): { errors: SyError[]; rules: CompiledRule[] } {
  if (first.code !== 'SY_ERR_RULE_INVALID') return { errors: [first], rules: [] };
  const source = parseYamlSource(text, file, 'SY_ERR_RULE_PARSE');
  const value = source.doc.toJS() as { rules?: unknown } | null;
  if (value === null || typeof value !== 'object' || !Array.isArray(value.rules)) {
    return { errors: [first], rules: [] };
  }
  const raw: { err: SyError; name: unknown }[] = [];
  const rules: CompiledRule[] = [];
  value.rules.forEach((item: unknown, i) => {
    try {
      rules.push(compileRule(item, i, ctx, ['rules', i], source.locate));
    } catch (err) {
      if (!isSyError(err)) throw err;
      raw.push({ err, name: (item as { name?: unknown } | null)?.name });
    }
  });
  const errors = raw.map((r) => naming(r.err, r.name));
  // A file-level error (an unknown top-level key, say) is not one of the rules' errors.
  if (!raw.some((r) => r.err.message === first.message)) errors.unshift(first);
  return { errors, rules };
}

/**
 * Lints a rules directory with the real loader: every file compiled on its own so that all
 * broken files (and all broken rules in them) are reported, then duplicate names across files.
 * `providers` undefined skips the check of reroute targets.
 */
export function lintRules(
  directory: string,
  providers: ReadonlySet<string> | undefined,
): LintReport {
  const ctx: CompileContext = { providers };
  const errors: LintError[] = [];
  const files = ruleFiles(directory);
  const rules: CompiledRule[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readText(file, 'SY_ERR_RULE_READ', 'rule file');
    } catch (err) {
      errors.push(lintError(err as SyError, file));
      continue;
    }
    try {
      rules.push(...compileRuleFile(text, file, rules.length, ctx));
    } catch (err) {
      if (!isSyError(err)) throw err;
      const found = fileErrors(text, file, err, ctx);
      errors.push(...found.errors.map((e) => lintError(e, file)));
      rules.push(...found.rules);
    }
  }
  const seen = new Map<string, CompiledRule>();
  for (const rule of rules) {
    const first = seen.get(rule.name);
    if (first === undefined) {
      seen.set(rule.name, rule);
      continue;
    }
    const duplicate = new SyError(
      'SY_ERR_RULE_INVALID',
      `${rule.source ?? ''}: rule "${rule.name}" is defined twice (first at ${first.source ?? '?'})`,
      { rule: rule.name, field: 'name' },
    );
    const file = files.find((f) => rule.source?.startsWith(`${f}:`)) ?? null;
    errors.push(lintError(duplicate, file));
  }
  if (errors.length === 0) {
    // The gateway's own load must agree: whatever it would refuse, lint refuses too.
    try {
      loadRules({ directory }, ctx);
    } catch (err) {
      if (!isSyError(err)) throw err;
      errors.push(lintError(err, null));
    }
  }
  return { ok: errors.length === 0, files: files.length, rules: rules.length, errors };
}

/** `switchyard rules lint <dir>`: exit 0 when every rule file is valid, 1 otherwise. */
export function rulesLintCommand(dir: string, flags: Flags): number {
  requireDirectory(dir);
  const config = loadConfig(flags.config);
  const report = lintRules(dir, providerNames(config));
  if (flags.json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    return report.ok ? EXIT_OK : EXIT_FAILED;
  }
  const counts = `${report.rules} rule${report.rules === 1 ? '' : 's'} in ${report.files} file${report.files === 1 ? '' : 's'}`;
  if (report.ok) {
    const checked =
      config === undefined
        ? 'reroute targets not checked: no --config'
        : `reroute targets checked against ${String(flags.config)}`;
    process.stdout.write(`ok: ${counts} (${checked})\n`);
    return EXIT_OK;
  }
  for (const e of report.errors) process.stderr.write(`error ${e.code}: ${e.message}\n`);
  const broken = new Set(report.errors.map((e) => e.file)).size;
  const errors = `${report.errors.length} error${report.errors.length === 1 ? '' : 's'}`;
  process.stderr.write(
    `rules lint: ${errors} in ${broken} of ${report.files} files; ${report.rules} rules compiled\n`,
  );
  return EXIT_FAILED;
}

const show = (v: unknown): string => (v === undefined ? '(absent)' : JSON.stringify(v));

function describeFailure(result: CaseResult): string[] {
  const f = result.failure;
  if (f === undefined) return [];
  const step = `step ${f.step}${f.repetition === undefined ? '' : ` (repetition ${f.repetition})`}`;
  const lines = [`      ${step} at ${f.location}, clock ${f.time}:`];
  if (f.error !== undefined)
    lines.push(`        dispatch failed: ${f.error.code}: ${f.error.message}`);
  for (const m of f.mismatches) {
    lines.push(`        ${m.field}: expected ${show(m.expected)}, got ${show(m.actual)}`);
  }
  lines.push(
    `      matched rules: ${f.matchedRules.length === 0 ? '(none)' : f.matchedRules.join(', ')}`,
  );
  if (f.outcome !== undefined) lines.push(`      outcome: ${JSON.stringify(f.outcome)}`);
  if (f.delivered !== undefined) {
    const { receivedAt: _r, deliverAt: _d, ...sent } = f.delivered;
    lines.push(`      delivered: ${JSON.stringify(sent)}`);
  }
  return lines;
}

function printReport(report: CasesReport): void {
  const lines: string[] = [];
  for (const r of report.results) {
    lines.push(r.ok ? `ok    ${r.name}` : `FAIL  ${r.name}  (${r.location})`);
    lines.push(...describeFailure(r));
  }
  const total = report.results.length;
  lines.push(
    `${total} case${total === 1 ? '' : 's'}: ${report.passed} passed, ${report.failed} failed`,
  );
  process.stdout.write(lines.join('\n') + '\n');
}

/**
 * `switchyard rules test <dir> --cases <file>`: exit 0 when every case passes, 1 when one fails
 * (or a rule file is broken), 2 for bad usage or an invalid cases file.
 */
export async function rulesTestCommand(dir: string, flags: Flags): Promise<number> {
  if (typeof flags.cases !== 'string' || flags.cases === '') {
    usage('rules test needs --cases <file> (a YAML file of test cases)');
  }
  requireDirectory(dir);
  const config = loadConfig(flags.config);
  const { loadRuleCases, runRuleCases } = await import('../../rules/cases.js');
  const cases = loadRuleCases(flags.cases);
  let report: CasesReport;
  try {
    report = await runRuleCases(cases, { directory: dir, config });
  } catch (err) {
    // Broken rules fail the test (exit 1); anything else is not ours to judge here.
    if (!isSyError(err) || !err.code.startsWith('SY_ERR_RULE_')) throw err;
    if (flags.json) {
      const error = { code: err.code, message: err.message };
      const body = { ok: false, cases: 0, passed: 0, failed: 0, results: [], error };
      process.stdout.write(JSON.stringify(body, null, 2) + '\n');
    } else {
      process.stderr.write(`error ${err.code}: ${err.message}\n`);
      process.stderr.write(`(switchyard rules lint ${dir} lists every broken rule)\n`);
    }
    return EXIT_FAILED;
  }
  if (flags.json) {
    const body = { ...report, cases: report.results.length };
    process.stdout.write(JSON.stringify(body, null, 2) + '\n');
  } else {
    printReport(report);
  }
  return report.ok ? EXIT_OK : EXIT_FAILED;
}
