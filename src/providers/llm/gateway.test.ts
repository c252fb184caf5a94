import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../gateway/gateway.js';
import { startFakeLlmApi, type FakeLlmApi } from './test-server.js';

let api: FakeLlmApi | undefined;
let gateway: Gateway | undefined;
afterEach(async () => {
  await gateway?.close();
  await api?.close();
});

describe('llm provider through the gateway', () => {
  it('serves a repeated identical request from the cache, counted in the metrics', async () => {
    api = await startFakeLlmApi();
    gateway = createGateway({
      providers: {
        ai: {
          type: 'llm',
          baseUrl: api.baseUrl('ok'),
          model: 'test-model',
          allowPrivateNetworks: true,
          cache: { ttl: '10m' },
        },
      },
    });
    const action = {
      namespace: 'agents',
      tenant: 'acme',
      provider: 'ai',
      actionType: 'ask',
      payload: { prompt: 'what is 2+2?' },
    };
    const first = await gateway.dispatch(action);
    const second = await gateway.dispatch(action);
    expect(first).toMatchObject({ outcome: 'executed', response: { body: { cached: false } } });
    expect(second).toMatchObject({ outcome: 'executed', response: { body: { cached: true } } });
    expect(api.requests).toHaveLength(1);
    const metrics = await gateway.metrics.registry.metrics();
    expect(metrics).toContain('switchyard_provider_llm_cache_hits_total{provider="ai"} 1');
    expect(metrics).toContain('switchyard_provider_llm_cache_misses_total{provider="ai"} 1');
  });
});

describe('llm provider SSRF guard', () => {
  it('refuses a host name that resolves to a private address, before any request', async (t) => {
    // This machine's own name, when it resolves to loopback (checked by DNS at connect time, not
    // by the name). Anything else is skipped: tests never leave loopback.
    const host = hostname();
    const addresses = await lookup(host, { all: true }).catch(() => []);
    if (addresses.length === 0 || !addresses.every((a) => a.address.startsWith('127.'))) {
      t.skip();
      return;
    }
    api = await startFakeLlmApi();
    const url = new URL(api.baseUrl('ok'));
    url.hostname = host;
    gateway = createGateway({
      providers: {
        ai: { type: 'llm', baseUrl: url.toString(), model: 'm', retry: { attempts: 1 } },
      },
    });
    const out = await gateway.dispatch({
      namespace: 'agents',
      tenant: 'acme',
      provider: 'ai',
      actionType: 'ask',
      payload: { prompt: 'hi' },
    });
    expect(out).toMatchObject({
      outcome: 'failed',
      error: { code: 'SY_ERR_DESTINATION_BLOCKED', transient: false },
    });
    expect(api.requests).toHaveLength(0);
  });
});
