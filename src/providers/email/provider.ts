import nodemailer from 'nodemailer';
import type {
  NodemailerError,
  SMTPSentMessageInfo,
  SMTPTransportOptions,
  SendMailOptions,
  Transporter,
} from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser';
import { Type, type Static } from 'typebox';
import type { Logger } from 'pino';
import type { Action } from '../../core/action.js';
import { SyError } from '../../core/errors.js';
import type { ProviderResponse } from '../../core/outcome.js';
import { Duration } from '../../core/schema-types.js';
import { parseDuration } from '../../core/units.js';
import {
  ProviderError,
  maskHeaders,
  signalError,
  type ExecuteContext,
  type Provider,
  type ProviderPreview,
  type ProviderType,
} from '../provider.js';
import {
  compileText,
  compileValue,
  renderOrThrow,
  templateView,
  type TemplateView,
  type TextTemplate,
  type ValueTemplate,
} from '../template.js';

const AddressList = (description: string) =>
  Type.Union(
    [
      Type.String({ minLength: 1 }),
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 100 }),
    ],
    { description },
  );

export const EmailSmtpConfigSchema = Type.Object(
  {
    url: Type.Optional(
      Type.String({
        pattern: '^smtps?://',
        description:
          'Connection URL instead of host/port/secure: "smtp://user:pass@host:587" (smtps:// for implicit TLS).',
      }),
    ),
    host: Type.Optional(Type.String({ minLength: 1, description: 'SMTP server host name.' })),
    port: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65535,
        description: 'SMTP server port. Default 465 with `secure`, else 587.',
      }),
    ),
    secure: Type.Optional(
      Type.Boolean({ description: 'Implicit TLS from the first byte (port 465). Default false.' }),
    ),
    requireTLS: Type.Optional(
      Type.Boolean({
        description: 'Fail unless the server upgrades the connection with STARTTLS. Default false.',
      }),
    ),
    auth: Type.Optional(
      Type.Object(
        {
          user: Type.String({ minLength: 1, description: 'User name.' }),
          pass: Type.String({ description: 'Password; use ${ENV_VAR}.' }),
        },
        { additionalProperties: false },
      ),
    ),
    pool: Type.Optional(
      Type.Boolean({ description: 'Reuse connections across messages. Default true.' }),
    ),
    maxConnections: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'Most pooled connections open at once. Default 5.',
      }),
    ),
    connectionTimeout: Type.Optional(
      Duration('Time to connect and get the greeting (and STARTTLS). Default 2m.'),
    ),
  },
  { additionalProperties: false },
);
export type EmailSmtpConfig = Static<typeof EmailSmtpConfigSchema>;

