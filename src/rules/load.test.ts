import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyError } from '../core/errors.js';
import {
  DEFAULT_PRIORITY,
  compileRule,
  compileRuleFile,
  loadRules,
  ruleFiles,
  type CompileContext,
} from './load.js';

const CTX: CompileContext = { providers: new Set(['sink', 'backup']) };

/** The SyError `fn` throws (fails the test when it throws something else or nothing). */
function failure(fn: () => unknown): SyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SyError) return err;
    throw err;
  }
  throw new Error('expected a SyError');
}

const compileText = (text: string) => () => compileRuleFile(text, 'rules.yaml', 0, CTX);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sy-load-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('compileRuleFile errors name file:line:col', () => {
  it('an unknown rule key, at the key', () => {
    const err = failure(
      compileText(
        ['rules:', '  - name: a', '    effects: allow', '    colour: red', ''].join('\n'),
      ),
    );
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message).toMatch(/^rules\.yaml:4:5: /);
    expect(err.details).toMatchObject({ field: 'rules[0].colour' });
  });

  it('a value of the wrong type, at the value', () => {
    const err = failure(
      compileText(['rules:', '  - name: a', '    priority: high', '    effects: allow'].join('\n')),
    );
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message).toMatch(/^rules\.yaml:3:15: /);
    expect(err.details).toMatchObject({ field: 'rules[0].priority' });
  });

  it('a bad rule name', () => {
    const err = failure(
      compileText(['rules:', '  - name: "a b"', '    effects: allow'].join('\n')),
    );
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message).toMatch(/^rules\.yaml:2:11: /);
  });

  it('a missing effects key, at the rule mapping', () => {
    const err = failure(compileText(['rules:', '  - name: a', '    final: true'].join('\n')));
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message).toMatch(/^rules\.yaml:2:5: /);
    expect(err.details).toMatchObject({ field: 'rules[0].effects' });
  });

  it('a bad condition deep inside, on the line of the offending key', () => {
    const text = [
      'rules:',
      '  - name: first',
      '    effects: allow',
      '  - name: deep',
      '    condition:',
      '      all:',
      '        - field: tenant',
      '          eq: acme',
      '        - any:',
      '            - expr: "true"',
      '            - not:',
      '                field: payload.x',
      '                eqq: 1',
      '    effects: allow',
    ].join('\n');
    const err = failure(compileText(text));
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message).toMatch(/^rules\.yaml:13:\d+: /);
    expect(err.details).toEqual({
      rule: 'deep',
      field: 'rules[1].condition.all[1].any[1].not.eqq',
    });
  });

  it('a bad field path in a condition, at the field', () => {
    const text = [
      'rules:',
      '  - name: a',
      '    condition:',
      '      field: payload..x',
      '      eq: 1',
      '    effects: allow',
    ].join('\n');
    const err = failure(compileText(text));
    expect(err.message).toMatch(/^rules\.yaml:4:14: /);
    expect(err.details).toMatchObject({ field: 'rules[0].condition.field' });
  });

  it('a bad CEL expression, at the expression', () => {
    const text = [
      'rules:',
      '  - name: a',
      '    condition: { expr: "tenant == 1" }',
      '    effects: allow',
    ].join('\n');
    const err = failure(compileText(text));
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message).toMatch(/^rules\.yaml:3:24: /);
  });

  it('a bad effect, at the offending setting', () => {
    const text = [
      'rules:',
      '  - name: a',
      '    effects:',
      '      - allow',
      '      - throttle:',
      '          limit: 3',
      '          window: soon',
    ].join('\n');
    const err = failure(compileText(text));
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message).toMatch(/^rules\.yaml:7:19: /);
    expect(err.details).toEqual({ rule: 'a', field: 'rules[0].effects[1].throttle.window' });
  });

  it('an unknown effect, and a reroute to an unconfigured provider', () => {
    const unknown = failure(
      compileText(['rules:', '  - name: a', '    effects: { explode: {} }'].join('\n')),
    );
    expect(unknown.code).toBe('SY_ERR_RULE_INVALID');
    expect(unknown.message).toMatch(/^rules\.yaml:3:14: /);
    const reroute = failure(
      compileText(
        ['rules:', '  - name: a', '    effects:', '      reroute: { provider: nowhere }'].join(
          '\n',
        ),
      ),
    );
    expect(reroute.code).toBe('SY_ERR_RULE_INVALID');
    expect(reroute.message).toMatch(/^rules\.yaml:4:28: /);
    expect(reroute.details).toEqual({ rule: 'a', field: 'rules[0].effects.reroute.provider' });
  });

  it('an empty effects list', () => {
    const err = failure(compileText(['rules:', '  - name: a', '    effects: []'].join('\n')));
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message).toMatch(/^rules\.yaml:3:14: /);
  });

  it.each(['(a+)+$', '^(\\w+\\s?)*$'])(
    'a ReDoS pattern is rejected at load with a clear error: %s',
    (pattern) => {
      const text = [
        'rules:',
        '  - name: catastrophic',
        '    condition:',
        '      field: payload.subject',
        `      matches: '${pattern}'`,
        '    effects: allow',
      ].join('\n');
      const err = failure(compileText(text));
      expect(err.code).toBe('SY_ERR_RULE_INVALID');
      expect(err.message).toMatch(/^rules\.yaml:5:16: /);
      expect(err.details).toEqual({ rule: 'catastrophic', field: 'rules[0].condition.matches' });
    },
  );

  it('an invalid time zone', () => {
    const text = ['rules:', '  - name: a', '    timezone: Mars/Olympus', '    effects: allow'];
    const err = failure(compileText(text.join('\n')));
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message).toMatch(/^rules\.yaml:3:15: /);
    expect(err.details).toEqual({ rule: 'a', field: 'rules[0].timezone' });
  });

  it('a YAML syntax error is SY_ERR_RULE_PARSE', () => {
    const err = failure(
      compileText(['rules:', '  - name: a', '    effects: [allow', ''].join('\n')),
    );
    expect(err.code).toBe('SY_ERR_RULE_PARSE');
    expect(err.message).toMatch(/^rules\.yaml:4:1: /);
  });

  it('a duplicate key in one mapping is SY_ERR_RULE_PARSE', () => {
    const text = ['rules:', '  - name: a', '    name: b', '    effects: allow'].join('\n');
    const err = failure(compileText(text));
    expect(err.code).toBe('SY_ERR_RULE_PARSE');
    expect(err.message).toMatch(/^rules\.yaml:3:5: /);
  });

  it('a file without a rules list', () => {
    expect(failure(compileText('rule: []\n')).message).toMatch(/^rules\.yaml:1:1: /);
    expect(failure(compileText('- name: a\n')).code).toBe('SY_ERR_RULE_INVALID');
    expect(failure(compileText('rules: {}\n')).code).toBe('SY_ERR_RULE_INVALID');
  });
});

