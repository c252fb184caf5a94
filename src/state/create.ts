import type { ResolvedConfig } from '../config/schema.js';
import { MemoryStateStore } from './memory/store.js';
import { PostgresStateStore } from './postgres/store.js';
import { RedisStateStore } from './redis/store.js';
import { SqliteStateStore } from './sqlite/store.js';
import type { StateStore } from './store.js';

/**
 * The state store a config asks for. Each backend loads its client library (better-sqlite3,
 * ioredis, pg) only when constructed, so a gateway on memory never loads any of them.
 */
export function createStateStore(
  config: ResolvedConfig['state'],
  /** Force (true) or skip (false) schema migrations regardless of `config.migrate`. */
  migrate: boolean = config.migrate,
): StateStore {
  switch (config.backend) {
    case 'memory':
      return new MemoryStateStore();
    case 'sqlite':
      return new SqliteStateStore({ path: config.path, prefix: config.prefix ?? '', migrate });
    case 'redis':
      return new RedisStateStore({ url: config.url as string, prefix: config.prefix ?? 'sy:' });
    case 'postgres':
      return new PostgresStateStore({
        url: config.url as string,
        tablePrefix: config.prefix ?? 'switchyard_',
        pool: config.pool,
        migrate,
      });
  }
}