export const EmailProviderConfigSchema = Type.Object(
  {
    type: Type.Literal('email'),
    smtp: EmailSmtpConfigSchema,
    from: Type.Optional(
      Type.String({ minLength: 1, description: 'Sender template. Default {{payload.from}}.' }),
    ),
    to: Type.Optional(AddressList('Recipient template(s). Default {{payload.to}}.')),
    cc: Type.Optional(AddressList('Cc recipient template(s). Default none.')),
    bcc: Type.Optional(AddressList('Bcc recipient template(s). Default none.')),
    replyTo: Type.Optional(AddressList('Reply-To template(s). Default none.')),
    subject: Type.Optional(
      Type.String({ description: 'Subject template. Default {{payload.subject}}.' }),
    ),
    text: Type.Optional(
      Type.String({ description: 'Plain-text body template. Default {{payload.text}}.' }),
    ),
    html: Type.Optional(
      Type.String({ description: 'HTML body template. Default {{payload.html}}.' }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: 'Extra message headers (values are templates).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type EmailProviderConfig = Static<typeof EmailProviderConfigSchema>;

/** Headers the provider writes itself; `headers` may not set them. */
const RESERVED_HEADERS = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'sender',
  'date',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'x-switchyard-action-id',
  'x-switchyard-action-type',
  'x-switchyard-attempt',
]);

/** RFC 5322 field name: printable ASCII except the colon. */
const HEADER_NAME = /^[!-9;-~]+$/;
const ADDRESS = /^[^\s@<>]+@[^\s@<>]+$/;

export const ACTION_ID_HEADER = 'X-Switchyard-Action-Id';
export const ACTION_TYPE_HEADER = 'X-Switchyard-Action-Type';
export const ATTEMPT_HEADER = 'X-Switchyard-Attempt';

export interface EmailAddress {
  name: string;
  address: string;
}

/** One message, rendered for one action: what `execute` sends and `preview` shows. */
export interface RenderedEmail {
  from: EmailAddress;
  to: EmailAddress[];
  cc: EmailAddress[];
  bcc: EmailAddress[];
  replyTo: EmailAddress[];
  subject: string;
  text: string | undefined;
  html: string | undefined;
  /** Extra headers plus the X-Switchyard-* ones (Reply-To is in `replyTo`). */
  headers: Record<string, string>;
}

/**
 * Sends each action as one email over SMTP (nodemailer). The transport is built once per
 * provider and, by default, keeps a pool of connections. Templates (Mustache, see template.ts)
 * are compiled when the provider is built; a template that renders no usable address fails the
 * action with SY_ERR_TEMPLATE before any connection is made.
 */
export class EmailProvider implements Provider {
  readonly type = 'email';
  private readonly transport: Transporter<SMTPSentMessageInfo, SMTPTransportOptions>;
  private readonly logger: Logger | undefined;
  private readonly from: ValueTemplate;
  private readonly to: ValueTemplate[];
  private readonly cc: ValueTemplate[];
  private readonly bcc: ValueTemplate[];
  private readonly replyTo: ValueTemplate[];
  private readonly subject: TextTemplate;
  private readonly text: TextTemplate;
  private readonly html: TextTemplate;
  private readonly headers: [string, TextTemplate][];

  constructor(
    readonly name: string,
    config: EmailProviderConfig,
    options: { logger?: Logger } = {},
  ) {
    const where = (key: string) => `providers.${name}.${key}`;
    this.logger = options.logger;
    this.from = compileValue(config.from ?? '{{payload.from}}', where('from'));
    this.to = compileList(config.to ?? '{{payload.to}}', where('to'));
    this.cc = compileList(config.cc, where('cc'));
    this.bcc = compileList(config.bcc, where('bcc'));
    this.replyTo = compileList(config.replyTo, where('replyTo'));
    this.subject = compileText(config.subject ?? '{{payload.subject}}', where('subject'));
    this.text = compileText(config.text ?? '{{payload.text}}', where('text'));
    this.html = compileText(config.html ?? '{{payload.html}}', where('html'));
    this.headers = Object.entries(config.headers ?? {}).map(([header, value]) => {
      const at = `${where('headers')}.${header}`;
      if (!HEADER_NAME.test(header)) {
        throw new SyError('SY_ERR_CONFIG_INVALID', `${at}: "${header}" is not a header name`, {
          field: at,
        });
      }
      if (RESERVED_HEADERS.has(header.toLowerCase())) {
        throw new SyError(
          'SY_ERR_CONFIG_INVALID',
          `${at}: ${header} is set by the provider (use from, to, cc, bcc, replyTo or subject)`,
          { field: at },
        );
      }
      return [header, compileText(value, at)];
    });
    this.transport = createTransport(name, config.smtp);
  }

  /** Renders the message for an action. Throws SY_ERR_TEMPLATE naming the template. */
  render(action: Action, attempt = 1): RenderedEmail {
    const view = templateView(action, attempt);
    const where = (key: string) => `providers.${this.name}.${key}`;
    const from = renderOrThrow(() => toAddresses(this.from(view), where('from')), where('from'));
    if (from.length !== 1) {
      throw new SyError(
        'SY_ERR_TEMPLATE',
        `${where('from')} must render exactly one address, got ${from.length}`,
        { template: where('from') },
      );
    }
    const { to, cc, bcc } = this.recipients(view);
    const headers: Record<string, string> = {};
    for (const [header, t] of this.headers) {
      headers[header] = renderOrThrow(() => t(view), `${where('headers')}.${header}`);
    }
    // Set last: a configured header cannot fake the identity a receiver deduplicates on.
    headers[ACTION_ID_HEADER] = action.id;
    headers[ACTION_TYPE_HEADER] = action.actionType;
    headers[ATTEMPT_HEADER] = String(attempt);
    const text = renderOrThrow(() => this.text(view), where('text'));
    const html = renderOrThrow(() => this.html(view), where('html'));
    return {
      from: from[0] as EmailAddress,
      to,
      cc,
      bcc,
      replyTo: this.addresses(this.replyTo, view, 'replyTo'),
      subject: renderOrThrow(() => this.subject(view), where('subject')),
      text: text === '' ? undefined : text,
      html: html === '' ? undefined : html,
      headers,
    };
  }

  private addresses(templates: ValueTemplate[], view: TemplateView, key: string): EmailAddress[] {
    const where = `providers.${this.name}.${key}`;
    return renderOrThrow(() => templates.flatMap((t) => toAddresses(t(view), where)), where);
  }

  /** to, cc and bcc; at least one address among them, else SY_ERR_TEMPLATE. */
  private recipients(view: TemplateView): Pick<RenderedEmail, 'to' | 'cc' | 'bcc'> {
    const to = this.addresses(this.to, view, 'to');
    const cc = this.addresses(this.cc, view, 'cc');
    const bcc = this.addresses(this.bcc, view, 'bcc');
    if (to.length + cc.length + bcc.length === 0) {
      const where = `providers.${this.name}.to`;
      throw new SyError('SY_ERR_TEMPLATE', `${where} renders no recipient (nor do cc and bcc)`, {
        template: where,
      });
    }
    return { to, cc, bcc };
  }

  async execute(action: Action, ctx: ExecuteContext): Promise<ProviderResponse> {
    if (ctx.signal.aborted) throw signalError(ctx.signal);
    let mail: RenderedEmail;
    try {
      mail = this.render(action, ctx.attempt);
    } catch (err) {
      // A template failure is the action's fault: no retry will render it differently.
      if (err instanceof SyError) {
        throw new ProviderError(err.code, err.message, { transient: false, cause: err });
      }
      throw err;
    }
    let info: SMTPSentMessageInfo;
    try {
      info = await this.send(mail, ctx.signal);
    } catch (err) {
      if (ctx.signal.aborted) throw signalError(ctx.signal, err);
      throw smtpProviderError(this.name, err);
    }
    const accepted = info.accepted ?? [];
    const rejected = info.rejected ?? [];
    if (rejected.length > 0) {
      this.logger?.warn(
        {
          actionId: action.id,
          provider: this.name,
          accepted: accepted.length,
          rejected: rejected.length,
        },
        'email recipients rejected',
      );
    }
    return {
      status: smtpCode(info.response) ?? 250,
      body: { messageId: info.messageId, accepted, rejected, response: info.response },
    };
  }

  preview(action: Action): ProviderPreview {
    const mail = this.render(action);
    const headers: Record<string, string> = {};
    if (mail.replyTo.length > 0) headers['Reply-To'] = mail.replyTo.map(formatAddress).join(', ');
    Object.assign(headers, mail.headers);
    const preview: ProviderPreview = {
      kind: 'email',
      from: formatAddress(mail.from),
      to: mail.to.map(formatAddress),
      subject: mail.subject,
      headers: maskHeaders(headers),
    };
    if (mail.cc.length > 0) preview.cc = mail.cc.map(formatAddress);
    if (mail.bcc.length > 0) preview.bcc = mail.bcc.map(formatAddress);
    if (mail.text !== undefined) preview.text = mail.text;
    if (mail.html !== undefined) preview.html = mail.html;
    return preview;
  }

  /** Every envelope recipient (to, cc and bcc), comma-separated; undefined when none renders. */
  destination(action: Action): string | undefined {
    try {
      const { to, cc, bcc } = this.recipients(templateView(action));
      return [...to, ...cc, ...bcc].map((a) => a.address).join(', ');
    } catch {
      return undefined;
    }
  }

  /**
   * Closes the transport: idle pooled connections at once; a connection delivering a message
   * finishes that delivery first (nodemailer's pool semantics), then closes.
   */
  close(): Promise<void> {
    this.transport.close();
    return Promise.resolve();
  }

  /**
   * Sends with `signal`: nodemailer (≥ 10.5) drops a queued message or closes the pooled
   * connection delivering it when the signal fires. The race below guarantees the call returns
   * as soon as the signal fires even if a send path did not watch it.
   */
  private send(mail: RenderedEmail, signal: AbortSignal): Promise<SMTPSentMessageInfo> {
    const options: SendMailOptions = {
      from: mail.from,
      to: mail.to,
      subject: mail.subject,
      headers: mail.headers,
      signal,
    };
    if (mail.cc.length > 0) options.cc = mail.cc;
    if (mail.bcc.length > 0) options.bcc = mail.bcc;
    if (mail.replyTo.length > 0) options.replyTo = mail.replyTo;
    if (mail.text !== undefined) options.text = mail.text;
    if (mail.html !== undefined) options.html = mail.html;
    if (mail.text === undefined && mail.html === undefined) options.text = '';
    return new Promise<SMTPSentMessageInfo>((resolve, reject) => {
      const onAbort = () => reject(signalError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      this.transport
        .sendMail(options)
        .then(resolve, reject)
        .finally(() => signal.removeEventListener('abort', onAbort));
    });
  }
}

function compileList(value: string | string[] | undefined, where: string): ValueTemplate[] {
  if (value === undefined) return [];
  if (typeof value === 'string') return [compileValue(value, where)];
  return value.map((v, i) => compileValue(v, `${where}[${i}]`));
}

function clip(text: string, max = 200): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

/**
 * Turns what an address template rendered into addresses: a string (one address or a
 * comma-separated list, "Name <a@b>" allowed), an array of those, or `{ name?, address }`
 * objects. Null, undefined and "" are no address. Anything else is SY_ERR_TEMPLATE.
 */
export function toAddresses(value: unknown, where: string): EmailAddress[] {
  const out: EmailAddress[] = [];
  const bad = (what: string): never => {
    throw new SyError('SY_ERR_TEMPLATE', `${where} renders ${what}, not an email address`, {
      template: where,
    });
  };
  const add = (name: unknown, address: unknown): void => {
    const a = typeof address === 'string' ? address.trim() : '';
    const n = typeof name === 'string' ? name.trim() : '';
    if (!ADDRESS.test(a)) bad(JSON.stringify(clip(a === '' ? n : a)));
    out.push({ name: n, address: a });
  };
  const visit = (v: unknown, depth: number): void => {
    if (v === undefined || v === null || v === '') return;
    if (typeof v === 'string') {
      if (v.trim() === '') return;
      for (const a of addressparser(v, { flatten: true })) add(a.name, a.address);
      return;
    }
    if (Array.isArray(v) && depth === 0) {
      for (const item of v) visit(item, depth + 1);
      return;
    }
    if (typeof v === 'object' && !Array.isArray(v) && 'address' in v) {
      const o = v as { name?: unknown; address?: unknown };
      add(o.name, o.address);
      return;
    }
    bad(Array.isArray(v) ? 'a nested list' : typeof v === 'object' ? 'an object' : String(v));
  };
  visit(value, 0);
  return out;
}

/** `Name <a@b>` (name quoted when needed) or the bare address. */
export function formatAddress(a: EmailAddress): string {
  if (a.name === '') return a.address;
  const name = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/.test(a.name)
    ? a.name
    : `"${a.name.replace(/["\\]/g, '\\$&')}"`;
  return `${name} <${a.address}>`;
}

/** The reply code at the start of an SMTP response ("250 2.0.0 OK" → 250). */
function smtpCode(response: string | undefined): number | undefined {
  const m = /^([2-5]\d\d)\b/.exec(response ?? '');
  return m === null ? undefined : Number(m[1]);
}

/**
 * A reply the same message would get again: every 5yz except 503 (bad sequence of commands,
 * a session-state problem a new connection may not have), as nodemailer's
 * `isPermanentResponseCode`. 4yz and anything else may succeed later.
 */
export function isPermanentSmtpCode(code: number): boolean {
  return code >= 500 && code < 600 && code !== 503;
}

const NETWORK_CODES = new Set([
  'ECONNECTION',
  'ESOCKET',
  'EDNS',
  'ETLS',
  'EPROXY',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** Failures of configuration or of the message itself: another attempt gets the same answer. */
const TERMINAL_CODES = new Set([
  'EAUTH',
  'ENOAUTH',
  'EOAUTH2',
  'ECONFIG',
  'EENVELOPE',
  'EMAXRECIPIENTS',
  'EREQUIRETLS',
  'EMESSAGE',
]);

/**
 * Classifies a nodemailer failure. SMTP replies: 5yz (but 503) → SY_ERR_PROVIDER_REJECTED,
 * terminal; 4yz and 503 → SY_ERR_PROVIDER_FAILED, transient. When every recipient was refused
 * the failure is transient if any refusal was. No reply: connection problems →
 * SY_ERR_PROVIDER_NETWORK (a greeting or socket timeout → SY_ERR_PROVIDER_TIMEOUT), transient;
 * authentication and configuration problems → SY_ERR_PROVIDER_FAILED, terminal.
 */
export function smtpProviderError(provider: string, err: unknown): ProviderError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as NodemailerError;
  const message = err instanceof Error ? err.message : String(err);
  const code = typeof e.code === 'string' ? e.code : undefined;
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const reply = typeof e.response === 'string' ? clip(e.response, 500) : undefined;
  const command = typeof e.command === 'string' ? e.command : undefined;
  const response = (body: Record<string, unknown>): ProviderResponse | undefined =>
    responseCode === undefined ? undefined : { status: responseCode, body };

  const refusals = Array.isArray(e.rejectedErrors) ? e.rejectedErrors : [];
  if (refusals.length > 0) {
    const transient = refusals.some(
      (r) => typeof r.responseCode !== 'number' || !isPermanentSmtpCode(r.responseCode),
    );
    const detail = refusals
      .map((r) => `${r.recipient ?? '?'}: ${clip(r.response ?? r.message, 300)}`)
      .join('; ');
    const res = response({ response: reply, command, rejected: e.rejected ?? [] });
    return new ProviderError(
      transient ? 'SY_ERR_PROVIDER_FAILED' : 'SY_ERR_PROVIDER_REJECTED',
      `provider "${provider}": the SMTP server refused every recipient (${detail})`,
      { transient, response: res, cause: err },
    );
  }

  if (responseCode !== undefined && responseCode >= 400) {
    const transient = !isPermanentSmtpCode(responseCode);
    const res = response({ response: reply, command });
    return new ProviderError(
      transient ? 'SY_ERR_PROVIDER_FAILED' : 'SY_ERR_PROVIDER_REJECTED',
      `provider "${provider}": the SMTP server answered ${reply ?? responseCode}${command === undefined ? '' : ` to ${command}`}`,
      { transient, response: res, cause: err },
    );
  }

  const original = typeof e.originalCode === 'string' ? e.originalCode : undefined;
  const named = (c: string | undefined) => (c !== undefined && !message.includes(c) ? `${c} ` : '');
  if (code === 'ETIMEDOUT' && e.timeoutType !== 'CONNECT_TIMEOUT') {
    return new ProviderError(
      'SY_ERR_PROVIDER_TIMEOUT',
      `provider "${provider}": the SMTP server did not answer in time: ${clip(message, 500)}`,
      { transient: true, cause: err },
    );
  }
  if (
    code === 'ETIMEDOUT' ||
    (code !== undefined && NETWORK_CODES.has(code)) ||
    (original !== undefined && NETWORK_CODES.has(original))
  ) {
    return new ProviderError(
      'SY_ERR_PROVIDER_NETWORK',
      `provider "${provider}": the SMTP server could not be reached: ${named(original ?? code)}${clip(message, 500)}`,
      { transient: true, cause: err },
    );
  }
  const terminal = code !== undefined && TERMINAL_CODES.has(code);
  return new ProviderError(
    'SY_ERR_PROVIDER_FAILED',
    `provider "${provider}": sending failed: ${named(code)}${clip(message, 500)}`,
    { transient: !terminal, cause: err },
  );
}

interface SmtpTarget {
  host: string;
  port: number;
  secure: boolean;
  auth: { user: string; pass: string } | undefined;
}

/** host/port/secure/auth from `smtp`, either spelled out or as a URL. Throws SY_ERR_CONFIG_INVALID. */
export function resolveSmtpTarget(provider: string, smtp: EmailSmtpConfig): SmtpTarget {
  const field = (key: string) => `providers.${provider}.smtp${key === '' ? '' : `.${key}`}`;
  const invalid = (key: string, message: string): never => {
    throw new SyError('SY_ERR_CONFIG_INVALID', `${field(key)} ${message}`, { field: field(key) });
  };
  if (smtp.url === undefined) {
    if (smtp.host === undefined) return invalid('', 'needs either host or url');
    const secure = smtp.secure ?? false;
    return { host: smtp.host, port: smtp.port ?? (secure ? 465 : 587), secure, auth: smtp.auth };
  }
  for (const key of ['host', 'port', 'secure'] as const) {
    if (smtp[key] !== undefined) invalid(key, 'cannot be combined with url (the URL holds it)');
  }
  let url: URL;
  try {
    url = new URL(smtp.url);
  } catch {
    // Never echo the URL: it may hold a password.
    return invalid('url', 'is not a valid URL');
  }
  if (url.hostname === '') invalid('url', 'has no host');
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    invalid('url', 'takes no path, query or fragment (use the other smtp keys)');
  }
  const secure = url.protocol === 'smtps:';
  let auth = smtp.auth;
  if (url.username !== '' || url.password !== '') {
    if (auth !== undefined) invalid('auth', 'cannot be combined with credentials in url');
    try {
      auth = { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };
    } catch {
      return invalid('url', 'has badly percent-encoded credentials');
    }
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host: hostname,
    port: url.port === '' ? (secure ? 465 : 587) : Number(url.port),
    secure,
    auth,
  };
}

function createTransport(
  provider: string,
  smtp: EmailSmtpConfig,
): Transporter<SMTPSentMessageInfo, SMTPTransportOptions> {
  const target = resolveSmtpTarget(provider, smtp);
  const pool = smtp.pool ?? true;
  if (!pool && smtp.maxConnections !== undefined) {
    const field = `providers.${provider}.smtp.maxConnections`;
    throw new SyError('SY_ERR_CONFIG_INVALID', `${field} needs pool: true`, { field });
  }
  const options: SMTPTransportOptions = {
    host: target.host,
    port: target.port,
    secure: target.secure,
    requireTLS: smtp.requireTLS ?? false,
    logger: false,
    // Message content comes from actions: never let it name a local file or a URL to fetch.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
  if (target.auth !== undefined) options.auth = { user: target.auth.user, pass: target.auth.pass };
  const timeout = parseDuration(smtp.connectionTimeout);
  if (timeout !== undefined) options.connectionTimeout = timeout;
  if (!pool) return nodemailer.createTransport(options);
  return nodemailer.createTransport({
    ...options,
    pool: true,
    maxConnections: smtp.maxConnections ?? 5,
  });
}

export const emailProviderType: ProviderType<EmailProviderConfig> = {
  type: 'email',
  description: 'Sends each action as an email over SMTP with a pooled nodemailer transport.',
  configSchema: EmailProviderConfigSchema,
  create: (name, config, ctx) => new EmailProvider(name, config, { logger: ctx.logger }),
};
