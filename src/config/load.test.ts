import { describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile, parseConfigText, resolveConfig } from './load.js';
import { SyError } from '../core/errors.js';

function errorOf(fn: () => unknown): SyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SyError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

const parse = (text: string, env: NodeJS.ProcessEnv = {}) =>
  parseConfigText(text, 'sw.yaml', { env });

describe('config defaults', () => {
  it('an empty file gives every default', () => {
    const c = parse('');
    expect(c.server).toEqual({
      host: '127.0.0.1',
      port: 8080,
      bodyLimit: 1_048_576,
      batchMaxSize: 1000,
      shutdownTimeoutMs: 30_000,
      docs: true,
      apiKeys: [],
    });
    expect(c.log).toEqual({ level: 'info' });
    expect(c.providers).toEqual({});
    expect(c.source).toBe('sw.yaml');
  });

  it('units are resolved to milliseconds and bytes', () => {
    const c = parse('server:\n  bodyLimit: 64KiB\n  shutdownTimeout: 5s\n');
    expect(c.server.bodyLimit).toBe(65_536);
    expect(c.server.shutdownTimeoutMs).toBe(5000);
  });
});

describe('config errors name file, line, column and key', () => {
  it.each([
    ['an unknown top-level key', 'serve:\n  port: 1\n', 'sw.yaml:1:1:', 'serve'],
    ['an unknown nested key', 'server:\n  prot: 1\n', 'sw.yaml:2:3:', 'server.prot'],
    ['a wrong type', 'server:\n  port: "eighty"\n', 'sw.yaml:2:9:', 'server.port'],
    ['an out-of-range number', 'server:\n  port: 70000\n', 'sw.yaml:2:9:', 'server.port'],
    [
      'a bad duration',
      'server:\n  shutdownTimeout: 5 minutes\n',
      'sw.yaml:2:20:',
      'server.shutdownTimeout',
    ],
    ['a bad size', 'server:\n  bodyLimit: huge\n', 'sw.yaml:2:14:', 'server.bodyLimit'],
    ['a bad log level', 'log:\n  level: loud\n', 'sw.yaml:2:10:', 'log.level'],
    [
      'an unknown provider type',
      'providers:\n  a:\n    type: pigeon\n',
      'sw.yaml:3:11:',
      'providers.a.type',
    ],
    [
      'a missing provider key',
      'providers:\n  a:\n    type: webhook\n',
      'sw.yaml:3:5:',
      'providers.a.url',
    ],
    [
      'an unknown provider key',
      'providers:\n  a:\n    type: webhook\n    url: http://127.0.0.1/\n    retries: 3\n',
      'sw.yaml:5:5:',
      'providers.a.retries',
    ],
  ])('%s', (_name, text, location, field) => {
    const err = errorOf(() => parse(text));
    expect(err.code).toBe('SY_ERR_CONFIG_INVALID');
    expect(err.message.startsWith(location)).toBe(true);
    expect(err.details?.field).toBe(field);
  });

  it('invalid YAML is SY_ERR_CONFIG_PARSE with a position', () => {
    const err = errorOf(() => parse('server:\n  port: [1,\n'));
    expect(err.code).toBe('SY_ERR_CONFIG_PARSE');
    expect(err.message).toMatch(/^sw\.yaml:\d+:\d+: /);
  });

  it('a duplicate key is SY_ERR_CONFIG_PARSE', () => {
    expect(errorOf(() => parse('log:\n  level: info\nlog:\n  level: debug\n')).code).toBe(
      'SY_ERR_CONFIG_PARSE',
    );
  });

  it('a missing file is SY_ERR_CONFIG_READ', () => {
    expect(errorOf(() => loadConfigFile('/nonexistent/switchyard.yaml')).code).toBe(
      'SY_ERR_CONFIG_READ',
    );
  });

  it('a config that is not a mapping is rejected', () => {
    expect(errorOf(() => parse('- a\n- b\n')).code).toBe('SY_ERR_CONFIG_INVALID');
  });
});

