import type { Action } from '../core/action.js';
import type { AttemptError, OutcomeError } from '../core/outcome.js';

/** What the pipeline must do with an action's reservations once its execution is final. */
export interface SettleContext {
  /** `namespace|tenant` */
  scope: string;
  dedups: { key: string; onFailure: 'release' | 'keep' }[];
  idempotencyKey: string | undefined;
  /** Set when a rule rerouted the action (the outcome then says "rerouted"). */
  reroute: { from: string; rule: string } | undefined;
  /** Rules that matched (for the audit trail of the final outcome). */
  rules: readonly string[];
  /** The provider the client named. */
  originalProvider: string;
}

/**
 * One action's execution, as stored in the retry queue and the dead-letter queue: everything
 * needed to continue it on another node after a restart.
 */
export interface Job {
  v: 1;
  action: Action;
  /** The provider of the next attempt: the action's, or a fallback. */
  provider: string;
  /** Fallbacks not tried yet, in order. */
  fallbacks: string[];
  /** Attempts so far, all providers together. */
  attempts: number;
  /** Attempts on `provider` so far (its retry policy counts these). */
  providerAttempts: number;
  /** Every attempt's error, oldest first (the last MAX_ERRORS). */
  errors: AttemptError[];
  /** Epoch ms of the first attempt (for `actionTimeout`). */
  startedAt: number;
  settle: SettleContext;
  /** How many times it was replayed from the dead-letter queue. */
  replays: number;
}

export const MAX_ERRORS = 50;

export type DeadLetterReason = 'exhausted' | 'terminal' | 'timeout';

/** A dead-letter entry (stored as a due item of the `dlq` queue that nobody claims). */
export interface DeadLetter {
  id: string;
  reason: DeadLetterReason;
  /** Epoch ms. */
  failedAt: number;
  /** The provider of the last attempt. */
  provider: string;
  error: OutcomeError;
  job: Job;
}

/** The retry-queue id of an action: ids are unique per namespace and tenant. */
export function retryIdOf(action: Action): string {
  return `${action.namespace}|${action.tenant}|${action.id}`;
}

export const RETRY_QUEUE = 'retry';
export const DLQ_QUEUE = 'dlq';
