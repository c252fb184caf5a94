import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CLI,
  closedPort,
  startReceiver,
  startServerProcess,
  stopServerProcess,
  writeConfig,
  type Receiver,
  type ServerProcess,
} from './helpers/process.js';

/*
 * The bundled CLI (dist/cli.js) as a user runs it: exit codes 0 / 1 / 2, stable error codes on
 * stderr, and `dispatch` against a real `switchyard serve` process.
 */

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli.js ...args`; SIGKILLs it after `timeoutMs` so nothing outlives the test. */
function runCli(
  args: readonly string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  // The tests name the server with --url; an inherited SWITCHYARD_* must not change that.
  for (const name of Object.keys(env)) if (name.startsWith('SWITCHYARD_')) delete env[name];
  const child = spawn(process.execPath, [CLI, ...args], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')) as {
  version: string;
};

interface OutcomeBody {
  outcome: string;
  actionId: string;
  provider: string;
}

describe('switchyard CLI', () => {
  let server: ServerProcess | undefined;
  let failing: Receiver | undefined;
  let dir: string;
  const url = (): string => (server as ServerProcess).url;

  /** The log provider's JSON line for an action, once the server has printed it. */
  const logLine = (actionId: string): Promise<Record<string, unknown>> =>
    vi.waitFor(
      () => {
        const line = (server as ServerProcess)
          .output()
          .split('\n')
          .find((l) => l.includes(`"actionId":"${actionId}"`) && l.includes('"payload"'));
        if (line === undefined) throw new Error(`no log line for ${actionId} yet`);
        return JSON.parse(line) as Record<string, unknown>;
      },
      { timeout: 5_000, interval: 50 },
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-cli-test-'));
    failing = await startReceiver((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}');
    });
    server = await startServerProcess(`
providers:
  failing:
    type: webhook
    allowPrivateNetworks: true
    retry: { attempts: 1 }
    url: ${failing.url}/hook
    timeout: 2s
`);
  });

  afterAll(async () => {
    await stopServerProcess(server);
    await failing?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--version prints the package.json version and exits 0', async () => {
    const res = await runCli(['--version']);
    expect(res.code).toBe(0);
    expect(res.stdout.split(' ')[0]).toBe(`switchyard/${pkg.version}`);
    expect(res.stderr).toBe('');
  });

  it('--help lists the serve and dispatch commands and exits 0', async () => {
    const res = await runCli(['--help']);
    expect(res.code).toBe(0);
    const commands = res.stdout
      .split('\n')
      .map((line) => /^\s{2}(\w+)\s/.exec(line)?.[1])
      .filter((name) => name !== undefined);
    expect(commands).toEqual(expect.arrayContaining(['serve', 'dispatch']));
  });

  it('an unknown command exits 2 with SY_ERR_CLI_USAGE on stderr', async () => {
    const res = await runCli(['frobnicate']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('SY_ERR_CLI_USAGE');
    expect(res.stdout).toBe('');
  });

  it('dispatch with flags runs the action on the server, prints "executed" and exits 0', async () => {
    const res = await runCli([
      'dispatch',
      '--url',
      url(),
      '--provider',
      'log',
      '--action-type',
      'hello',
      '--namespace',
      'demo',
      '--tenant',
      'acme',
      '--payload',
      '{"to":"world"}',
    ]);
    expect(res.code).toBe(0);
    expect(res.stdout.startsWith('executed ')).toBe(true);
    expect(res.stderr).toBe('');
  });

  it('dispatch --json prints the outcome as parseable JSON', async () => {
    const res = await runCli([
      'dispatch',
      '--json',
      '--url',
      url(),
      '--provider',
      'log',
      '--action-type',
      'hello',
      '--namespace',
      'demo',
      '--tenant',
      'acme',
      '--payload',
      '{"to":"json"}',
    ]);
    expect(res.code).toBe(0);
    const outcome = JSON.parse(res.stdout) as OutcomeBody;
    expect(outcome.outcome).toBe('executed');
    expect(outcome.provider).toBe('log');
    expect(await logLine(outcome.actionId)).toMatchObject({ payload: { to: 'json' } });
  });

  it('dispatch <file> sends the action held in a JSON file', async () => {
    const file = join(dir, 'action.json');
    writeFileSync(
      file,
      JSON.stringify({
        namespace: 'demo',
        tenant: 'acme',
        provider: 'log',
        actionType: 'from-file',
        payload: { source: 'file', n: 1 },
      }),
    );
    const res = await runCli(['dispatch', file, '--json', '--url', url()]);
    expect(res.code).toBe(0);
    const outcome = JSON.parse(res.stdout) as OutcomeBody;
    expect(outcome.outcome).toBe('executed');
    expect(await logLine(outcome.actionId)).toMatchObject({
      actionType: 'from-file',
      payload: { source: 'file', n: 1 },
    });
  });

  it('dispatch - reads the action from standard input', async () => {
    const input = JSON.stringify({
      namespace: 'demo',
      tenant: 'acme',
      provider: 'log',
      actionType: 'from-stdin',
      payload: { source: 'stdin' },
    });
    const res = await runCli(['dispatch', '-', '--json', '--url', url()], { input });
    expect(res.code).toBe(0);
    const outcome = JSON.parse(res.stdout) as OutcomeBody;
    expect(outcome.outcome).toBe('executed');
    expect(await logLine(outcome.actionId)).toMatchObject({
      actionType: 'from-stdin',
      payload: { source: 'stdin' },
    });
  });

  it('dispatch to a webhook answering 500 prints the failure code and exits 1', async () => {
    const before = failing?.requests.length ?? 0;
    const res = await runCli([
      'dispatch',
      '--url',
      url(),
      '--provider',
      'failing',
      '--action-type',
      'hello',
      '--namespace',
      'demo',
      '--tenant',
      'acme',
    ]);
    expect(res.code).toBe(1);
    expect(res.stdout.startsWith('failed ')).toBe(true);
    expect(res.stdout).toContain('SY_ERR_PROVIDER_HTTP_STATUS');
    expect(failing?.requests.length).toBe(before + 1);
  });

  it('dispatch without --provider exits 2 with SY_ERR_CLI_USAGE', async () => {
    const res = await runCli([
      'dispatch',
      '--url',
      url(),
      '--action-type',
      'hello',
      '--namespace',
      'demo',
      '--tenant',
      'acme',
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('SY_ERR_CLI_USAGE');
    expect(res.stdout).toBe('');
  });

  it('dispatch to a port where nothing listens exits 1 with SY_ERR_CLIENT_CONNECT', async () => {
    const port = await closedPort();
    const res = await runCli([
      'dispatch',
      '--url',
      `http://127.0.0.1:${port}`,
      '--provider',
      'log',
      '--action-type',
      'hello',
      '--namespace',
      'demo',
      '--tenant',
      'acme',
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('SY_ERR_CLIENT_CONNECT');
    expect(res.stdout).toBe('');
  });

  it('serve with an unknown config key exits 2 and names the file, line, column and key', async () => {
    const file = writeConfig('server:\n  host: 127.0.0.1\n  prot: 8080\n');
    try {
      const res = await runCli(['serve', '--config', file, '--port', '0']);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('SY_ERR_CONFIG_INVALID');
      expect(res.stderr).toContain(`${file}:3:3`);
      expect(res.stderr).toContain('server.prot');
    } finally {
      rmSync(resolve(file, '..'), { recursive: true, force: true });
    }
  });
});
