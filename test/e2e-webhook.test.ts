import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  closedPort,
  postJson,
  startReceiver,
  startServerProcess,
  stopServerProcess,
  type Receiver,
  type ServerProcess,
} from './helpers/process.js';

/*
 * The real `switchyard serve` process, webhook providers pointed at real loopback receivers:
 * what an operator gets from the bundle, end to end over HTTP.
 */

const RECEIVER_BODY = { received: true, ticket: 'T-1', tags: ['a', 'b'] };

const payload = {
  to: 'world',
  order: { id: 42, lines: [{ sku: 'A-1', qty: 2 }], shipping: { city: 'Zürich', express: true } },
  note: null,
};

function action(provider: string, actionType = 'notify'): Record<string, unknown> {
  return { namespace: 'demo', tenant: 'acme', provider, actionType, payload };
}

interface OutcomeBody {
  outcome: string;
  actionId: string;
  provider: string;
  response?: { status?: number; body?: unknown };
  error?: { code: string; status?: number; transient: boolean };
}

describe('webhook provider in a real server process', () => {
  let ok: Receiver;
  let batch: Receiver;
  let error500: Receiver;
  let error400: Receiver;
  let hang: Receiver;
  let server: ServerProcess | undefined;
  const dispatchUrl = (): string => `${(server as ServerProcess).url}/v1/dispatch`;

  beforeAll(async () => {
    const answer200 = (_req: unknown, res: ServerResponse): void => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(RECEIVER_BODY));
    };
    ok = await startReceiver(answer200);
    batch = await startReceiver(answer200);
    error500 = await startReceiver((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}');
    });
    error400 = await startReceiver((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad"}');
    });
    // Never answers: the provider's own timeout has to end the call.
    hang = await startReceiver(() => {});
    const port = await closedPort();
    // Log level info: startServerProcess waits for the "switchyard listening" line.
    server = await startServerProcess(`
providers:
  hook:
    type: webhook
    allowPrivateNetworks: true
    retry: { attempts: 1 }
    url: ${ok.url}/hook
    timeout: 1s
  batch-hook:
    type: webhook
    allowPrivateNetworks: true
    retry: { attempts: 1 }
    url: ${batch.url}/hook
    timeout: 1s
  error500:
    type: webhook
    allowPrivateNetworks: true
    retry: { attempts: 1 }
    url: ${error500.url}/hook
    timeout: 1s
  error400:
    type: webhook
    allowPrivateNetworks: true
    retry: { attempts: 1 }
    url: ${error400.url}/hook
    timeout: 1s
  hang:
    type: webhook
    allowPrivateNetworks: true
    retry: { attempts: 1 }
    url: ${hang.url}/hook
    timeout: 500ms
  closed:
    type: webhook
    allowPrivateNetworks: true
    retry: { attempts: 1 }
    url: http://127.0.0.1:${port}/hook
    timeout: 1s
`);
  });

  afterAll(async () => {
    await stopServerProcess(server);
    await Promise.all([ok, batch, error500, error400, hang].map((r) => r?.close()));
  });

  it('a 200 JSON answer is "executed" with the receiver status and body, and the payload arrives as JSON once', async () => {
    const res = await postJson(dispatchUrl(), action('hook'));
    expect(res.status).toBe(200);
    const outcome = res.body as OutcomeBody;
    expect(outcome.outcome).toBe('executed');
    expect(outcome.provider).toBe('hook');
    expect(outcome.response).toEqual({ status: 200, body: RECEIVER_BODY });

    expect(ok.requests).toHaveLength(1);
    const [received] = ok.requests;
    expect(received?.method).toBe('POST');
    expect(received?.url).toBe('/hook');
    expect(received?.headers['content-type']).toBe('application/json');
    expect(received?.headers['x-switchyard-action-id']).toBe(outcome.actionId);
    expect(received?.headers['x-switchyard-action-type']).toBe('notify');
    expect(JSON.parse(received?.body ?? '')).toEqual(payload);
  });

  it('a 500 answer is "failed" with SY_ERR_PROVIDER_HTTP_STATUS, status 500, transient', async () => {
    const res = await postJson(dispatchUrl(), action('error500'));
    expect(res.status).toBe(200);
    const outcome = res.body as OutcomeBody;
    expect(outcome.outcome).toBe('failed');
    expect(outcome.error?.code).toBe('SY_ERR_PROVIDER_HTTP_STATUS');
    expect(outcome.error?.status).toBe(500);
    expect(outcome.error?.transient).toBe(true);
    expect(error500.requests).toHaveLength(1);
  });

  it('a 400 answer is "failed" with SY_ERR_PROVIDER_HTTP_STATUS, status 400, not transient', async () => {
    const res = await postJson(dispatchUrl(), action('error400'));
    expect(res.status).toBe(200);
    const outcome = res.body as OutcomeBody;
    expect(outcome.outcome).toBe('failed');
    expect(outcome.error?.code).toBe('SY_ERR_PROVIDER_HTTP_STATUS');
    expect(outcome.error?.status).toBe(400);
    expect(outcome.error?.transient).toBe(false);
    expect(error400.requests).toHaveLength(1);
  });

  it('a receiver that never answers is "failed" with SY_ERR_PROVIDER_TIMEOUT after the provider timeout', async () => {
    const started = Date.now();
    const res = await postJson(dispatchUrl(), action('hang'));
    // Generous bound: the 500ms provider timeout must end the call, not a client or OS timeout.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(res.status).toBe(200);
    const outcome = res.body as OutcomeBody;
    expect(outcome.outcome).toBe('failed');
    expect(outcome.error?.code).toBe('SY_ERR_PROVIDER_TIMEOUT');
    expect(outcome.error?.transient).toBe(true);
    expect(hang.requests).toHaveLength(1);
  });

  it('a closed port is "failed" with SY_ERR_PROVIDER_NETWORK', async () => {
    const res = await postJson(dispatchUrl(), action('closed'));
    expect(res.status).toBe(200);
    const outcome = res.body as OutcomeBody;
    expect(outcome.outcome).toBe('failed');
    expect(outcome.error?.code).toBe('SY_ERR_PROVIDER_NETWORK');
    expect(outcome.error?.transient).toBe(true);
  });

  it('a batch of 3 returns 3 outcomes in input order and the receiver gets 3 requests', async () => {
    const actions = ['first', 'second', 'third'].map((id) => ({
      ...action('batch-hook'),
      id: `batch-${id}`,
    }));
    const res = await postJson(`${(server as ServerProcess).url}/v1/dispatch/batch`, actions);
    expect(res.status).toBe(200);
    const { outcomes } = res.body as { outcomes: OutcomeBody[] };
    expect(outcomes.map((o) => [o.outcome, o.actionId])).toEqual([
      ['executed', 'batch-first'],
      ['executed', 'batch-second'],
      ['executed', 'batch-third'],
    ]);
    expect(batch.requests).toHaveLength(3);
    expect(batch.requests.map((r) => r.headers['x-switchyard-action-id']).sort()).toEqual([
      'batch-first',
      'batch-second',
      'batch-third',
    ]);
  });
});