describe('compileRuleFile', () => {
  it('an empty file and an empty list have no rules', () => {
    expect(compileRuleFile('', 'r.yaml', 0, CTX)).toEqual([]);
    expect(compileRuleFile('# only a comment\n', 'r.yaml', 0, CTX)).toEqual([]);
    expect(compileRuleFile('rules: []\n', 'r.yaml', 0, CTX)).toEqual([]);
  });

  it('applies the defaults: priority 100, enabled, not final, no time zone', () => {
    const [rule] = compileRuleFile('rules:\n  - name: a\n    effects: allow\n', 'r.yaml', 7, CTX);
    expect(rule).toMatchObject({
      name: 'a',
      description: '',
      priority: DEFAULT_PRIORITY,
      order: 7,
      enabled: true,
      final: false,
      timeZone: undefined,
      condition: undefined,
      effects: [{ kind: 'allow' }],
      definition: { name: 'a', effects: 'allow' },
      source: 'r.yaml:2:5',
    });
    expect(DEFAULT_PRIORITY).toBe(100);
    expect(rule?.test({} as never)).toBe(true);
  });

  it('keeps every setting it is given, numbering rules from firstOrder', () => {
    const text = [
      'rules:',
      '  - name: x',
      '    description: the x rule',
      '    priority: -5',
      '    enabled: false',
      '    final: true',
      '    timezone: Europe/Berlin',
      '    condition: { field: tenant, eq: acme }',
      '    effects: [allow]',
      '  - name: y',
      '    effects: { suppress: { reason: r } }',
    ].join('\n');
    const rules = compileRuleFile(text, 'r.yaml', 3, CTX);
    expect(rules.map((r) => [r.name, r.order, r.source])).toEqual([
      ['x', 3, 'r.yaml:2:5'],
      ['y', 4, 'r.yaml:10:5'],
    ]);
    expect(rules[0]).toMatchObject({
      description: 'the x rule',
      priority: -5,
      enabled: false,
      final: true,
      timeZone: 'Europe/Berlin',
      condition: { field: 'tenant', op: 'eq', value: 'acme' },
    });
  });

  it('accepts reroute to any provider when providers are not given (lint)', () => {
    const text = 'rules:\n  - name: a\n    effects: { reroute: { provider: elsewhere } }\n';
    const [rule] = compileRuleFile(text, 'r.yaml', 0, { providers: undefined });
    expect(rule?.effects).toEqual([{ kind: 'reroute', provider: 'elsewhere' }]);
  });
});

