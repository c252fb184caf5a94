import { afterEach, describe, expect, it, vi } from 'vitest';
import { ajv } from '../../core/validate.js';
import type { Action } from '../../core/action.js';
import { SyError } from '../../core/errors.js';
import { ProviderError } from '../provider.js';
import { describeProvider, testAction, testContext } from '../testkit.js';
import {
  EmailProvider,
  EmailProviderConfigSchema,
  emailProviderType,
  isPermanentSmtpCode,
  resolveSmtpTarget,
  smtpProviderError,
  toAddresses,
  type EmailProviderConfig,
} from './provider.js';
import {
  header,
  part,
  startSilentServer,
  startSmtpServer,
  type FakeSmtpServer,
  type SilentServer,
} from './test-server.js';

const payload = {
  from: 'Ops <ops@example.com>',
  to: 'dev@example.com',
  subject: 'Disk almost full',
  text: 'db1 is at 91%',
};

function smtpOf(server: { port: number }): EmailProviderConfig['smtp'] {
  return { host: '127.0.0.1', port: server.port };
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected a ProviderError');
}

describeProvider({
  name: 'email',
  action: { payload },
  setup: async () => {
    const okServer = await startSmtpServer();
    const transientServer = await startSmtpServer({ rcpt: () => [451, '4.3.0 try again later'] });
    const terminalServer = await startSmtpServer({ rcpt: () => [550, '5.1.1 no such user'] });
    const silent = await startSilentServer();
    const make = (port: number) =>
      new EmailProvider('mail', { type: 'email', smtp: { host: '127.0.0.1', port } });
    const providers = {
      ok: make(okServer.port),
      transient: make(transientServer.port),
      terminal: make(terminalServer.port),
      hang: make(silent.port),
    };
    return {
      ...providers,
      received: () =>
        okServer.transactions() +
        transientServer.transactions() +
        terminalServer.transactions() +
        silent.connections(),
      close: async () => {
        await Promise.all(Object.values(providers).map((p) => p.close()));
        await Promise.all([
          okServer.close(),
          transientServer.close(),
          terminalServer.close(),
          silent.close(),
        ]);
      },
    };
  },
});

