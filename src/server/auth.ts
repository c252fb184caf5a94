import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SyError } from '../core/errors.js';

/** Routes that orchestrators and scrapers poll without credentials. */
const PUBLIC = /^\/(health|ready|metrics|openapi\.json|docs)(\/|$|\?)/;

const digest = (key: string): Buffer => createHash('sha256').update(key).digest();

function presented(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim();
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

/**
 * API-key authentication for the /v1 API: `authorization: Bearer <key>` or `x-api-key: <key>`.
 * Keys are compared as SHA-256 digests with timingSafeEqual, so neither the key's content nor
 * its length leaks through timing. With no keys configured the API is open (loopback default).
 */
export function registerApiKeyAuth(app: FastifyInstance, keys: readonly string[]): void {
  const digests = keys.filter((k) => k !== '').map(digest);
  if (digests.length === 0) return;
  app.addHook('onRequest', (request, _reply, done) => {
    if (PUBLIC.test(request.url)) return done();
    const key = presented(request);
    if (key === undefined) {
      return done(
        new SyError(
          'SY_ERR_UNAUTHORIZED',
          'an API key is required: send authorization: Bearer <key>',
        ),
      );
    }
    const d = digest(key);
    let ok = false;
    for (const known of digests) ok = timingSafeEqual(d, known) || ok;
    done(ok ? undefined : new SyError('SY_ERR_UNAUTHORIZED', 'the API key is not valid'));
  });
}
