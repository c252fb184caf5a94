import { Type, type Static } from 'typebox';
import { Duration, Size } from '../core/schema-types.js';
import type { Locate } from '../core/yaml-source.js';
import type { ProviderPolicyInput } from '../executor/policy.js';

export const ServerConfigSchema = Type.Object(
  {
    host: Type.Optional(
      Type.String({ minLength: 1, description: 'Listen address. Default 127.0.0.1.' }),
    ),
    port: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 65535,
        description: 'Listen port (0 = any free port). Default 8080.',
      }),
    ),
    bodyLimit: Type.Optional(Size('Largest accepted request body. Default 1MiB.')),
    batchMaxSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100_000,
        description: 'Most actions in one batch. Default 1000.',
      }),
    ),
    shutdownTimeout: Type.Optional(
      Duration('How long SIGTERM waits for in-flight work before exiting anyway. Default 30s.'),
    ),
    apiKeys: Type.Optional(
      Type.Array(Type.String({ maxLength: 512 }), {
        maxItems: 100,
        description:
          'API keys accepted on /v1 routes (Bearer or x-api-key). Empty entries are ignored; no keys = open API. Default [].',
      }),
    ),
    docs: Type.Optional(
      Type.Boolean({ description: 'Serve interactive API docs at /docs. Default true.' }),
    ),
  },
  { additionalProperties: false },
);

export const LogConfigSchema = Type.Object(
  {
    level: Type.Optional(
      Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
        description: 'Log level. Default info.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const RulesConfigSchema = Type.Object(
  {
    directory: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Directory of rule files (*.yaml, *.yml, loaded in name order); relative to the config file. Default: none.',
      }),
    ),
    watch: Type.Optional(
      Type.Boolean({
        description: 'Reload the rules when a file in `directory` changes. Default true.',
      }),
    ),
    inline: Type.Optional(
      Type.Array(Type.Unknown(), {
        maxItems: 10_000,
        description:
          'Rules written in the config itself; evaluated before file rules on equal priority. Default [].',
      }),
    ),
  },
  { additionalProperties: false },
);

export const STATE_BACKENDS = ['memory', 'sqlite', 'redis', 'postgres'] as const;
export type StateBackend = (typeof STATE_BACKENDS)[number];

export const StateConfigSchema = Type.Object(
  {
    backend: Type.Optional(
      Type.Enum([...STATE_BACKENDS], {
        description:
          'Where gate state lives. Default: sqlite for `switchyard serve`, memory for createGateway().',
      }),
    ),
    path: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'sqlite: the database file, relative to the working directory. Default ./switchyard-data/state.db.',
      }),
    ),
    url: Type.Optional(
      Type.String({
        pattern: '^(redis|rediss|postgres|postgresql)://',
        description:
          'redis / postgres: connection URL (use ${ENV_VAR} for credentials). Required for them.',
      }),
    ),
    prefix: Type.Optional(
      Type.String({
        maxLength: 64,
        description:
          'Key prefix (redis, sqlite) or table prefix (postgres), to share one server between gateways. Default sy: (redis), switchyard_ (postgres), none (sqlite).',
      }),
    ),
    pool: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 200,
        description: 'postgres: connection pool size. Default 10.',
      }),
    ),
    migrate: Type.Optional(
      Type.Boolean({
        description:
          'Apply pending schema migrations (sqlite, postgres) when the gateway starts. Default true.',
      }),
    ),
    idempotencyTtl: Type.Optional(
      Duration(
        'How long a client-supplied action id is remembered (same id → same outcome). Default 24h.',
      ),
    ),
  },
  { additionalProperties: false },
);

export const ExecutorConfigSchema = Type.Object(
  {
    concurrency: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        description:
          'Provider calls running at once on this node, all providers together. Default 1024.',
      }),
    ),
    queue: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 10_000_000,
        description:
          'Calls waiting for a global slot; beyond it dispatch answers 503 SY_ERR_OVERLOADED. Default 10000.',
      }),
    ),
    deadline: Type.Optional(
      Duration(
        'How long a synchronous dispatch waits for retries before answering `retrying` (the rest continue from the state store). Default 10s.',
      ),
    ),
    pollInterval: Type.Optional(
      Duration('How often each node looks for due retries in the state store. Default 1s.'),
    ),
    batch: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000,
        description: 'Due retries claimed per poll. Default 64.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const AUDIT_BACKENDS = ['sqlite', 'postgres', 'memory', 'none'] as const;
export type AuditBackend = (typeof AUDIT_BACKENDS)[number];

