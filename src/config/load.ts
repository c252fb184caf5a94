import { readFileSync } from 'node:fs';
import {
  LineCounter,
  parseDocument,
  isMap,
  isPair,
  isScalar,
  type Document,
  type Node,
} from 'yaml';
import type { ValidateFunction } from 'ajv';
import { SyError } from '../core/errors.js';
import { ajv, describe, formatPath, segmentsOf } from '../core/validate.js';
import { parseDuration, parseSize } from '../core/units.js';
import { providerTypeMap } from '../providers/registry.js';
import type { ProviderType } from '../providers/provider.js';
import { ConfigSchema, type ConfigInput, type ResolvedConfig } from './schema.js';
import { interpolateDocument } from './interpolate.js';
import { applyEnvOverrides } from './env-overrides.js';

/** Where a value sits in the source: "file:line:col: " or "" for a config built in code. */
type Locate = (path: readonly (string | number)[], key?: boolean) => string;

const NO_LOCATION: Locate = () => '';

const checkTop: ValidateFunction<ConfigInput> = ajv.compile<ConfigInput>(ConfigSchema);
const providerChecks = new WeakMap<ProviderType<never>, ValidateFunction>();

export interface LoadOptions {
  /** Environment for `${VAR}` interpolation and SWITCHYARD_* overrides. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Provider types beyond the built-in ones (library use). */
  providerTypes?: readonly ProviderType<never>[];
}

/**
 * Reads, interpolates, validates and resolves a YAML config file. Every error is a SyError whose
 * message starts with `file:line:col:` and names the key, so a user can jump straight to it.
 */
export function loadConfigFile(file: string, options: LoadOptions = {}): ResolvedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SyError(
      'SY_ERR_CONFIG_READ',
      `cannot read config file ${file}: ${(err as Error).message}`,
      { file },
      { cause: err },
    );
  }
  return parseConfigText(text, file, options);
}

/** Like loadConfigFile, for YAML text already in memory. */
export function parseConfigText(
  text: string,
  file: string,
  options: LoadOptions = {},
): ResolvedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): string => {
    const pos = lineCounter.linePos(offset);
    return `${file}:${pos.line}:${pos.col}: `;
  };
  const yamlError = doc.errors[0];
  if (yamlError !== undefined) {
    throw new SyError('SY_ERR_CONFIG_PARSE', `${at(yamlError.pos[0])}${yamlError.message}`, {
      file,
    });
  }
  const env = options.env ?? process.env;
  interpolateDocument(doc, env, (node, message) => {
    throw new SyError('SY_ERR_CONFIG_ENV', `${at(node.range?.[0] ?? 0)}${message}`, { file });
  });
  const locate: Locate = (path, key = false) => {
    const node = nodeAt(doc, path, key);
    return node?.range ? at(node.range[0]) : `${file}: `;
  };
  const input: unknown = doc.toJS() ?? {};
  return resolveConfig(input, { ...options, env, source: file, locate });
}

/**
 * Validates a config object (as written in YAML, or built in code) and fills in defaults.
 * The same checks as for a file, with dotted paths instead of line numbers. SWITCHYARD_* env
 * overrides apply only when `env` is given (a library caller's config is not changed behind
 * its back by the process environment).
 */
export function resolveConfig(
  input: unknown,
  options: LoadOptions & { source?: string; locate?: Locate } = {},
): ResolvedConfig {
  const locate = options.locate ?? NO_LOCATION;
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new SyError(
      'SY_ERR_CONFIG_INVALID',
      `${locate([])}the config must be a mapping of sections`,
    );
  }
  const config = structuredClone(input) as Record<string, unknown>;
  applyEnvOverrides(config, options.env ?? {});
  if (!checkTop(config)) throw invalid(checkTop.errors?.[0], [], locate);

  const types = providerTypeMap(options.providerTypes);
  const providers = (config.providers ?? {}) as Record<
    string,
    { type: string } & Record<string, unknown>
  >;
  for (const [name, entry] of Object.entries(providers)) {
    const type = types.get(entry.type);
    if (type === undefined) {
      throw new SyError(
        'SY_ERR_CONFIG_INVALID',
        `${locate(['providers', name, 'type'])}providers.${name}.type "${entry.type}" is not a known provider type (known: ${[...types.keys()].sort().join(', ')})`,
        { field: `providers.${name}.type` },
      );
    }
    let check = providerChecks.get(type);
    if (check === undefined) {
      check = ajv.compile(type.configSchema);
      providerChecks.set(type, check);
    }
    if (!check(entry)) throw invalid(check.errors?.[0], ['providers', name], locate);
  }

  const server = (config.server ?? {}) as NonNullable<ConfigInput['server']>;
  const log = (config.log ?? {}) as NonNullable<ConfigInput['log']>;
  return {
    source: options.source,
    server: {
      host: server.host ?? '127.0.0.1',
      port: server.port ?? 8080,
      bodyLimit: parseSize(server.bodyLimit) ?? 1024 * 1024,
      batchMaxSize: server.batchMaxSize ?? 1000,
      shutdownTimeoutMs: parseDuration(server.shutdownTimeout) ?? 30_000,
      docs: server.docs ?? true,
      apiKeys: (server.apiKeys ?? []).filter((k) => k !== ''),
    },
    log: { level: log.level ?? 'info' },
    providers,
  };
}

function invalid(
  error: Parameters<typeof segmentsOf>[0] | undefined,
  base: readonly string[],
  locate: Locate,
): SyError {
  if (error === undefined)
    return new SyError('SY_ERR_CONFIG_INVALID', `${locate(base)}invalid config`);
  const segments = [...base, ...segmentsOf(error)];
  const field = formatPath(segments);
  const keyError = error.keyword === 'additionalProperties';
  const missing = error.keyword === 'required';
  // A missing key has no node of its own: point at the mapping that should hold it.
  const where = locate(missing ? segments.slice(0, -1) : segments, keyError);
  return new SyError('SY_ERR_CONFIG_INVALID', `${where}${describe(error, field)}`, {
    field,
    keyword: error.keyword,
  });
}

/** The YAML node at a path; with `key`, the key node of the last segment (for unknown keys). */
function nodeAt(doc: Document, path: readonly (string | number)[], key: boolean): Node | undefined {
  let node: unknown = doc.contents;
  for (let i = 0; i < path.length; i++) {
    if (!isMap(node)) return isScalar(node) || node ? (node as Node) : undefined;
    const segment = String(path[i]);
    const pair = node.items.find(
      (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === segment,
    );
    if (pair === undefined) return node as Node;
    if (key && i === path.length - 1) return pair.key as Node;
    node = pair.value;
  }
  return (node as Node | null) ?? undefined;
}
