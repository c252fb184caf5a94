// A worked example of a provider type: sends a text message through an HTTP SMS API.
// docs/providers.md#writing-a-provider walks through it; test/example-provider.test.ts runs the
// shared provider test kit against it with a real loopback server.
import { request } from 'undici';
import { Type, type Static } from 'typebox';
import {
  ProviderError,
  compileText,
  maskHeaders,
  signalError,
  templateView,
  type Action,
  type ExecuteContext,
  type Provider,
  type ProviderPreview,
  type ProviderResponse,
  type ProviderType,
} from '../../src/index.js';

// 1. The config block: a JSON Schema (TypeBox). Policy keys (retry, timeout, ...) are not listed:
//    the executor takes them out before this schema sees the block.
export const SmsConfigSchema = Type.Object(
  {
    type: Type.Literal('sms'),
    apiUrl: Type.String({ pattern: '^https?://', description: 'The SMS API endpoint.' }),
    apiKey: Type.String({ minLength: 1, description: 'Use ${SMS_API_KEY}.' }),
    from: Type.String({ minLength: 1, description: 'Sender number or name.' }),
    to: Type.Optional(Type.String({ description: 'Template. Default {{payload.to}}.' })),
    text: Type.Optional(Type.String({ description: 'Template. Default {{payload.text}}.' })),
  },
  { additionalProperties: false },
);
type SmsConfig = Static<typeof SmsConfigSchema>;

export class SmsProvider implements Provider {
  readonly type = 'sms';
  // 2. Templates are compiled once; a typo such as {{paylod.to}} fails at load.
  private readonly to;
  private readonly text;

  constructor(
    readonly name: string,
    private readonly config: SmsConfig,
  ) {
    this.to = compileText(config.to ?? '{{payload.to}}', `providers.${name}.to`);
    this.text = compileText(config.text ?? '{{payload.text}}', `providers.${name}.text`);
  }

  private render(action: Action, attempt = 1) {
    const view = templateView(action, attempt);
    const to = this.to(view);
    if (to === '') {
      // Terminal: no retry will invent a recipient.
      throw new ProviderError('SY_ERR_TEMPLATE', `provider "${this.name}": no recipient`, {
        transient: false,
      });
    }
    const headers = {
      authorization: `Bearer ${this.config.apiKey}`,
      'content-type': 'application/json',
      // Lets the API drop a repeated attempt of the same action.
      'idempotency-key': action.id,
    };
    return { headers, body: { from: this.config.from, to, text: this.text(view) } };
  }

  // 3. execute: one attempt. Pass ctx.signal to the I/O; classify failures; never retry here.
  async execute(action: Action, ctx: ExecuteContext): Promise<ProviderResponse> {
    const { headers, body } = this.render(action, ctx.attempt);
    let res;
    try {
      res = await request(this.config.apiUrl, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: ctx.signal,
      });
    } catch (err) {
      if (ctx.signal.aborted) throw signalError(ctx.signal, err); // timeout or shutdown
      throw new ProviderError('SY_ERR_PROVIDER_NETWORK', `SMS API unreachable: ${String(err)}`, {
        transient: true,
        cause: err,
      });
    }
    const text = await res.body.text();
    const response: ProviderResponse = { status: res.statusCode, body: text };
    if (res.statusCode < 300) return response;
    const transient = res.statusCode === 429 || res.statusCode >= 500;
    const retryAfter = Number(res.headers['retry-after']);
    throw new ProviderError(
      'SY_ERR_PROVIDER_HTTP_STATUS',
      `SMS API answered HTTP ${res.statusCode}`,
      {
        transient,
        response,
        ...(Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter * 1000 } : {}),
      },
    );
  }

  // 4. preview: exactly what execute would send, secrets masked, nothing sent.
  preview(action: Action): ProviderPreview {
    const { headers, body } = this.render(action);
    return {
      kind: 'http',
      method: 'POST',
      url: this.config.apiUrl,
      headers: maskHeaders(headers),
      body,
    };
  }

  // 5. destination: for the audit trail; never a secret.
  destination(action: Action): string {
    return this.to(templateView(action));
  }
}

// 6. The type: what `type: sms` in a config means.
export const smsProviderType: ProviderType<SmsConfig> = {
  type: 'sms',
  description: 'Sends a text message through an HTTP SMS API.',
  configSchema: SmsConfigSchema,
  create: (name, config) => new SmsProvider(name, config),
};
