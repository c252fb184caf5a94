import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CLI,
  postJson,
  startServerProcess,
  stopServerProcess,
  writeConfig,
  type ServerProcess,
} from './helpers/process.js';

/*
 * Rules end to end: a real `switchyard serve` process watching a real rules directory (hot
 * reload, a broken file, toggles, the dry run), and the `rules lint` / `rules test` commands on
 * real files, including the shipped examples.
 */

const EXAMPLES = resolve(import.meta.dirname, '../examples');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli.js ...args`; SIGKILLs it after `timeoutMs` so nothing outlives the test. */
function runCli(args: readonly string[], timeoutMs = 15_000): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const name of Object.keys(env)) if (name.startsWith('SWITCHYARD_')) delete env[name];
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

async function request(
  method: 'GET' | 'PUT',
  url: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

interface RulesListing {
  items: { name: string; enabled: boolean; definition: Record<string, unknown> }[];
  status: { count: number; lastError?: { code: string; message: string; at: string } };
}

const holdAcme = (reason: string): string => `rules:
  - name: hold-acme
    description: Hold everything acme sends.
    condition: { field: tenant, eq: acme }
    effects:
      suppress: { reason: ${reason} }
`;

describe('rules on a running server', () => {
  let server: ServerProcess | undefined;
  let rulesDir: string;
  const url = (): string => (server as ServerProcess).url;

  /** Replaces a rule file in one step (write aside, rename), as editors and deploy tools do. */
  const writeRules = (name: string, yaml: string): void => {
    const aside = join(rulesDir, `.${name}.tmp`);
    writeFileSync(aside, yaml);
    renameSync(aside, join(rulesDir, name));
  };

  const listing = async (): Promise<RulesListing> =>
    (await request('GET', `${url()}/v1/rules`)).body as unknown as RulesListing;

  /** Polls GET /v1/rules until `check` passes (the watcher reloads after a short debounce). */
  const untilRules = (check: (rules: RulesListing) => void): Promise<void> =>
    vi.waitFor(async () => check(await listing()), { timeout: 10_000, interval: 100 });

  const reasonOf = (rules: RulesListing): unknown => {
    const effects = rules.items.find((r) => r.name === 'hold-acme')?.definition.effects as
      { suppress?: { reason?: unknown } } | undefined;
    return effects?.suppress?.reason;
  };

  const action = (over: Record<string, unknown> = {}) => ({
    namespace: 'demo',
    tenant: 'acme',
    provider: 'noop',
    actionType: 'hello',
    payload: { to: 'world' },
    ...over,
  });
  const dispatch = async (over: Record<string, unknown> = {}) =>
    (await postJson(`${url()}/v1/dispatch`, action(over))).body as Record<string, unknown>;

  beforeAll(async () => {
    rulesDir = mkdtempSync(join(tmpdir(), 'switchyard-rules-'));
    writeRules('a.yaml', holdAcme('v1'));
    server = await startServerProcess(`
log:
  level: info
rules:
  directory: ${rulesDir}
  watch: true
`);
  });

  afterAll(async () => {
    await stopServerProcess(server);
    rmSync(rulesDir, { recursive: true, force: true });
  });

  it('a rule file rewritten while the server runs applies without a restart', async () => {
    expect(await dispatch()).toMatchObject({
      outcome: 'suppressed',
      rule: 'hold-acme',
      reason: 'v1',
    });
    writeRules('a.yaml', holdAcme('v2'));
    await untilRules((rules) => expect(reasonOf(rules)).toBe('v2'));
    expect(await dispatch()).toMatchObject({ outcome: 'suppressed', reason: 'v2' });
  });

  it(
    'a broken file keeps the previous rules, shows in status.lastError and makes reload answer 422; fixing it recovers',
    { timeout: 40_000 },
    async () => {
      const file = join(rulesDir, 'a.yaml');
      writeRules(
        'a.yaml',
        `rules:
  - name: hold-acme
    condition: { field: payload.to, matches: "(a+)+$" }
    effects: { suppress: { reason: broken } }
