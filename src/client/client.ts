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
