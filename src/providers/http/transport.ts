import { Agent, buildConnector, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import type { ProviderResponse } from '../../core/outcome.js';
import { ProviderError, signalError } from '../provider.js';
import { checkLiteralHost, guardedLookup } from './ssrf.js';

/**
 * The HTTP transport shared by the HTTP-based providers (webhook, slack, ...): one pooled
 * keep-alive undici Agent per provider, the SSRF guard on every new connection, a capped
 * response capture and the status → ProviderError classification the executor relies on.
 *
 * Time limits belong to the executor: it aborts `signal` when an attempt times out, and the
 * transport then throws that signal's reason. undici's own header/body timeouts are only a
 * generous safety net.
 */
export interface HttpTransportOptions {
  /** The provider's name, for messages. */
  readonly name: string;
  /** Connections kept per origin. Default 16. */
  readonly connections?: number | undefined;
  /** Allow loopback, private, link-local, ... destinations (turns the SSRF guard off). */
  readonly allowPrivateNetworks?: boolean | undefined;
  /** Largest response body kept in the outcome, in bytes. Default 64 KiB. */
  readonly maxResponseSize?: number | undefined;
  /** Safety-net limits (the executor's `timeout` normally fires first). Default 5 min each. */
  readonly headersTimeoutMs?: number | undefined;
  readonly bodyTimeoutMs?: number | undefined;
  /** TCP + TLS connect limit. Default 30s. */
  readonly connectTimeoutMs?: number | undefined;
  /** Epoch ms, for Retry-After dates. Default Date.now. */
  readonly now?: (() => number) | undefined;
  /**
   * Tests only: the connector behind the guard (the guard's IP-literal check still runs first;
   * the DNS check lives in the default connector's lookup).
   */
  readonly connector?: buildConnector.connector | undefined;
}

export interface HttpRequest {
  readonly url: URL;
  readonly method: Dispatcher.HttpMethod;
  readonly headers: Record<string, string>;
  /** The exact bytes to send; undefined sends no body. */
  readonly body: string | undefined;
  readonly signal: AbortSignal;
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** Status and the (capped) body as the outcome records it. */
  readonly response: ProviderResponse;
}

export const DEFAULT_MAX_RESPONSE = 64 * 1024;
export const DEFAULT_CONNECTIONS = 16;
const SAFETY_NET_MS = 5 * 60_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** Statuses after which a later attempt may succeed (RFC 9110 and common practice). */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/**
 * Milliseconds to wait according to a Retry-After header: delta-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2026 07:28:00 GMT"); a date in the past is 0. Undefined when absent or invalid.
 */
export function parseRetryAfter(
  value: string | string[] | undefined,
  nowMs: number = Date.now(),
): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (text === undefined || text === '') return undefined;
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds * 1000) ? seconds * 1000 : undefined;
  }
  // Every HTTP-date form (IMF-fixdate, RFC 850, asctime) starts with the day name.
  if (!/^[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** The connector with the SSRF guard in front: IP literals are judged before any socket exists. */
export function guardedConnector(options: HttpTransportOptions): buildConnector.connector {
  const allow = options.allowPrivateNetworks === true;
  const base =
    options.connector ??
    buildConnector({
      timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      keepAlive: true,
      ...(allow ? {} : { lookup: guardedLookup }),
    });
  if (allow) return base;
  return (connectOptions, callback) => {
    const blocked = checkLiteralHost(connectOptions.hostname);
    if (blocked !== undefined) {
      queueMicrotask(() => callback(blocked, null));
      return;
    }
    base(connectOptions, callback);
  };
}

export class HttpTransport {
  private readonly agent: Agent;
  private readonly name: string;
  private readonly maxResponseSize: number;
  private readonly now: () => number;

  constructor(options: HttpTransportOptions) {
    this.name = options.name;
    this.maxResponseSize = options.maxResponseSize ?? DEFAULT_MAX_RESPONSE;
    this.now = options.now ?? Date.now;
    this.agent = new Agent({
      connections: options.connections ?? DEFAULT_CONNECTIONS,
      headersTimeout: options.headersTimeoutMs ?? SAFETY_NET_MS,
      bodyTimeout: options.bodyTimeoutMs ?? SAFETY_NET_MS,
      connect: guardedConnector(options),
    });
  }

  /**
   * Sends one request and captures the answer, whatever its status. Throws a ProviderError when
   * no answer arrived: the signal's reason when `signal` fired, SY_ERR_DESTINATION_BLOCKED when
   * the SSRF guard refused the address, else a timeout or network error (transient).
   */
  async request(req: HttpRequest): Promise<HttpResult> {
    let res: Dispatcher.ResponseData;
    try {
      res = await this.agent.request({
        origin: req.url.origin,
        path: req.url.pathname + req.url.search,
        method: req.method,
        headers: req.headers,
        body: req.body ?? null,
        signal: req.signal,
      });
    } catch (err) {
      throw this.wrap(err, req.signal);
    }
    let response: ProviderResponse;
    try {
      response = await readCapped(res, this.maxResponseSize);
    } catch (err) {
      throw this.wrap(err, req.signal);
    }
    return { status: res.statusCode, headers: res.headers, response };
  }

  /**
   * The response of a 2xx result; otherwise throws SY_ERR_PROVIDER_HTTP_STATUS, transient for
   * 408/425/429/5xx, with Retry-After (429, 503) as retryAfterMs. `detail` is appended to the
   * message (e.g. Slack's error text).
   */
  expectOk(result: HttpResult, detail?: string): ProviderResponse {
    if (result.status >= 200 && result.status < 300) return result.response;
    throw this.statusError(result, detail);
  }

  statusError(result: HttpResult, detail?: string): ProviderError {
    const retryAfterMs =
      result.status === 429 || result.status === 503
        ? parseRetryAfter(result.headers['retry-after'], this.now())
        : undefined;
    return new ProviderError(
      'SY_ERR_PROVIDER_HTTP_STATUS',
      `provider "${this.name}" answered HTTP ${result.status}${detail === undefined || detail === '' ? '' : `: ${detail}`}`,
      {
        transient: isTransientStatus(result.status),
        response: result.response,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      },
    );
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private wrap(err: unknown, signal: AbortSignal): ProviderError {
    if (signal.aborted) return signalError(signal, err);
    if (err instanceof ProviderError) return err;
    if (
      err instanceof undiciErrors.HeadersTimeoutError ||
      err instanceof undiciErrors.BodyTimeoutError
    ) {
      return new ProviderError(
        'SY_ERR_PROVIDER_TIMEOUT',
        `provider "${this.name}" did not answer in time (${err.message})`,
        { transient: true, cause: err },
      );
    }
    if (err instanceof undiciErrors.InvalidArgumentError) {
      return new ProviderError(
        'SY_ERR_PROVIDER_FAILED',
        `provider "${this.name}" could not build the request: ${err.message}`,
        { transient: false, cause: err },
      );
    }
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    return new ProviderError(
      'SY_ERR_PROVIDER_NETWORK',
      `provider "${this.name}" could not be reached: ${typeof code === 'string' && !message.includes(code) ? `${code} ` : ''}${message}`,
      { transient: true, cause: err },
    );
  }
}

/** Reads at most `max` bytes of the body; parses JSON when the content type says so. */
export async function readCapped(
  res: Dispatcher.ResponseData,
  max: number,
): Promise<ProviderResponse> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    const room = max - size;
    if (chunk.length > room) {
      if (room > 0) chunks.push(chunk.subarray(0, room));
      size = max;
      truncated = true;
      res.body.destroy();
      break;
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  const response: ProviderResponse = { status: res.statusCode };
  if (size === 0) return response;
  const text = Buffer.concat(chunks, size).toString('utf8');
  const type = res.headers['content-type'];
  let body: unknown = text;
  if (!truncated && typeof type === 'string' && type.includes('json')) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  response.body = body;
  if (truncated) response.truncated = true;
  return response;
}
