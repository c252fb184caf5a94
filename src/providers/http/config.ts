import { Type } from 'typebox';
import { Size } from '../../core/schema-types.js';

/**
 * The config keys every HTTP-based provider (webhook, slack) shares with its transport; spread
 * into the provider's own schema.
 */
export const HttpConnectionConfig = {
  maxResponseSize: Type.Optional(Size('Largest response body kept in the outcome. Default 64KiB.')),
  connections: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1024,
      description: 'Pooled keep-alive connections per origin. Default 16.',
    }),
  ),
  allowPrivateNetworks: Type.Optional(
    Type.Boolean({
      description:
        'Allow loopback, private, link-local and other non-public destinations (SSRF guard off). Default false.',
    }),
  ),
};
