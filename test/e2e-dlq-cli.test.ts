import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CLI,
  postJson,
  startReceiver,
  startServerProcess,
  stopServerProcess,
  type Receiver,
  type ServerProcess,
} from './helpers/process.js';

/*
 * `switchyard providers …` and `switchyard dlq …` (the built dist/cli.js) against a real
 * `switchyard serve` process whose webhook fails into the dead-letter queue, then recovers.
 */

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli.js ...args` (SWITCHYARD_* env removed; the tests pass --url). */
function runCli(args: readonly string[], input = ''): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const name of Object.keys(env)) if (name.startsWith('SWITCHYARD_')) delete env[name];
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

interface Entry {
  id: string;
  provider: string;
  reason: string;
  attempts: number;
  error: { code: string };
  action: { id: string; actionType: string; payload?: unknown };
  errors?: { attempt: number; code: string; status?: number }[];
}

describe('switchyard providers / dlq CLI', () => {
  let server: ServerProcess | undefined;
  let receiver: Receiver | undefined;
  let status = 500;
  const url = (): string => (server as ServerProcess).url;
  const hookRequests = (): Receiver['requests'] =>
    (receiver as Receiver).requests.filter((r) => r.url === '/hook');
  const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--url', url()]);
  const list = async (...args: string[]): Promise<{ items: Entry[]; total: number }> => {
    const res = await cli('dlq', 'list', '--json', ...args);
    expect(res.code, res.stderr).toBe(0);
    return JSON.parse(res.stdout) as { items: Entry[]; total: number };
  };

  beforeAll(async () => {
    receiver = await startReceiver((_req, res) => {
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(status === 200 ? '{"ok":true}' : '{"error":"boom"}');
    });
    server = await startServerProcess(`
providers:
  hook:
    type: webhook
    url: ${receiver.url}/hook
    allowPrivateNetworks: true
    retry: { attempts: 2, baseMs: 10ms, maxMs: 20ms }
    circuitBreaker: false
  guarded:
    type: webhook
    url: ${receiver.url}/guarded
    allowPrivateNetworks: true
