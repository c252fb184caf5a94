import { errors as undiciErrors, type Dispatcher } from 'undici';
import type { ProviderResponse } from '../../core/outcome.js';
import { ProviderError, signalError } from '../provider.js';

/** A response body read up to a cap. */
export interface CappedBody {
  text: string;
  truncated: boolean;
}

/** Reads at most `max` bytes of a body (the rest is discarded and the socket released). */
export async function readCapped(
  body: Dispatcher.ResponseData['body'],
  max: number,
): Promise<CappedBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const room = max - size;
    if (chunk.length > room) {
      if (room > 0) chunks.push(chunk.subarray(0, room));
      size = max;
      truncated = true;
      body.destroy();
      break;
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { text: Buffer.concat(chunks, size).toString('utf8'), truncated };
}

/** The body as JSON when it parses (and was not cut), else as text; undefined when empty. */
export function parseBody(body: CappedBody): unknown {
  if (body.text === '') return undefined;
  if (body.truncated) return body.text;
  try {
    return JSON.parse(body.text) as unknown;
  } catch {
    return body.text;
  }
}

/**
 * Statuses after which another attempt may succeed: 408 timeout, 409 conflict (OpenAI's clients
 * retry it), 425 too early, 429 rate limited, every 5xx.
 */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 425 || status === 429 || status >= 500;
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * How long the API asked to wait: `retry-after-ms` (milliseconds, OpenAI and Azure) first, else
 * `Retry-After` in seconds or as an HTTP date (relative to `now`). Undefined when absent or
 * unreadable.
 */
export function retryAfterMs(
  headers: Dispatcher.ResponseData['headers'],
  now: number,
): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && ms.trim() !== '') {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  }
  const after = header(headers, 'retry-after')?.trim();
  if (after === undefined || after === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(after)) return Math.ceil(Number(after) * 1000);
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The API's own explanation of an error body (`error.message` in the OpenAI format). */
export function apiErrorMessage(body: unknown): string | undefined {
  let message: unknown;
  if (typeof body === 'string') message = body;
  else if (body !== null && typeof body === 'object') {
    const { error, message: top } = body as { error?: unknown; message?: unknown };
    if (typeof error === 'string') message = error;
    else if (error !== null && typeof error === 'object')
      message = (error as { message?: unknown }).message;
    else message = top;
  }
  if (typeof message !== 'string' || message.trim() === '') return undefined;
  const line = message.trim().replace(/\s+/g, ' ');
  return line.length > 500 ? `${line.slice(0, 500)}...` : line;
}

/** The ProviderError for a non-2xx answer. */
export function statusError(
  provider: string,
  status: number,
  response: ProviderResponse,
  retryAfter: number | undefined,
): ProviderError {
  const detail = apiErrorMessage(response.body);
  const suffix = detail === undefined ? '' : `: ${detail}`;
  if (isTransientStatus(status)) {
    return new ProviderError(
      'SY_ERR_PROVIDER_HTTP_STATUS',
      `provider "${provider}" answered HTTP ${status}${suffix}`,
      retryAfter === undefined
        ? { transient: true, response }
        : { transient: true, response, retryAfterMs: retryAfter },
    );
  }
  return new ProviderError(
    status >= 400 ? 'SY_ERR_PROVIDER_REJECTED' : 'SY_ERR_PROVIDER_HTTP_STATUS',
    `provider "${provider}" answered HTTP ${status}${suffix}`,
    { transient: false, response },
  );
}

/** The ProviderError for a request that failed before or while reading the answer. */
export function requestError(provider: string, err: unknown, signal: AbortSignal): ProviderError {
  if (signal.aborted) return signalError(signal, err);
  // The SSRF guard refused the address DNS gave (see http/ssrf.ts): terminal, as it says.
  if (err instanceof ProviderError) return err;
  if (
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError
  ) {
    return new ProviderError(
      'SY_ERR_PROVIDER_TIMEOUT',
      `provider "${provider}" did not answer in time`,
      { transient: true, cause: err },
    );
  }
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const prefix = typeof code === 'string' && !message.includes(code) ? `${code} ` : '';
  return new ProviderError(
    'SY_ERR_PROVIDER_NETWORK',
    `provider "${provider}" could not be reached: ${prefix}${message}`,
    { transient: true, cause: err },
  );
}