export const AuditConfigSchema = Type.Object(
  {
    backend: Type.Optional(
      Type.Enum([...AUDIT_BACKENDS], {
        description:
          'Where audit records are stored. Default: sqlite for `switchyard serve`, none for createGateway().',
      }),
    ),
    path: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'sqlite: the database file, relative to the working directory. Default ./switchyard-data/audit.db.',
      }),
    ),
    url: Type.Optional(
      Type.String({
        pattern: '^(postgres|postgresql)://',
        description: 'postgres: connection URL (use ${ENV_VAR} for credentials). Required for it.',
      }),
    ),
    prefix: Type.Optional(
      Type.String({
        maxLength: 64,
        pattern: '^[a-z_][a-z0-9_]*$',
        description: 'postgres: table prefix. Default switchyard_.',
      }),
    ),
    mode: Type.Optional(
      Type.Enum(['batched', 'strict'], {
        description:
          'batched: written off the hot path in batches; strict: written (and hash-chained per tenant) before the outcome is returned. Default batched.',
      }),
    ),
    retention: Type.Optional(
      Duration('Records older than this are deleted in the background. Default 90d.'),
    ),
    storePayload: Type.Optional(
      Type.Boolean({ description: 'Store action payloads (after redaction). Default true.' }),
    ),
    redact: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
        maxItems: 100,
        description:
          'Payload paths replaced by "[REDACTED]" before storage (`payload.card.number`, `payload.items.*.ssn`). Default [].',
      }),
    ),
    batchSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100_000,
        description: 'Records per write. Default 500.',
      }),
    ),
    flushInterval: Type.Optional(
      Duration('Longest time a record waits in the buffer (batched mode). Default 50ms.'),
    ),
    maxBuffer: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000_000,
        description:
          'Records buffered before dispatch waits for the writer (backpressure; nothing is dropped). Default 50000.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ProviderEntrySchema = Type.Object(
  { type: Type.String({ minLength: 1, description: 'Provider type: webhook, log, noop, ...' }) },
  { additionalProperties: true },
);

export const ConfigSchema = Type.Object(
  {
    server: Type.Optional(ServerConfigSchema),
    log: Type.Optional(LogConfigSchema),
    rules: Type.Optional(RulesConfigSchema),
    state: Type.Optional(StateConfigSchema),
    executor: Type.Optional(ExecutorConfigSchema),
    audit: Type.Optional(AuditConfigSchema),
    providers: Type.Optional(
      Type.Record(Type.String(), ProviderEntrySchema, {
        // A provider name must be usable in an action's `provider` field.
        propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$', maxLength: 128 },
      }),
    ),
  },
  { additionalProperties: false },
);

/** A provider entry as written: its type, the executor's policy keys and the type's own keys. */
export type ProviderEntryInput = { type: string } & ProviderPolicyInput & Record<string, unknown>;

/** The config as written (YAML or a JS object): every section optional. */
export type ConfigInput = Omit<Static<typeof ConfigSchema>, 'providers'> & {
  providers?: Record<string, ProviderEntryInput>;
};

/** The config after validation and defaults: units resolved to ms and bytes. */
export interface ResolvedConfig {
  /** Marks a validated config (a raw config cannot have this key). */
  readonly resolved: true;
  /** The file it came from, for messages; undefined for a config built in code. */
  readonly source: string | undefined;
  readonly server: {
    host: string;
    port: number;
    bodyLimit: number;
    batchMaxSize: number;
    shutdownTimeoutMs: number;
    docs: boolean;
    apiKeys: string[];
  };
  readonly log: { level: string };
  readonly rules: {
    /** Resolved against the config file's folder. */
    directory: string | undefined;
    watch: boolean;
    inline: unknown[];
  };
  readonly state: {
    backend: StateBackend;
    path: string;
    url: string | undefined;
    prefix: string | undefined;
    pool: number;
    migrate: boolean;
    idempotencyTtlMs: number;
  };
  readonly executor: {
    concurrency: number;
    queue: number;
    deadlineMs: number;
    pollIntervalMs: number;
    batch: number;
  };
  readonly audit: {
    backend: AuditBackend;
    path: string;
    url: string | undefined;
    prefix: string;
    mode: 'batched' | 'strict';
    retentionMs: number;
    storePayload: boolean;
    redact: string[];
    batchSize: number;
    flushIntervalMs: number;
    maxBuffer: number;
  };
  /** Positions in the config file (for errors in sections compiled later, like inline rules). */
  readonly locate: Locate;
  readonly providers: Record<string, { type: string } & Record<string, unknown>>;
}