`,
      );
      await untilRules((rules) => expect(rules.status.lastError?.code).toBe('SY_ERR_RULE_INVALID'));
      const invalid = await listing();
      expect(invalid.status.lastError?.message).toContain(`${file}:3:`);
      expect(invalid.status.lastError?.message).toContain('rule "hold-acme"');
      expect(reasonOf(invalid)).toBe('v2');
      expect(await dispatch()).toMatchObject({ outcome: 'suppressed', reason: 'v2' });
      const reload = await postJson(`${url()}/v1/rules/reload`, {});
      expect(reload.status).toBe(422);
      expect(reload.body).toMatchObject({ error: { code: 'SY_ERR_RULE_INVALID' } });

      writeRules('a.yaml', 'rules:\n  - name: hold-acme\n    effects: [suppress\n');
      await untilRules((rules) => expect(rules.status.lastError?.code).toBe('SY_ERR_RULE_PARSE'));
      expect((await listing()).status.lastError?.message).toContain(`${file}:`);
      expect(await dispatch()).toMatchObject({ outcome: 'suppressed', reason: 'v2' });
      const reloadParse = await postJson(`${url()}/v1/rules/reload`, {});
      expect(reloadParse.status).toBe(422);
      expect(reloadParse.body).toMatchObject({ error: { code: 'SY_ERR_RULE_PARSE' } });

      writeRules('a.yaml', holdAcme('v3'));
      await untilRules((rules) => {
        expect(rules.status.lastError).toBeUndefined();
        expect(reasonOf(rules)).toBe('v3');
      });
      expect(await dispatch()).toMatchObject({ outcome: 'suppressed', reason: 'v3' });
      const reloaded = await postJson(`${url()}/v1/rules/reload`, {});
      expect(reloaded).toMatchObject({ status: 200, body: { reloaded: true, count: 1 } });
    },
  );

  it('PUT /v1/rules/{name}/enabled turns a rule off and on; an unknown name is 404', async () => {
    const off = await request('PUT', `${url()}/v1/rules/hold-acme/enabled`, { enabled: false });
    expect(off).toMatchObject({ status: 200, body: { name: 'hold-acme', enabled: false } });
    expect(await dispatch()).toMatchObject({ outcome: 'executed', provider: 'noop' });
    expect((await listing()).items.find((r) => r.name === 'hold-acme')?.enabled).toBe(false);

    const on = await request('PUT', `${url()}/v1/rules/hold-acme/enabled`, { enabled: true });
    expect(on).toMatchObject({ status: 200, body: { name: 'hold-acme', enabled: true } });
    expect(await dispatch()).toMatchObject({ outcome: 'suppressed', rule: 'hold-acme' });

    const unknown = await request('PUT', `${url()}/v1/rules/no-such-rule/enabled`, {
      enabled: false,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: { code: 'SY_ERR_RULE_NOT_FOUND' } });
  });

  it('POST /v1/rules/evaluate explains the decision and consumes no state', async () => {
    writeRules(
      'b.yaml',
      `rules:
  - name: one-per-hour
    condition: { field: tenant, eq: globex }
    effects: { throttle: { key: "{{tenant}}", limit: 1, window: 1h } }
