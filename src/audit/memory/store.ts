import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { SyError } from '../../core/errors.js';
import { chainHash, GENESIS_HASH, type AuditRecord } from '../record.js';
import type { AuditPage, AuditQuery, AuditStore } from '../store.js';

/** Largest page (AuditQuery.limit is documented as at most 1000). */
const MAX_LIMIT = 1000;

/**
 * The in-process audit store: records in one array sorted by (decidedAt, id) — the cursor order —
 * and the chain heads in a map. Records live as long as the process; for tests, development and
 * gateways that only need a recent trail (use retention: deleteBefore).
 *
 * It behaves like the durable stores, checked by the same conformance suite: payloads are kept
 * as their JSON (what a database would return), records are copied in and out (a caller never
 * holds the stored object), a batch is applied all or nothing, and chain heads outlive the
 * records retention deletes.
 */
export class MemoryAuditStore implements AuditStore {
  readonly backend = 'memory';
  /** Every record, sorted by (decidedAt, id). */
  private records: AuditRecord[] = [];
  private readonly ids = new Set<string>();
  private readonly heads = new Map<string, { seq: number; hash: string }>();

  append(records: readonly AuditRecord[], options: { chain: boolean }): Promise<void> {
    // Everything that can fail happens before the first change: a batch is all or nothing.
    const batchIds = new Set<string>();
    for (const r of records) {
      if (this.ids.has(r.id) || batchIds.has(r.id)) {
        return Promise.reject(
          new SyError('SY_ERR_INTERNAL', `audit record ${r.id} is already stored`, {
            backend: 'memory',
            operation: 'append',
            id: r.id,
          }),
        );
      }
      batchIds.add(r.id);
    }
    const heads = new Map<string, { seq: number; hash: string }>();
    const stored: AuditRecord[] = [];
    for (const r of records) {
      if (!options.chain) {
        stored.push(copyIn(r, undefined, undefined, undefined));
        continue;
      }
      let head = heads.get(r.tenant);
      if (head === undefined) {
        head = { ...(this.heads.get(r.tenant) ?? { seq: 0, hash: GENESIS_HASH }) };
        heads.set(r.tenant, head);
      }
      const seq = head.seq + 1;
      const prevHash = head.hash;
      const record = copyIn(r, seq, prevHash, undefined);
      record.hash = chainHash(record, prevHash);
      stored.push(record);
      head.seq = seq;
      head.hash = record.hash;
    }
    for (const record of stored) {
      this.insert(record);
      this.ids.add(record.id);
    }
    for (const [tenant, head] of heads) this.heads.set(tenant, head);
    return Promise.resolve();
  }

