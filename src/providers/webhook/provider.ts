import type { Dispatcher } from 'undici';
import { HttpConnectionConfig } from '../http/config.js';
import { Type, type Static } from 'typebox';
import type { Action } from '../../core/action.js';
import { SyError } from '../../core/errors.js';
import type { ProviderResponse } from '../../core/outcome.js';
import { parseSize } from '../../core/units.js';
import {
  maskHeaders,
  type ExecuteContext,
  type Provider,
  type ProviderPreview,
  type ProviderType,
} from '../provider.js';
import { compileText, templateView, type TemplateView } from '../template.js';
import {
  compileHeaders,
  compileJson,
  compileUrl,
  maskUrl,
  renderTemplate,
  type HeadersTemplate,
  type UrlTemplate,
} from '../http/request-template.js';
import { SIGNATURE_HEADER, signBody } from '../http/signing.js';
import { HttpTransport, type HttpTransportOptions } from '../http/transport.js';

export { isTransientStatus } from '../http/transport.js';

const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

export const WebhookProviderConfigSchema = Type.Object(
  {
    type: Type.Literal('webhook'),
    url: Type.String({
      pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
      maxLength: 8192,
      description:
        'Destination URL (http or https); a template (e.g. https://api.example.com/items/{{payload.id}}), inserted values are percent-encoded.',
    }),
    method: Type.Optional(
      Type.Enum(['POST', 'PUT', 'PATCH', 'DELETE', 'GET'], {
        description: 'HTTP method. Default POST.',
      }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        propertyNames: { pattern: HEADER_NAME },
        description: 'Extra request headers; values are templates; use ${ENV_VAR} for secrets.',
      }),
    ),
    body: Type.Optional(
      Type.Unknown({
        description:
          'Request body. A JSON value whose strings are templates (sent as JSON), or a string template (sent as text). Default: the action payload as JSON.',
      }),
    ),
    signing: Type.Optional(
      Type.Object(
        {
          secret: Type.String({
            minLength: 16,
            description: 'HMAC-SHA256 secret shared with the receiver; use ${ENV_VAR}.',
          }),
          header: Type.Optional(
            Type.String({
              pattern: HEADER_NAME,
              description: 'Header carrying the signature. Default x-switchyard-signature.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    ...HttpConnectionConfig,
  },
  { additionalProperties: false },
);
export type WebhookProviderConfig = Static<typeof WebhookProviderConfigSchema>;

/** What WebhookProvider needs besides its config (tests inject a clock or a connector). */
export interface WebhookProviderOptions {
  /** Epoch ms for signature timestamps and Retry-After dates. Default Date.now. */
  now?: () => number;
  /** Tests only: see HttpTransportOptions.connector. */
  connector?: HttpTransportOptions['connector'];
}

interface BuiltRequest {
  url: URL;
  method: Dispatcher.HttpMethod;
  headers: Record<string, string>;
  body: string | undefined;
}

/**
 * Sends an action over HTTP(S): the payload as JSON by default, or a body rendered from templates.
 * Every request carries x-switchyard-action-id / -action-type / -attempt so the receiver can
 * deduplicate retries, and optionally an HMAC signature. A non-2xx answer is a failure carrying
 * the status; time limits are the executor's (ctx.signal).
 */
export class WebhookProvider implements Provider {
  readonly type = 'webhook';
  private readonly transport: HttpTransport;
  private readonly url: UrlTemplate;
  private readonly method: Dispatcher.HttpMethod;
  private readonly headers: HeadersTemplate;
  private readonly body: ((view: TemplateView) => string) | undefined;
  private readonly json: boolean;
  private readonly contentType: string | undefined;
  private readonly signing: { secret: string; header: string } | undefined;
  private readonly now: () => number;

  constructor(
    readonly name: string,
    config: WebhookProviderConfig,
    options: WebhookProviderOptions = {},
  ) {
    const where = `providers.${name}`;
    this.now = options.now ?? Date.now;
    this.url = compileUrl(config.url, `${where}.url`);
    this.method = config.method ?? 'POST';
    this.headers = compileHeaders(config.headers ?? {}, `${where}.headers`);
    const configured = Object.keys(config.headers ?? {}).some(
      (k) => k.toLowerCase() === 'content-type',
    );
    const body = config.body ?? undefined;
    if (this.method === 'GET' && body !== undefined) {
      throw new SyError('SY_ERR_CONFIG_INVALID', `${where}.body is not allowed with method GET`, {
        field: `${where}.body`,
      });
    }
    this.json = this.method !== 'GET' && typeof body !== 'string';
    if (this.method === 'GET') {
      this.body = undefined;
      this.contentType = undefined;
    } else if (typeof body === 'string') {
      const text = compileText(body, `${where}.body`);
      this.body = (view) => renderTemplate(() => text(view), `${where}.body`);
      this.contentType = configured ? undefined : 'text/plain; charset=utf-8';
    } else if (body !== undefined) {
      const value = compileJson(body, `${where}.body`);
      this.body = (view) => JSON.stringify(value(view)) ?? 'null';
      this.contentType = configured ? undefined : 'application/json';
    } else {
      this.body = (view) => JSON.stringify(view.payload);
      this.contentType = configured ? undefined : 'application/json';
    }
    this.signing =
      config.signing === undefined
        ? undefined
        : {
            secret: config.signing.secret,
            header: (config.signing.header ?? SIGNATURE_HEADER).toLowerCase(),
          };
    this.transport = new HttpTransport({
      name,
      connections: config.connections,
      allowPrivateNetworks: config.allowPrivateNetworks ?? false,
      maxResponseSize: parseSize(config.maxResponseSize),
      now: this.now,
      connector: options.connector,
    });
  }

  async execute(action: Action, ctx: ExecuteContext): Promise<ProviderResponse> {
    const req = this.build(action, ctx.attempt);
    const result = await this.transport.request({ ...req, signal: ctx.signal });
    return this.transport.expectOk(result);
  }

  preview(action: Action): ProviderPreview {
    const req = this.build(action, 1);
    const headers = maskHeaders(req.headers);
    if (this.signing !== undefined) headers[this.signing.header] = '***';
    return {
      kind: 'http',
      method: req.method,
      url: maskUrl(req.url),
      headers,
      // Exactly what would be sent: the JSON parsed back (undefined fields dropped), or the text.
      body: req.body === undefined ? '' : this.json ? (JSON.parse(req.body) as unknown) : req.body,
    };
  }

  destination(action: Action): string | undefined {
    try {
      return this.url(templateView(action)).host;
    } catch {
      return undefined;
    }
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  /** Renders everything a request needs; throws ProviderError SY_ERR_TEMPLATE. */
  private build(action: Action, attempt: number): BuiltRequest {
    const view = templateView(action, attempt);
    const url = this.url(view);
    const body = this.body?.(view);
    const headers: Record<string, string> = {};
    if (this.contentType !== undefined) headers['content-type'] = this.contentType;
    Object.assign(headers, this.headers(view));
    // Set last: a configured header cannot fake the identity a receiver deduplicates on.
    headers['x-switchyard-action-id'] = action.id;
    headers['x-switchyard-action-type'] = action.actionType;
    headers['x-switchyard-attempt'] = String(attempt);
    if (this.signing !== undefined) {
      headers[this.signing.header] = signBody(this.signing.secret, body ?? '', this.now() / 1000);
    }
    return {
      url,
      method: this.method,
      headers,
      body,
    };
  }
}

export const webhookProviderType: ProviderType<WebhookProviderConfig> = {
  type: 'webhook',
  description:
    'Sends the action over HTTP(S) (payload as JSON or a templated body) with a pooled client, optional HMAC signing and an SSRF guard.',
  configSchema: WebhookProviderConfigSchema,
  create: (name, config, ctx) => new WebhookProvider(name, config, { now: () => ctx.clock.now() }),
};