describe('compileRule (rules built in code)', () => {
  it('has no source, and errors carry no location', () => {
    const rule = compileRule({ name: 'a', effects: 'allow' }, 0, CTX);
    expect(rule.source).toBeUndefined();
    const err = failure(() => compileRule({ name: 'a', effects: 'explode' }, 0, CTX));
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.details).toEqual({ rule: 'a', field: 'effects' });
  });

  it('rejects more than 32 effects', () => {
    const effects = Array.from({ length: 33 }, () => ({ label: { a: 'b' } }));
    const err = failure(() => compileRule({ name: 'a', effects }, 0, CTX));
    expect(err.details).toEqual({ rule: 'a', field: 'effects' });
    expect(compileRule({ name: 'a', effects: effects.slice(1) }, 0, CTX).effects).toHaveLength(32);
  });
});

describe('ruleFiles', () => {
  it('lists *.yaml and *.yml files sorted by name and ignores the rest', () => {
    for (const name of [
      'b.yaml',
      'a.yml',
      'c.txt',
      'd.yaml.bak',
      'README.md',
      'e.YAML',
      '0.yaml',
    ]) {
      writeFileSync(join(dir, name), 'rules: []\n');
    }
    expect(ruleFiles(dir)).toEqual([join(dir, '0.yaml'), join(dir, 'a.yml'), join(dir, 'b.yaml')]);
  });

  it('an unreadable directory is SY_ERR_RULE_READ', () => {
    const err = failure(() => ruleFiles(join(dir, 'missing')));
    expect(err.code).toBe('SY_ERR_RULE_READ');
    expect(err.details).toEqual({ directory: join(dir, 'missing') });
    writeFileSync(join(dir, 'file'), '');
    expect(failure(() => ruleFiles(join(dir, 'file'))).code).toBe('SY_ERR_RULE_READ');
  });
});

