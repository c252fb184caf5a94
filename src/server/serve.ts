import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/schema.js';
import { GatewayMetrics } from '../gateway/metrics.js';
import { buildServer } from './server.js';
import { createGateway } from '../gateway/gateway.js';
import { VERSION } from '../core/version.js';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export interface RunningServer {
  app: FastifyInstance;
  /** The address actually bound (port 0 resolves to a free port). */
  url: string;
  /** Graceful stop: stop accepting, finish in-flight work, close providers. */
  stop(): Promise<void>;
}

/** Builds and starts the HTTP server. */
export async function startServer(config: ResolvedConfig, logger: Logger): Promise<RunningServer> {
  // The served process exports process_* and nodejs_* metrics; embedded gateways do not.
  const metrics = new GatewayMetrics();
  metrics.collectProcessMetrics();
  const gateway = createGateway(config, { logger, metrics });
  try {
    // Connect the state store and apply its migrations before taking traffic: fail fast.
    await gateway.ready();
  } catch (err) {
    await gateway.close(0);
    throw err;
  }
  const app = await buildServer(config, { logger, gateway });
  await app.listen({ host: config.server.host, port: config.server.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.server.port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const url = `http://${host}:${port}`;
  logger.info(
    {
      url,
      version: VERSION,
      config: config.source ?? null,
      providers: Object.keys(config.providers),
      state: config.state.backend,
    },
    'switchyard listening',
  );
  if (config.server.apiKeys.length === 0 && !LOOPBACK.has(config.server.host)) {
    logger.warn(
      { host: config.server.host },
      'the API is open: listening beyond loopback without server.apiKeys',
    );
  }
  return { app, url, stop: () => app.close() };
}

/**
 * `switchyard serve`: run until SIGTERM/SIGINT, then shut down gracefully — stop accepting, let
 * in-flight actions finish (up to server.shutdownTimeout), close providers, exit 0. A second
 * signal, or the timeout, exits 1 at once.
 */
export async function serveUntilSignalled(config: ResolvedConfig, logger: Logger): Promise<void> {
  const server = await startServer(config, logger);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error({ timeoutMs: config.server.shutdownTimeoutMs }, 'shutdown timed out');
      process.exit(1);
    }, config.server.shutdownTimeoutMs + 5000);
    force.unref();
    server.stop().then(
      () => {
        logger.info('stopped');
        logger.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
