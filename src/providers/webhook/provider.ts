import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import { Type, type Static } from 'typebox';
import type { Action } from '../../core/action.js';
import type { ProviderResponse } from '../../core/outcome.js';
import { Duration, Size } from '../../core/schema-types.js';
import { parseDuration, parseSize } from '../../core/units.js';
import {
  ProviderError,
  type ExecuteContext,
  type Provider,
  type ProviderType,
} from '../provider.js';

export const WebhookProviderConfigSchema = Type.Object(
  {
    type: Type.Literal('webhook'),
    url: Type.String({
      pattern: '^https?://',
      description: 'Destination URL (http or https).',
    }),
    method: Type.Optional(
      Type.Enum(['POST', 'PUT', 'PATCH', 'DELETE', 'GET'], {
        description: 'HTTP method. Default POST.',
      }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: 'Extra request headers; use ${ENV_VAR} for secrets.',
      }),
    ),
    timeout: Type.Optional(Duration('Per-request timeout. Default 10s.')),
    maxResponseSize: Type.Optional(
      Size('Largest response body kept in the outcome. Default 64KiB.'),
    ),
    connections: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1024, description: 'Pooled connections. Default 16.' }),
    ),
  },
  { additionalProperties: false },
);
export type WebhookProviderConfig = Static<typeof WebhookProviderConfigSchema>;

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE = 64 * 1024;
const DEFAULT_CONNECTIONS = 16;

/** Statuses after which a later attempt may succeed (RFC 9110 and common practice). */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/**
 * POSTs the action's payload as JSON to a URL over a pooled keep-alive connection (undici Pool).
 * A non-2xx answer is a failure carrying the status; a hang is a timeout failure after `timeout`.
 */
export class WebhookProvider implements Provider {
  readonly type = 'webhook';
  private readonly pool: Pool;
  private readonly path: string;
  private readonly method: Dispatcher.HttpMethod;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly maxResponseSize: number;

  constructor(
    readonly name: string,
    config: WebhookProviderConfig,
  ) {
    const url = new URL(config.url);
    this.path = url.pathname + url.search;
    this.method = config.method ?? 'POST';
    this.timeoutMs = parseDuration(config.timeout) ?? DEFAULT_TIMEOUT_MS;
    this.maxResponseSize = parseSize(config.maxResponseSize) ?? DEFAULT_MAX_RESPONSE;
    this.headers = { 'content-type': 'application/json', ...lowerKeys(config.headers ?? {}) };
    this.pool = new Pool(url.origin, {
      connections: config.connections ?? DEFAULT_CONNECTIONS,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
  }

  async execute(action: Action, ctx: ExecuteContext): Promise<ProviderResponse> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = AbortSignal.any([timeout, ctx.signal]);
    const hasBody = this.method !== 'GET';
    let res: Dispatcher.ResponseData;
    try {
      res = await this.pool.request({
        path: this.path,
        method: this.method,
        headers: {
          ...this.headers,
          'x-switchyard-action-id': action.id,
          'x-switchyard-action-type': action.actionType,
        },
        body: hasBody ? JSON.stringify(action.payload) : null,
        signal,
      });
    } catch (err) {
      throw this.wrap(err, timeout.aborted, ctx.signal.aborted);
    }
    let response: ProviderResponse;
    try {
      response = await readCapped(res, this.maxResponseSize);
    } catch (err) {
      throw this.wrap(err, timeout.aborted, ctx.signal.aborted);
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return response;
    throw new ProviderError(
      'SY_ERR_PROVIDER_HTTP_STATUS',
      `provider "${this.name}" answered HTTP ${res.statusCode}`,
      { transient: isTransientStatus(res.statusCode), response },
    );
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private wrap(err: unknown, timedOut: boolean, cancelled: boolean): ProviderError {
    if (cancelled && !timedOut) {
      return new ProviderError(
        'SY_ERR_SHUTTING_DOWN',
        `provider "${this.name}" call was aborted because the gateway is shutting down`,
        { transient: true, cause: err },
      );
    }
    if (
      timedOut ||
      err instanceof undiciErrors.HeadersTimeoutError ||
      err instanceof undiciErrors.BodyTimeoutError
    ) {
      return new ProviderError(
        'SY_ERR_PROVIDER_TIMEOUT',
        `provider "${this.name}" did not answer within ${this.timeoutMs}ms`,
        { transient: true, cause: err },
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

function lowerKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

/** Reads at most `max` bytes of the body; parses JSON when the content type says so. */
async function readCapped(res: Dispatcher.ResponseData, max: number): Promise<ProviderResponse> {
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

export const webhookProviderType: ProviderType<WebhookProviderConfig> = {
  type: 'webhook',
  description: 'Sends the action payload as JSON over HTTP(S) with a pooled client.',
  configSchema: WebhookProviderConfigSchema,
  create: (name, config) => new WebhookProvider(name, config),
};
