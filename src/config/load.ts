import { readText } from '../core/read-text.js';
import { dirname, resolve as resolvePath } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { SyError } from '../core/errors.js';
import { ajv } from '../core/validate.js';
import { parseDuration, parseSize } from '../core/units.js';
import { providerTypeMap } from '../providers/registry.js';
import { ProviderPolicySchema, splitPolicy } from '../executor/policy.js';
import type { ProviderType } from '../providers/provider.js';
import {
  ConfigSchema,
  type ConfigInput,
  type ResolvedConfig,
  type StateBackend,
  type AuditBackend,
} from './schema.js';
import { interpolateDocument } from './interpolate.js';
import { NO_LOCATION, parseYamlSource, schemaError, type Locate } from '../core/yaml-source.js';
import { applyEnvOverrides } from './env-overrides.js';

const checkTop: ValidateFunction<ConfigInput> = ajv.compile<ConfigInput>(ConfigSchema);
const providerChecks = new WeakMap<ProviderType<never>, ValidateFunction>();
const checkPolicy = ajv.compile(ProviderPolicySchema);

/** Built in: always configured (see ProviderRegistry). */
const BUILTIN_NAMES = ['log', 'noop'];

/** Every fallback names a configured provider, and no chain leads back to where it started. */
function checkFallbacks(
  providers: Record<string, { type: string } & Record<string, unknown>>,
  locate: Locate,
): void {
  const known = new Set([...BUILTIN_NAMES, ...Object.keys(providers)]);
  const next = (name: string): string[] =>
    (providers[name]?.fallback as string[] | undefined) ?? [];
  for (const name of Object.keys(providers)) {
    next(name).forEach((target, i) => {
      if (!known.has(target)) {
        throw new SyError(
          'SY_ERR_CONFIG_INVALID',
          `${locate(['providers', name, 'fallback', i])}providers.${name}.fallback[${i}] "${target}" is not a configured provider (configured: ${[...known].sort().join(', ')})`,
          { field: `providers.${name}.fallback[${i}]` },
        );
      }
    });
    // Depth-first from `name`: reaching `name` again is a cycle.
    const path: string[] = [name];
    const visit = (at: string): void => {
      for (const target of next(at)) {
        if (target === name) {
          throw new SyError(
            'SY_ERR_CONFIG_INVALID',
            `${locate(['providers', name, 'fallback'])}providers.${name}.fallback forms a cycle: ${[...path, name].join(' -> ')}`,
            { field: `providers.${name}.fallback` },
          );
        }
        if (path.includes(target)) continue;
        path.push(target);
        visit(target);
        path.pop();
      }
    };
    visit(name);
  }
}

/** Where `switchyard serve` keeps state by default (relative to the working directory). */
export const DEFAULT_SQLITE_PATH = './switchyard-data/state.db';
export const DEFAULT_AUDIT_PATH = './switchyard-data/audit.db';

export interface LoadOptions {
  /** The state backend when the config names none (serve: sqlite; library: memory). */
  defaultStateBackend?: StateBackend;
  /** The audit backend when the config names none (`serve`: sqlite; library: none). */
  defaultAuditBackend?: AuditBackend;
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
  return parseConfigText(readText(file, 'SY_ERR_CONFIG_READ', 'config file'), file, options);
}

