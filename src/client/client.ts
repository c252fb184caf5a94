import type { ActionInput } from '../core/action.js';
import type { Outcome } from '../core/outcome.js';
import { SyError, type ErrorCode, ERRORS } from '../core/errors.js';

export interface ClientOptions {
  /** Base URL of a Switchyard server. Default http://127.0.0.1:8080. */
  url?: string;
  /** Sent as `authorization: Bearer <key>` when set. */
  apiKey?: string;
  /** Per-request timeout in ms. Default 30000. */
  timeoutMs?: number;
}

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
    this.headers = { 'content-type': 'application/json' };
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

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers: this.headers,
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
