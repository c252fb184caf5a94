import { chainHash, GENESIS_HASH, payloadHashOf, type AuditRecord } from './record.js';
import type { AuditStore, ChainProblem } from './store.js';

export interface VerifyOptions {
  /** Only this tenant's chain (default: every tenant with chained records). */
  tenant?: string | undefined;
  /** Records per chainPage call. Default 1000. */
  pageSize?: number | undefined;
}

/** One tenant's chain as verify saw it. */
export interface ChainSummary {
  tenant: string;
  /** Chained records read. */
  records: number;
  /**
   * The chainSeq of the first remaining record, trusted as the chain's start (records before it
   * may have been deleted by retention); undefined for an empty chain.
   */
  startsAt: number | undefined;
  /** True when the first remaining record links to GENESIS_HASH (nothing before it ever). */
  fromGenesis: boolean;
  /**
   * The last record's chainSeq and hash: deleting records at the END of a chain leaves no gap,
   * so compare these with a copy kept elsewhere to detect it.
   */
  lastSeq: number | undefined;
  lastHash: string | undefined;
}

export interface VerifyResult {
  ok: boolean;
  tenants: number;
  records: number;
  problems: ChainProblem[];
  chains: ChainSummary[];
}

/**
 * How far (in chainSeq) verify looks for the place a record with a wrong hash came from before it
 * calls it edited: a record moved by a few places is reported as reordered instead.
 */
const MOVE_WINDOW = 8;

/**
 * Walks each tenant's hash chain in chainSeq order and names every problem:
 * - edited: the record's fields (or its payload, when stored) do not match its hash;
 * - deleted: a gap in chainSeq (the missing range, and the record after it);
 * - reordered: the record's prevHash is not the hash of the record before it (records swapped,
 *   moved, or the previous one rewritten with a recomputed hash), or it sits at a chainSeq other
 *   than the one its hash was made for;
 * - unchained: a record the chain listing returned without chain fields.
 * The first remaining record's prevHash is trusted (retention deletes from the start).
 */
export async function verifyChains(
  store: Pick<AuditStore, 'chainPage' | 'chainTenants'>,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const pageSize = Math.max(1, options.pageSize ?? 1000);
  const tenants = options.tenant !== undefined ? [options.tenant] : await store.chainTenants();
  const problems: ChainProblem[] = [];
  const chains: ChainSummary[] = [];
  let records = 0;
  for (const tenant of tenants) {
    const summary = await verifyTenant(store, tenant, pageSize, problems);
    records += summary.records;
    chains.push(summary);
  }
  return { ok: problems.length === 0, tenants: tenants.length, records, problems, chains };
}

async function verifyTenant(
  store: Pick<AuditStore, 'chainPage'>,
  tenant: string,
  pageSize: number,
  problems: ChainProblem[],
): Promise<ChainSummary> {
  const summary: ChainSummary = {
    tenant,
    records: 0,
    startsAt: undefined,
    fromGenesis: false,
    lastSeq: undefined,
    lastHash: undefined,
  };
  const report = (
    record: AuditRecord | undefined,
    chainSeq: number,
    problem: ChainProblem['problem'],
    message: string,
    recordId = record?.id,
  ): void => {
    problems.push({ tenant, recordId, chainSeq, problem, message });
  };

  let prev: AuditRecord | undefined;
  /**
   * The previous record failed its own hash (moved or edited): the broken link of the record
   * after it is a consequence, not news.
   */
  let prevBroken = false;
  let after = -1;
  for (;;) {
    const page = await store.chainPage(tenant, after, pageSize);
    for (const record of page) {
      summary.records++;
      const seq = record.chainSeq;
      if (seq === undefined || record.prevHash === undefined || record.hash === undefined) {
        report(record, seq ?? -1, 'unchained', `record ${record.id} has no chain fields`);
        continue;
      }
      const at = `record ${record.id} (seq ${seq})`;
      const prevSeq = prev?.chainSeq;

      if (prev === undefined || prevSeq === undefined) {
        summary.startsAt = seq;
        summary.fromGenesis = record.prevHash === GENESIS_HASH;
      } else if (seq > prevSeq + 1) {
        const from = prevSeq + 1;
        const to = seq - 1;
        const range = from === to ? `${from}` : `${from}-${to}`;
        const message = `records seq ${range} are missing; the chain resumes at ${at}`;
        report(record, from, 'deleted', message, range);
      } else if (seq <= prevSeq) {
        report(record, seq, 'reordered', `${at} comes after seq ${prevSeq} in chain order`);
      }
      const linked =
        prev === undefined || prevSeq === undefined || seq !== prevSeq + 1
          ? undefined // the first record, or a gap / misorder already reported
          : record.prevHash === prev.hash;

      // The record against its own hash (which covers its place), its payload against its hash.
      const selfOk = chainHash(record, record.prevHash) === record.hash;
      if (!selfOk) {
        const from = originalSeq(record);
        if (from !== undefined) {
          report(record, seq, 'reordered', `${at} was written as seq ${from} and has been moved`);
        } else if (linked === false) {
          const message = `${at}: stored fields do not match the record's hash, nor does it link to the record before it (edited, or moved here from elsewhere in the chain)`;
          report(record, seq, 'edited', message);
        } else {
          report(record, seq, 'edited', `${at}: stored fields do not match the record's hash`);
        }
      } else if (linked === false && !prevBroken) {
        const p = prev as AuditRecord;
        const message = `${at}: prevHash is not the hash of record ${p.id} (seq ${prevSeq}) before it (reordered, or that record was rewritten with a new hash)`;
        report(record, seq, 'reordered', message);
      }
      if (
        selfOk &&
        record.payload !== undefined &&
        payloadHashOf(record.payload) !== record.payloadHash
      ) {
        report(record, seq, 'edited', `${at}: the payload does not match its payloadHash`);
      }

      prev = record;
      prevBroken = !selfOk;
      summary.lastSeq = seq;
      summary.lastHash = record.hash;
    }
    const last = page[page.length - 1];
    if (page.length < pageSize || last?.chainSeq === undefined || last.chainSeq <= after) break;
    after = last.chainSeq;
  }
  return summary;
}

/**
 * The chainSeq near the record's own whose hash its fields match (it was moved there from that
 * place), or undefined (its fields were changed).
 */
function originalSeq(record: AuditRecord): number | undefined {
  const seq = record.chainSeq as number;
  const prevHash = record.prevHash as string;
  for (let d = 1; d <= MOVE_WINDOW; d++) {
    for (const candidate of [seq - d, seq + d]) {
      if (candidate < 1) continue;
      if (chainHash({ ...record, chainSeq: candidate }, prevHash) === record.hash) return candidate;
    }
  }
  return undefined;
}
