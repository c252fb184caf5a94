import { HttpConnectionConfig } from '../http/config.js';
import { Type, type Static } from 'typebox';
import type { Action } from '../../core/action.js';
import type { ProviderResponse } from '../../core/outcome.js';
import { parseSize } from '../../core/units.js';
import type { ExecuteContext, Provider, ProviderPreview, ProviderType } from '../provider.js';
import { compileText, templateView, type TemplateView, type TextTemplate } from '../template.js';
import {
  compileJson,
  compileUrl,
  renderTemplate,
  templateError,
  type UrlTemplate,
} from '../http/request-template.js';
import { HttpTransport, type HttpTransportOptions } from '../http/transport.js';
import type { ValueTemplate } from '../template.js';

export const SlackProviderConfigSchema = Type.Object(
  {
    type: Type.Literal('slack'),
    url: Type.String({
      pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
      maxLength: 8192,
      description: 'The Slack incoming-webhook URL, usually ${SLACK_WEBHOOK_URL}.',
    }),
    text: Type.Optional(
      Type.String({
        description:
          'Message text template (Slack mrkdwn). Default: the payload\'s "text", else its "message".',
      }),
    ),
    blocks: Type.Optional(
      Type.Union([Type.Array(Type.Unknown()), Type.String()], {
        description:
          'Block Kit blocks: an array whose strings are templates, or "{{payload.blocks}}" to take them from the action.',
      }),
    ),
    username: Type.Optional(Type.String({ description: 'Sender name override (template).' })),
    iconEmoji: Type.Optional(
      Type.String({ description: 'Sender icon override, e.g. ":rotating_light:" (template).' }),
    ),
    channel: Type.Optional(
      Type.String({
        description:
          'Channel override (template); only legacy webhooks honour it, app webhooks post to their own channel.',
      }),
    ),
    ...HttpConnectionConfig,
  },
  { additionalProperties: false },
);
export type SlackProviderConfig = Static<typeof SlackProviderConfigSchema>;

export interface SlackProviderOptions {
  /** Epoch ms for Retry-After dates. Default Date.now. */
  now?: () => number;
  /** Tests only: see HttpTransportOptions.connector. */
  connector?: HttpTransportOptions['connector'];
}

/** The longest part of Slack's error text quoted in a failure message. */
const DETAIL_MAX = 200;

function defaultText(view: TemplateView): string {
  const payload = view.payload as Record<string, unknown> | null;
  const text = payload?.text ?? payload?.message;
  return typeof text === 'string' ? text : '';
}

/**
 * Posts a message to a Slack incoming webhook. Slack answers 200 "ok"; a 4xx with a short error
 * ("invalid_payload", "no_text", "channel_not_found", ...) is terminal and the error is named in
 * the failure; 429 (with Retry-After) and 5xx are transient.
 */
export class SlackProvider implements Provider {
  readonly type = 'slack';
  private readonly transport: HttpTransport;
  private readonly url: UrlTemplate;
  private readonly text: TextTemplate;
  private readonly blocks: ValueTemplate | undefined;
  private readonly extras: [string, TextTemplate][];
  private readonly where: string;

  constructor(
    readonly name: string,
    config: SlackProviderConfig,
    options: SlackProviderOptions = {},
  ) {
    const where = (this.where = `providers.${name}`);
    this.url = compileUrl(config.url, `${where}.url`);
    this.text = config.text === undefined ? defaultText : compileText(config.text, `${where}.text`);
    this.blocks =
      config.blocks === undefined ? undefined : compileJson(config.blocks, `${where}.blocks`);
    this.extras = [];
    const extra: [string, string | undefined, string][] = [
      ['username', config.username, 'username'],
      ['icon_emoji', config.iconEmoji, 'iconEmoji'],
      ['channel', config.channel, 'channel'],
    ];
    for (const [field, template, key] of extra) {
      if (template !== undefined)
        this.extras.push([field, compileText(template, `${where}.${key}`)]);
    }
    this.transport = new HttpTransport({
      name,
      connections: config.connections,
      allowPrivateNetworks: config.allowPrivateNetworks ?? false,
      maxResponseSize: parseSize(config.maxResponseSize),
      now: options.now,
      connector: options.connector,
    });
  }

  async execute(action: Action, ctx: ExecuteContext): Promise<ProviderResponse> {
    const { url, message } = this.build(action, ctx.attempt);
    const result = await this.transport.request({
      url,
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(message),
      signal: ctx.signal,
    });
    const body = result.response.body;
    const detail =
      typeof body === 'string'
        ? body.slice(0, DETAIL_MAX)
        : body === undefined
          ? undefined
          : JSON.stringify(body).slice(0, DETAIL_MAX);
    return this.transport.expectOk(result, detail);
  }

  preview(action: Action): ProviderPreview {
    const { url, message } = this.build(action, 1);
    return {
      kind: 'http',
      method: 'POST',
      url: maskWebhookUrl(url),
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: message,
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

  private build(action: Action, attempt: number): { url: URL; message: Record<string, unknown> } {
    const view = templateView(action, attempt);
    const url = this.url(view);
    const message: Record<string, unknown> = {};
    const text = renderTemplate(() => this.text(view), `${this.where}.text`);
    if (text !== '') message.text = text;
    if (this.blocks !== undefined) {
      const blocks = this.blocks(view);
      if (blocks !== undefined && blocks !== null) {
        if (!Array.isArray(blocks)) {
          throw templateError(`${this.where}.blocks`, 'blocks must render to an array');
        }
        message.blocks = blocks;
      }
    }
    if (message.text === undefined && message.blocks === undefined) {
      throw templateError(
        `${this.where}.text`,
        'the message has no text: set `text` in the provider config or send payload.text or payload.message',
      );
    }
    for (const [field, template] of this.extras) {
      const value = renderTemplate(() => template(view), `${this.where}.${field}`);
      if (value !== '') message[field] = value;
    }
    return { url, message };
  }
}

/** A Slack webhook URL's path is its secret: keep the first segment only. */
function maskWebhookUrl(url: URL): string {
  const first = url.pathname.split('/').filter((s) => s !== '')[0];
  return `${url.origin}/${first === undefined ? '' : `${first}/`}***`;
}

export const slackProviderType: ProviderType<SlackProviderConfig> = {
  type: 'slack',
  description:
    'Posts a message (text, Block Kit blocks) to a Slack incoming webhook over the shared HTTP transport.',
  configSchema: SlackProviderConfigSchema,
  create: (name, config, ctx) => new SlackProvider(name, config, { now: () => ctx.clock.now() }),
};
