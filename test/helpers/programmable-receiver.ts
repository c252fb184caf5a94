import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

/** How the receiver answers one call. */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** JSON-encoded; default `{"ok":true}` for 2xx, `{"error":"status N"}` otherwise. */
  body?: unknown;
  /** Answer after this many ms (the request is held until then, or until `release`). */
  delayMs?: number;
}

/** Decides the reply to each call; 'hang' holds the request until `release` or `close`. */
export type Behaviour = (call: ReceivedCall) => Reply | 'hang';

export interface ReceivedCall {
  /** 1 for the first call this receiver got. */
  n: number;
  /** performance.now() when the request body had arrived. */
  at: number;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** The status answered; undefined while held, or when the caller went away first. */
  answered: number | undefined;
}

/** Ready-made behaviours; each counts its own calls (a new one starts from zero). */
export const behave = {
  ok:
    (delayMs = 0): Behaviour =>
    () => ({ status: 200, delayMs }),
  always:
    (status: number, headers?: Record<string, string>): Behaviour =>
    () => ({ status, ...(headers === undefined ? {} : { headers }) }),
  /** The first `n` calls answer `status` (with `headers`), the later ones 200. */
  failFirst: (n: number, status: number, headers?: Record<string, string>): Behaviour => {
    let seen = 0;
    return () =>
      ++seen <= n ? { status, ...(headers === undefined ? {} : { headers }) } : { status: 200 };
  },
  hang: (): Behaviour => () => 'hang',
};

export interface ProgrammableReceiver {
  url: string;
  /** Every call, in arrival order. */
  readonly calls: ReceivedCall[];
  /** Changes how later calls are answered (calls already held keep waiting). */
  set(behaviour: Behaviour): void;
  /** The calls that carried this x-switchyard-action-id. */
  callsFor(actionId: string): ReceivedCall[];
  /** Requests held right now (hanging or delayed). */
  readonly held: number;
  /** Answers every held request now with `reply` (default 200). */
  release(reply?: Reply): void;
  close(): Promise<void>;
}

/**
 * A real node:http server on 127.0.0.1 whose behaviour a test changes as it goes: fail the first
 * N calls then succeed, always fail, hang, answer late. It records every call (headers, body,
 * arrival time, the status it answered) so a test can count attempts per action id.
 */
export async function startProgrammableReceiver(
  initial: Behaviour = behave.ok(),
): Promise<ProgrammableReceiver> {
  let behaviour = initial;
  const calls: ReceivedCall[] = [];
  const held = new Map<ServerResponse, { call: ReceivedCall; timer: NodeJS.Timeout | undefined }>();

  const answer = (res: ServerResponse, call: ReceivedCall, reply: Reply): void => {
    const h = held.get(res);
    if (h?.timer !== undefined) clearTimeout(h.timer);
    held.delete(res);
    if (res.destroyed || res.writableEnded) return;
    const ok = reply.status >= 200 && reply.status < 300;
    const body = reply.body ?? (ok ? { ok: true, n: call.n } : { error: `status ${reply.status}` });
    call.answered = reply.status;
    res
      .writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
      .end(JSON.stringify(body));
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call: ReceivedCall = {
        n: calls.length + 1,
        at: performance.now(),
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        answered: undefined,
      };
      calls.push(call);
      const reply = behaviour(call);
      if (reply === 'hang') {
        held.set(res, { call, timer: undefined });
        res.on('close', () => held.delete(res));
        return;
      }
      if ((reply.delayMs ?? 0) <= 0) {
        answer(res, call, reply);
        return;
      }
      const timer = setTimeout(() => answer(res, call, reply), reply.delayMs);
      held.set(res, { call, timer });
      res.on('close', () => {
        clearTimeout(timer);
        held.delete(res);
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    set: (b) => (behaviour = b),
    callsFor: (actionId) => calls.filter((c) => c.headers['x-switchyard-action-id'] === actionId),
    get held() {
      return held.size;
    },
    release: (reply = { status: 200 }) => {
      for (const [res, { call }] of [...held]) answer(res, call, reply);
    },
    close: () =>
      new Promise<void>((done) => {
        for (const { timer } of held.values()) if (timer !== undefined) clearTimeout(timer);
        held.clear();
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
