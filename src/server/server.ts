import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import { SyError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { ajv } from '../core/validate.js';
import type { ResolvedConfig } from '../config/schema.js';
import { createGateway, type Gateway, type GatewayOptions } from '../gateway/gateway.js';
import { errorHandler } from './errors.js';
import { registerApiKeyAuth } from './auth.js';
import { dispatchRoutes } from './routes/dispatch.js';
import { opsRoutes } from './routes/ops.js';
import { rulesRoutes } from './routes/rules.js';
import { providerRoutes } from './routes/providers.js';
import { auditRoutes } from './routes/audit.js';
import { VERSION } from '../core/version.js';

export interface ServerOptions extends GatewayOptions {
  logger: Logger;
  /** Use this gateway instead of creating one from the config (tests, embedding). */
  gateway?: Gateway;
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A client's x-request-id is kept when it is short and printable; otherwise we make one. */
function requestId(req: IncomingMessage): string {
  const header = req.headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : newId();
}

/**
 * Builds the HTTP server around a gateway (not listening yet; call `listen`). The server is a thin
 * adapter: it parses, hands the body to the gateway, and renders outcomes and errors.
 */
export async function buildServer(
  config: ResolvedConfig,
  options: ServerOptions,
): Promise<FastifyInstance> {
  const gateway = options.gateway ?? createGateway(config, options);
  let closing = false;

  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: config.server.bodyLimit,
    genReqId: requestId,
    // One line per request costs throughput; rejections and failures are logged where they happen.
    logController: new LogController({ disableRequestLogging: true }),
    // Requests that arrive while closing reach the gateway, which answers SY_ERR_SHUTTING_DOWN.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
  });
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));
  // Responses are plain JSON.stringify: outcomes carry provider bodies of any shape.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler(errorHandler((code) => gateway.metrics.countRejected(code)));
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = METHODS.filter((method) => app.hasRoute({ method, url: path }));
    if (allowed.length > 0) {
      void reply.header('allow', allowed.join(', '));
      throw new SyError(
        'SY_ERR_METHOD_NOT_ALLOWED',
        `${request.method} is not allowed on ${path}; use ${allowed.join(' or ')}`,
        { allow: allowed },
      );
    }
    throw new SyError('SY_ERR_NOT_FOUND', `no route for ${request.method} ${path}`);
  });
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    done();
  });
  if (options.logger.isLevelEnabled('debug')) {
    app.addHook('onResponse', (request, reply, done) => {
      request.log.debug(
        {
          method: request.method,
          url: request.url,
          status: reply.statusCode,
          ms: reply.elapsedTime,
        },
        'request',
      );
      done();
    });
  }

  registerApiKeyAuth(app, config.server.apiKeys);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Switchyard',
        version: VERSION,
        description: 'Action gateway API. Errors carry a stable SY_ERR_* code (docs/errors.md).',
      },
    },
  });
  if (config.server.docs) await app.register(swaggerUi, { routePrefix: '/docs' });

  dispatchRoutes(app, gateway, config.server.batchMaxSize);
  opsRoutes(app, gateway, () => closing);
  rulesRoutes(app, gateway);
  providerRoutes(app, gateway);
  auditRoutes(app, gateway);
  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());

  // Node closes idle keep-alive connections once, when close() starts; a connection busy at that
  // moment stays open after its response until the client hangs up (keep-alive clients hold it for
  // minutes), so the server never finishes closing. Sweep idle connections until it has.
  let idleSweep: NodeJS.Timeout | undefined;
  // The gateway starts closing with the server, not after it: it refuses new actions at once
  // (SY_ERR_SHUTTING_DOWN), lets in-flight ones finish, and at server.shutdownTimeout aborts
  // what is left — which is what lets the in-flight HTTP requests, and so the server, finish.
  let gatewayClosed: Promise<void> | undefined;
  app.addHook('preClose', (done) => {
    closing = true;
    gatewayClosed = gateway.close(config.server.shutdownTimeoutMs);
    idleSweep = setInterval(() => app.server.closeIdleConnections(), 50);
    idleSweep.unref();
    done();
  });
  app.addHook('onClose', async () => {
    // onClose runs after the HTTP server has closed (fastify's own hook runs first).
    clearInterval(idleSweep);
    await (gatewayClosed ?? gateway.close(config.server.shutdownTimeoutMs));
  });
  return app;
}