describe('quickstart acceptance', () => {
  let server: ServerProcess | undefined;

  afterAll(async () => {
    await stopServerProcess(server);
  });

  it('the quickstart config executes the README action on the log provider and prints it to stdout', async () => {
    const yaml = readFileSync(
      resolve(import.meta.dirname, '../examples/quickstart/switchyard.yaml'),
      'utf8',
    );
    server = await startServerProcess(yaml);
    const res = await postJson(
      `${server.url}/v1/dispatch`,
      '{"namespace":"demo","tenant":"acme","provider":"log","actionType":"hello","payload":{"to":"world"}}',
    );
    expect(res.status).toBe(200);
    const outcome = res.body as OutcomeBody;
    expect(outcome.outcome).toBe('executed');
    expect(outcome.provider).toBe('log');

    const proc = server;
    const line = await vi.waitFor(
      () => {
        const found = proc
          .output()
          .split('\n')
          .find((l) => l.includes(outcome.actionId) && l.includes('"payload"'));
        if (found === undefined) throw new Error('no log line for the action yet');
        return found;
      },
      { timeout: 5_000, interval: 50 },
    );
    expect(JSON.parse(line)).toMatchObject({
      provider: 'log',
      actionId: outcome.actionId,
      namespace: 'demo',
      tenant: 'acme',
      actionType: 'hello',
      payload: { to: 'world' },
    });
  });
});
