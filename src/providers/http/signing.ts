import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Request signing (Stripe-style). The header is `t=<unix seconds>,v1=<hex HMAC-SHA256>` where the
 * HMAC is computed with the shared secret over `"<t>.<body>"` (the exact bytes sent; an empty
 * string when there is no body). A receiver recomputes the HMAC over the raw body it received,
 * compares in constant time and rejects a `t` further than its tolerance from its own clock, so
 * a captured request cannot be replayed later. Several `v1=` entries may appear (secret rotation);
 * one matching is enough.
 */
export const SIGNATURE_HEADER = 'x-switchyard-signature';

/** Replay tolerance a receiver should use unless it has a reason not to: five minutes. */
export const DEFAULT_SIGNATURE_TOLERANCE_SEC = 300;

function hmacHex(secret: string, timestamp: number, body: string | Uint8Array): string {
  const mac = createHmac('sha256', secret);
  mac.update(`${timestamp}.`);
  mac.update(body);
  return mac.digest('hex');
}

/** The signature header value for `body` sent at `nowSec` (unix seconds). */
export function signBody(secret: string, body: string | Uint8Array, nowSec: number): string {
  const t = Math.floor(nowSec);
  return `t=${t},v1=${hmacHex(secret, t, body)}`;
}

/**
 * True when `header` (the value of x-switchyard-signature) is a valid signature of `body` with
 * `secret`, made at most `toleranceSec` seconds from `nowSec`. `body` must be the raw request
 * body as received, before any JSON parsing.
 */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string | Uint8Array,
  toleranceSec: number = DEFAULT_SIGNATURE_TOLERANCE_SEC,
  nowSec: number = Date.now() / 1000,
): boolean {
  if (header === undefined || header === '') return false;
  let t: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,15}$/.test(value)) t = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) candidates.push(value);
  }
  if (t === undefined || candidates.length === 0) return false;
  if (Math.abs(nowSec - t) > toleranceSec) return false;
  const expected = Buffer.from(hmacHex(secret, t, body), 'hex');
  let ok = false;
  for (const c of candidates) {
    // Compare every candidate: no early exit that would time the match.
    if (timingSafeEqual(expected, Buffer.from(c, 'hex'))) ok = true;
  }
  return ok;
}
