import type { Action, ActionInput } from '../core/action.js';
import type { AttemptError, Outcome, OutcomeError } from '../core/outcome.js';
import { SyError, type ErrorCode, ERRORS } from '../core/errors.js';
import type { ProviderPreview } from '../providers/provider.js';

export interface ClientOptions {
  /** Base URL of a Switchyard server. Default http://127.0.0.1:8080. */
  url?: string;
  /** Sent as `authorization: Bearer <key>` when set. */
  apiKey?: string;
  /** Per-request timeout in ms. Default 30000. */
  timeoutMs?: number;
}

/** A provider's live state and policy (`GET /v1/providers`). Times are RFC 3339. */
export interface ProviderInfo {
  name: string;
  type: string;
  /** Null when the provider has no circuit breaker (`circuitBreaker: false`). */
  circuit: {
    state: 'closed' | 'open' | 'half_open';
    consecutiveFailures: number;
    openedAt: string | null;
    probeAt: string | null;
  } | null;
  concurrency: { limit: number; running: number; queued: number; queue: number };
  /** Pauses in force on the node that answered (Retry-After from the destination). */
  pauses: { key: string; until: string | null }[];
  timeoutMs: number;
  actionTimeoutMs: number | null;
  retry: { attempts: number; baseMs: number; maxMs: number };
  fallback: string[];
  rateLimit: { limit: number; windowMs: number; key?: string } | null;
  dlq: { enabled: boolean; autoReplay: boolean };
}

/** What `POST /v1/providers/{name}/preview` answers: the request the provider would send. */
export interface ProviderPreviewResult {
  provider: string;
  type: string;
  /** The action as the provider would get it (after modify/label rules). */
  action: Action;
  preview: ProviderPreview;
}

/** Dead-letter filters: an entry matches when every given field is equal. */
export interface DeadLetterFilter {
  provider?: string | undefined;
  tenant?: string | undefined;
  namespace?: string | undefined;
  actionType?: string | undefined;
  reason?: 'exhausted' | 'terminal' | 'timeout' | undefined;
}

/** A dead-letter entry as `GET /v1/dlq` lists it. */
export interface DeadLetterSummary {
  id: string;
  reason: 'exhausted' | 'terminal' | 'timeout';
  failedAt: string;
  /** The provider of the last attempt. */
  provider: string;
  /** The last attempt's error. */
  error: OutcomeError;
  attempts: number;
  replays: number;
  action: {
    id: string;
    namespace: string;
    tenant: string;
    provider: string;
    actionType: string;
    labels: Record<string, string>;
    receivedAt: string;
  };
}

/** One dead-letter entry with its payload and every attempt's error (`GET /v1/dlq/{id}`). */
export interface DeadLetterEntry extends DeadLetterSummary {
  action: DeadLetterSummary['action'] & {
    payload: Record<string, unknown>;
    dedupKey?: string;
    fingerprint?: string;
  };
  errors: AttemptError[];
}

export interface DeadLetterPage {
  items: DeadLetterSummary[];
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
  /** Entries in the whole queue, unfiltered. */
  total: number;
}

/** One audit record as the API shows it (`GET /v1/audit`): times RFC 3339, absent values null. */
export interface AuditRecordView {
  id: string;
  kind: 'decision' | 'attempt' | 'replay' | 'erasure';
  actionId: string;
  namespace: string;
  tenant: string;
  /** The provider that ran it or would have (after reroute / fallback). */
  provider: string;
  /** The provider the action named. */
  originalProvider: string;
  destination: string | null;
  actionType: string;
  labels: Record<string, string>;
  /** The outcome kind: executed, failed, suppressed, ... (`erased` for an erasure record). */
  outcome: string;
  /** Rules that matched, in order. */
  rules: string[];
  reason: string | null;
  attempt: number | null;
  status: number | null;
  errorCode: string | null;
  dedupKey: string | null;
  receivedAt: string | null;
  decidedAt: string | null;
  executedAt: string | null;
  durationMs: number;
  nodeId: string;
  traceId: string | null;
  /** After redaction; null when not stored or erased. */
  payload: unknown;
  payloadHash: string;
  chainSeq: number | null;
  prevHash: string | null;
  hash: string | null;
}

export const AUDIT_KINDS = ['decision', 'attempt', 'replay', 'erasure'] as const;

