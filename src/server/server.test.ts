import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildServer } from './server.js';
import { resolveConfig } from '../config/load.js';
import { silentLogger } from '../core/logger.js';
import type { ConfigInput } from '../config/schema.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function server(config: ConfigInput = {}): Promise<FastifyInstance> {
  app = await buildServer(resolveConfig(config), { logger: silentLogger() });
  return app;
}

const action = {
  namespace: 'demo',
  tenant: 'acme',
  provider: 'noop',
  actionType: 'hello',
  payload: {},
};

describe('HTTP adapter', () => {
  it('echoes a valid x-request-id and makes one otherwise', async () => {
    const s = await server();
    const kept = await s.inject({ url: '/health', headers: { 'x-request-id': 'trace-123' } });
    expect(kept.headers['x-request-id']).toBe('trace-123');
    const made = await s.inject({ url: '/health', headers: { 'x-request-id': 'bad id\u0001' } });
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('lists providers, built-in and configured', async () => {
    const s = await server({ providers: { sink: { type: 'log' } } });
    const res = await s.inject({ url: '/v1/providers' });
    const body = res.json() as {
      items: { name: string; type: string; circuit: { state: string } | null }[];
      nextCursor: null;
    };
    expect(body.items.map((p) => [p.name, p.type])).toEqual([
      ['log', 'log'],
      ['noop', 'noop'],
      ['sink', 'log'],
    ]);
    expect(body.items[0]).toMatchObject({
      circuit: { state: 'closed' },
      retry: { attempts: 3 },
      concurrency: { limit: 64, running: 0, queued: 0 },
    });
    expect(body.nextCursor).toBeNull();
    const one = await s.inject({ url: '/v1/providers/sink' });
    expect(one.json()).toMatchObject({ name: 'sink', type: 'log' });
    const missing = await s.inject({ url: '/v1/providers/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'SY_ERR_PROVIDER_NOT_FOUND' } });
  });

  it('serves an OpenAPI document that describes the dispatch routes', async () => {
    const s = await server();
    const doc = (await s.inject({ url: '/openapi.json' })).json() as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/dispatch', '/v1/dispatch/batch', '/health', '/metrics']),
    );
    expect((await s.inject({ url: '/docs/' })).statusCode).toBe(200);
  });

  it('/ready answers 200 while the gateway accepts actions', async () => {
    const s = await server();
    expect((await s.inject({ url: '/ready' })).statusCode).toBe(200);
  });
});

describe('API keys', () => {
  const config = { server: { apiKeys: ['k-0123456789abcdef', ''] } };

  it('/v1 routes need a key; health, ready and metrics do not', async () => {
    const s = await server(config);
    const none = await s.inject({ method: 'POST', url: '/v1/dispatch', payload: action });
    expect([none.statusCode, none.json().error.code]).toEqual([401, 'SY_ERR_UNAUTHORIZED']);
    const wrong = await s.inject({
      method: 'POST',
      url: '/v1/dispatch',
      payload: action,
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.json().error.code).toBe('SY_ERR_UNAUTHORIZED');
    for (const url of ['/health', '/ready', '/metrics']) {
      expect((await s.inject({ url })).statusCode).toBe(200);
    }
  });

  it('accepts the key as a bearer token or x-api-key', async () => {
    const s = await server(config);
    for (const headers of [
      { authorization: 'Bearer k-0123456789abcdef' },
      { 'x-api-key': 'k-0123456789abcdef' },
    ]) {
      const res = await s.inject({ method: 'POST', url: '/v1/dispatch', payload: action, headers });
      expect(res.json().outcome).toBe('executed');
    }
  });

  it('an empty key entry does not open the API', async () => {
    const s = await server(config);
    const res = await s.inject({
      method: 'POST',
      url: '/v1/dispatch',
      payload: action,
      headers: { authorization: 'Bearer ' },
    });
    expect(res.statusCode).toBe(401);
  });
});
