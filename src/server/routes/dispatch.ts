import type { FastifyInstance } from 'fastify';
import { ActionInputSchema } from '../../core/action.js';
import { OutcomeSchema } from '../../core/outcome.js';
import { SyError } from '../../core/errors.js';
import type { Gateway } from '../../gateway/gateway.js';
import { BatchBodySchema, BatchResponseSchema, errorResponses } from '../schemas.js';

/**
 * Bodies are validated by the gateway itself (the same check for HTTP, WebSocket and library
 * callers, including "is this provider configured"); the schemas here document the API.
 */
const viaGateway = () => () => true;

export function dispatchRoutes(app: FastifyInstance, gateway: Gateway, batchMaxSize: number): void {
  app.post(
    '/v1/dispatch',
    {
      schema: {
        summary: 'Dispatch one action',
        tags: ['dispatch'],
        body: ActionInputSchema,
        response: { 200: OutcomeSchema, ...errorResponses },
      },
      validatorCompiler: viaGateway,
    },
    (request) => gateway.dispatch(request.body),
  );

  app.post(
    '/v1/dispatch/batch',
    {
      schema: {
        summary: `Dispatch up to server.batchMaxSize (${batchMaxSize}) actions`,
        tags: ['dispatch'],
        body: BatchBodySchema,
        response: { 200: BatchResponseSchema, ...errorResponses },
      },
      validatorCompiler: viaGateway,
    },
    async (request) => {
      const body = request.body;
      if (!Array.isArray(body)) {
        throw new SyError('SY_ERR_VALIDATION', 'body must be an array of actions', { field: '' });
      }
      if (body.length > batchMaxSize) {
        throw new SyError(
          'SY_ERR_BATCH_TOO_LARGE',
          `the batch holds ${body.length} actions; server.batchMaxSize allows ${batchMaxSize}`,
          { size: body.length, max: batchMaxSize },
        );
      }
      return { outcomes: await gateway.dispatchBatch(body) };
    },
  );
}
