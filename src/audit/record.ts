import { createHash } from 'node:crypto';

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

/** JSON with object keys sorted, so equal values always hash alike. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return '';
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function payloadHashOf(payload: unknown): string {
  return payload === undefined ? '' : sha256(canonicalJson(payload));
}

/**
 * The hash of a record in its tenant's chain: every field that matters, the payload by its hash
 * (so erasing a payload keeps the chain valid), and the previous record's hash.
 */
export function chainHash(record: AuditRecord, prevHash: string): string {
  const { payload: _p, hash: _h, prevHash: _ph, ...rest } = record;
  return sha256(`${prevHash}\n${canonicalJson(rest)}`);
}

export const GENESIS_HASH = '0'.repeat(64);