describe('email provider', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    // Providers first (they hold pooled connections), then the servers.
    for (const close of cleanup.splice(0).reverse()) await close();
  });
  async function server(options?: Parameters<typeof startSmtpServer>[0]): Promise<FakeSmtpServer> {
    const s = await startSmtpServer(options);
    cleanup.push(() => s.close());
    return s;
  }
  async function silentServer(): Promise<SilentServer> {
    const s = await startSilentServer();
    cleanup.push(() => s.close());
    return s;
  }
  function provider(config: Omit<EmailProviderConfig, 'type'>, name = 'mail'): EmailProvider {
    const p = new EmailProvider(name, { type: 'email', ...config });
    cleanup.push(() => p.close());
    return p;
  }
  const action = (overrides: Partial<Action> = {}): Action =>
    testAction({ id: 'act-1', actionType: 'alert', payload, ...overrides });

  it('sends headers, both bodies and the action id; bcc only in the envelope', async () => {
    const s = await server();
    const p = provider({
      smtp: smtpOf(s),
      from: 'Switchyard <noreply@example.com>',
      to: ['{{payload.owner}}', 'Team Lead <lead@example.com>'],
      cc: '{{payload.cc}}',
      bcc: 'audit@example.com',
      replyTo: 'support@example.com',
      subject: '[{{tenant}}] {{payload.host}} is down',
      text: '{{payload.host}} stopped answering at {{receivedAt}}',
      html: '<p><b>{{payload.host}}</b> is down</p>',
      headers: { 'X-Priority': '1', 'X-Host': '{{payload.host}}' },
    });
    const res = await p.execute(
      action({
        payload: {
          owner: 'owner@example.com',
          cc: ['a@example.com', 'b@example.com'],
          host: 'db1',
        },
      }),
      testContext(2),
    );

    expect(res.status).toBe(250);
    const body = res.body as Record<string, unknown>;
    expect(body.messageId).toMatch(/^<.+@example\.com>$/);
    expect(body.accepted).toEqual([
      'owner@example.com',
      'lead@example.com',
      'a@example.com',
      'b@example.com',
      'audit@example.com',
    ]);
    expect(body.rejected).toEqual([]);
    expect(body.response).toMatch(/^250 /);

    expect(s.mails).toHaveLength(1);
    const mail = s.mails[0];
    expect(mail?.from).toBe('noreply@example.com');
    expect(mail?.to).toEqual([
      'owner@example.com',
      'lead@example.com',
      'a@example.com',
      'b@example.com',
      'audit@example.com',
    ]);
    const raw = mail?.raw ?? '';
    expect(header(raw, 'from')).toBe('Switchyard <noreply@example.com>');
    expect(header(raw, 'to')).toBe('owner@example.com, Team Lead <lead@example.com>');
    expect(header(raw, 'cc')).toBe('a@example.com, b@example.com');
    expect(header(raw, 'bcc')).toBeUndefined();
    expect(raw).not.toContain('audit@example.com');
    expect(header(raw, 'reply-to')).toBe('support@example.com');
    expect(header(raw, 'subject')).toBe('[acme] db1 is down');
    expect(header(raw, 'x-switchyard-action-id')).toBe('act-1');
    expect(header(raw, 'x-switchyard-action-type')).toBe('alert');
    expect(header(raw, 'x-switchyard-attempt')).toBe('2');
    expect(header(raw, 'x-priority')).toBe('1');
    expect(header(raw, 'x-host')).toBe('db1');
    expect(header(raw, 'message-id')).toBe(body.messageId);
    expect(part(raw, 'text/plain')).toBe('db1 stopped answering at 2026-01-05T12:00:00.000Z');
    expect(part(raw, 'text/html')).toBe('<p><b>db1</b> is down</p>');
  });

  it('takes from, to (a string or a list), subject, text and html from the payload by default', async () => {
    const s = await server();
    const p = provider({ smtp: smtpOf(s) });
    await p.execute(action(), testContext());
    await p.execute(
      action({
        payload: {
          from: { name: 'Ops', address: 'ops@example.com' },
          to: ['x@example.com', { name: 'Why Not', address: 'y@example.com' }],
          subject: 'Both',
          html: '<i>only html</i>',
        },
      }),
      testContext(),
    );
    const [first, second] = s.mails;
    expect(first?.from).toBe('ops@example.com');
    expect(first?.to).toEqual(['dev@example.com']);
    expect(header(first?.raw ?? '', 'from')).toBe('Ops <ops@example.com>');
    expect(header(first?.raw ?? '', 'subject')).toBe('Disk almost full');
    expect(part(first?.raw ?? '', 'text/plain')).toBe('db1 is at 91%');
    expect(part(first?.raw ?? '', 'text/html')).toBeUndefined();
    expect(second?.to).toEqual(['x@example.com', 'y@example.com']);
    expect(header(second?.raw ?? '', 'from')).toBe('Ops <ops@example.com>');
    expect(header(second?.raw ?? '', 'to')).toBe('x@example.com, Why Not <y@example.com>');
    expect(part(second?.raw ?? '', 'text/html')).toBe('<i>only html</i>');
    expect(part(second?.raw ?? '', 'text/plain')).toBeUndefined();
  });

  it('reuses one pooled connection for consecutive messages', async () => {
    const s = await server();
    const p = provider({ smtp: smtpOf(s) });
    for (let i = 0; i < 3; i++) await p.execute(action(), testContext());
    expect(s.mails).toHaveLength(3);
    expect(s.connections()).toBe(1);
  });

  it('also sends without a pool (one connection per message)', async () => {
    const s = await server();
    const p = provider({ smtp: { ...smtpOf(s), pool: false } });
    await p.execute(action(), testContext());
    await p.execute(action(), testContext());
    expect(s.mails).toHaveLength(2);
    expect(s.connections()).toBe(2);
  });

  it('succeeds when some recipients are refused, and names them in the response', async () => {
    const s = await server({
      rcpt: (a) => (a.startsWith('gone') ? [550, '5.1.1 mailbox unavailable'] : undefined),
    });
    const p = provider({ smtp: smtpOf(s), to: ['ok@example.com', 'gone@example.com'] });
    const res = await p.execute(action(), testContext());
    expect(res.status).toBe(250);
    expect(res.body).toMatchObject({
      accepted: ['ok@example.com'],
      rejected: ['gone@example.com'],
    });
    expect(s.mails[0]?.to).toEqual(['ok@example.com']);
  });

  it.each([
    ['RCPT 451', { rcpt: () => [451, '4.3.0 try again later'] as [number, string] }, 451, true],
    ['RCPT 452', { rcpt: () => [452, '4.5.3 too many recipients'] as [number, string] }, 452, true],
    ['RCPT 550', { rcpt: () => [550, '5.1.1 no such user'] as [number, string] }, 550, false],
    ['RCPT 553', { rcpt: () => [553, '5.1.3 bad address syntax'] as [number, string] }, 553, false],
    ['DATA 451', { data: () => [451, '4.7.1 greylisted'] as [number, string] }, 451, true],
    ['DATA 554', { data: () => [554, '5.7.1 spam'] as [number, string] }, 554, false],
  ])('classifies a %s refusal', async (_label, options, status, transient) => {
    const s = await server(options);
    const p = provider({ smtp: smtpOf(s) });
    const err = await failure(p.execute(action(), testContext()));
    expect(err.transient).toBe(transient);
    expect(err.code).toBe(transient ? 'SY_ERR_PROVIDER_FAILED' : 'SY_ERR_PROVIDER_REJECTED');
    expect(err.response?.status).toBe(status);
    expect(err.message).toContain(String(status));
    expect(s.mails).toHaveLength(0);
  });

  it('is transient when every recipient is refused but one only for now', async () => {
    const s = await server({
      rcpt: (a) => (a.startsWith('later') ? [451, '4.2.0 later'] : [550, '5.1.1 unknown']),
    });
    const p = provider({ smtp: smtpOf(s), to: ['never@example.com', 'later@example.com'] });
    const err = await failure(p.execute(action(), testContext()));
    expect(err.transient).toBe(true);
    expect(err.message).toContain('never@example.com: 550 5.1.1 unknown');
    expect(err.message).toContain('later@example.com: 451 4.2.0 later');
  });

  it('keeps working after a refusal (the pooled connection is reset, not lost)', async () => {
    let refuse = true;
    const s = await server({ data: () => (refuse ? [451, '4.7.1 greylisted'] : undefined) });
    const p = provider({ smtp: smtpOf(s) });
    await failure(p.execute(action(), testContext()));
    refuse = false;
    await p.execute(action(), testContext());
    expect(s.mails).toHaveLength(1);
  });

  it('is a transient network error when the server cannot be reached', async () => {
    const s = await startSmtpServer();
    const port = s.port;
    await s.close();
    const p = provider({ smtp: { host: '127.0.0.1', port } });
    const err = await failure(p.execute(action(), testContext()));
    expect(err.code).toBe('SY_ERR_PROVIDER_NETWORK');
    expect(err.transient).toBe(true);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('times out on a server that never greets when connectionTimeout passes', async () => {
    const silent = await silentServer();
    const p = provider({ smtp: { host: '127.0.0.1', port: silent.port, connectionTimeout: 200 } });
    const err = await failure(p.execute(action(), testContext()));
    expect(err.code).toBe('SY_ERR_PROVIDER_TIMEOUT');
    expect(err.transient).toBe(true);
  });

  it('stops waiting on shutdown with SY_ERR_SHUTTING_DOWN and closes the stuck connection', async () => {
    const silent = await silentServer();
    const p = provider({ smtp: { host: '127.0.0.1', port: silent.port, maxConnections: 1 } });
    const abort = new AbortController();
    const pending = failure(p.execute(action(), { signal: abort.signal, attempt: 1 }));
    await vi.waitFor(() => expect(silent.open()).toBe(1));
    abort.abort();
    const err = await pending;
    expect(err.code).toBe('SY_ERR_SHUTTING_DOWN');
    expect(err.transient).toBe(true);
    // nodemailer closes the pooled connection that was delivering the cancelled message.
    await vi.waitFor(() => expect(silent.open()).toBe(0));
    // An already aborted signal fails before anything is sent.
    const again = await failure(p.execute(action(), { signal: abort.signal, attempt: 1 }));
    expect(again.code).toBe('SY_ERR_SHUTTING_DOWN');
    expect(silent.connections()).toBe(1);
  });

  it('authenticates with auth.user/auth.pass and with credentials in a URL', async () => {
    const s = await server({ auth: { user: 'mailer', pass: 'p@ss:w/rd' } });
    const a = provider({
      smtp: { ...smtpOf(s), auth: { user: 'mailer', pass: 'p@ss:w/rd' } },
    });
    await a.execute(action(), testContext());
    const b = provider({
      smtp: { url: `smtp://mailer:${encodeURIComponent('p@ss:w/rd')}@127.0.0.1:${s.port}` },
    });
    await b.execute(action(), testContext());
    expect(s.mails.map((m) => m.user)).toEqual(['mailer', 'mailer']);
  });

  it('fails for good on wrong credentials without naming the password', async () => {
    const s = await server({ auth: { user: 'mailer', pass: 'right' } });
    const p = provider({ smtp: { ...smtpOf(s), auth: { user: 'mailer', pass: 'wrong-secret' } } });
    const err = await failure(p.execute(action(), testContext()));
    expect(err.code).toBe('SY_ERR_PROVIDER_REJECTED');
    expect(err.transient).toBe(false);
    expect(err.response?.status).toBe(535);
    expect(err.message).toContain('535');
    expect(err.message).not.toContain('wrong-secret');
    expect(JSON.stringify(err.toJSON())).not.toContain('wrong-secret');
  });

  it.each([
    ['no recipient', { from: 'a@example.com', subject: 's' }, 'providers.mail.to', undefined],
    ['no sender', { to: 'b@example.com' }, 'providers.mail.from', 'b@example.com'],
    ['a non-address', { from: 'a@example.com', to: 'ops' }, 'providers.mail.to', undefined],
    [
      'a recipient object',
      { from: 'a@example.com', to: { id: 3 } },
      'providers.mail.to',
      undefined,
    ],
    [
      'two senders',
      { from: 'a@example.com, c@example.com', to: 'b@example.com' },
      'from',
      'b@example.com',
    ],
  ])(
    'fails with a terminal SY_ERR_TEMPLATE for %s, before connecting',
    async (_label, body, where, destination) => {
      const s = await server();
      const p = provider({ smtp: smtpOf(s) });
      const err = await failure(p.execute(action({ payload: body }), testContext()));
      expect(err.code).toBe('SY_ERR_TEMPLATE');
      expect(err.transient).toBe(false);
      expect(err.message).toContain(where);
      expect(s.connections()).toBe(0);
      expect(() => p.preview(action({ payload: body }))).toThrow(SyError);
      expect(p.destination(action({ payload: body }))).toBe(destination);
    },
  );

  it('previews the rendered message with secrets masked, without connecting', async () => {
    const s = await server();
    const p = provider({
      smtp: smtpOf(s),
      cc: 'cc@example.com',
      bcc: ['{{payload.audit}}'],
      replyTo: 'Help Desk <help@example.com>',
      html: '<p>{{payload.text}}</p>',
      headers: { 'X-Api-Token': '{{payload.token}}', 'X-Tenant': '{{tenant}}' },
    });
    const preview = p.preview(
      action({ payload: { ...payload, audit: 'audit@example.com', token: 't0p' } }),
    );
    expect(preview).toEqual({
      kind: 'email',
      from: 'Ops <ops@example.com>',
      to: ['dev@example.com'],
      cc: ['cc@example.com'],
      bcc: ['audit@example.com'],
      subject: 'Disk almost full',
      headers: {
        'Reply-To': 'Help Desk <help@example.com>',
        'X-Api-Token': '***',
        'X-Tenant': 'acme',
        'X-Switchyard-Action-Id': 'act-1',
        'X-Switchyard-Action-Type': 'alert',
        'X-Switchyard-Attempt': '1',
      },
      text: 'db1 is at 91%',
      html: '<p>db1 is at 91%</p>',
    });
    expect(p.destination(action({ payload: { ...payload, audit: 'audit@example.com' } }))).toBe(
      'dev@example.com, cc@example.com, audit@example.com',
    );
    expect(s.connections()).toBe(0);
  });

  it('quotes display names that need it in previews', () => {
    const p = provider({
      smtp: { host: '127.0.0.1', port: 1 },
      from: '"Ops, Team" <ops@example.com>',
    });
    expect(p.preview(action())).toMatchObject({ from: '"Ops, Team" <ops@example.com>' });
  });

  it('rejects bad configs when built, naming the key', () => {
    const build = (config: Omit<EmailProviderConfig, 'type'>) => () =>
      new EmailProvider('mail', { type: 'email', ...config });
    const cases: [Omit<EmailProviderConfig, 'type'>, string][] = [
      [{ smtp: {} }, 'providers.mail.smtp'],
      [{ smtp: { url: 'smtp://h', host: 'h' } }, 'providers.mail.smtp.host'],
      [{ smtp: { url: 'smtp://u:secret@h', auth: { user: 'u', pass: 'p' } } }, 'smtp.auth'],
      [{ smtp: { url: 'smtp://h/x?y=1' } }, 'providers.mail.smtp.url'],
      [{ smtp: { host: 'h', pool: false, maxConnections: 2 } }, 'smtp.maxConnections'],
      [{ smtp: { host: 'h' }, headers: { Subject: 'x' } }, 'providers.mail.headers.Subject'],
      [{ smtp: { host: 'h' }, headers: { 'Bad Name': 'x' } }, 'providers.mail.headers.Bad Name'],
      [{ smtp: { host: 'h' }, subject: '{{payload.x' }, 'providers.mail.subject'],
      [{ smtp: { host: 'h' }, to: ['{{recipient}}'] }, 'providers.mail.to[0]'],
    ];
    for (const [config, field] of cases) {
      let caught: unknown;
      try {
        build(config)();
      } catch (err) {
        caught = err;
      }
      expect(caught, field).toBeInstanceOf(SyError);
      expect((caught as SyError).code).toBe('SY_ERR_CONFIG_INVALID');
      expect((caught as SyError).message).toContain(field);
      expect((caught as SyError).message).not.toContain('secret');
    }
  });

  it('has a schema that accepts both smtp forms and refuses unknown keys', () => {
    const check = ajv.compile(EmailProviderConfigSchema);
    const ok = [
      {
        type: 'email',
        smtp: {
          host: 'smtp.example.com',
          port: 465,
          secure: true,
          requireTLS: false,
          auth: { user: 'u', pass: 'p' },
          pool: true,
          maxConnections: 3,
          connectionTimeout: '5s',
        },
        from: 'a@example.com',
        to: ['{{payload.to}}', 'b@example.com'],
        cc: 'c@example.com',
        bcc: ['d@example.com'],
        replyTo: 'e@example.com',
        subject: 's',
        text: 't',
        html: 'h',
        headers: { 'X-A': 'b' },
      },
      { type: 'email', smtp: { url: 'smtps://u:p@smtp.example.com' } },
    ];
    for (const config of ok) expect(check(config), JSON.stringify(check.errors)).toBe(true);
    const bad = [
      { type: 'email' },
      { type: 'email', smtp: { host: 'h', tls: {} } },
      { type: 'email', smtp: { host: 'h', auth: { user: 'u' } } },
      { type: 'email', smtp: { url: 'http://h' } },
      { type: 'email', smtp: { host: 'h', connectionTimeout: 'soon' } },
      { type: 'email', smtp: { host: 'h' }, to: [] },
      { type: 'email', smtp: { host: 'h' }, attachments: [] },
    ];
    for (const config of bad) expect(check(config), JSON.stringify(config)).toBe(false);
  });

  it('is registered as the "email" provider type', async () => {
    const s = await server();
    const p = emailProviderType.create(
      'mail',
      { type: 'email', smtp: smtpOf(s) },
      {
        logger: undefined as never,
        state: undefined as never,
        clock: undefined as never,
        count: () => undefined,
      },
    );
    cleanup.push(() => p.close?.() ?? Promise.resolve());
    expect(p.type).toBe('email');
    expect(emailProviderType.type).toBe('email');
  });
});

