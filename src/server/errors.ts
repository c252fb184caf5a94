import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { SyError, isSyError, type ErrorCode } from '../core/errors.js';
import { validationError } from '../core/validate.js';

/** Fastify's own error codes, as they map onto ours. */
const FASTIFY_CODES: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [
    'SY_ERR_BODY_TOO_LARGE',
    'the request body is larger than server.bodyLimit',
  ],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [
    'SY_ERR_UNSUPPORTED_MEDIA_TYPE',
    'the request body must be sent with content-type: application/json',
  ],
  FST_ERR_CTP_INVALID_JSON_BODY: ['SY_ERR_MALFORMED_JSON', 'the request body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [
    'SY_ERR_MALFORMED_JSON',
    'the request body is empty; a JSON document is required',
  ],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [
    'SY_ERR_MALFORMED_JSON',
    'the request body length does not match its content-length header',
  ],
};

/** Any error raised while handling a request, as the SyError the client will see. */
export function toSyError(err: FastifyError | Error, requestId: string): SyError {
  if (isSyError(err)) return err;
  const fe = err as FastifyError;
  if (fe.validation !== undefined) return validationError(fe.validation as never);
  const mapped = fe.code === undefined ? undefined : FASTIFY_CODES[fe.code];
  if (mapped !== undefined) {
    return new SyError(mapped[0], mapped[1], undefined, { cause: err });
  }
  // fastify's JSON parser surfaces a SyntaxError with status 400 for some malformed bodies.
  if (err instanceof SyntaxError && fe.statusCode === 400) {
    return new SyError(
      'SY_ERR_MALFORMED_JSON',
      `the request body is not valid JSON: ${err.message}`,
      undefined,
      { cause: err },
    );
  }
  return new SyError('SY_ERR_INTERNAL', 'internal error', { requestId }, { cause: err });
}

/** Renders every error as `{ error: { code, message, details } }` with the registry's status. */
export function errorHandler(onRejected: (code: string) => void) {
  return function handle(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    const sy = toSyError(err, request.id);
    onRejected(sy.code);
    if (sy.status >= 500) request.log.error({ err, code: sy.code }, 'request failed');
    else request.log.info({ code: sy.code, url: request.url }, 'request rejected');
    if (sy.status === 503) void reply.header('retry-after', '1');
    void reply.code(sy.status).send({ error: sy.toJSON() });
  };
}