/** Filters of `GET /v1/audit`; a record matches when every given one does. */
export interface AuditFilter {
  tenant?: string | undefined;
  namespace?: string | undefined;
  provider?: string | undefined;
  actionType?: string | undefined;
  outcome?: string | undefined;
  kind?: AuditRecordView['kind'] | undefined;
  /** Records whose `rules` contain this rule name. */
  rule?: string | undefined;
  /** `key=value`: records with this label. */
  label?: string | undefined;
  /** RFC 3339: decidedAt >= from. */
  from?: string | undefined;
  /** RFC 3339: decidedAt < to. */
  to?: string | undefined;
  /** Text found in the action id or the dedup key. */
  q?: string | undefined;
  /** `desc` (newest first, the default) or `asc`. */
  order?: 'asc' | 'desc' | undefined;
}

export interface AuditPage {
  items: AuditRecordView[];
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

/** One problem `GET /v1/audit/verify` found in a tenant's hash chain. */
export interface AuditChainProblem {
  tenant: string;
  recordId: string | null | undefined;
  chainSeq: number;
  /** edited, deleted, reordered or unchained. */
  problem: string;
  message: string;
}

/** What `GET /v1/audit/verify` answers. */
export interface AuditVerifyResult {
  ok: boolean;
  /** Tenant chains checked. */
  tenants: number;
  /** Records checked. */
  records: number;
  problems: AuditChainProblem[];
  /** Each chain as verify saw it: compare `lastSeq`/`lastHash` with a copy kept elsewhere. */
  chains?: {
    tenant: string;
    records: number;
    startsAt?: number;
    fromGenesis: boolean;
    lastSeq?: number;
    lastHash?: string;
  }[];
}

const AUDIT_FILTER_KEYS = [
  'tenant',
  'namespace',
  'provider',
  'actionType',
  'outcome',
  'kind',
  'rule',
  'label',
  'from',
  'to',
  'q',
  'order',
] as const;

const FILTER_KEYS = ['provider', 'tenant', 'namespace', 'actionType', 'reason'] as const;

/** Only the filter fields that are set (the server rejects unknown keys). */
function filterOf(filter: DeadLetterFilter): DeadLetterFilter {
  const out: DeadLetterFilter = {};
  for (const key of FILTER_KEYS) {
    const value = filter[key];
    if (value !== undefined) (out as Record<string, string>)[key] = value;
  }
  return out;
}

const seg = (s: string): string => encodeURIComponent(s);

/**
 * A typed client for the HTTP API. Errors from the server come back as SyError with the server's
 * code; a server that cannot be reached is SY_ERR_CLIENT_CONNECT.
 */
export class SwitchyardClient {
  readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(options: ClientOptions = {}) {
    this.url = (options.url ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    this.headers = {};
    if (options.apiKey) this.headers.authorization = `Bearer ${options.apiKey}`;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  dispatch(action: ActionInput): Promise<Outcome> {
    return this.request<Outcome>('POST', '/v1/dispatch', action);
  }

  async dispatchBatch(actions: ActionInput[]): Promise<Outcome[]> {
    const res = await this.request<{ outcomes: Outcome[] }>('POST', '/v1/dispatch/batch', actions);
    return res.outcomes;
  }

  health(): Promise<{ status: string }> {
    return this.request('GET', '/health');
  }

  /** Every provider with its circuit breaker, concurrency, pauses and policy. */
  async providers(): Promise<ProviderInfo[]> {
    const res = await this.request<{ items: ProviderInfo[] }>('GET', '/v1/providers');
    return res.items;
  }

  /** One provider; SY_ERR_PROVIDER_NOT_FOUND when it is not configured. */
  provider(name: string): Promise<ProviderInfo> {
    return this.request('GET', `/v1/providers/${seg(name)}`);
  }

  /** Closes the provider's circuit breaker on the node that answers; returns its new state. */
  resetCircuit(name: string): Promise<ProviderInfo> {
    return this.request('POST', `/v1/providers/${seg(name)}/circuit/reset`, {});
  }

  /** What provider `name` would send for an action (`provider` may be omitted), unsent. */
  preview(name: string, action: Partial<ActionInput>): Promise<ProviderPreviewResult> {
    return this.request('POST', `/v1/providers/${seg(name)}/preview`, action);
  }

  /** One page of dead letters, oldest first. */
  deadLetters(
    query: DeadLetterFilter & { limit?: number | undefined; cursor?: string | undefined } = {},
  ): Promise<DeadLetterPage> {
    const params = new URLSearchParams(filterOf(query) as Record<string, string>);
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor !== undefined) params.set('cursor', query.cursor);
    const qs = params.toString();
    return this.request('GET', `/v1/dlq${qs === '' ? '' : `?${qs}`}`);
  }

  /** One dead letter; SY_ERR_DLQ_NOT_FOUND for an unknown id. */
  deadLetter(id: string): Promise<DeadLetterEntry> {
    return this.request('GET', `/v1/dlq/${seg(id)}`);
  }

  /** Replays one dead letter now and answers its new outcome. */
  replayDeadLetter(id: string): Promise<Outcome> {
    return this.request('POST', `/v1/dlq/${seg(id)}/replay`, {});
  }

  /** Replays every matching dead letter through the retry queue; an empty filter means all. */
  replayDeadLetters(filter: DeadLetterFilter): Promise<{ replayed: number }> {
    return this.request('POST', '/v1/dlq/replay', filterOf(filter));
  }

  /** Discards one dead letter; SY_ERR_DLQ_NOT_FOUND for an unknown id. */
  discardDeadLetter(id: string): Promise<{ discarded: number }> {
    return this.request('DELETE', `/v1/dlq/${seg(id)}`);
  }

  /** Discards every matching dead letter; the whole queue only with `all: true`. */
  discardDeadLetters(filter: DeadLetterFilter & { all?: boolean }): Promise<{ discarded: number }> {
    const body: Record<string, unknown> = { ...filterOf(filter) };
    if (filter.all === true) body.all = true;
    return this.request('POST', '/v1/dlq/discard', body);
  }

  /** One page of audit records, newest first unless `order: 'asc'`. */
  auditQuery(
    query: AuditFilter & { limit?: number | undefined; cursor?: string | undefined } = {},
  ): Promise<AuditPage> {
    const params = new URLSearchParams();
    for (const key of AUDIT_FILTER_KEYS) {
      const value = query[key];
      if (value !== undefined) params.set(key, value);
    }
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor !== undefined) params.set('cursor', query.cursor);
    const qs = params.toString();
    return this.request('GET', `/v1/audit${qs === '' ? '' : `?${qs}`}`);
  }