describe('loadRules', () => {
  const rule = (name: string, extra = '') => `  - name: ${name}\n    effects: allow\n${extra}`;

  it('loads inline rules, then files by name; sorts by priority, then load order', () => {
    writeFileSync(join(dir, 'b.yaml'), `rules:\n${rule('b1')}${rule('b2', '    priority: 5\n')}`);
    writeFileSync(join(dir, 'a.yaml'), `rules:\n${rule('a1')}${rule('a2', '    priority: 100\n')}`);
    const { rules, files } = loadRules(
      {
        directory: dir,
        inline: [
          { name: 'i1', effects: 'allow' },
          { name: 'i2', priority: 200, effects: 'allow' },
        ],
      },
      CTX,
    );
    expect(files).toEqual([join(dir, 'a.yaml'), join(dir, 'b.yaml')]);
    expect(rules.map((r) => [r.name, r.priority, r.order])).toEqual([
      ['b2', 5, 5],
      ['i1', 100, 0],
      ['a1', 100, 2],
      ['a2', 100, 3],
      ['b1', 100, 4],
      ['i2', 200, 1],
    ]);
    expect(rules.find((r) => r.name === 'b2')?.source).toBe(`${join(dir, 'b.yaml')}:4:5`);
  });

  it('no sources load no rules', () => {
    expect(loadRules({}, CTX)).toEqual({ rules: [], files: [] });
  });

  it('a name used in two files is SY_ERR_RULE_INVALID at the second', () => {
    writeFileSync(join(dir, 'a.yaml'), `rules:\n${rule('same')}`);
    writeFileSync(join(dir, 'b.yaml'), `rules:\n${rule('other')}${rule('same')}`);
    const err = failure(() => loadRules({ directory: dir }, CTX));
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message.startsWith(`${join(dir, 'b.yaml')}:4:5: `)).toBe(true);
    expect(err.details).toEqual({ rule: 'same', field: 'name' });
  });

  it('a name used inline and in a file is SY_ERR_RULE_INVALID at the file', () => {
    writeFileSync(join(dir, 'a.yaml'), `rules:\n${rule('same')}`);
    const err = failure(() =>
      loadRules({ directory: dir, inline: [{ name: 'same', effects: 'allow' }] }, CTX),
    );
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message.startsWith(`${join(dir, 'a.yaml')}:2:5: `)).toBe(true);
    expect(err.details).toEqual({ rule: 'same', field: 'name' });
  });

  it('a name used twice inline is SY_ERR_RULE_INVALID', () => {
    const inline = [
      { name: 'same', effects: 'allow' },
      { name: 'same', effects: 'allow' },
    ];
    const err = failure(() => loadRules({ inline }, CTX));
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.details).toEqual({ rule: 'same', field: 'name' });
  });

  it('an inline rule error is placed by locateInline', () => {
    const err = failure(() =>
      loadRules(
        {
          inline: [{ name: 'a', effects: 'explode' }],
          locateInline: (path) => `sw.yaml:9:3(${path.join('/')}): `,
        },
        CTX,
      ),
    );
    expect(err.code).toBe('SY_ERR_RULE_INVALID');
    expect(err.message.startsWith('sw.yaml:9:3(rules/inline/0/effects): ')).toBe(true);
  });

  it('a broken file fails the whole load with its own error', () => {
    writeFileSync(join(dir, 'a.yaml'), `rules:\n${rule('fine')}`);
    writeFileSync(join(dir, 'b.yaml'), 'rules:\n  - name: [\n');
    const err = failure(() => loadRules({ directory: dir }, CTX));
    expect(err.code).toBe('SY_ERR_RULE_PARSE');
    expect(err.message.startsWith(`${join(dir, 'b.yaml')}:`)).toBe(true);
  });

  it('a missing directory, or a rule "file" that cannot be read, is SY_ERR_RULE_READ', () => {
    expect(failure(() => loadRules({ directory: join(dir, 'missing') }, CTX)).code).toBe(
      'SY_ERR_RULE_READ',
    );
    mkdirSync(join(dir, 'folder.yaml'));
    const err = failure(() => loadRules({ directory: dir }, CTX));
    expect(err.code).toBe('SY_ERR_RULE_READ');
    expect(err.details).toEqual({ file: join(dir, 'folder.yaml') });
  });
});