  query(q: AuditQuery): Promise<AuditPage> {
    let after: Cursor | undefined;
    try {
      const c = decodeCursor(q.cursor);
      after = c === undefined ? undefined : { decidedAt: c.at, id: c.id };
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const desc = q.order !== 'asc';
    const limit = Math.max(1, Math.min(MAX_LIMIT, Math.floor(q.limit) || 1));
    const all = this.records;
    const items: AuditRecord[] = [];
    let more = false;
    const take = (r: AuditRecord): boolean => {
      if (!matches(r, q)) return true;
      if (items.length === limit) {
        more = true;
        return false;
      }
      items.push(r);
      return true;
    };
    if (desc) {
      // Strictly before the cursor: from the last record whose key is below it.
      const start = after === undefined ? all.length : lowerBound(all, after.decidedAt, after.id);
      for (let i = start - 1; i >= 0 && take(all[i] as AuditRecord); i--);
    } else {
      const start = after === undefined ? 0 : upperBound(all, after.decidedAt, after.id);
      for (let i = start; i < all.length && take(all[i] as AuditRecord); i++);
    }
    const last = items[items.length - 1];
    return Promise.resolve({
      items: items.map(copyOut),
      nextCursor: more && last !== undefined ? encodeCursor(last.decidedAt, last.id) : null,
    });
  }

  history(actionId: string, scope?: { namespace: string; tenant: string }): Promise<AuditRecord[]> {
    return Promise.resolve(
      this.records
        .filter(
          (r) =>
            r.actionId === actionId &&
            (scope === undefined || (r.namespace === scope.namespace && r.tenant === scope.tenant)),
        )
        .map(copyOut),
    );
  }

  chainPage(tenant: string, afterSeq: number, limit: number): Promise<AuditRecord[]> {
    const page = this.records
      .filter((r) => r.tenant === tenant && r.chainSeq !== undefined && r.chainSeq > afterSeq)
      .sort((a, b) => (a.chainSeq as number) - (b.chainSeq as number));
    return Promise.resolve(page.slice(0, Math.max(0, limit)).map(copyOut));
  }

  chainTenants(): Promise<string[]> {
    return Promise.resolve([...this.heads.keys()].sort());
  }

  deleteBefore(before: number, limit: number): Promise<number> {
    // The array is in (decidedAt, id) order: the oldest are at the front.
    let n = 0;
    while (
      n < limit &&
      n < this.records.length &&
      (this.records[n] as AuditRecord).decidedAt < before
    ) {
      n++;
    }
    for (const r of this.records.splice(0, n)) this.ids.delete(r.id);
    return Promise.resolve(n);
  }

  erasePayloads(field: string, value: string): Promise<number> {
    let match: (r: AuditRecord) => boolean;
    if (field === 'actionId') match = (r) => r.actionId === value;
    else if (field === 'tenant') match = (r) => r.tenant === value;
    else if (field === 'namespace') match = (r) => r.namespace === value;
    else if (field === 'dedupKey') match = (r) => r.dedupKey === value;
    else if (field.startsWith('labels.')) {
      const key = field.slice('labels.'.length);
      match = (r) => Object.hasOwn(r.labels, key) && r.labels[key] === value;
    } else if (field.startsWith('payload.')) {
      const key = field.slice('payload.'.length);
      match = (r) => payloadFieldIs(r.payload, key, value);
    } else {
      return Promise.reject(
        new SyError(
          'SY_ERR_VALIDATION',
          `cannot erase by "${field}": use actionId, tenant, namespace, dedupKey, labels.<key> or payload.<key>`,
          { field: 'field', value: field },
        ),
      );
    }
    let n = 0;
    for (const r of this.records) {
      if (r.payload !== undefined && match(r)) {
        r.payload = undefined;
        n++;
      }
    }
    return Promise.resolve(n);
  }

  count(): Promise<number> {
    return Promise.resolve(this.records.length);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Inserts in (decidedAt, id) order; appending in time order is a push. */
  private insert(record: AuditRecord): void {
    const all = this.records;
    const last = all[all.length - 1];
    if (last === undefined || compare(last, record.decidedAt, record.id) < 0) {
      all.push(record);
      return;
    }
    all.splice(upperBound(all, record.decidedAt, record.id), 0, record);
  }
}

interface Cursor {
  decidedAt: number;
  id: string;
}

/** Orders a record against the key (decidedAt, id): negative when it comes first. */
function compare(r: AuditRecord, decidedAt: number, id: string): number {
  if (r.decidedAt !== decidedAt) return r.decidedAt - decidedAt;
  return r.id < id ? -1 : r.id > id ? 1 : 0;
}

/** Index of the first record whose key is >= (decidedAt, id). */
function lowerBound(all: readonly AuditRecord[], decidedAt: number, id: string): number {
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(all[mid] as AuditRecord, decidedAt, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first record whose key is > (decidedAt, id). */
function upperBound(all: readonly AuditRecord[], decidedAt: number, id: string): number {
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(all[mid] as AuditRecord, decidedAt, id) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function matches(r: AuditRecord, q: AuditQuery): boolean {
  return (
    (q.tenant === undefined || r.tenant === q.tenant) &&
    (q.namespace === undefined || r.namespace === q.namespace) &&
    (q.provider === undefined || r.provider === q.provider) &&
    (q.actionType === undefined || r.actionType === q.actionType) &&
    (q.outcome === undefined || r.outcome === q.outcome) &&
    (q.kind === undefined || r.kind === q.kind) &&
    (q.rule === undefined || r.rules.includes(q.rule)) &&
    (q.label === undefined ||
      (Object.hasOwn(r.labels, q.label.key) && r.labels[q.label.key] === q.label.value)) &&
    (q.from === undefined || r.decidedAt >= q.from) &&
    (q.to === undefined || r.decidedAt < q.to) &&
    (q.text === undefined ||
      r.actionId.includes(q.text) ||
      (r.dedupKey !== undefined && r.dedupKey.includes(q.text)))
  );
}

/**
 * erasePayloads' `payload.<key>` test: the payload is an object whose top-level `key` is the
 * string `value`, or an integer or boolean whose JSON text is `value`.
 */
function payloadFieldIs(payload: unknown, key: string, value: string): boolean {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return false;
  if (!Object.hasOwn(payload, key)) return false;
  const v = (payload as Record<string, unknown>)[key];
  if (typeof v === 'string') return v === value;
  if (typeof v === 'number') return Number.isSafeInteger(v) && String(v) === value;
  if (typeof v === 'boolean') return String(v) === value;
  return false;
}

/** A stored copy: exactly the record's fields, the payload as its JSON would read back. */
function copyIn(
  r: AuditRecord,
  chainSeq: number | undefined,
  prevHash: string | undefined,
  hash: string | undefined,
): AuditRecord {
  const json = r.payload === undefined ? undefined : JSON.stringify(r.payload);
  return {
    id: r.id,
    kind: r.kind,
    actionId: r.actionId,
    namespace: r.namespace,
    tenant: r.tenant,
    provider: r.provider,
    originalProvider: r.originalProvider,
    destination: r.destination,
    actionType: r.actionType,
    labels: { ...r.labels },
    outcome: r.outcome,
    rules: [...r.rules],
    reason: r.reason,
    attempt: r.attempt,
    status: r.status,
    errorCode: r.errorCode,
    dedupKey: r.dedupKey,
    receivedAt: r.receivedAt,
    decidedAt: r.decidedAt,
    executedAt: r.executedAt,
    durationMs: r.durationMs,
    nodeId: r.nodeId,
    traceId: r.traceId,
    payload: json === undefined ? undefined : (JSON.parse(json) as unknown),
    payloadHash: r.payloadHash,
    chainSeq,
    prevHash,
    hash,
  };
}

function copyOut(r: AuditRecord): AuditRecord {
  return structuredClone(r);
}