  /**
   * Every page of matching audit records, one page at a time (following `nextCursor`), so a
   * caller can stream the whole trail without holding it:
   * `for await (const page of client.auditPages({ tenant: 'acme' })) write(page.items)`.
   */
  async *auditPages(
    filter: AuditFilter & { limit?: number | undefined; cursor?: string | undefined } = {},
  ): AsyncGenerator<AuditPage, void, undefined> {
    let cursor = filter.cursor;
    for (;;) {
      const page = await this.auditQuery({ ...filter, cursor });
      yield page;
      if (page.nextCursor === null) return;
      cursor = page.nextCursor;
    }
  }

  /**
   * One action's history (decision, attempts, replays), oldest first; `scope` narrows it to one
   * namespace and tenant. SY_ERR_NOT_FOUND when no record has the id.
   */
  auditHistory(
    actionId: string,
    scope?: { namespace: string; tenant: string },
  ): Promise<{ actionId: string; items: AuditRecordView[] }> {
    const qs = scope === undefined ? '' : `?${new URLSearchParams(scope).toString()}`;
    return this.request('GET', `/v1/audit/${seg(actionId)}${qs}`);
  }

  /** Checks the hash chain of every tenant (or one); `ok` is false when a problem was found. */
  auditVerify(tenant?: string): Promise<AuditVerifyResult> {
    const qs = tenant === undefined ? '' : `?${new URLSearchParams({ tenant }).toString()}`;
    return this.request('GET', `/v1/audit/verify${qs}`);
  }

  /**
   * Erases the payloads of the records where `field` (actionId, tenant, namespace, dedupKey,
   * `labels.<key>`, `payload.<key>`) equals `value`; the erasure is itself recorded.
   */
  auditErase(
    field: string,
    value: string,
    reason?: string,
  ): Promise<{ erased: number; recordId: string }> {
    const body: Record<string, string> = { field, value };
    if (reason !== undefined) body.reason = reason;
    return this.request('POST', '/v1/audit/erase', body);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        // A content-type without a body is an error to the server (empty JSON body).
        headers:
          body === undefined
            ? this.headers
            : { ...this.headers, 'content-type': 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new SyError(
        'SY_ERR_CLIENT_CONNECT',
        `cannot reach Switchyard at ${this.url}: ${cause?.code ?? (err as Error).message}`,
        { url: this.url },
        { cause: err },
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.ok) return parsed as T;
    const error = (
      parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } }
    )?.error;
    const code =
      error?.code !== undefined && error.code in ERRORS
        ? (error.code as ErrorCode)
        : 'SY_ERR_INTERNAL';
    throw new SyError(code, error?.message ?? `HTTP ${res.status} from ${path}`, error?.details);
  }
}
