import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  postJson,
  startReceiver,
  startServerProcess,
  type Receiver,
  type ServerProcess,
} from './helpers/process.js';

/*
 * Every kind of bad input against the real server process: each gets its documented code, none
 * reaches the provider, and the process keeps serving afterwards.
 */
let receiver: Receiver;
let server: ServerProcess;

const good = {
  namespace: 'demo',
  tenant: 'acme',
  provider: 'hook',
  actionType: 'notify',
  payload: { to: 'ops' },
};

beforeAll(async () => {
  receiver = await startReceiver();
  server = await startServerProcess(
    [
      'server:',
      '  bodyLimit: 4KiB',
      '  batchMaxSize: 5',
      'log:',
      '  level: info',
      'providers:',
      '  hook:',
      '    type: webhook',
      '    allowPrivateNetworks: true',
      `    url: ${receiver.url}/hook`,
    ].join('\n'),
  );
});

afterAll(async () => {
  server?.kill('SIGKILL');
  await receiver?.close();
});

const json = { 'content-type': 'application/json' };

describe('bad input over HTTP', () => {
  it.each([
    ['malformed JSON', '/v1/dispatch', '{"namespace":', json, 400, 'SY_ERR_MALFORMED_JSON'],
    ['an empty body', '/v1/dispatch', '', json, 400, 'SY_ERR_MALFORMED_JSON'],
    [
      'a prototype-poisoning key',
      '/v1/dispatch',
      '{"__proto__":{"x":1}}',
      json,
      400,
      'SY_ERR_MALFORMED_JSON',
    ],
    [
      'a form body',
      '/v1/dispatch',
      'a=1',
      { 'content-type': 'application/x-www-form-urlencoded' },
      415,
      'SY_ERR_UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'a missing field',
      '/v1/dispatch',
      { ...good, tenant: undefined },
      json,
      400,
      'SY_ERR_VALIDATION',
    ],
    ['a wrong type', '/v1/dispatch', { ...good, payload: [1, 2] }, json, 400, 'SY_ERR_VALIDATION'],
    ['an unknown field', '/v1/dispatch', { ...good, priority: 1 }, json, 400, 'SY_ERR_VALIDATION'],
    [
      'an unknown provider',
      '/v1/dispatch',
      { ...good, provider: 'nope' },
      json,
      400,
      'SY_ERR_UNKNOWN_PROVIDER',
    ],
    [
      'an oversized body',
      '/v1/dispatch',
      { ...good, payload: { big: 'x'.repeat(5000) } },
      json,
      413,
      'SY_ERR_BODY_TOO_LARGE',
    ],
    [
      'a batch over the limit',
      '/v1/dispatch/batch',
      Array(6).fill(good),
      json,
      413,
      'SY_ERR_BATCH_TOO_LARGE',
    ],
    ['a batch that is not an array', '/v1/dispatch/batch', good, json, 400, 'SY_ERR_VALIDATION'],
    [
      'a batch with one bad item',
      '/v1/dispatch/batch',
      [good, { ...good, actionType: 5 }],
      json,
      400,
      'SY_ERR_VALIDATION',
    ],
    [
      'a preview for an unknown provider',
      '/v1/providers/nope/preview',
      good,
      json,
      404,
      'SY_ERR_PROVIDER_NOT_FOUND',
    ],
    [
      'a preview of a bad action',
      '/v1/providers/hook/preview',
      { ...good, payload: 'x' },
      json,
      400,
      'SY_ERR_VALIDATION',
    ],
    [
      'a circuit reset of an unknown provider',
      '/v1/providers/nope/circuit/reset',
      {},
      json,
      404,
      'SY_ERR_PROVIDER_NOT_FOUND',
    ],
    [
      'a replay of an unknown dead letter',
      '/v1/dlq/nope/replay',
      {},
      json,
      404,
      'SY_ERR_DLQ_NOT_FOUND',
    ],
    [
      'a replay filter with an unknown field',
      '/v1/dlq/replay',
      { providr: 'x' },
      json,
      400,
      'SY_ERR_VALIDATION',
    ],
    [
      'a replay filter with a bad reason',
      '/v1/dlq/replay',
      { reason: 'bored' },
      json,
      400,
      'SY_ERR_VALIDATION',
    ],
    ['a discard without any filter', '/v1/dlq/discard', {}, json, 400, 'SY_ERR_VALIDATION'],
    ['an unknown route', '/v1/nothing', good, json, 404, 'SY_ERR_NOT_FOUND'],
    ['a wrong method', '/health', good, json, 405, 'SY_ERR_METHOD_NOT_ALLOWED'],
  ])('%s', async (_name, path, body, headers, status, code) => {
    const res = await postJson(server.url + path, body, headers);
    expect(res.status).toBe(status);
    const error = (res.body as { error: { code: string; message: string } }).error;
    expect(error.code).toBe(code);
    expect(error.message.length).toBeGreaterThan(0);
  });

  it('a DLQ list with a cursor the server never gave is 400, and a bad limit too', async () => {
    for (const q of ['cursor=bm9wZQ', 'limit=abc']) {
      const res = await fetch(`${server.url}/v1/dlq?${q}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        'SY_ERR_VALIDATION',
      );
    }
  });

  it('validation errors name the field', async () => {
    const res = await postJson(server.url + '/v1/dispatch/batch', [
      good,
      { ...good, payload: 'x' },
    ]);
    expect((res.body as { error: { details: { field: string } } }).error.details.field).toBe(
      '[1].payload',
    );
  });

  it('none of it reached the provider, and the server still serves', async () => {
    expect(receiver.requests).toHaveLength(0);
    const health = await fetch(server.url + '/health');
    expect(health.status).toBe(200);
    const res = await postJson(server.url + '/v1/dispatch', good);
    expect((res.body as { outcome: string }).outcome).toBe('executed');
    expect(receiver.requests).toHaveLength(1);
    expect(server.child.exitCode).toBeNull();
  });
});
