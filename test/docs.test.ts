import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../src/core/errors.js';
import { ConfigSchema, STATE_BACKENDS } from '../src/config/schema.js';
import { overrideVariables } from '../src/config/env-overrides.js';
import { BUILTIN_PROVIDER_TYPES } from '../src/providers/registry.js';
import { ProviderPolicySchema } from '../src/executor/policy.js';

/*
 * The user documentation is a contract: every error code, config key and environment override
 * the code defines is documented, and the docs name nothing the code does not define.
 */
const ROOT = resolve(import.meta.dirname, '..');
const read = (path: string): string => readFileSync(resolve(ROOT, path), 'utf8');

const errorsDoc = read('docs/errors.md');
const configDoc = read('docs/configuration.md');
const providersDoc = read('docs/providers.md');
const readme = read('README.md');

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
}

/** Dotted paths of every key under a schema's `properties`, recursively. */
function keysOf(schema: SchemaNode, prefix: string): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const path = `${prefix}.${key}`;
    out.push(path, ...keysOf(child, path));
  }
  return out;
}

/** The text of a markdown section: from its heading line to the next heading of the same level. */
function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start === -1) return '';
  const level = /^#+/.exec(heading)?.[0].length ?? 0;
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    const m = /^(#+)\s/.exec(lines[i] as string);
    if (m !== null && (m[1] as string).length <= level) {
      end = i;
      break;
    }
  }
  return lines.slice(start, end).join('\n');
}

describe('docs/errors.md', () => {
  /** Table rows whose first cell is a code: code → the row's cells. */
  const rows = new Map<string, string[]>();
  for (const line of errorsDoc.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const code = /^`(SY_ERR_[A-Z0-9_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (line.startsWith('|') && code !== undefined) rows.set(code, cells.slice(1, -1));
  }

  it.each(Object.keys(ERRORS))('%s has a table row with its HTTP status', (code) => {
    const row = rows.get(code);
    expect(row, `no table row for ${code}`).toBeDefined();
    expect(row?.[1]).toBe(String(ERRORS[code as keyof typeof ERRORS].status));
  });

  it('mentions no code that the registry does not define', () => {
    const mentioned = new Set(errorsDoc.match(/\bSY_ERR_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []);
    const unknown = [...mentioned].filter((code) => !(code in ERRORS));
    expect(unknown).toEqual([]);
  });
});

describe('docs/configuration.md', () => {
  const sections = ConfigSchema.properties as unknown as Record<string, SchemaNode>;
  // Every section but `providers`, whose keys depend on the provider type (checked below).
  const keys = Object.keys(sections)
    .filter((name) => name !== 'providers')
    .flatMap((name) => keysOf(sections[name] as SchemaNode, name));

  it('covers at least the known keys (the walk found the schema)', () => {
    expect(keys).toContain('server.port');
    expect(keys).toContain('log.level');
    expect(keys).toContain('rules.directory');
    expect(keys).toContain('state.idempotencyTtl');
  });

  it.each(Object.keys(sections))('has a section for %s', (name) => {
    expect(section(configDoc, `## \`${name}\``)).not.toBe('');
  });

  it.each(keys)('documents %s', (key) => {
    expect(configDoc).toContain(`\`${key}\``);
  });

  const providerProps = BUILTIN_PROVIDER_TYPES.flatMap((type) =>
    Object.keys((type.configSchema as SchemaNode).properties ?? {}).map(
      (prop) => [type.type, prop] as const,
    ),
  );

  it.each(providerProps)('documents the %s provider key %s in docs/providers.md', (type, prop) => {
    const text = section(providersDoc, `### \`${type}\``);
    expect(text, `no "### \`${type}\`" section`).not.toBe('');
    expect(text).toContain(`\`${prop}\``);
  });

  const policyKeys = keysOf(ProviderPolicySchema as unknown as SchemaNode, '');
  it.each(policyKeys)('documents the provider policy key %s in docs/providers.md', (key) => {
    expect(section(providersDoc, '## Policies')).toContain(`\`${key.replace(/^\./, '')}\``);
  });

  it.each(overrideVariables())('documents the environment override %s', (name) => {
    expect(configDoc).toContain(`\`${name}\``);
  });

  it('names no override variable the code does not support', () => {
    const known = new Set(overrideVariables());
    const named =
      configDoc.match(
        /\bSWITCHYARD_(?:SERVER|LOG|PROVIDERS|RULES|STATE|EXECUTOR|AUDIT)_[A-Z0-9_]+\b/g,
      ) ?? [];
    expect(named.filter((n) => !known.has(n))).toEqual([]);
  });
});

describe('docs/state.md', () => {
  const stateDoc = read('docs/state.md');

  it.each([...STATE_BACKENDS])('has a section for the %s backend', (backend) => {
    expect(section(stateDoc, `## \`${backend}\``)).not.toBe('');
  });

  it.each([...STATE_BACKENDS])(
    'names %s in the state.backend row of configuration.md',
    (backend) => {
      const row = configDoc.split('\n').find((l) => l.startsWith('| `state.backend`')) ?? '';
      expect(row).toContain(`\`${backend}\``);
    },
  );
});

describe('docs/cli.md', () => {
  const cliDoc = read('docs/cli.md');
  // Every command the CLI registers: cli.command('rules lint <dir>', ...) → "rules lint".
  const commands = [
    ...read('src/cli/main.ts').matchAll(/\.command\(\s*'([a-z ]+?)(?: [[<][^']*)?'/g),
  ].map((m) => m[1] as string);

  it('finds the commands (the pattern still matches main.ts)', () => {
    expect(commands).toContain('serve');
    expect(commands).toContain('migrate');
  });

  it.each(commands)('has a section for `switchyard %s`', (command) => {
    // A heading "## `switchyard rules lint <dir>`" counts for "rules lint", not for "rules".
    const prefix = `## \`switchyard ${command}`;
    const heading = cliDoc
      .split('\n')
      .find((l) => l.startsWith(prefix) && /[`\s]/.test(l.charAt(prefix.length)));
    expect(heading, `no "## \`switchyard ${command}…\`" heading`).toBeDefined();
  });

  it.each(commands)('is listed in the README CLI table: `switchyard %s`', (command) => {
    expect(readme).toContain(`| \`switchyard ${command}`);
  });
});

describe('README.md', () => {
  it.each(['npm install && npm start', 'npm install && npm test'])('contains `%s`', (cmd) => {
    expect(readme).toContain(cmd);
  });
});

describe('links between the docs', () => {
  const files = [
    'README.md',
    'docs/api.md',
    'docs/architecture.md',
    'docs/cli.md',
    'docs/configuration.md',
    'docs/conventions.md',
    'docs/errors.md',
    'docs/library.md',
    'docs/rules.md',
    'docs/state.md',
  ];

  it.each(files)('%s links only to files that exist', (file) => {
    const links = [...read(file).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
    const local = links.filter((l) => !/^[a-z]+:/.test(l) && !l.startsWith('#'));
    const missing = local.filter(
      (l) => !existsSync(resolve(ROOT, dirname(file), l.split('#')[0] as string)),
    );
    expect(missing).toEqual([]);
  });

  it('README links to every doc', () => {
    for (const file of files.slice(1)) expect(readme).toContain(`](${file})`);
  });
});
