import { afterEach, describe, expect, it } from 'vitest';
import { WebhookProvider, isTransientStatus } from './provider.js';
import { ProviderError } from '../provider.js';
import type { Action } from '../../core/action.js';
import { startReceiver, type Receiver } from '../../../test/helpers/process.js';

const action: Action = {
  id: 'a-1',
  namespace: 'demo',
  tenant: 'acme',
  provider: 'hook',
  actionType: 'notify',
  payload: { to: 'ops', nested: { n: 1, list: [1, 'two', null] } },
  labels: {},
  dedupKey: undefined,
  fingerprint: undefined,
  deliverAt: undefined,
  receivedAt: Date.now(),
};
const ctx = { signal: new AbortController().signal, attempt: 1 };

let receiver: Receiver | undefined;
let provider: WebhookProvider | undefined;
afterEach(async () => {
  await provider?.close();
  await receiver?.close();
  provider = receiver = undefined;
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

describe('webhook provider', () => {
  it('sends the payload as JSON with configured headers and captures a JSON answer', async () => {
    receiver = await startReceiver((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":7}');
    });
    provider = new WebhookProvider('hook', {
      type: 'webhook',
      url: `${receiver.url}/in?x=1`,
      method: 'PUT',
      headers: { Authorization: 'Bearer t' },
    });
    const res = await provider.execute(action, ctx);
    expect(res).toEqual({ status: 201, body: { id: 7 } });
    const [req] = receiver.requests;
    expect(req?.method).toBe('PUT');
    expect(req?.url).toBe('/in?x=1');
    expect(JSON.parse(req?.body ?? '')).toEqual(action.payload);
    expect(req?.headers['authorization']).toBe('Bearer t');
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers['x-switchyard-action-id']).toBe('a-1');
    expect(req?.headers['x-switchyard-action-type']).toBe('notify');
  });

  it('keeps a text answer as text and caps a large one', async () => {
    receiver = await startReceiver((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('x'.repeat(10_000));
    });
    provider = new WebhookProvider('hook', {
      type: 'webhook',
      url: receiver.url,
      maxResponseSize: 100,
    });
    const res = await provider.execute(action, ctx);
    expect(res).toEqual({ status: 200, body: 'x'.repeat(100), truncated: true });
  });

  it('a GET sends no body', async () => {
    receiver = await startReceiver((_req, res) => res.writeHead(204).end());
    provider = new WebhookProvider('hook', { type: 'webhook', url: receiver.url, method: 'GET' });
    expect(await provider.execute(action, ctx)).toEqual({ status: 204 });
    expect(receiver.requests[0]?.body).toBe('');
  });

  it.each([
    [500, true],
    [503, true],
    [429, true],
    [408, true],
    [400, false],
    [404, false],
    [422, false],
  ])('HTTP %d fails with its status; transient=%s', async (status, transient) => {
    receiver = await startReceiver((_req, res) => {
      res.writeHead(status, { 'content-type': 'text/plain' }).end('nope');
    });
    provider = new WebhookProvider('hook', { type: 'webhook', url: receiver.url });
    const err = await failure(provider.execute(action, ctx));
    expect(err.code).toBe('SY_ERR_PROVIDER_HTTP_STATUS');
    expect(err.transient).toBe(transient);
    expect(err.response).toEqual({ status, body: 'nope' });
    expect(isTransientStatus(status)).toBe(transient);
  });

  it('a receiver that hangs is a transient timeout', async () => {
    receiver = await startReceiver(() => {
      /* never answers */
    });
    provider = new WebhookProvider('hook', {
      type: 'webhook',
      url: receiver.url,
      timeout: '200ms',
    });
    const err = await failure(provider.execute(action, ctx));
    expect([err.code, err.transient]).toEqual(['SY_ERR_PROVIDER_TIMEOUT', true]);
  });

  it('a closed port is a transient network error', async () => {
    receiver = await startReceiver();
    const url = receiver.url;
    await receiver.close();
    receiver = undefined;
    provider = new WebhookProvider('hook', { type: 'webhook', url });
    const err = await failure(provider.execute(action, ctx));
    expect([err.code, err.transient]).toEqual(['SY_ERR_PROVIDER_NETWORK', true]);
  });

  it('an aborted context (shutdown timeout) stops the request', async () => {
    receiver = await startReceiver(() => {
      /* never answers */
    });
    provider = new WebhookProvider('hook', { type: 'webhook', url: receiver.url, timeout: '10s' });
    const abort = new AbortController();
    const pending = failure(provider.execute(action, { signal: abort.signal, attempt: 1 }));
    setTimeout(() => abort.abort(), 50);
    expect((await pending).code).toBe('SY_ERR_SHUTTING_DOWN');
  });
});
