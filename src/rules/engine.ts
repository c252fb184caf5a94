import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import type { Action } from '../core/action.js';
import { SyError, isSyError } from '../core/errors.js';
import type { Locate } from '../core/yaml-source.js';
import { explainCondition, type Trace } from './conditions.js';
import { loadRules, type CompiledRule } from './load.js';
import { plan, type Plan } from './planner.js';

export interface RuleEngineOptions {
  readonly directory?: string | undefined;
  readonly inline?: readonly unknown[] | undefined;
  readonly locateInline?: Locate | undefined;
  /** Configured provider names (reroute targets are checked against them). */
  readonly providers: ReadonlySet<string> | undefined;
  /** Reload when a file in `directory` changes. */
  readonly watch?: boolean;
  readonly logger: Logger;
  /** Debounce for file events, ms. Default 100. */
  readonly debounceMs?: number;
}

export interface RuleStatus {
  readonly loadedAt: string;
  readonly files: readonly string[];
  readonly count: number;
  /** The error of the last reload that failed (the previous rule set stayed active). */
  readonly lastError: { code: string; message: string; at: string } | undefined;
}

export interface RuleExplanation {
  readonly rules: { name: string; priority: number; matched: boolean; trace: Trace[] }[];
  readonly plan: Plan;
}

/**
 * Holds the active rule set. Reloads are atomic: a new set is compiled completely, then swapped
 * in; a broken file keeps the previous set and is reported in `status().lastError`. Runtime
 * enable/disable toggles (PUT /v1/rules/{name}/enabled) survive reloads but not restarts.
 */
export class RuleEngine {
  private all: CompiledRule[] = [];
  private active: CompiledRule[] = [];
  private files: string[] = [];
  private loadedAt = new Date();
  private lastError: RuleStatus['lastError'];
  private readonly overrides = new Map<string, boolean>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** Loads the rules; a broken rule at start-up throws (the gateway must not start half-ruled). */
  constructor(private readonly options: RuleEngineOptions) {
    this.swap();
    if (options.watch && options.directory !== undefined) this.startWatching(options.directory);
  }

  get rules(): readonly CompiledRule[] {
    return this.active;
  }

  get allRules(): readonly CompiledRule[] {
    return this.all;
  }

  plan(action: Action): Plan {
    return plan(this.active, action);
  }

  /** The dry run: the same planning, with every evaluated predicate and the value it saw. */
  explain(action: Action): RuleExplanation {
    const traces = new Map<string, Trace[]>();
    const result = plan(this.active, action, (rule, current) => {
      const trace: Trace[] = [];
      const matched = explainCondition(rule.condition, current, rule.timeZone, trace);
      traces.set(rule.name, trace);
      return matched;
    });
    const matched = new Set(result.matched);
    return {
      rules: this.active
        .filter((r) => traces.has(r.name))
        .map((r) => ({
          name: r.name,
          priority: r.priority,
          matched: matched.has(r.name),
          trace: traces.get(r.name) ?? [],
        })),
      plan: result,
    };
  }

  /** Recompiles everything; on error keeps the current set and returns the error. */
  reload(): { ok: true; count: number } | { ok: false; error: SyError } {
    try {
      this.swap();
      this.options.logger.info({ rules: this.all.length }, 'rules reloaded');
      return { ok: true, count: this.all.length };
    } catch (err) {
      const error = isSyError(err)
        ? err
        : new SyError('SY_ERR_RULE_INVALID', (err as Error).message, undefined, { cause: err });
      this.lastError = { code: error.code, message: error.message, at: new Date().toISOString() };
      this.options.logger.error(
        { code: error.code, err: error.message },
        'rules reload failed; keeping the previous rules',
      );
      return { ok: false, error };
    }
  }

  setEnabled(name: string, enabled: boolean): CompiledRule {
    const rule = this.all.find((r) => r.name === name);
    if (rule === undefined) {
      throw new SyError('SY_ERR_RULE_NOT_FOUND', `no rule named "${name}" is loaded`, {
        rule: name,
      });
    }
    this.overrides.set(name, enabled);
    this.active = this.all.filter((r) => this.isEnabled(r));
    return rule;
  }

  isEnabled(rule: CompiledRule): boolean {
    return this.overrides.get(rule.name) ?? rule.enabled;
  }

  status(): RuleStatus {
    return {
      loadedAt: this.loadedAt.toISOString(),
      files: this.files,
      count: this.all.length,
      lastError: this.lastError,
    };
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }

  private swap(): void {
    const { rules, files } = loadRules(
      {
        directory: this.options.directory,
        inline: this.options.inline,
        locateInline: this.options.locateInline,
      },
      { providers: this.options.providers },
    );
    // Toggles of rules that no longer exist are forgotten.
    for (const name of this.overrides.keys()) {
      if (!rules.some((r) => r.name === name)) this.overrides.delete(name);
    }
    this.all = rules;
    this.active = rules.filter((r) => this.isEnabled(r));
    this.files = files;
    this.loadedAt = new Date();
    this.lastError = undefined;
  }

  private startWatching(directory: string): void {
    try {
      this.watcher = watch(directory, { persistent: false }, (_event, name) => {
        if (name !== null && !/\.ya?ml$/.test(name)) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.reload(), this.options.debounceMs ?? 100);
        this.timer.unref();
      });
      this.watcher.on('error', (err) =>
        this.options.logger.error({ err, directory }, 'rules watcher failed'),
      );
    } catch (err) {
      this.options.logger.error({ err, directory }, 'cannot watch the rules directory');
    }
  }
}
