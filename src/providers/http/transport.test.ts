import { afterEach, describe, expect, it } from 'vitest';
import { HttpTransport, isTransientStatus, parseRetryAfter } from './transport.js';
import { recordingConnector, startTestServer, type TestServer } from './test-server.js';
import { ProviderError } from '../provider.js';

const NOW = Date.UTC(2026, 0, 5, 12, 0, 0);
const signal = new AbortController().signal;

let server: TestServer | undefined;
let transport: HttpTransport | undefined;
afterEach(async () => {
  await server?.close();
  await transport?.close();
  server = transport = undefined;
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

function get(t: HttpTransport, url: string) {
  return t.request({ url: new URL(url), method: 'GET', headers: {}, body: undefined, signal });
}

describe('parseRetryAfter', () => {
  it.each([
    ['0', 0],
    ['7', 7000],
    [' 120 ', 120_000],
    [['3', '9'], 3000],
    ['Mon, 05 Jan 2026 12:00:30 GMT', 30_000],
    ['Monday, 05-Jan-26 12:01:00 GMT', 60_000],
    ['Mon Jan  5 12:00:10 2026', 10_000],
    ['Mon, 05 Jan 2026 11:00:00 GMT', 0],
  ] as const)('%j → %d ms', (value, ms) => {
    expect(parseRetryAfter(value as string | string[], NOW)).toBe(ms);
  });

  it.each([undefined, '', '-1', '1.5', 'soon', '2026-01-05T12:00:30Z', 'Mon, 99 Foo 2026'])(
    '%j → undefined',
    (value) => {
      expect(parseRetryAfter(value, NOW)).toBeUndefined();
    },
  );
});

describe('isTransientStatus', () => {
  it.each([
    [408, true],
    [425, true],
    [429, true],
    [500, true],
    [503, true],
    [599, true],
    [400, false],
    [401, false],
    [404, false],
    [422, false],
    [301, false],
  ])('%d → %s', (status, transient) => {
    expect(isTransientStatus(status)).toBe(transient);
  });
});

describe('HttpTransport', () => {
  it('captures any status and keeps connections alive across requests', async () => {
    server = await startTestServer((_req, res) => res.writeHead(404).end('missing'));
    transport = new HttpTransport({ name: 't', allowPrivateNetworks: true });
    const a = await get(transport, `${server.url}/a`);
    // One tick for undici to mark the connection idle again (else the pool opens a second one).
    await new Promise((resolve) => setImmediate(resolve));
    const b = await get(transport, `${server.url}/b`);
    expect(a.response).toEqual({ status: 404, body: 'missing' });
    expect(b.status).toBe(404);
    expect(server.connections()).toBe(1);
  });

  it('caps the captured body', async () => {
    server = await startTestServer((_req, res) => res.writeHead(200).end('y'.repeat(5000)));
    transport = new HttpTransport({ name: 't', allowPrivateNetworks: true, maxResponseSize: 10 });
    const r = await get(transport, server.url);
    expect(r.response).toEqual({ status: 200, body: 'y'.repeat(10), truncated: true });
  });

  it('statusError carries Retry-After on 429 and 503 only', async () => {
    transport = new HttpTransport({ name: 't', now: () => NOW });
    const headers = { 'retry-after': 'Mon, 05 Jan 2026 12:00:05 GMT' };
    const e429 = transport.statusError({ status: 429, headers, response: { status: 429 } });
    const e503 = transport.statusError({ status: 503, headers, response: { status: 503 } });
    const e500 = transport.statusError({ status: 500, headers, response: { status: 500 } });
    expect([e429.retryAfterMs, e429.transient]).toEqual([5000, true]);
    expect(e503.retryAfterMs).toBe(5000);
    expect(e500.retryAfterMs).toBeUndefined();
    expect(
      transport.statusError({ status: 400, headers: {}, response: {} }, 'no_text').message,
    ).toContain('no_text');
  });

  it.each([
    'http://127.0.0.1:9/',
    'http://[::1]:9/',
    'http://[::ffff:127.0.0.1]:9/',
    'http://10.0.0.1/',
    'http://172.20.1.1/',
    'http://192.168.0.10/',
    'http://169.254.169.254/latest/meta-data/',
    'http://0.0.0.0:9/',
    'http://[::]:9/',
    'http://100.64.0.1/',
    'http://224.0.0.1/',
    'http://[fd00::1]/',
    'http://[fe80::1]/',
    'http://2130706433/', // 127.0.0.1 as a number
    'http://0x7f.1/', // 127.0.0.1 in hex shorthand
    'https://169.254.169.254/',
  ])('refuses %s before any connection is attempted', async (url) => {
    const { connector, calls } = recordingConnector();
    transport = new HttpTransport({ name: 't', connector });
    const err = await failure(get(transport, url));
    expect(err.code).toBe('SY_ERR_DESTINATION_BLOCKED');
    expect(err.transient).toBe(false);
    expect(calls).toEqual([]);
  });

  it('lets a public literal through the guard to the connector', async () => {
    const { connector, calls } = recordingConnector();
    transport = new HttpTransport({ name: 't', connector });
    const err = await failure(get(transport, 'http://93.184.216.34/'));
    expect(err.code).toBe('SY_ERR_PROVIDER_NETWORK');
    expect(calls).toEqual(['93.184.216.34']);
  });

  it('refuses a host name that resolves to loopback on the connection itself', async () => {
    server = await startTestServer();
    transport = new HttpTransport({ name: 't' });
    const err = await failure(get(transport, `http://localhost:${server.port}/`));
    expect(err.code).toBe('SY_ERR_DESTINATION_BLOCKED');
    expect(err.message).toContain('localhost');
    expect(server.connections()).toBe(0);
  });

  it('allowPrivateNetworks turns the guard off', async () => {
    server = await startTestServer();
    transport = new HttpTransport({ name: 't', allowPrivateNetworks: true });
    const r = await get(transport, `http://localhost:${server.port}/`);
    expect(r.status).toBe(200);
  });

  it("throws the signal's reason when the signal fires", async () => {
    server = await startTestServer(() => {
      /* never answers */
    });
    transport = new HttpTransport({ name: 't', allowPrivateNetworks: true });
    const abort = new AbortController();
    const reason = new ProviderError('SY_ERR_PROVIDER_TIMEOUT', 'late', { transient: true });
    const pending = failure(
      transport.request({
        url: new URL(server.url),
        method: 'POST',
        headers: {},
        body: 'x',
        signal: abort.signal,
      }),
    );
    setTimeout(() => abort.abort(reason), 50);
    expect(await pending).toBe(reason);
  });

  it('uses its own safety-net header timeout as a transient timeout', async () => {
    server = await startTestServer(() => {
      /* never answers */
    });
    transport = new HttpTransport({ name: 't', allowPrivateNetworks: true, headersTimeoutMs: 100 });
    const err = await failure(get(transport, server.url));
    expect([err.code, err.transient]).toEqual(['SY_ERR_PROVIDER_TIMEOUT', true]);
  });
});
