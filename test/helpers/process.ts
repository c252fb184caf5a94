import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The built CLI bundle (npm test builds it before running vitest). */
export const CLI = resolve(import.meta.dirname, '../../dist/cli.js');

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Writes a config file into a fresh temp folder and returns its path. */
export function writeConfig(
  yaml: string,
  dir = mkdtempSync(join(tmpdir(), 'switchyard-test-')),
): string {
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(file, yaml);
  return file;
}

/**
 * Starts `switchyard serve` as a real child process on a free port and resolves once it logs
 * "switchyard listening" (its URL comes from that log line, so log.level must be info or lower).
 */
export async function startServerProcess(
  configYaml: string,
  env: NodeJS.ProcessEnv = {},
  /** Run in this folder (e.g. to restart a server on the same ./switchyard-data). */
  dir?: string,
): Promise<ServerProcess> {
  const config = writeConfig(configYaml, dir);
  // Run in the config's own temp folder: the default sqlite state (./switchyard-data) is then
  // private to this server process.
  const child = spawn(process.execPath, [CLI, 'serve', '--config', config, '--port', '0'], {
    cwd: dirname(config),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  const url = await new Promise<string>((resolveUrl, rejectUrl) => {
    const reject = (err: Error): void => {
      // Only before it started: never leave a half-started server behind (and never kill one
      // that started: it may be meant to run longer than the start-up limit).
      if (started) return;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      rejectUrl(err);
    };
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('switchyard listening')) continue;
        try {
          const listening = (JSON.parse(line) as { url: string }).url;
          started = true;
          clearTimeout(timer);
          resolveUrl(listening);
        } catch {
          // a partial line; wait for the rest
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    void exited.then(({ code }) => reject(new Error(`server exited early (${code}):\n${out}`)));
    timer = setTimeout(() => reject(new Error(`server did not start within 10s:\n${out}`)), 10_000);
    timer.unref();
  });
  return {
    child,
    url,
    output: () => out,
    exited,
    kill: (signal = 'SIGTERM') => child.kill(signal),
  };
}

export interface Receiver {
  url: string;
  /** Every request received: method, path, headers and the raw body. */
  requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 that records requests and answers with `handler`. */
export async function startReceiver(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  },
): Promise<Receiver> {
  const requests: Receiver['requests'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** POSTs JSON (or a raw string) and returns status + parsed body. */
export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON; keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/**
 * Ends a server process whatever state it is in (for afterEach/afterAll): SIGKILL unless it has
 * already exited, then waits for the exit so no child outlives its test file.
 */
export async function stopServerProcess(proc: ServerProcess | undefined): Promise<void> {
  if (proc === undefined) return;
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  await proc.exited;
}

/** A loopback port that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}