`);
    for (const n of [1, 2, 3]) {
      const res = await postJson(`${url()}/v1/dispatch`, {
        namespace: 'ops',
        tenant: 'acme',
        provider: 'hook',
        actionType: 'page',
        payload: { n },
      });
      expect(res.body).toMatchObject({ outcome: 'failed', deadLetterId: expect.any(String) });
    }
  });

  afterAll(async () => {
    await stopServerProcess(server);
    await receiver?.close();
  });

  it('runs the whole dead-letter workflow', async () => {
    // list: the three failed actions
    const first = await list();
    expect(first.items).toHaveLength(3);
    expect(first.total).toBe(3);
    for (const e of first.items) {
      expect(e).toMatchObject({
        provider: 'hook',
        reason: 'exhausted',
        attempts: 2,
        error: { code: 'SY_ERR_PROVIDER_HTTP_STATUS' },
        action: { actionType: 'page' },
      });
    }
    const human = await cli('dlq', 'list');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain((first.items[0] as Entry).id);
    expect(human.stdout).toContain('3 entries; 3 in the queue');

    // show: every attempt's error
    const id = (first.items[0] as Entry).id;
    const shown = await cli('dlq', 'show', id, '--json');
    expect(shown.code).toBe(0);
    const entry = JSON.parse(shown.stdout) as Entry;
    expect(entry.errors).toHaveLength(2);
    expect(entry.errors?.map((e) => e.status)).toEqual([500, 500]);
    expect(entry.action.payload).toEqual({ n: 1 });
    const showHuman = await cli('dlq', 'show', id);
    expect(showHuman.stdout).toContain('errors (2):');

    // replay one by id once the receiver recovers
    status = 200;
    const before = hookRequests().length;
    const replayed = await cli('dlq', 'replay', id, '--json');
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(JSON.parse(replayed.stdout)).toMatchObject({ outcome: 'executed', provider: 'hook' });
    expect(hookRequests().length).toBe(before + 1);
    expect(JSON.parse((hookRequests().at(-1) as { body: string }).body)).toEqual({ n: 1 });

    // replay the rest by provider: they go through the retry queue
    const rest = await cli('dlq', 'replay', '--provider', 'hook', '--json');
    expect(rest.code, rest.stderr).toBe(0);
    expect(JSON.parse(rest.stdout)).toEqual({ replayed: 2 });
    await vi.waitFor(() => expect(hookRequests().length).toBe(before + 3), {
      timeout: 10_000,
      interval: 50,
    });
    const bodies = hookRequests()
      .slice(-2)
      .map((r) => (JSON.parse(r.body) as { n: number }).n);
    expect(bodies.sort()).toEqual([2, 3]);

    // list again: empty
    const after = await list();
    expect(after.items).toEqual([]);
    expect(after.total).toBe(0);
  });

  it('dlq discard without an id, a filter or --all is bad usage (exit 2)', async () => {
    const res = await cli('dlq', 'discard');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('SY_ERR_CLI_USAGE');
    expect(res.stderr).toContain('--all');
    const all = await cli('dlq', 'discard', '--all', '--json');
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toEqual({ discarded: 0 });
  });

  it('dlq replay without an id, a filter or --all is bad usage (exit 2)', async () => {
    const res = await cli('dlq', 'replay');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('SY_ERR_CLI_USAGE');
  });

  it('an unknown dead-letter id exits 1 with SY_ERR_DLQ_NOT_FOUND', async () => {
    for (const verb of ['show', 'replay', 'discard']) {
      const res = await cli('dlq', verb, 'no-such-id');
      expect(res.code, verb).toBe(1);
      expect(res.stderr).toContain('SY_ERR_DLQ_NOT_FOUND');
    }
  });

  it('providers list --json shows each provider with its circuit state', async () => {
    const res = await cli('providers', 'list', '--json');
    expect(res.code).toBe(0);
    const providers = JSON.parse(res.stdout) as { name: string; type: string; circuit: unknown }[];
    expect(providers.find((p) => p.name === 'hook')).toMatchObject({
      type: 'webhook',
      circuit: null, // circuitBreaker: false
    });
    expect(providers.find((p) => p.name === 'guarded')).toMatchObject({
      type: 'webhook',
      circuit: { state: 'closed', consecutiveFailures: 0 },
    });
    const human = await cli('providers', 'list');
    expect(human.stdout).toMatch(/^hook\s+webhook\s+disabled\s+0\/64\s+0\s+-$/m);
    expect(human.stdout).toMatch(/^guarded\s+webhook\s+closed\s/m);
  });

  it('providers preview shows the request and sends nothing', async () => {
    const before = (receiver as Receiver).requests.length;
    const res = await cli(
      'providers',
      'preview',
      'hook',
      '--namespace',
      'ops',
      '--tenant',
      'acme',
      '--action-type',
      'page',
      '--payload',
      '{"text":"disk full"}',
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.split('\n')[0]).toBe(`POST ${(receiver as Receiver).url}/hook`);
    expect(res.stdout).toContain('"text": "disk full"');
    const empty = await runCli(['providers', 'preview', 'hook', '-', '--url', url()], '');
    expect(empty.code).toBe(2); // empty standard input is not JSON
    expect(empty.stderr).toContain('SY_ERR_CLI_USAGE');
    expect((receiver as Receiver).requests.length).toBe(before);
  });

  it('providers preview - reads the action from standard input', async () => {
    const input = JSON.stringify({
      namespace: 'ops',
      tenant: 'acme',
      actionType: 'x',
      payload: { a: 1 },
    });
    const res = await runCli(
      ['providers', 'preview', 'hook', '-', '--json', '--url', url()],
      input,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({
      provider: 'hook',
      preview: { kind: 'http', method: 'POST', body: { a: 1 } },
    });
  });

  it('providers reset closes the circuit and exits 0; an unknown provider exits 1', async () => {
    const res = await cli('providers', 'reset', 'guarded');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('circuit closed');
    const unknown = await cli('providers', 'reset', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('SY_ERR_PROVIDER_NOT_FOUND');
  });
});
