import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { buildConnector } from 'undici';

/**
 * Test helpers for the HTTP-based providers (not used at run time): a loopback HTTP server that
 * records requests and counts TCP connections, and a connector that records connection attempts
 * and never opens a socket.
 */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface TestServer {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 (port 0) answering with `handler` once the body has arrived. */
export async function startTestServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  },
): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    connections: () => connections,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** A connector that records the hosts it is asked for and fails without touching the network. */
export function recordingConnector(): {
  connector: buildConnector.connector;
  calls: string[];
} {
  const calls: string[] = [];
  return {
    calls,
    connector: (options, callback) => {
      calls.push(options.hostname);
      queueMicrotask(() =>
        callback(
          Object.assign(new Error(`test connector: refusing ${options.hostname}`), {
            code: 'ECONNREFUSED',
          }),
          null,
        ),
      );
    },
  };
}