/** Like loadConfigFile, for YAML text already in memory. */
export function parseConfigText(
  text: string,
  file: string,
  options: LoadOptions = {},
): ResolvedConfig {
  const source = parseYamlSource(text, file, 'SY_ERR_CONFIG_PARSE');
  const env = options.env ?? process.env;
  interpolateDocument(source.doc, env, (node, message) => {
    throw new SyError('SY_ERR_CONFIG_ENV', `${source.at(node.range?.[0] ?? 0)}${message}`, {
      file,
    });
  });
  const input: unknown = source.doc.toJS() ?? {};
  return resolveConfig(input, { ...options, env, source: file, locate: source.locate });
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
  const fileLocate = options.locate ?? NO_LOCATION;
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new SyError(
      'SY_ERR_CONFIG_INVALID',
      `${fileLocate([])}the config must be a mapping of sections`,
    );
  }
  const config = structuredClone(input) as Record<string, unknown>;
  // `server:` with nothing under it is YAML null: an empty section, not an error.
  for (const [section, value] of Object.entries(config)) if (value === null) config[section] = {};
  const overridden = applyEnvOverrides(config, options.env ?? {});
  const locate: Locate = (path, key) => {
    const variable = overridden.get(path.slice(0, 2).join('.'));
    return variable === undefined ? fileLocate(path, key) : `${variable}: `;
  };
  if (!checkTop(config))
    throw schemaError('SY_ERR_CONFIG_INVALID', checkTop.errors?.[0], [], locate);

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
    // Policy keys (retry, timeout, ...) are the executor's, common to every type.
    const { policy, own } = splitPolicy(entry);
    if (!checkPolicy(policy))
      throw schemaError(
        'SY_ERR_CONFIG_INVALID',
        checkPolicy.errors?.[0],
        ['providers', name],
        locate,
      );
    if (!check(own))
      throw schemaError('SY_ERR_CONFIG_INVALID', check.errors?.[0], ['providers', name], locate);
  }
  checkFallbacks(providers, locate);

  const rules = (config.rules ?? {}) as NonNullable<ConfigInput['rules']>;
  const state = (config.state ?? {}) as NonNullable<ConfigInput['state']>;
  const backend = state.backend ?? options.defaultStateBackend ?? 'memory';
  if ((backend === 'redis' || backend === 'postgres') && state.url === undefined) {
    throw new SyError(
      'SY_ERR_CONFIG_INVALID',
      `${locate(['state'], false)}state.url is required for state.backend ${backend}`,
      { field: 'state.url' },
    );
  }
  const server = (config.server ?? {}) as NonNullable<ConfigInput['server']>;
  const log = (config.log ?? {}) as NonNullable<ConfigInput['log']>;
  const executor = (config.executor ?? {}) as NonNullable<ConfigInput['executor']>;
  const audit = (config.audit ?? {}) as NonNullable<ConfigInput['audit']>;
  const auditBackend = audit.backend ?? options.defaultAuditBackend ?? 'none';
  if (auditBackend === 'postgres' && audit.url === undefined) {
    throw new SyError(
      'SY_ERR_CONFIG_INVALID',
      `${locate(['audit'], false)}audit.url is required for audit.backend postgres`,
      { field: 'audit.url' },
    );
  }
  return {
    resolved: true,
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
    rules: {
      directory:
        rules.directory === undefined
          ? undefined
          : resolvePath(
              options.source === undefined ? '.' : dirname(options.source),
              rules.directory,
            ),
      watch: rules.watch ?? true,
      inline: rules.inline ?? [],
    },
    state: {
      backend,
      path: state.path ?? DEFAULT_SQLITE_PATH,
      url: state.url,
      prefix: state.prefix,
      pool: state.pool ?? 10,
      migrate: state.migrate ?? true,
      idempotencyTtlMs: parseDuration(state.idempotencyTtl) ?? 86_400_000,
    },
    audit: {
      backend: auditBackend,
      path: audit.path ?? DEFAULT_AUDIT_PATH,
      url: audit.url,
      prefix: audit.prefix ?? 'switchyard_',
      mode: audit.mode ?? 'batched',
      retentionMs: parseDuration(audit.retention) ?? 90 * 86_400_000,
      storePayload: audit.storePayload ?? true,
      redact: audit.redact ?? [],
      batchSize: audit.batchSize ?? 500,
      flushIntervalMs: parseDuration(audit.flushInterval) ?? 50,
      maxBuffer: audit.maxBuffer ?? 50_000,
    },
    executor: {
      concurrency: executor.concurrency ?? 1024,
      queue: executor.queue ?? 10_000,
      deadlineMs: parseDuration(executor.deadline) ?? 10_000,
      pollIntervalMs: parseDuration(executor.pollInterval) ?? 1000,
      batch: executor.batch ?? 64,
    },
    locate,
    providers,
  };
}
