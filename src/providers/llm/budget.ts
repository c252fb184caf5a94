import type { Clock } from '../../core/clock.js';
import type { StateStore } from '../../state/store.js';
import { renderOrThrow, type TemplateView, type TextTemplate } from '../template.js';
import { ProviderThrottledError } from '../provider.js';
import { compareAndSet } from './cas.js';

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** One limit of a budget: tokens per fixed window. */
export interface BudgetLimit {
  readonly budget: 'tokensPerMinute' | 'tokensPerDay';
  readonly limit: number;
  readonly windowMs: number;
  /** Short tag in the state key: "m" or "d". */
  readonly tag: 'm' | 'd';
}

/** A configured budget: a key template (e.g. "{{tenant}}") and its limits. */
export interface BudgetRule {
  readonly key: TextTemplate;
  /** The template's config path, for render errors. */
  readonly where: string;
  readonly limits: readonly BudgetLimit[];
}

/** A window a call was admitted in and is charged to after it. */
export interface BudgetWindow {
  readonly stateKey: string;
  readonly ttlMs: number;
}

/**
 * The state key of one fixed window: `llm:budget:<provider>:<key>:<m|d>:<index>` where index is
 * the window's start in epoch minutes or epoch (UTC) days. The provider name is percent-encoded
 * (it may hold ":"), so the rendered key is everything between it and the fixed suffix.
 */
export function budgetStateKey(
  provider: string,
  key: string,
  limit: BudgetLimit,
  now: number,
): string {
  return `llm:budget:${encodeURIComponent(provider)}:${key}:${limit.tag}:${Math.floor(now / limit.windowMs)}`;
}

/**
 * Token budgets in fixed windows. `check` runs before the call and refuses it when any window
 * already holds `limit` tokens or more; `charge` runs after it and adds the tokens the API
 * reported. A call is admitted on what was used before it, so a window may end up over its limit
 * by the size of the calls admitted while it still had room.
 */
export class TokenBudgets {
  constructor(
    private readonly provider: string,
    private readonly rules: readonly BudgetRule[],
    private readonly store: StateStore,
    private readonly clock: Clock,
  ) {}

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /**
   * Reads every window at `now`. Throws ProviderThrottledError when one is used up (naming the
   * one that frees last, since the call has to wait for it anyway); else returns the windows to
   * charge after the call.
   */
  async check(view: TemplateView, now: number): Promise<BudgetWindow[]> {
    const windows: BudgetWindow[] = [];
    let refused: { limit: BudgetLimit; key: string; retryAfterMs: number } | undefined;
    for (const rule of this.rules) {
      const key = renderOrThrow(() => rule.key(view), rule.where);
      for (const limit of rule.limits) {
        const stateKey = budgetStateKey(this.provider, key, limit, now);
        const used = parseUsed((await this.store.get(stateKey, now))?.value);
        windows.push({ stateKey, ttlMs: limit.windowMs });
        if (used < limit.limit) continue;
        const end = (Math.floor(now / limit.windowMs) + 1) * limit.windowMs;
        const retryAfterMs = end - now;
        if (refused === undefined || retryAfterMs > refused.retryAfterMs) {
          refused = { limit, key, retryAfterMs };
        }
      }
    }
    if (refused !== undefined) {
      const { limit, key, retryAfterMs } = refused;
      throw new ProviderThrottledError(
        `provider "${this.provider}": token budget ${limit.budget} (${limit.limit}) for "${key}" is used up`,
        { budget: limit.budget, retryAfterMs, limit: limit.limit, windowMs: limit.windowMs },
      );
    }
    return windows;
  }

  /** Adds `tokens` to each window (compare-and-set, so concurrent calls all count). */
  async charge(windows: readonly BudgetWindow[], tokens: number): Promise<void> {
    for (const w of windows) {
      await compareAndSet(this.store, this.clock, w.stateKey, w.ttlMs, (current) =>
        String(parseUsed(current) + tokens),
      );
    }
  }
}

function parseUsed(value: string | undefined): number {
  if (value === undefined) return 0;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : 0;
}
