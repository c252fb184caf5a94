import type { Action } from '../core/action.js';

/** What the gateway tells the audit trail; the writer turns it into an AuditRecord. */
export interface AuditEvent {
  kind: 'decision' | 'attempt' | 'replay';
  /** The action as the provider got it (after modify / reroute). */
  action: Action;
  /** The provider the client named. */
  originalProvider: string;
  /** The provider that ran it (or would have): after reroute / fallback. */
  provider: string;
  /** Decision and replay: the outcome kind. Attempt: 'success' | 'transient' | 'terminal'. */
  outcome: string;
  /** Rules that matched, in evaluation order. */
  rules: readonly string[];
  /** Why: the suppression reason, the error message, the throttle rule... */
  reason?: string | undefined;
  attempt?: number | undefined;
  status?: number | undefined;
  errorCode?: string | undefined;
  destination?: string | undefined;
  /** Epoch ms. */
  decidedAt: number;
  executedAt?: number | undefined;
  durationMs: number;
}

/**
 * Where the gateway records each decision and each attempt. `record` must not slow the hot path:
 * it returns nothing when the event was buffered, or a promise the caller awaits before answering
 * (strict mode: until the record is durable; otherwise only when the buffer is full —
 * backpressure instead of dropping records).
 */
export interface AuditSink {
  record(event: AuditEvent): void | Promise<void>;
  /** Write everything buffered; called on shutdown. */
  flush(): Promise<void>;
  /** Flush, stop background work and close the store. */
  close?(): Promise<void>;
}

export const noopAuditSink: AuditSink = {
  record() {},
  flush: () => Promise.resolve(),
};
