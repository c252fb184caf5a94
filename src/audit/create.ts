import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { ResolvedConfig } from '../config/schema.js';
import { MemoryAuditStore } from './memory/store.js';
import { PostgresAuditStore } from './postgres/store.js';
import { SqliteAuditStore } from './sqlite/store.js';
import type { AuditStore } from './store.js';
import { AuditWriter } from './writer.js';

/**
 * The audit store a config asks for (undefined for `none`). Backends load their client library
 * (better-sqlite3, pg) only when constructed.
 */
export function createAuditStore(
  config: ResolvedConfig['audit'],
  migrate = true,
): AuditStore | undefined {
  switch (config.backend) {
    case 'none':
      return undefined;
    case 'memory':
      return new MemoryAuditStore();
    case 'sqlite':
      return new SqliteAuditStore({ path: config.path, migrate });
    case 'postgres':
      return new PostgresAuditStore({ url: config.url as string, prefix: config.prefix, migrate });
  }
}

/** The writer (batching, backpressure, strict mode, redaction) in front of a store. */
export function createAuditWriter(
  config: ResolvedConfig['audit'],
  store: AuditStore,
  context: { nodeId: string; logger: Logger; clock: Clock },
): AuditWriter {
  return new AuditWriter({
    store,
    mode: config.mode,
    storePayload: config.storePayload,
    redact: config.redact,
    nodeId: context.nodeId,
    batchSize: config.batchSize,
    flushIntervalMs: config.flushIntervalMs,
    maxBuffer: config.maxBuffer,
    logger: context.logger,
    clock: context.clock,
  });
}
