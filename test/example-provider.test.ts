import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { describeProvider } from '../src/providers/testkit.js';
import { createGateway } from '../src/index.js';
import { SmsProvider, smsProviderType } from '../examples/custom-provider/sms.js';

/** A loopback SMS API: the path decides the answer (/ok, /busy = 503, /bad = 400, /hang). */
async function smsApi(): Promise<{ url: string; received: () => number; server: Server }> {
  let received = 0;
  const server = createServer((req, res) => {
    received++;
    req.resume();
    if (req.url === '/hang') return;
    const status = req.url === '/busy' ? 503 : req.url === '/bad' ? 400 : 200;
    res.writeHead(status, { 'content-type': 'application/json' }).end('{"id":"m1"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received: () => received, server };
}

const config = (apiUrl: string) =>
  ({ type: 'sms', apiUrl, apiKey: 'secret-key', from: 'Ops' }) as const;

let api: Awaited<ReturnType<typeof smsApi>>;

describeProvider({
  name: 'sms (the worked example in docs/providers.md)',
  action: { payload: { to: '+15550100', text: 'disk full' } },
  setup: async () => {
    api = await smsApi();
    const make = (path: string) => new SmsProvider('sms', config(`${api.url}${path}`));
    const ok = make('/ok');
    return {
      ok,
      transient: make('/busy'),
      terminal: make('/bad'),
      hang: make('/hang'),
      received: api.received,
      close: async () => {
        api.server.closeAllConnections();
        await new Promise((r) => api.server.close(r));
      },
    };
  },
});

describe('the sms example as a configured type', () => {
  let server: Server | undefined;
  afterAll(() => server?.close());

  it('loads from config, retries a 503 under the executor, and previews with the key masked', async () => {
    const local = await smsApi();
    server = local.server;
    const gateway = createGateway(
      {
        providers: {
          text: { ...config(`${local.url}/bad`), retry: { attempts: 2, baseMs: 1 } },
        },
      },
      { providerTypes: [smsProviderType] },
    );
    const action = {
      namespace: 'ops',
      tenant: 'acme',
      provider: 'text',
      actionType: 'page',
      payload: { to: '+15550100', text: 'hi' },
    };
    const preview = await gateway.preview('text', action);
    expect(preview.preview).toMatchObject({ kind: 'http', headers: { authorization: '***' } });
    const out = await gateway.dispatch(action);
    expect(out).toMatchObject({ outcome: 'failed', error: { transient: false } });
    expect(local.received()).toBe(1); // 400 is terminal: no retry
    await gateway.close();
  });
});