describe('environment interpolation', () => {
  it('replaces ${VAR} and keeps the type of plain scalars', () => {
    const c = parse('server:\n  port: ${PORT}\n  host: ${HOST}\n', { PORT: '9090', HOST: '::1' });
    expect(c.server.port).toBe(9090);
    expect(c.server.host).toBe('::1');
  });

  it('uses ${VAR:-default} when VAR is unset or empty', () => {
    expect(parse('server:\n  port: ${PORT:-7000}\n').server.port).toBe(7000);
    expect(parse('server:\n  port: ${PORT:-7000}\n', { PORT: '' }).server.port).toBe(7000);
  });

  it('interpolates inside longer strings and quoted scalars stay strings', () => {
    const c = parse(
      'providers:\n  h:\n    type: webhook\n    url: "http://${HOST}:${PORT}/x"\n    headers:\n      authorization: Bearer ${TOKEN}\n',
      { HOST: '127.0.0.1', PORT: '9', TOKEN: 's3cret' },
    );
    expect(c.providers.h).toMatchObject({
      url: 'http://127.0.0.1:9/x',
      headers: { authorization: 'Bearer s3cret' },
    });
  });

  it('$${ is a literal ${', () => {
    const c = parse('providers:\n  h:\n    type: log\n    path: "/tmp/$${NOT_A_VAR}"\n');
    expect(c.providers.h).toMatchObject({ path: '/tmp/${NOT_A_VAR}' });
  });

  it('an unset variable without default is SY_ERR_CONFIG_ENV at its line', () => {
    const err = errorOf(() => parse('server:\n  host: ${NOPE}\n'));
    expect(err.code).toBe('SY_ERR_CONFIG_ENV');
    expect(err.message.startsWith('sw.yaml:2:9:')).toBe(true);
  });

  it('a variable that interpolates to a wrong type is a validation error', () => {
    expect(errorOf(() => parse('server:\n  port: ${PORT}\n', { PORT: 'abc' })).code).toBe(
      'SY_ERR_CONFIG_INVALID',
    );
  });
});

describe('SWITCHYARD_<SECTION>_<KEY> overrides', () => {
  it('override file values and are validated', () => {
    const c = parse('server:\n  port: 1000\n', {
      SWITCHYARD_SERVER_PORT: '2000',
      SWITCHYARD_SERVER_BODY_LIMIT: '2MiB',
      SWITCHYARD_LOG_LEVEL: 'debug',
    });
    expect(c.server.port).toBe(2000);
    expect(c.server.bodyLimit).toBe(2 * 1_048_576);
    expect(c.log.level).toBe('debug');
    expect(errorOf(() => parse('', { SWITCHYARD_SERVER_PORT: 'x' })).details?.field).toBe(
      'server.port',
    );
  });

  it('a list key takes a comma-separated value', () => {
    const c = parse('', { SWITCHYARD_SERVER_API_KEYS: 'key-one, key-two' });
    expect(c.server.apiKeys).toEqual(['key-one', 'key-two']);
  });

  it('do not apply to a config built in code unless env is given', () => {
    process.env.SWITCHYARD_SERVER_PORT = '2345';
    try {
      expect(resolveConfig({}).server.port).toBe(8080);
      expect(resolveConfig({}, { env: process.env }).server.port).toBe(2345);
    } finally {
      delete process.env.SWITCHYARD_SERVER_PORT;
    }
  });
});

describe('resolveConfig (library)', () => {
  it('names the dotted path of a bad value', () => {
    const err = errorOf(() => resolveConfig({ server: { port: -1 } }));
    expect(err.code).toBe('SY_ERR_CONFIG_INVALID');
    expect(err.details?.field).toBe('server.port');
  });

  it('reads a real file from disk', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-config-'));
    const file = join(dir, 'switchyard.yaml');
    writeFileSync(file, 'server:\n  port: 8181\n');
    expect(loadConfigFile(file, { env: {} }).server.port).toBe(8181);
  });
});
