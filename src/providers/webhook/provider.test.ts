import { afterEach, describe, expect, it } from 'vitest';
import { WebhookProvider, WebhookProviderConfigSchema, webhookProviderType } from './provider.js';
import type { WebhookProviderConfig } from './provider.js';
import { ProviderError, type ProviderFactoryContext } from '../provider.js';
import { describeProvider, testAction, testContext } from '../testkit.js';
import { verifySignature } from '../http/signing.js';
import { recordingConnector, startTestServer, type TestServer } from '../http/test-server.js';
import { ajv } from '../../core/validate.js';
import { ManualClock } from '../../core/clock.js';
import { SyError } from '../../core/errors.js';

const NOW = Date.UTC(2026, 0, 5, 12, 0, 0);
const SECRET = 'whsec_test_0123456789';

const action = testAction({
  id: 'a-1',
  provider: 'hook',
  payload: { to: 'ops', count: 3, nested: { n: 1, list: [1, 'two', null] } },
  labels: { team: 'infra' },
});

function webhook(
  config: Omit<WebhookProviderConfig, 'type'>,
  options: ConstructorParameters<typeof WebhookProvider>[2] = {},
): WebhookProvider {
  return new WebhookProvider(
    'hook',
    { type: 'webhook', ...config },
    { now: () => NOW, ...options },
  );
}

describeProvider({
  name: 'webhook',
  async setup() {
    const answer = (status: number) =>
      startTestServer((_req, res) => res.writeHead(status).end(String(status)));
    const servers = [
      await answer(200),
      await answer(503),
      await answer(400),
      await startTestServer(() => {
        /* never answers */
      }),
    ] as const;
    const [ok, transient, terminal, hang] = servers.map((s) =>
      webhook({ url: `${s.url}/hook`, allowPrivateNetworks: true }),
    ) as [WebhookProvider, WebhookProvider, WebhookProvider, WebhookProvider];
    return {
      ok,
      transient,
      terminal,
      hang,
      received: () => servers.reduce((n, s) => n + s.requests.length, 0),
      async close() {
        await Promise.all(servers.map((s) => s.close()));
        await Promise.all([ok, transient, terminal, hang].map((p) => p.close()));
      },
    };
  },
});

let server: TestServer | undefined;
let provider: WebhookProvider | undefined;
afterEach(async () => {
  await server?.close();
  await provider?.close();
  provider = server = undefined;
});

async function failure(p: Promise<unknown> | (() => unknown)): Promise<ProviderError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected a ProviderError');
}

