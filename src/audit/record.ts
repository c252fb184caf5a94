/**
 * One audit record: a dispatch decision, one execution attempt, a replay, or an erasure.
 * Times are epoch ms here and RFC 3339 over the API.
 */
export interface AuditRecord {
  /** UUIDv7, assigned when the record is made (time-ordered). */
  id: string;
  kind: 'decision' | 'attempt' | 'replay' | 'erasure';
  actionId: string;
  namespace: string;
  tenant: string;
  /** The provider that ran it or would have (after reroute / fallback). */
  provider: string;
  /** The provider the action named. */
  originalProvider: string;
  /** Webhook host, email recipients, LLM model... (Provider.destination). */
  destination: string | undefined;
  actionType: string;
  labels: Record<string, string>;
  /** The outcome kind (executed, failed, retrying, ...). */
  outcome: string;
  /** Rules that matched, in order, and why (the rule engine's explanation, short). */
  rules: string[];
  /** Free-text reason: suppression reason, error message, ... */
  reason: string | undefined;
  attempt: number | undefined;
  status: number | undefined;
  errorCode: string | undefined;
  dedupKey: string | undefined;
  receivedAt: number;
  decidedAt: number;
  executedAt: number | undefined;
  durationMs: number;
  nodeId: string;
  traceId: string | undefined;
  /** The payload after redaction; undefined when storePayload is false or it was erased. */
  payload: unknown;
  /** sha256 (hex) of the canonical JSON of the payload as first stored ("" when none). */
  payloadHash: string;
  /** Strict mode: the per-tenant chain. Assigned by the store inside its write transaction. */
  chainSeq: number | undefined;
  prevHash: string | undefined;
  hash: string | undefined;
}

export { canonicalJson, canonicalJsonReference, payloadHashOf, sha256 } from './canonical.js';
import { canonicalJson, sha256 } from './canonical.js';

/**
 * The hash of a record in its tenant's chain: every field that matters, the payload by its hash
 * (so erasing a payload keeps the chain valid), and the previous record's hash.
 */
export function chainHash(record: AuditRecord, prevHash: string): string {
  const { payload: _p, hash: _h, prevHash: _ph, ...rest } = record;
  return sha256(`${prevHash}\n${canonicalJson(rest)}`);
}

/** The record's own fields (no extra properties), with the given chain fields. */
export function withChain(
  r: AuditRecord,
  chainSeq: number | undefined,
  prevHash: string | undefined,
  hash: string | undefined,
): AuditRecord {
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
    labels: r.labels,
    outcome: r.outcome,
    rules: r.rules,
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
    payload: r.payload,
    payloadHash: r.payloadHash,
    chainSeq,
    prevHash,
    hash,
  };
}

export const GENESIS_HASH = '0'.repeat(64);
