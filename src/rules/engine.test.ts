import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Action } from '../core/action.js';
import { SyError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { RuleEngine, type RuleEngineOptions } from './engine.js';

function action(over: Partial<Action> = {}): Action {
  return {
    id: 'act-1',
    namespace: 'alerts',
    tenant: 'acme',
    provider: 'sink',
    actionType: 'page',
    payload: { host: 'db1', severity: 'warning' },
    labels: {},
    dedupKey: undefined,
    fingerprint: undefined,
    deliverAt: undefined,
    receivedAt: Date.UTC(2026, 0, 5, 12, 0, 0),
    ...over,
  };
}

/** A rule file with one rule per name (each suppresses, so plans show which rule ran). */
const file = (...names: string[]): string =>
  `rules:\n${names.map((n) => `  - name: ${n}\n    effects: { suppress: { reason: ${n} } }\n`).join('')}`;

let dir: string;
const engines: RuleEngine[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sy-engine-'));
});
afterEach(() => {
  for (const e of engines.splice(0)) e.close();
  rmSync(dir, { recursive: true, force: true });
});

function engine(over: Partial<RuleEngineOptions> = {}): RuleEngine {
  const e = new RuleEngine({
    directory: dir,
    providers: new Set(['sink', 'backup']),
    logger: silentLogger(),
    ...over,
  });
  engines.push(e);
  return e;
}

const names = (e: RuleEngine) => e.rules.map((r) => r.name);

