import { request } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  postJson,
  startReceiver,
  startServerProcess,
  stopServerProcess,
  type Receiver,
  type ServerProcess,
} from './helpers/process.js';

/*
 * Graceful shutdown of the real `switchyard serve` process: a signal stops new work, lets the
 * actions already running finish, and exits 0.
 */

type Attempt = { status: number; body: unknown } | { error: string };

/** POSTs on a fresh TCP connection (no keep-alive reuse), reporting a refused connection as data. */
function postOnNewConnection(url: string, body: unknown): Promise<Attempt> {
  return new Promise((done) => {
    const req = request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON; keep the text
          }
          done({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => done({ error: err.code ?? err.message }));
    req.end(JSON.stringify(body));
  });
}

/** The exit status, or "still running" once `ms` have passed (a clear failure, not a hang). */
function exitWithin(proc: ServerProcess, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise((done) => (timer = setTimeout(() => done('still running'), ms)));
  return Promise.race([proc.exited, late]).finally(() => clearTimeout(timer));
}

const action = (provider: string, actionType: string): Record<string, unknown> => ({
  namespace: 'demo',
  tenant: 'acme',
  provider,
  actionType,
  payload: { step: actionType },
});

describe('graceful shutdown of the server process', () => {
  let server: ServerProcess | undefined;
  let receiver: Receiver | undefined;
  const timers: NodeJS.Timeout[] = [];

  afterEach(async () => {
    for (const t of timers.splice(0)) clearTimeout(t);
    await stopServerProcess(server);
    await receiver?.close();
    server = undefined;
    receiver = undefined;
  });

  it('SIGTERM lets 5 in-flight webhook dispatches finish as "executed", refuses new work, and exits 0', async () => {
    const slow = await startReceiver((_req, res) => {
      timers.push(
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        }, 1_000),
      );
    });
    receiver = slow;
    const proc = await startServerProcess(`
providers:
  slow:
    type: webhook
    allowPrivateNetworks: true
    retry: { attempts: 1 }
    url: ${slow.url}/hook
    timeout: 10s
`);
    server = proc;

    const inFlight = [1, 2, 3, 4, 5].map((n) =>
      postJson(`${proc.url}/v1/dispatch`, action('slow', `inflight-${n}`)),
    );
    await vi.waitFor(
      () => {
        if (slow.requests.length < 5) throw new Error(`${slow.requests.length}/5 received`);
      },
      { timeout: 10_000, interval: 20 },
    );
    proc.kill('SIGTERM');
    await vi.waitFor(
      () => {
        if (!proc.output().includes('"msg":"shutting down"')) throw new Error('no signal yet');
      },
      { timeout: 10_000, interval: 10 },
    );

    // New work after the signal: the listener is closed (refused) or the gateway answers 503.
    const late = await postOnNewConnection(`${proc.url}/v1/dispatch`, action('log', 'late'));
    if ('error' in late) expect(late.error).toBe('ECONNREFUSED');
    else
      expect([late.status, (late.body as { error: { code: string } }).error.code]).toEqual([
        503,
        'SY_ERR_SHUTTING_DOWN',
      ]);

    const results = await Promise.all(inFlight);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(results.map((r) => (r.body as { outcome: string }).outcome)).toEqual([
      'executed',
      'executed',
      'executed',
      'executed',
      'executed',
    ]);
    expect(slow.requests).toHaveLength(5);
    expect(await exitWithin(proc, 10_000)).toEqual({ code: 0, signal: null });
  });

  it('a call still hanging at server.shutdownTimeout is aborted: SY_ERR_SHUTTING_DOWN, exit 0', async () => {
    const hang = await startReceiver(() => {
      /* never answers */
    });
    receiver = hang;
    const proc = await startServerProcess(`
server:
  shutdownTimeout: 300ms
providers:
  hang:
    type: webhook
    allowPrivateNetworks: true
    retry: { attempts: 1 }
    url: ${hang.url}/hook
    timeout: 60s
`);
    server = proc;
    const pending = postJson(`${proc.url}/v1/dispatch`, action('hang', 'stuck'));
    await vi.waitFor(
      () => {
        if (hang.requests.length < 1) throw new Error('not received yet');
      },
      { timeout: 10_000, interval: 20 },
    );
    proc.kill('SIGTERM');
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      outcome: 'failed',
      error: { code: 'SY_ERR_SHUTTING_DOWN', transient: true },
    });
    expect(await exitWithin(proc, 10_000)).toEqual({ code: 0, signal: null });
  });

  it('SIGINT on an idle server exits 0', async () => {
    const proc = await startServerProcess('');
    server = proc;
    const health = await fetch(`${proc.url}/health`);
    expect(health.status).toBe(200);
    proc.kill('SIGINT');
    expect(await exitWithin(proc, 10_000)).toEqual({ code: 0, signal: null });
  });
});
