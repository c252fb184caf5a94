import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSyError } from '../core/errors.js';
import { SwitchyardClient } from './client.js';

interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  body: string;
}

describe('SwitchyardClient providers and dead letters', () => {
  const seen: Seen[] = [];
  let server: Server;
  let client: SwitchyardClient;
  let answer: { status: number; body: unknown } = { status: 200, body: {} };

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          contentType: req.headers['content-type'],
          body,
        });
        res
          .writeHead(answer.status, { 'content-type': 'application/json' })
          .end(JSON.stringify(answer.body));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    client = new SwitchyardClient({
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    });
  });

  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const last = (): Seen => seen.at(-1) as Seen;

  it('encodes provider names and ids into the path', async () => {
    answer = { status: 200, body: {} };
    await client.provider('a b/c');
    expect(last()).toMatchObject({ method: 'GET', url: '/v1/providers/a%20b%2Fc' });
    await client.resetCircuit('hook');
    expect(last()).toMatchObject({ method: 'POST', url: '/v1/providers/hook/circuit/reset' });
    await client.deadLetter('x?y');
    expect(last()).toMatchObject({ method: 'GET', url: '/v1/dlq/x%3Fy' });
    await client.replayDeadLetter('id/1');
    expect(last()).toMatchObject({ method: 'POST', url: '/v1/dlq/id%2F1/replay' });
    await client.discardDeadLetter('id 2');
    expect(last()).toMatchObject({ method: 'DELETE', url: '/v1/dlq/id%202', body: '' });
    // No body, no content-type (the server refuses an empty JSON body).
    expect(last().contentType).toBeUndefined();
  });

  it('builds the list query from the filter, limit and cursor', async () => {
    answer = { status: 200, body: { items: [], nextCursor: null, total: 0 } };
    await client.deadLetters({});
    expect(last().url).toBe('/v1/dlq');
    await client.deadLetters({
      provider: 'hook',
      tenant: 'a&b',
      actionType: undefined,
      reason: 'terminal',
      limit: 10,
      cursor: 'c=1',
    });
    expect(last().url).toBe(
      '/v1/dlq?provider=hook&tenant=a%26b&reason=terminal&limit=10&cursor=c%3D1',
    );
  });

  it('sends only the given filter fields to replay and discard', async () => {
    answer = { status: 200, body: { replayed: 2 } };
    expect(await client.replayDeadLetters({ provider: 'hook', tenant: undefined })).toEqual({
      replayed: 2,
    });
    expect(last()).toMatchObject({ method: 'POST', url: '/v1/dlq/replay' });
    expect(JSON.parse(last().body)).toEqual({ provider: 'hook' });
    answer = { status: 200, body: { discarded: 3 } };
    await client.discardDeadLetters({ all: true });
    expect(JSON.parse(last().body)).toEqual({ all: true });
    await client.discardDeadLetters({ namespace: 'ops', all: false });
    expect(JSON.parse(last().body)).toEqual({ namespace: 'ops' });
  });

  it('returns the items of GET /v1/providers', async () => {
    answer = { status: 200, body: { items: [{ name: 'hook' }], nextCursor: null } };
    expect(await client.providers()).toEqual([{ name: 'hook' }]);
  });

  it("throws the server's error code for an unknown id", async () => {
    answer = {
      status: 404,
      body: { error: { code: 'SY_ERR_DLQ_NOT_FOUND', message: 'no dead-letter entry has id "x"' } },
    };
    const err: unknown = await client.deadLetter('x').catch((e: unknown) => e);
    expect(isSyError(err) && err.code).toBe('SY_ERR_DLQ_NOT_FOUND');
  });
});
