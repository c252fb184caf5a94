import { loadConfigFile, resolveConfig } from '../../config/load.js';
import type { ResolvedConfig } from '../../config/schema.js';
import { createLogger } from '../../core/logger.js';
import { serveUntilSignalled } from '../../server/serve.js';
import { usage } from '../output.js';
import { configPath } from '../config-path.js';

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function withFlags(config: ResolvedConfig, flags: Record<string, unknown>): ResolvedConfig {
  const server = { ...config.server };
  const log = { ...config.log };
  if (flags.host !== undefined) server.host = String(flags.host);
  if (flags.port !== undefined) {
    const port = Number(flags.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      usage(`--port must be an integer from 0 to 65535, got "${String(flags.port)}"`);
    }
    server.port = port;
  }
  if (flags.logLevel !== undefined) {
    const level = String(flags.logLevel);
    if (!LEVELS.has(level)) usage(`--log-level must be one of ${[...LEVELS].join(', ')}`);
    log.level = level;
  }
  return { ...config, server, log };
}

export async function serveCommand(flags: Record<string, unknown>): Promise<void> {
  const file = configPath(flags.config);
  const loaded =
    file === undefined
      ? resolveConfig(
          {},
          { env: process.env, defaultStateBackend: 'sqlite', defaultAuditBackend: 'sqlite' },
        )
      : loadConfigFile(file, {
          env: process.env,
          defaultStateBackend: 'sqlite',
          defaultAuditBackend: 'sqlite',
        });
  const config = withFlags(loaded, flags);
  const logger = createLogger(config.log.level);
  await serveUntilSignalled(config, logger);
}