describe('webhook provider', () => {
  it('sends the payload as JSON with configured headers and the x-switchyard-* headers', async () => {
    server = await startTestServer((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":7}');
    });
    provider = webhook({
      url: `${server.url}/in?x=1`,
      method: 'PUT',
      headers: { Authorization: 'Bearer t' },
      allowPrivateNetworks: true,
    });
    const res = await provider.execute(action, testContext(3));
    expect(res).toEqual({ status: 201, body: { id: 7 } });
    const [req] = server.requests;
    expect(req?.method).toBe('PUT');
    expect(req?.url).toBe('/in?x=1');
    expect(JSON.parse(req?.body ?? '')).toEqual(action.payload);
    expect(req?.headers).toMatchObject({
      authorization: 'Bearer t',
      'content-type': 'application/json',
      'x-switchyard-action-id': 'a-1',
      'x-switchyard-action-type': 'notify',
      'x-switchyard-attempt': '3',
    });
  });

  it('configured headers cannot override the x-switchyard-* identity headers', async () => {
    server = await startTestServer();
    provider = webhook({
      url: server.url,
      headers: { 'X-Switchyard-Action-Id': 'forged' },
      allowPrivateNetworks: true,
    });
    await provider.execute(action, testContext());
    expect(server.requests[0]?.headers['x-switchyard-action-id']).toBe('a-1');
  });

  it('renders URL, headers and a JSON body from templates, keeping whole-placeholder types', async () => {
    server = await startTestServer();
    provider = webhook({
      url: `${server.url}/t/{{tenant}}/items/{{payload.id}}?team={{labels.team}}&n={{attempt}}`,
      headers: { 'X-Team': '{{labels.team}}', 'X-Who': 'to={{payload.to}}' },
      body: {
        to: '{{payload.to}}',
        count: '{{payload.count}}',
        nested: '{{payload.nested}}',
        missing: '{{payload.nope}}',
        text: 'hello {{payload.to}}, {{payload.count}} new',
        fixed: [true, 1, null],
        meta: { id: '{{id}}', at: '{{receivedAt}}' },
      },
      allowPrivateNetworks: true,
    });
    await provider.execute(
      { ...action, payload: { ...action.payload, id: 'a/b c?d' } },
      testContext(2),
    );
    const [req] = server.requests;
    // Inserted values are percent-encoded: they cannot add path segments or a query.
    expect(req?.url).toBe('/t/acme/items/a%2Fb%20c%3Fd?team=infra&n=2');
    expect(req?.headers['x-team']).toBe('infra');
    expect(req?.headers['x-who']).toBe('to=ops');
    expect(JSON.parse(req?.body ?? '')).toEqual({
      to: 'ops',
      count: 3,
      nested: { n: 1, list: [1, 'two', null] },
      text: 'hello ops, 3 new',
      fixed: [true, 1, null],
      meta: { id: 'a-1', at: '2026-01-05T12:00:00.000Z' },
    });
  });

  it('sends a string body template as text, with the configured content type', async () => {
    server = await startTestServer();
    provider = webhook({
      url: server.url,
      body: 'alert for {{payload.to}}',
      allowPrivateNetworks: true,
    });
    await provider.execute(action, testContext());
    expect(server.requests[0]?.body).toBe('alert for ops');
    expect(server.requests[0]?.headers['content-type']).toBe('text/plain; charset=utf-8');
    await provider.close();

    provider = webhook({
      url: server.url,
      body: '<to>{{payload.to}}</to>',
      headers: { 'Content-Type': 'application/xml' },
      allowPrivateNetworks: true,
    });
    await provider.execute(action, testContext());
    expect(server.requests[1]?.body).toBe('<to>ops</to>');
    expect(server.requests[1]?.headers['content-type']).toBe('application/xml');
  });

  it('signs the exact body: the receiver verifies it, and tampering fails', async () => {
    server = await startTestServer();
    provider = webhook({
      url: server.url,
      signing: { secret: SECRET },
      allowPrivateNetworks: true,
    });
    await provider.execute(action, testContext());
    const req = server.requests[0];
    const header = req?.headers['x-switchyard-signature'] as string;
    const body = req?.body ?? '';
    expect(header).toMatch(/^t=1767614400,v1=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, header, body, 300, NOW / 1000)).toBe(true);
    expect(verifySignature(SECRET, header, body.replace('ops', 'dev'), 300, NOW / 1000)).toBe(
      false,
    );
    expect(verifySignature('wrong-secret-0000000', header, body, 300, NOW / 1000)).toBe(false);
    expect(verifySignature(SECRET, header, body, 300, NOW / 1000 + 600)).toBe(false);
  });

  it('signs with a custom header name, and signs an empty body for GET', async () => {
    server = await startTestServer();
    provider = webhook({
      url: server.url,
      method: 'GET',
      signing: { secret: SECRET, header: 'X-Hook-Sig' },
      allowPrivateNetworks: true,
    });
    await provider.execute(action, testContext());
    const req = server.requests[0];
    expect(req?.body).toBe('');
    expect(verifySignature(SECRET, req?.headers['x-hook-sig'] as string, '', 300, NOW / 1000)).toBe(
      true,
    );
  });

  it('keeps a text answer as text and caps a large one', async () => {
    server = await startTestServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('x'.repeat(10_000));
    });
    provider = webhook({ url: server.url, maxResponseSize: 100, allowPrivateNetworks: true });
    const res = await provider.execute(action, testContext());
    expect(res).toEqual({ status: 200, body: 'x'.repeat(100), truncated: true });
  });

  it('a GET sends no body', async () => {
    server = await startTestServer((_req, res) => res.writeHead(204).end());
    provider = webhook({ url: server.url, method: 'GET', allowPrivateNetworks: true });
    expect(await provider.execute(action, testContext())).toEqual({ status: 204 });
    expect(server.requests[0]?.body).toBe('');
    expect(server.requests[0]?.headers['content-type']).toBeUndefined();
  });

  it.each([
    [500, true],
    [503, true],
    [429, true],
    [408, true],
    [425, true],
    [400, false],
    [404, false],
    [422, false],
    [302, false],
  ])('HTTP %d fails with its status; transient=%s', async (status, transient) => {
    server = await startTestServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'text/plain' }).end('nope');
    });
    provider = webhook({ url: server.url, allowPrivateNetworks: true });
    const err = await failure(provider.execute(action, testContext()));
    expect(err.code).toBe('SY_ERR_PROVIDER_HTTP_STATUS');
    expect(err.transient).toBe(transient);
    expect(err.response).toEqual({ status, body: 'nope' });
    expect(err.retryAfterMs).toBeUndefined();
  });

  it.each([
    [429, '7', 7000],
    [503, '0', 0],
    [429, 'Mon, 05 Jan 2026 12:00:30 GMT', 30_000],
    [503, 'Mon, 05 Jan 2026 12:02:00 GMT', 120_000],
    [429, 'soon', undefined],
  ])('HTTP %d with Retry-After %j → retryAfterMs %s', async (status, value, ms) => {
    server = await startTestServer((_req, res) =>
      res.writeHead(status, { 'retry-after': value }).end(),
    );
    provider = webhook({ url: server.url, allowPrivateNetworks: true });
    const err = await failure(provider.execute(action, testContext()));
    expect([err.transient, err.retryAfterMs]).toEqual([true, ms]);
  });

  it('a closed port is a transient network error', async () => {
    server = await startTestServer();
    const url = server.url;
    await server.close();
    server = undefined;
    provider = webhook({ url, allowPrivateNetworks: true });
    const err = await failure(provider.execute(action, testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_PROVIDER_NETWORK', true]);
  });

  it('an aborted context without a reason (shutdown) stops the request', async () => {
    server = await startTestServer(() => {
      /* never answers */
    });
    provider = webhook({ url: server.url, allowPrivateNetworks: true });
    const abort = new AbortController();
    const pending = failure(provider.execute(action, { signal: abort.signal, attempt: 1 }));
    setTimeout(() => abort.abort(), 50);
    const err = await pending;
    expect([err.code, err.transient]).toEqual(['SY_ERR_SHUTTING_DOWN', true]);
  });

  it('a URL template that renders to an invalid URL is a terminal SY_ERR_TEMPLATE', async () => {
    provider = webhook({ url: 'http://{{payload.host}}.example/x', allowPrivateNetworks: true });
    const err = await failure(
      provider.execute({ ...action, payload: { host: 'a b' } }, testContext()),
    );
    expect([err.code, err.transient]).toEqual(['SY_ERR_TEMPLATE', false]);
    expect(err.message).toContain('providers.hook.url');
  });

  it('a header value with a line break is a terminal SY_ERR_TEMPLATE and nothing is sent', async () => {
    server = await startTestServer();
    provider = webhook({
      url: server.url,
      headers: { 'X-To': '{{payload.to}}' },
      allowPrivateNetworks: true,
    });
    const err = await failure(
      provider.execute({ ...action, payload: { to: 'ops\r\nX-Evil: 1' } }, testContext()),
    );
    expect([err.code, err.transient]).toEqual(['SY_ERR_TEMPLATE', false]);
    expect(server.connections()).toBe(0);
  });

  it('previews without sending anything, with secrets masked', async () => {
    server = await startTestServer();
    provider = webhook({
      url: `${server.url}/in?token=abc&team={{labels.team}}`,
      headers: { Authorization: 'Bearer secret', 'X-Team': '{{labels.team}}' },
      body: { to: '{{payload.to}}', count: '{{payload.count}}' },
      signing: { secret: SECRET, header: 'X-Hook-Sig' },
    });
    const preview = provider.preview(action);
    expect(preview).toEqual({
      kind: 'http',
      method: 'POST',
      url: `${server.url}/in?token=***&team=infra`,
      headers: {
        'content-type': 'application/json',
        authorization: '***',
        'x-team': 'infra',
        'x-switchyard-action-id': 'a-1',
        'x-switchyard-action-type': 'notify',
        'x-switchyard-attempt': '1',
        'x-hook-sig': '***',
      },
      body: { to: 'ops', count: 3 },
    });
    expect(JSON.stringify(preview)).not.toContain('secret');
    expect(server.connections()).toBe(0);
    // Fields whose placeholder renders to nothing are left out, as in the JSON sent.
    const empty = provider.preview({ ...action, payload: {} });
    expect(empty.kind === 'http' ? empty.body : undefined).toEqual({});
  });

  it('names the destination host without path or query', () => {
    provider = webhook({ url: 'https://hooks.example.com:8443/p/{{payload.to}}?key=s3cret' });
    expect(provider.destination(action)).toBe('hooks.example.com:8443');
  });
});