`,
    );
    await untilRules((rules) =>
      expect(rules.items.map((r) => r.name)).toEqual(['hold-acme', 'one-per-hour']),
    );
    const globex = action({ tenant: 'globex' });
    for (let i = 0; i < 3; i++) {
      const evaluation = await postJson(`${url()}/v1/rules/evaluate`, globex);
      expect(evaluation.status).toBe(200);
      expect(evaluation.body).toMatchObject({
        outcome: { outcome: 'executed', provider: 'noop' },
        matchedRules: ['one-per-hour'],
        gates: [{ kind: 'throttle', rule: 'one-per-hour' }],
        rules: [
          {
            name: 'hold-acme',
            matched: false,
            trace: [{ predicate: 'tenant eq "acme"', actual: 'globex', result: false }],
          },
          {
            name: 'one-per-hour',
            matched: true,
            trace: [{ predicate: 'tenant eq "globex"', actual: 'globex', result: true }],
          },
        ],
      });
    }
    expect(await dispatch({ tenant: 'globex' })).toMatchObject({ outcome: 'executed' });
    const after = await postJson(`${url()}/v1/rules/evaluate`, globex);
    expect(after.body).toMatchObject({
      outcome: { outcome: 'throttled', rule: 'one-per-hour', limit: 1, windowMs: 3_600_000 },
    });
    expect(await dispatch({ tenant: 'globex' })).toMatchObject({
      outcome: 'throttled',
      rule: 'one-per-hour',
    });
  });
});

describe('serve with a broken rule file', () => {
  it('refuses to start: exit 2, naming the file, the line and the rule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-rules-'));
    const config = writeConfig(`rules:\n  directory: ${dir}\n`);
    try {
      writeFileSync(
        join(dir, 'bad.yaml'),
        `rules:
  - name: fine
    effects: allow
  - name: redos
    condition: { field: payload.to, matches: "(a+)+$" }
    effects: { suppress: {} }
`,
      );
      const res = await runCli(['serve', '--config', config, '--port', '0']);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('SY_ERR_RULE_INVALID');
      expect(res.stderr).toContain(`${join(dir, 'bad.yaml')}:5:`);
      expect(res.stderr).toContain('rule "redos"');
      expect(res.stdout).not.toContain('switchyard listening');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(resolve(config, '..'), { recursive: true, force: true });
    }
  });
});

describe('switchyard rules lint', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-lint-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh folder under `dir` holding the given files. */
  const folder = (name: string, files: Record<string, string>): string => {
    const path = mkdtempSync(join(dir, `${name}-`));
    for (const [file, text] of Object.entries(files)) writeFileSync(join(path, file), text);
    return path;
  };

  it('the shipped examples are clean, with reroute targets checked against their config', async () => {
    const res = await runCli([
      'rules',
      'lint',
      join(EXAMPLES, 'rules'),
      '--config',
      join(EXAMPLES, 'with-rules.yaml'),
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const files = readdirSync(join(EXAMPLES, 'rules')).filter((n) => /\.ya?ml$/.test(n));
    expect(res.stdout).toMatch(new RegExp(`^ok: \\d+ rules in ${files.length} files `));

    const json = await runCli(['rules', 'lint', join(EXAMPLES, 'rules'), '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, files: files.length, errors: [] });
  });

  it('reports every broken file and rule with file:line, the rule and the code, then exits 1', async () => {
    const broken = folder('broken', {
      'a.yaml': `rules:
  - name: shared
    effects: allow
  - name: redos
    condition: { field: payload.subject, matches: "(a+)+$" }
    effects: { suppress: {} }
`,
      'b.yaml': `rules:
  - name: typo
    condtion: { field: tenant, eq: x }
    effects: allow
  - name: shared
    effects: allow
