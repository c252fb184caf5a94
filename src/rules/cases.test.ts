import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../config/load.js';
import { isSyError } from '../core/errors.js';
import { parseRuleCases, runRuleCases, type CasesReport } from './cases.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-cases-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function rules(yaml: string, name = 'rules.yaml'): void {
  writeFileSync(join(dir, name), yaml);
}

function thrown(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (isSyError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected an error');
}

const run = (yaml: string, config?: Parameters<typeof resolveConfig>[0]): Promise<CasesReport> =>
  runRuleCases(parseRuleCases(yaml, 'cases.yaml'), {
    directory: dir,
    config: config === undefined ? undefined : resolveConfig(config),
  });

const ACTION = `{ namespace: alerts, tenant: acme, provider: slack, actionType: alert, payload: { alertname: DiskFull, host: web1 } }`;

describe('parseRuleCases', () => {
  it('a typo in expect is an error naming file, line, column and the field', () => {
    const e = thrown(() =>
      parseRuleCases(
        `cases:\n  - name: c\n    actions:\n      - action: ${ACTION}\n        expect: { outcome: executed, rulle: x }\n`,
        'cases.yaml',
      ),
    );
    expect(e.code).toBe('SY_ERR_CONFIG_INVALID');
    expect(e.message).toBe(
      'cases.yaml:5:38: cases[0].actions[0].expect.rulle is not a known field',
    );
  });

  it('an unknown outcome, a bad time or a bad duration is an error at its line', () => {
    const step = (extra: string, at = '') =>
      `cases:\n  - name: c\n${at}    actions:\n      - action: ${ACTION}\n        ${extra}\n`;
    expect(thrown(() => parseRuleCases(step('expect: { outcome: sent }'), 'c.yaml'))).toMatchObject(
      {
        code: 'SY_ERR_CONFIG_INVALID',
        message: expect.stringMatching(
          /^c\.yaml:5:\d+: cases\[0\]\.actions\[0\]\.expect\.outcome must be one of "executed"/,
        ),
      },
    );
    expect(
      thrown(() => parseRuleCases(step('after: 5 minutes', '    at: 2026-01-05\n'), 'c.yaml')),
    ).toMatchObject({
      message: expect.stringMatching(/^c\.yaml:3:9: cases\[0\]\.at must be an RFC 3339/),
    });
    expect(thrown(() => parseRuleCases(step('after: 5 minutes'), 'c.yaml'))).toMatchObject({
      message: expect.stringMatching(
        /^c\.yaml:5:16: cases\[0\]\.actions\[0\]\.after must be a duration/,
      ),
    });
  });

  it('an action that is not a valid action is an error naming the action field', () => {
    const e = thrown(() =>
      parseRuleCases(
        'cases:\n  - name: c\n    actions:\n      - action: { namespace: a, provider: p, actionType: t, payload: {} }\n',
        'c.yaml',
      ),
    );
    expect(e).toEqual({
      code: 'SY_ERR_CONFIG_INVALID',
      message: 'c.yaml:4:17: cases[0].actions[0].action.tenant is required',
    });
  });

  it('bad YAML is SY_ERR_CONFIG_PARSE; an empty file has no cases', () => {
    expect(thrown(() => parseRuleCases('cases: [\n', 'c.yaml')).code).toBe('SY_ERR_CONFIG_PARSE');
    expect(thrown(() => parseRuleCases('', 'c.yaml'))).toEqual({
      code: 'SY_ERR_CONFIG_INVALID',
      message: 'c.yaml: cases is required',
    });
  });
});

describe('runRuleCases', () => {
  const dedup = `rules:
  - name: alert-dedup
    effects: { deduplicate: { key: "{{payload.alertname}}:{{payload.host}}", ttl: 5m } }
`;

  it('a passing case: dedup within the TTL, a new send after `after` moves the clock past it', async () => {
    rules(dedup);
    const report = await run(`cases:
  - name: dedup for five minutes
    actions:
      - action: ${ACTION}
        expect: { outcome: executed, provider: slack }
      - after: 4m
        repeat: 2
        action: ${ACTION}
        expect: { outcome: deduplicated, rule: alert-dedup, inFlight: false }
      - after: 1m
        action: ${ACTION}
        expect: { outcome: executed }
`);
    expect(report).toMatchObject({ ok: true, passed: 1, failed: 0 });
    expect(report.results[0]).toMatchObject({ ok: true, dispatched: 4, failure: undefined });
  });

  it('a failing step names the step, its line, the clock, expected vs actual and the matched rules; the case stops there', async () => {
    rules(dedup);
    const report = await run(`cases:
  - name: wrong expectation
    at: 2026-03-01T08:00:00Z
    actions:
      - action: ${ACTION}
      - after: 30s
        repeat: 3
        action: ${ACTION}
        expect: { outcome: executed, rule: alert-dedup }
      - action: ${ACTION}
`);
    expect(report).toMatchObject({ ok: false, passed: 0, failed: 1 });
    const result = report.results[0];
    expect(result).toMatchObject({ name: 'wrong expectation', location: 'cases.yaml:2:5' });
    expect(result?.dispatched).toBe(2);
    expect(result?.failure).toMatchObject({
      step: 2,
      repetition: 1,
      location: 'cases.yaml:6:9',
      time: '2026-03-01T08:00:30.000Z',
      mismatches: [{ field: 'outcome', expected: 'executed', actual: 'deduplicated' }],
      error: undefined,
      matchedRules: ['alert-dedup'],
      outcome: { outcome: 'deduplicated', rule: 'alert-dedup' },
      delivered: undefined,
    });
  });

  it('a key absent from the outcome is a mismatch with actual undefined', async () => {
    rules(dedup);
    const report = await run(`cases:
  - name: c
    actions:
      - action: ${ACTION}
        expect: { outcome: executed, rule: alert-dedup }
`);
    expect(report.results[0]?.failure?.mismatches).toEqual([
      { field: 'rule', expected: 'alert-dedup', actual: undefined },
    ]);
  });

  it('every case starts from fresh state', async () => {
    rules(dedup);
    const once = `  - name: first send
    actions:
      - action: ${ACTION}
        expect: { outcome: executed }
`;
    const report = await run(`cases:\n${once}${once}`);
    expect(report).toMatchObject({ ok: true, passed: 2 });
  });

  it('`at` sets the clock that time.* conditions read, in the rule time zone', async () => {
    rules(`rules:
  - name: night
    timezone: America/New_York
    condition: { field: time.hour, lt: 6 }
    effects: { suppress: { reason: night } }
`);
    const report = await run(`cases:
  - name: 04:00 in New York is suppressed, 07:00 is not
    at: 2026-01-05T09:00:00Z
    actions:
      - action: ${ACTION}
        expect: { outcome: suppressed, rule: night, reason: night }
      - after: 3h
        action: ${ACTION}
        expect: { outcome: executed }
`);
    expect(report.ok).toBe(true);
  });

  it('delivered checks what the provider received after modify, label and reroute', async () => {
    rules(`rules:
  - name: tag
    effects: { label: { team: ops } }
  - name: page
    condition: { field: payload.host, eq: web1 }
    effects:
      - modify: { set: { payload.subject: "{{payload.alertname}} on {{payload.host}}" } }
      - reroute: { provider: pager }
`);
    const pass = await run(`cases:
  - name: c
    actions:
      - action: ${ACTION}
        expect: { outcome: rerouted, provider: pager, originalProvider: slack, rule: page }
        delivered:
          provider: pager
          labels: { team: ops }
          payload: { alertname: DiskFull, host: web1, subject: DiskFull on web1 }
`);
    expect(pass.ok).toBe(true);
    const fail = await run(`cases:
  - name: c
    actions:
      - action: ${ACTION}
        delivered: { labels: { team: dba } }
`);
    expect(fail.results[0]?.failure?.mismatches).toEqual([
      { field: 'delivered.labels', expected: { team: 'dba' }, actual: { team: 'ops' } },
    ]);
  });

  it('delivered on a suppressed action fails: nothing was delivered', async () => {
    rules(`rules:\n  - name: quiet\n    effects: { suppress: {} }\n`);
    const report = await run(`cases:
  - name: c
    actions:
      - action: ${ACTION}
        delivered: { provider: slack }
`);
    expect(report.results[0]?.failure).toMatchObject({
      mismatches: [{ field: 'delivered', expected: { provider: 'slack' }, actual: undefined }],
      outcome: { outcome: 'suppressed', rule: 'quiet' },
    });
  });

  it('without a config, every provider an action or a reroute names is a recorder', async () => {
    rules(
      `rules:\n  - name: r\n    condition: { field: tenant, eq: x }\n    effects: { reroute: { provider: sms } }\n`,
    );
    const report = await run(`cases:
  - name: c
    actions:
      - action: ${ACTION}
        expect: { outcome: executed, provider: slack }
      - action: { namespace: a, tenant: x, provider: email, actionType: t, payload: {} }
        expect: { outcome: rerouted, provider: sms }
`);
    expect(report.ok).toBe(true);
  });

  it('with a config, its providers are recorders (nothing is sent) and other names are errors', async () => {
    rules(
      `rules:\n  - name: r\n    condition: { field: tenant, eq: x }\n    effects: { reroute: { provider: hook } }\n`,
    );
    // Port 9 on loopback: a real webhook call would fail; the recorder answers instead.
    const config = { providers: { hook: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } } };
    const report = await run(
      `cases:
  - name: configured
    actions:
      - action: { namespace: a, tenant: acme, provider: hook, actionType: t, payload: {} }
        expect: { outcome: executed, provider: hook }
      - action: { namespace: a, tenant: x, provider: log, actionType: t, payload: {} }
        expect: { outcome: rerouted, provider: hook, originalProvider: log }
  - name: unconfigured
    actions:
      - action: ${ACTION}
`,
      config,
    );
    expect(report.results[0]?.ok).toBe(true);
    expect(report.results[1]?.failure).toMatchObject({
      step: 1,
      error: { code: 'SY_ERR_UNKNOWN_PROVIDER' },
      outcome: undefined,
    });
  });

  it('a reroute to a provider the config lacks, or a broken rule file, rejects the run', async () => {
    rules(`rules:\n  - name: r\n    effects: { reroute: { provider: sms } }\n`);
    const cases = `cases:\n  - name: c\n    actions:\n      - action: ${ACTION}\n`;
    await expect(run(cases, {})).rejects.toMatchObject({
      code: 'SY_ERR_RULE_INVALID',
      message: expect.stringContaining('"sms" is not a configured provider'),
    });
    rules(`rules:\n  - name: r\n    effects: { nope: {} }\n`);
    await expect(run(cases)).rejects.toMatchObject({
      code: 'SY_ERR_RULE_INVALID',
      message: expect.stringContaining(`${join(dir, 'rules.yaml')}:3:14: rule "r"`),
    });
  });
});