describe('email helpers', () => {
  it('parses address lists from strings, lists and objects', () => {
    expect(toAddresses('"Doe, Jane" <jane@example.com>, bob@example.com', 'to')).toEqual([
      { name: 'Doe, Jane', address: 'jane@example.com' },
      { name: '', address: 'bob@example.com' },
    ]);
    expect(toAddresses(['a@example.com', { address: 'b@example.com' }, null, ''], 'to')).toEqual([
      { name: '', address: 'a@example.com' },
      { name: '', address: 'b@example.com' },
    ]);
    expect(toAddresses(undefined, 'to')).toEqual([]);
    expect(() => toAddresses([['a@example.com']], 'to')).toThrow(/nested list/);
    expect(() => toAddresses(42, 'to')).toThrow(/renders 42/);
  });

  it('treats 5xx but 503 as permanent', () => {
    expect([421, 450, 451, 452, 503].map(isPermanentSmtpCode)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
    expect([500, 535, 550, 553, 554].map(isPermanentSmtpCode)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
  });

  it('classifies errors without an SMTP reply by their code', () => {
    const e = (code: string, extra: Record<string, unknown> = {}) =>
      smtpProviderError('mail', Object.assign(new Error(`failed ${code}`), { code, ...extra }));
    expect(e('ESOCKET', { originalCode: 'ECONNRESET' })).toMatchObject({
      code: 'SY_ERR_PROVIDER_NETWORK',
      transient: true,
    });
    expect(e('ETIMEDOUT', { timeoutType: 'CONNECT_TIMEOUT' }).code).toBe('SY_ERR_PROVIDER_NETWORK');
    expect(e('ETIMEDOUT', { timeoutType: 'SOCKET_TIMEOUT' }).code).toBe('SY_ERR_PROVIDER_TIMEOUT');
    expect(e('EDNS')).toMatchObject({ code: 'SY_ERR_PROVIDER_NETWORK', transient: true });
    expect(e('ENOAUTH')).toMatchObject({ code: 'SY_ERR_PROVIDER_FAILED', transient: false });
    expect(e('ECONFIG')).toMatchObject({ code: 'SY_ERR_PROVIDER_FAILED', transient: false });
    expect(e('ESTREAM')).toMatchObject({ code: 'SY_ERR_PROVIDER_FAILED', transient: true });
    expect(
      smtpProviderError(
        'mail',
        Object.assign(new Error('x'), {
          code: 'EPROTOCOL',
          responseCode: 421,
          response: '421 closing',
        }),
      ),
    ).toMatchObject({ code: 'SY_ERR_PROVIDER_FAILED', transient: true });
  });

  it('reads host, port, TLS and credentials from a URL', () => {
    expect(resolveSmtpTarget('m', { url: 'smtps://u%40x:p%3Aw@mail.example.com' })).toEqual({
      host: 'mail.example.com',
      port: 465,
      secure: true,
      auth: { user: 'u@x', pass: 'p:w' },
    });
    expect(
      resolveSmtpTarget('m', {
        url: 'smtp://mail.example.com:2525',
        auth: { user: 'a', pass: 'b' },
      }),
    ).toEqual({
      host: 'mail.example.com',
      port: 2525,
      secure: false,
      auth: { user: 'a', pass: 'b' },
    });
    expect(resolveSmtpTarget('m', { host: 'h' })).toEqual({
      host: 'h',
      port: 587,
      secure: false,
      auth: undefined,
    });
    expect(resolveSmtpTarget('m', { host: 'h', secure: true })).toMatchObject({ port: 465 });
  });
});