`,
      'c.yaml': 'rules:\n  - name: x\n    effects: [allow\n',
    });
    const a = join(broken, 'a.yaml');
    const b = join(broken, 'b.yaml');
    const res = await runCli(['rules', 'lint', broken]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    const lines = res.stderr.trim().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(`^error SY_ERR_RULE_INVALID: ${a}:5:\\d+: rule "redos": .*ReDoS`),
    );
    expect(lines[1]).toBe(
      `error SY_ERR_RULE_INVALID: ${b}:3:5: rule "typo": rules[0].condtion is not a known field`,
    );
    expect(lines[2]).toMatch(new RegExp(`^error SY_ERR_RULE_PARSE: ${join(broken, 'c.yaml')}:`));
    expect(lines[3]).toBe(
      `error SY_ERR_RULE_INVALID: ${b}:5:5: rule "shared" is defined twice (first at ${a}:2:5)`,
    );
    expect(lines[4]).toBe('rules lint: 4 errors in 3 of 3 files; 2 rules compiled');

    const json = await runCli(['rules', 'lint', broken, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; errors: Record<string, unknown>[] };
    expect(report.ok).toBe(false);
    expect(report.errors.map((e) => [e.code, e.file, e.line, e.rule, e.field])).toEqual([
      ['SY_ERR_RULE_INVALID', a, 5, 'redos', 'rules[1].condition.matches'],
      ['SY_ERR_RULE_INVALID', b, 3, 'typo', 'rules[0].condtion'],
      ['SY_ERR_RULE_PARSE', join(broken, 'c.yaml'), 4, null, null],
      ['SY_ERR_RULE_INVALID', b, 5, 'shared', 'name'],
    ]);
  });

  it('checks reroute targets only against a given config', async () => {
    const rules = folder('reroute', {
      'r.yaml': 'rules:\n  - name: to-sms\n    effects: { reroute: { provider: sms } }\n',
    });
    expect((await runCli(['rules', 'lint', rules])).code).toBe(0);
    const res = await runCli([
      'rules',
      'lint',
      rules,
      '--config',
      join(EXAMPLES, 'with-rules.yaml'),
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      `${join(rules, 'r.yaml')}:3:37: rule "to-sms": rules[0].effects.reroute.provider "sms" is not a configured provider`,
    );
  });

  it('a directory that does not exist is bad usage: exit 2', async () => {
    const res = await runCli(['rules', 'lint', join(dir, 'missing')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('SY_ERR_CLI_USAGE');
  });
});

describe('switchyard rules test', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-cases-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('the shipped example cases pass against the shipped rules', async () => {
    const res = await runCli([
      'rules',
      'test',
      join(EXAMPLES, 'rules'),
      '--cases',
      join(EXAMPLES, 'rules.cases.yaml'),
      '--config',
      join(EXAMPLES, 'with-rules.yaml'),
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/\n(\d+) cases: \1 passed, 0 failed\n$/);
    expect(res.stdout).not.toContain('FAIL');
  });

  it('a failing case names the case, the step and expected vs actual, and exits 1', async () => {
    const cases = join(dir, 'failing.yaml');
    writeFileSync(
      cases,
      `cases:
  - name: a repeat is not deduplicated (wrong on purpose)
    actions:
      - action: &alert
          namespace: alerts
          tenant: acme
          provider: slack
          actionType: alert
          payload: { alertname: DiskFull, host: web1.example.com, severity: warning }
        expect: { outcome: executed }
      - after: 1m
        action: *alert
        expect: { outcome: executed }
`,
    );
    const args = ['rules', 'test', join(EXAMPLES, 'rules'), '--cases', cases];
    const res = await runCli(args);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(
      `FAIL  a repeat is not deduplicated (wrong on purpose)  (${cases}:2:5)`,
    );
    expect(res.stdout).toContain(`step 2 at ${cases}:11:9, clock 2026-01-05T12:01:00.000Z:`);
    expect(res.stdout).toContain('outcome: expected "executed", got "deduplicated"');
    expect(res.stdout).toContain('1 case: 0 passed, 1 failed');

    const json = await runCli([...args, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      cases: 1,
      failed: 1,
      results: [
        {
          ok: false,
          failure: {
            step: 2,
            mismatches: [{ field: 'outcome', expected: 'executed', actual: 'deduplicated' }],
          },
        },
      ],
    });
  });

  it('an invalid cases file, or no --cases, is bad usage: exit 2 naming file and line', async () => {
    const cases = join(dir, 'invalid.yaml');
    writeFileSync(
      cases,
      `cases:
  - name: c
    actions:
      - action: { namespace: a, tenant: acme, provider: slack, actionType: t, payload: {} }
        expcet: { outcome: executed }
`,
    );
    const res = await runCli(['rules', 'test', join(EXAMPLES, 'rules'), '--cases', cases]);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      `error SY_ERR_CONFIG_INVALID: ${cases}:5:9: cases[0].actions[0].expcet is not a known field\n`,
    );
    const missing = await runCli(['rules', 'test', join(EXAMPLES, 'rules')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('SY_ERR_CLI_USAGE');
  });
});