describe('webhook SSRF guard', () => {
  it.each([
    ['127.0.0.1', (port: number) => `http://127.0.0.1:${port}/hook`],
    ['::ffff:127.0.0.1', (port: number) => `http://[::ffff:127.0.0.1]:${port}/hook`],
    ['localhost', (port: number) => `http://localhost:${port}/hook`],
    ['::1', (port: number) => `http://[::1]:${port}/hook`],
  ])('refuses %s by default; no connection reaches the server', async (_name, url) => {
    server = await startTestServer();
    provider = webhook({ url: url(server.port) });
    const err = await failure(provider.execute(action, testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_DESTINATION_BLOCKED', false]);
    expect(server.connections()).toBe(0);
  });

  it.each([
    ['http://127.0.0.1:1/hook', 'loopback'],
    ['http://[::1]:1/hook', 'loopback'],
    ['http://[::ffff:127.0.0.1]:1/hook', 'loopback'],
    ['http://10.0.0.1/hook', 'private'],
    ['http://169.254.169.254/latest/meta-data/iam/', 'link-local'],
  ])('refuses %s before any connection attempt (%s)', async (url, cls) => {
    const { connector, calls } = recordingConnector();
    provider = webhook({ url }, { connector });
    const err = await failure(provider.execute(action, testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_DESTINATION_BLOCKED', false]);
    expect(err.message).toContain(cls);
    expect(calls).toEqual([]);
  });

  it('allowPrivateNetworks: true reaches a loopback receiver', async () => {
    server = await startTestServer();
    provider = webhook({ url: `http://localhost:${server.port}/`, allowPrivateNetworks: true });
    expect((await provider.execute(action, testContext())).status).toBe(200);
  });
});

describe('webhook config', () => {
  const check = ajv.compile(WebhookProviderConfigSchema);

  it.each([
    { type: 'webhook', url: 'https://example.com/hook' },
    {
      type: 'webhook',
      url: 'https://example.com/{{payload.id}}',
      method: 'PATCH',
      headers: { Authorization: 'Bearer x' },
      body: { a: '{{payload.a}}', b: [1, 2] },
      signing: { secret: SECRET, header: 'X-Sig' },
      maxResponseSize: '1MiB',
      connections: 4,
      allowPrivateNetworks: true,
    },
    { type: 'webhook', url: 'http://example.com', body: 'text {{id}}' },
  ])('accepts %j', (config) => {
    expect(check(config)).toBe(true);
  });

  it.each([
    ['no url', { type: 'webhook' }],
    ['an ftp url', { type: 'webhook', url: 'ftp://example.com/' }],
    ['a templated scheme', { type: 'webhook', url: '{{payload.url}}' }],
    [
      'the old timeout key (a policy key now)',
      { type: 'webhook', url: 'https://x.io', timeout: '1s' },
    ],
    ['an unknown method', { type: 'webhook', url: 'https://x.io', method: 'FETCH' }],
    ['a bad header name', { type: 'webhook', url: 'https://x.io', headers: { 'a b': 'x' } }],
    ['a non-string header', { type: 'webhook', url: 'https://x.io', headers: { a: 1 } }],
    ['signing without a secret', { type: 'webhook', url: 'https://x.io', signing: {} }],
    ['a short signing secret', { type: 'webhook', url: 'https://x.io', signing: { secret: 'x' } }],
    ['a bad size', { type: 'webhook', url: 'https://x.io', maxResponseSize: 'big' }],
    ['zero connections', { type: 'webhook', url: 'https://x.io', connections: 0 }],
    ['a string flag', { type: 'webhook', url: 'https://x.io', allowPrivateNetworks: 'yes' }],
    ['an unknown key', { type: 'webhook', url: 'https://x.io', retries: 3 }],
  ])('rejects %s', (_name, config) => {
    expect(check(config)).toBe(false);
  });

  it.each([
    ['an unknown template variable', { url: 'https://x.io/{{nope}}' }],
    ['an unknown variable in a header', { url: 'https://x.io', headers: { a: '{{paylod.x}}' } }],
    ['an unknown variable in the body', { url: 'https://x.io', body: { a: ['{{oops}}'] } }],
    ['credentials in the URL', { url: 'https://user:pw@x.io/' }],
    ['a bad static host', { url: 'https://exa mple.com/{{id}}' }],
    ['a body with GET', { url: 'https://x.io', method: 'GET' as const, body: 'x' }],
    ['a framing header', { url: 'https://x.io', headers: { 'Content-Length': '3' } }],
  ])('refuses %s when built', (_name, config) => {
    expect(() => webhook(config)).toThrow(SyError);
    try {
      webhook(config);
    } catch (err) {
      expect((err as SyError).code).toBe('SY_ERR_CONFIG_INVALID');
    }
  });

  it('webhookProviderType builds a provider with the gateway clock', async () => {
    expect(webhookProviderType.type).toBe('webhook');
    expect(webhookProviderType.configSchema).toBe(WebhookProviderConfigSchema);
    server = await startTestServer();
    const clock = new ManualClock(NOW + 5000);
    const p = webhookProviderType.create(
      'hook',
      { type: 'webhook', url: server.url, signing: { secret: SECRET }, allowPrivateNetworks: true },
      { clock } as unknown as ProviderFactoryContext,
    );
    try {
      await p.execute(action, testContext());
      expect(server.requests[0]?.headers['x-switchyard-signature']).toMatch(/^t=1767614405,/);
    } finally {
      await p.close?.();
    }
  });
});