describe('RuleEngine', () => {
  it('loads inline rules and the directory at start', () => {
    writeFileSync(join(dir, 'a.yaml'), file('from-file'));
    const e = engine({ inline: [{ name: 'inline', priority: 200, effects: 'allow' }] });
    expect(names(e)).toEqual(['from-file', 'inline']);
    expect(e.status()).toMatchObject({
      files: [join(dir, 'a.yaml')],
      count: 2,
      lastError: undefined,
    });
    expect(new Date(e.status().loadedAt).toISOString()).toBe(e.status().loadedAt);
  });

  it('a broken rule at start throws (the gateway must not start half-ruled)', () => {
    writeFileSync(join(dir, 'a.yaml'), 'rules:\n  - name: a\n    effects: explode\n');
    let code: string | undefined;
    try {
      engine();
    } catch (err) {
      code = (err as SyError).code;
    }
    expect(code).toBe('SY_ERR_RULE_INVALID');
  });

  it('reload picks up new, changed and deleted files', () => {
    writeFileSync(join(dir, 'a.yaml'), file('a1'));
    const e = engine();
    expect(e.plan(action()).suppressed?.rule).toBe('a1');

    writeFileSync(join(dir, 'b.yaml'), file('b1', 'b2'));
    expect(e.reload()).toEqual({ ok: true, count: 3 });
    expect(names(e)).toEqual(['a1', 'b1', 'b2']);
    expect(e.status().files).toEqual([join(dir, 'a.yaml'), join(dir, 'b.yaml')]);

    writeFileSync(join(dir, 'a.yaml'), file('a9'));
    unlinkSync(join(dir, 'b.yaml'));
    expect(e.reload()).toEqual({ ok: true, count: 1 });
    expect(names(e)).toEqual(['a9']);
    expect(e.plan(action()).suppressed?.rule).toBe('a9');
    expect(e.status()).toMatchObject({ files: [join(dir, 'a.yaml')], count: 1 });
  });

  it('a broken file keeps the previous rules and reports the error in status()', () => {
    writeFileSync(join(dir, 'a.yaml'), file('a1'));
    const e = engine();
    writeFileSync(join(dir, 'b.yaml'), file('b1'));
    writeFileSync(join(dir, 'a.yaml'), 'rules:\n  - name: [\n');
    const result = e.reload();
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.error.code).toBe('SY_ERR_RULE_PARSE');
    expect(names(e)).toEqual(['a1']);
    expect(e.plan(action()).suppressed?.rule).toBe('a1');
    const status = e.status();
    expect(status.count).toBe(1);
    expect(status.files).toEqual([join(dir, 'a.yaml')]);
    expect(status.lastError?.code).toBe('SY_ERR_RULE_PARSE');
    expect(status.lastError?.message.startsWith(`${join(dir, 'a.yaml')}:`)).toBe(true);
    expect(new Date(status.lastError?.at ?? '').toISOString()).toBe(status.lastError?.at);

    // Fixing the file clears the error.
    writeFileSync(join(dir, 'a.yaml'), file('a2'));
    expect(e.reload()).toEqual({ ok: true, count: 2 });
    expect(names(e)).toEqual(['a2', 'b1']);
    expect(e.status().lastError).toBeUndefined();
  });

  it('a duplicate name introduced by a new file is a failed reload', () => {
    writeFileSync(join(dir, 'a.yaml'), file('same'));
    const e = engine();
    writeFileSync(join(dir, 'b.yaml'), file('same'));
    const result = e.reload();
    expect(result.ok === false && result.error.code).toBe('SY_ERR_RULE_INVALID');
    expect(e.status().lastError?.code).toBe('SY_ERR_RULE_INVALID');
    expect(names(e)).toEqual(['same']);
  });

  it('a removed directory is a failed reload with SY_ERR_RULE_READ', () => {
    writeFileSync(join(dir, 'a.yaml'), file('a1'));
    const e = engine();
    rmSync(dir, { recursive: true, force: true });
    const result = e.reload();
    expect(result.ok === false && result.error.code).toBe('SY_ERR_RULE_READ');
    expect(names(e)).toEqual(['a1']);
  });

  it('setEnabled turns a rule off and on, and the toggle survives reloads', () => {
    writeFileSync(join(dir, 'a.yaml'), file('first', 'second'));
    const e = engine();
    const rule = e.setEnabled('first', false);
    expect(rule.name).toBe('first');
    expect(names(e)).toEqual(['second']);
    expect(e.allRules.map((r) => r.name)).toEqual(['first', 'second']);
    expect(e.isEnabled(rule)).toBe(false);
    expect(e.plan(action()).suppressed?.rule).toBe('second');

    writeFileSync(join(dir, 'b.yaml'), file('third'));
    expect(e.reload().ok).toBe(true);
    expect(names(e)).toEqual(['second', 'third']);

    e.setEnabled('first', true);
    expect(names(e)).toEqual(['first', 'second', 'third']);
  });

  it('setEnabled can turn on a rule the file disables', () => {
    writeFileSync(
      join(dir, 'a.yaml'),
      'rules:\n  - name: off\n    enabled: false\n    effects: allow\n',
    );
    const e = engine();
    expect(names(e)).toEqual([]);
    e.setEnabled('off', true);
    expect(names(e)).toEqual(['off']);
    expect(e.reload().ok).toBe(true);
    expect(names(e)).toEqual(['off']);
  });

  it('a toggle is forgotten when its rule disappears in a reload', () => {
    writeFileSync(join(dir, 'a.yaml'), file('a1'));
    const e = engine();
    e.setEnabled('a1', false);
    writeFileSync(join(dir, 'a.yaml'), file('other'));
    expect(e.reload().ok).toBe(true);
    writeFileSync(join(dir, 'a.yaml'), file('a1'));
    expect(e.reload().ok).toBe(true);
    expect(names(e)).toEqual(['a1']);
  });

  it('setEnabled on an unknown rule is SY_ERR_RULE_NOT_FOUND', () => {
    const e = engine();
    let err: unknown;
    try {
      e.setEnabled('ghost', false);
    } catch (caught) {
      err = caught;
    }
    expect(err).toBeInstanceOf(SyError);
    expect((err as SyError).code).toBe('SY_ERR_RULE_NOT_FOUND');
    expect((err as SyError).details).toEqual({ rule: 'ghost' });
  });

  it('watch mode reloads after a rule file is written', async () => {
    writeFileSync(join(dir, 'a.yaml'), file('a1'));
    const e = engine({ watch: true, debounceMs: 5 });
    writeFileSync(join(dir, 'b.yml'), file('b1'));
    await vi.waitFor(() => expect(names(e)).toEqual(['a1', 'b1']), {
      timeout: 5000,
      interval: 10,
    });
    writeFileSync(join(dir, 'b.yml'), 'rules:\n  - name: [\n');
    await vi.waitFor(() => expect(e.status().lastError?.code).toBe('SY_ERR_RULE_PARSE'), {
      timeout: 5000,
      interval: 10,
    });
    expect(names(e)).toEqual(['a1', 'b1']);
    writeFileSync(join(dir, 'b.yml'), file('b2'));
    await vi.waitFor(() => expect(names(e)).toEqual(['a1', 'b2']), {
      timeout: 5000,
      interval: 10,
    });
    expect(e.status().lastError).toBeUndefined();
  });

  it('explain returns a trace per evaluated rule and the same plan as plan()', () => {
    const e = engine({
      inline: [
        {
          name: 'host',
          priority: 1,
          condition: {
            all: [{ field: 'payload.host', starts_with: 'db' }, { expr: 'tenant == "acme"' }],
          },
          effects: { label: { db: 'yes' } },
        },
        {
          name: 'critical',
          priority: 2,
          condition: { field: 'payload.severity', eq: 'critical' },
          effects: { reroute: { provider: 'backup' } },
        },
        {
          name: 'stop',
          priority: 3,
          condition: { field: 'labels.db', exists: true },
          effects: 'allow',
        },
        { name: 'never-reached', priority: 4, effects: 'suppress' },
      ],
    });
    const explanation = e.explain(action());
    expect(explanation.rules).toEqual([
      {
        name: 'host',
        priority: 1,
        matched: true,
        trace: [
          { predicate: 'payload.host starts_with "db"', actual: 'db1', result: true },
          { predicate: 'expr: tenant == "acme"', actual: true, result: true },
        ],
      },
      {
        name: 'critical',
        priority: 2,
        matched: false,
        trace: [{ predicate: 'payload.severity eq "critical"', actual: 'warning', result: false }],
      },
      {
        name: 'stop',
        priority: 3,
        matched: true,
        trace: [{ predicate: 'labels.db exists true', actual: 'yes', result: true }],
      },
    ]);
    expect(explanation.plan).toEqual(e.plan(action()));
    expect(explanation.plan.matched).toEqual(['host', 'stop']);
  });

  it('explain skips disabled rules', () => {
    const e = engine({
      inline: [
        { name: 'a', condition: { field: 'tenant', eq: 'acme' }, effects: 'suppress' },
        { name: 'b', effects: 'allow' },
      ],
    });
    e.setEnabled('a', false);
    expect(e.explain(action()).rules.map((r) => r.name)).toEqual(['b']);
  });
});
