import { afterEach, describe, expect, it } from 'vitest';
import { SlackProvider, SlackProviderConfigSchema, slackProviderType } from './provider.js';
import type { SlackProviderConfig } from './provider.js';
import { ProviderError } from '../provider.js';
import { describeProvider, testAction, testContext } from '../testkit.js';
import { recordingConnector, startTestServer, type TestServer } from '../http/test-server.js';
import { ajv } from '../../core/validate.js';
import { SyError } from '../../core/errors.js';

const NOW = Date.UTC(2026, 0, 5, 12, 0, 0);
const action = testAction({
  provider: 'slack',
  payload: { text: 'disk full on db-1', host: 'db-1', severity: 2 },
  labels: { team: 'infra' },
});

function slack(
  config: Omit<SlackProviderConfig, 'type'>,
  options: ConstructorParameters<typeof SlackProvider>[2] = {},
): SlackProvider {
  return new SlackProvider('slack', { type: 'slack', ...config }, { now: () => NOW, ...options });
}

/** Answers like Slack: 200 "ok", or a status with Slack's short error text. */
function slackLike(status: number, text: string, headers: Record<string, string> = {}) {
  return startTestServer((_req, res) =>
    res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(text),
  );
}

describeProvider({
  name: 'slack',
  action: { payload: { text: 'hello' } },
  async setup() {
    const servers = [
      await slackLike(200, 'ok'),
      await slackLike(429, 'rate_limited', { 'retry-after': '1' }),
      await slackLike(400, 'invalid_payload'),
      await startTestServer(() => {
        /* never answers */
      }),
    ] as const;
    const [ok, transient, terminal, hang] = servers.map((s) =>
      slack({ url: `${s.url}/services/T000/B000/XXXX`, allowPrivateNetworks: true }),
    ) as [SlackProvider, SlackProvider, SlackProvider, SlackProvider];
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
let provider: SlackProvider | undefined;
afterEach(async () => {
  await server?.close();
  await provider?.close();
  provider = server = undefined;
});

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected a ProviderError');
}

function sent(s: TestServer, i = 0): unknown {
  return JSON.parse(s.requests[i]?.body ?? 'null');
}

describe('slack provider', () => {
  it('posts payload.text as the message and returns Slack\'s "ok"', async () => {
    server = await slackLike(200, 'ok');
    provider = slack({ url: `${server.url}/services/T0/B0/secret`, allowPrivateNetworks: true });
    expect(await provider.execute(action, testContext())).toEqual({ status: 200, body: 'ok' });
    const req = server.requests[0];
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe('/services/T0/B0/secret');
    expect(req?.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(sent(server)).toEqual({ text: 'disk full on db-1' });
  });

  it('falls back to payload.message', async () => {
    server = await slackLike(200, 'ok');
    provider = slack({ url: server.url, allowPrivateNetworks: true });
    await provider.execute({ ...action, payload: { message: 'from message' } }, testContext());
    expect(sent(server)).toEqual({ text: 'from message' });
  });

  it('renders text, blocks (typed), username, icon and channel from templates', async () => {
    server = await slackLike(200, 'ok');
    provider = slack({
      url: server.url,
      text: ':warning: {{payload.host}} ({{labels.team}})',
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: '*{{payload.text}}*' } },
        { type: 'context', elements: '{{payload.elements}}' },
        { type: 'divider', severity: '{{payload.severity}}' },
      ],
      username: 'switchyard-{{tenant}}',
      iconEmoji: ':rotating_light:',
      channel: '#{{labels.team}}',
      allowPrivateNetworks: true,
    });
    await provider.execute(
      { ...action, payload: { ...action.payload, elements: [{ type: 'mrkdwn', text: 'x' }] } },
      testContext(),
    );
    expect(sent(server)).toEqual({
      text: ':warning: db-1 (infra)',
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: '*disk full on db-1*' } },
        { type: 'context', elements: [{ type: 'mrkdwn', text: 'x' }] },
        { type: 'divider', severity: 2 },
      ],
      username: 'switchyard-acme',
      icon_emoji: ':rotating_light:',
      channel: '#infra',
    });
  });

  it('takes blocks from the action with a whole placeholder; blocks alone need no text', async () => {
    server = await slackLike(200, 'ok');
    provider = slack({ url: server.url, blocks: '{{payload.blocks}}', allowPrivateNetworks: true });
    const blocks = [{ type: 'divider' }];
    await provider.execute({ ...action, payload: { blocks } }, testContext());
    expect(sent(server)).toEqual({ blocks });
  });

  it('a message without text or blocks is a terminal SY_ERR_TEMPLATE and nothing is sent', async () => {
    server = await slackLike(200, 'ok');
    provider = slack({ url: server.url, allowPrivateNetworks: true });
    const err = await failure(provider.execute({ ...action, payload: { n: 1 } }, testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_TEMPLATE', false]);
    expect(server.connections()).toBe(0);
  });

  it('blocks that render to a non-array are a terminal SY_ERR_TEMPLATE', async () => {
    provider = slack({ url: 'https://hooks.slack.com/services/x', blocks: '{{payload.text}}' });
    const err = await failure(provider.execute(action, testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_TEMPLATE', false]);
  });

  it.each([
    [400, 'invalid_payload'],
    [400, 'no_text'],
    [403, 'action_prohibited'],
    [404, 'channel_not_found'],
    [410, 'channel_is_archived'],
  ])("HTTP %d %s is terminal and names Slack's error", async (status, text) => {
    server = await slackLike(status, text);
    provider = slack({ url: server.url, allowPrivateNetworks: true });
    const err = await failure(provider.execute(action, testContext()));
    expect(err.code).toBe('SY_ERR_PROVIDER_HTTP_STATUS');
    expect(err.transient).toBe(false);
    expect(err.message).toContain(text);
    expect(err.response).toEqual({ status, body: text });
  });

  it.each([
    ['30', 30_000],
    ['Mon, 05 Jan 2026 12:01:00 GMT', 60_000],
  ])('429 with Retry-After %s is transient with retryAfterMs', async (value, ms) => {
    server = await slackLike(429, 'rate_limited', { 'retry-after': value });
    provider = slack({ url: server.url, allowPrivateNetworks: true });
    const err = await failure(provider.execute(action, testContext()));
    expect([err.transient, err.retryAfterMs]).toEqual([true, ms]);
  });

  it('5xx is transient', async () => {
    server = await slackLike(500, 'rollup_error');
    provider = slack({ url: server.url, allowPrivateNetworks: true });
    const err = await failure(provider.execute(action, testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_PROVIDER_HTTP_STATUS', true]);
  });

  it('previews without sending, masking the webhook URL path (its secret)', async () => {
    server = await slackLike(200, 'ok');
    provider = slack({
      url: `${server.url}/services/T000/B000/XXXXSECRET`,
      username: 'bot',
      allowPrivateNetworks: true,
    });
    const preview = provider.preview(action);
    expect(preview).toEqual({
      kind: 'http',
      method: 'POST',
      url: `${server.url}/services/***`,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: { text: 'disk full on db-1', username: 'bot' },
    });
    expect(server.connections()).toBe(0);
  });

  it('names the host as destination', () => {
    provider = slack({ url: 'https://hooks.slack.com/services/T0/B0/secret' });
    expect(provider.destination(action)).toBe('hooks.slack.com');
  });

  it('the SSRF guard applies: a loopback URL is refused without allowPrivateNetworks', async () => {
    server = await slackLike(200, 'ok');
    provider = slack({ url: `${server.url}/services/x` });
    const err = await failure(provider.execute(action, testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_DESTINATION_BLOCKED', false]);
    expect(server.connections()).toBe(0);
  });

  it('refuses cloud metadata before any connection attempt', async () => {
    const { connector, calls } = recordingConnector();
    provider = slack({ url: 'http://169.254.169.254/services/x' }, { connector });
    const err = await failure(provider.execute(action, testContext()));
    expect(err.code).toBe('SY_ERR_DESTINATION_BLOCKED');
    expect(calls).toEqual([]);
  });
});

describe('slack config', () => {
  const check = ajv.compile(SlackProviderConfigSchema);

  it.each([
    { type: 'slack', url: 'https://hooks.slack.com/services/T/B/X' },
    {
      type: 'slack',
      url: 'https://hooks.slack.com/services/T/B/X',
      text: '{{payload.text}}',
      blocks: [{ type: 'divider' }],
      username: 'u',
      iconEmoji: ':x:',
      channel: '#c',
      maxResponseSize: 1024,
      connections: 2,
      allowPrivateNetworks: false,
    },
    { type: 'slack', url: 'https://hooks.slack.com/x', blocks: '{{payload.blocks}}' },
  ])('accepts %j', (config) => {
    expect(check(config)).toBe(true);
  });

  it.each([
    ['no url', { type: 'slack' }],
    ['a non-http url', { type: 'slack', url: 'hooks.slack.com/services/x' }],
    ['blocks as an object', { type: 'slack', url: 'https://x.io', blocks: { type: 'divider' } }],
    ['a snake_case key', { type: 'slack', url: 'https://x.io', icon_emoji: ':x:' }],
    ['a headers key', { type: 'slack', url: 'https://x.io', headers: {} }],
    ['a numeric text', { type: 'slack', url: 'https://x.io', text: 5 }],
  ])('rejects %s', (_name, config) => {
    expect(check(config)).toBe(false);
  });

  it.each([
    ['an unknown variable in text', { url: 'https://x.io', text: '{{txt}}' }],
    ['an unknown variable in blocks', { url: 'https://x.io', blocks: [{ a: '{{nope.x}}' }] }],
    ['credentials in the URL', { url: 'https://u:p@hooks.slack.com/x' }],
  ])('refuses %s when built', (_name, config) => {
    let err: unknown;
    try {
      slack(config);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyError);
    expect((err as SyError).code).toBe('SY_ERR_CONFIG_INVALID');
  });

  it('slackProviderType describes the type', () => {
    expect(slackProviderType.type).toBe('slack');
    expect(slackProviderType.configSchema).toBe(SlackProviderConfigSchema);
  });
});
