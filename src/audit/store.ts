import type { AuditRecord } from './record.js';

/** Filters of GET /v1/audit (all optional; combined with AND). */
export interface AuditQuery {
  tenant?: string | undefined;
  namespace?: string | undefined;
  provider?: string | undefined;
  actionType?: string | undefined;
  outcome?: string | undefined;
  kind?: AuditRecord['kind'] | undefined;
  /** Records whose `rules` contain this rule name. */
  rule?: string | undefined;
  /** `key=value`: records whose labels have it. */
  label?: { key: string; value: string } | undefined;
  /** decidedAt >= from (epoch ms). */
  from?: number | undefined;
  /** decidedAt < to (epoch ms). */
  to?: number | undefined;
  /** Free text: records whose actionId or dedupKey contains it. */
  text?: string | undefined;
  /** 'desc' (newest first, the default) or 'asc'. */
  order?: 'asc' | 'desc' | undefined;
  /** At most 1000. */
  limit: number;
  /** The `nextCursor` of the previous page (opaque to callers). */
  cursor?: string | undefined;
}

export interface AuditPage {
  items: AuditRecord[];
  nextCursor: string | null;
}

/** One problem `verify` found, naming the record. */
export interface ChainProblem {
  tenant: string;
  /** The record's id, or the missing sequence numbers for a deletion. */
  recordId: string | undefined;
  chainSeq: number;
  problem: 'edited' | 'deleted' | 'reordered' | 'unchained';
  message: string;
}

/**
 * Where audit records live. Implementations: memory, sqlite, postgres (one folder each, the
 * shared conformance suite in conformance.ts). Writes come in batches from the AuditWriter.
 *
 * Pagination is by (decidedAt, id): stable while records are inserted concurrently (a page never
 * repeats or skips a record that existed when the first page was read).
 */
export interface AuditStore {
  readonly backend: string;
  /** Creates tables / indexes (migrations); optional. */
  init?(): Promise<void>;
  /**
   * Appends records in order, atomically. With `chain: true` (strict mode) the store assigns
   * each record its tenant's next `chainSeq`, `prevHash` (the tenant's last hash, or
   * GENESIS_HASH) and `hash` = chainHash(record, prevHash), inside the same transaction, so
   * several gateways writing one store still form one chain per tenant.
   */
  append(records: readonly AuditRecord[], options: { chain: boolean }): Promise<void>;
  query(q: AuditQuery): Promise<AuditPage>;
  /** Every record of one action (decision, attempts, replays), oldest first. */
  history(actionId: string, scope?: { namespace: string; tenant: string }): Promise<AuditRecord[]>;
  /**
   * A tenant's chained records in chainSeq order, in pages (for verify). `afterSeq` = the last
   * chainSeq of the previous page. Tenants with chained records: `chainTenants()`.
   */
  chainPage(tenant: string, afterSeq: number, limit: number): Promise<AuditRecord[]>;
  chainTenants(): Promise<string[]>;
  /** Deletes records with decidedAt < before, at most `limit`; returns how many. */
  deleteBefore(before: number, limit: number): Promise<number>;
  /**
   * Erasure: drops the payload (payload := undefined, payloadHash kept) of every record matching
   * `field = value` (field: actionId, tenant, namespace, dedupKey, or `labels.<key>`, or
   * `payload.<path>` for a top-level payload key). Returns how many records were changed.
   */
  erasePayloads(field: string, value: string): Promise<number>;
  /** Total number of records (for status and tests). */
  count(): Promise<number>;
  close(): Promise<void>;
}
