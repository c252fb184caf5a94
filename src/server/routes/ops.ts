import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { SyError } from '../../core/errors.js';
import type { Gateway } from '../../gateway/gateway.js';

const Status = Type.Object({ status: Type.String() });

/** Liveness, readiness and metrics: what operators and orchestrators poll. */
export function opsRoutes(app: FastifyInstance, gateway: Gateway, isClosing: () => boolean): void {
  app.get(
    '/health',
    {
      schema: { summary: 'Liveness: the process is up', tags: ['ops'], response: { 200: Status } },
    },
    () => ({ status: 'ok' }),
  );

  app.get(
    '/ready',
    {
      schema: {
        summary: 'Readiness: the gateway accepts actions (503 while shutting down)',
        tags: ['ops'],
        response: { 200: Status },
      },
    },
    () => {
      if (isClosing()) throw new SyError('SY_ERR_SHUTTING_DOWN', 'the gateway is shutting down');
      return { status: 'ready' };
    },
  );

  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics (text exposition format)', tags: ['ops'] } },
    async (_request, reply) => {
      const registry = gateway.metrics.registry;
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    },
  );
}
