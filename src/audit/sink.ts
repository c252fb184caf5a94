import type { Action } from '../core/action.js';
import type { Outcome } from '../core/outcome.js';

/**
 * Where the gateway records each decision. The audit capability replaces the no-op default with
 * batched stores (sqlite, postgres, memory); `record` must not block the hot path.
 */
export interface AuditSink {
  record(action: Action, outcome: Outcome): void;
  /** Write everything buffered; called on shutdown. */
  flush(): Promise<void>;
}

export const noopAuditSink: AuditSink = {
  record() {},
  flush: () => Promise.resolve(),
};
