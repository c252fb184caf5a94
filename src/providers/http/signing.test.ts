import { describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { signBody, verifySignature } from './signing.js';

const SECRET = 'whsec_0123456789abcdef';
const NOW = 1_767_614_400; // 2026-01-05T12:00:00Z

describe('request signing', () => {
  it('signs "<t>.<body>" with HMAC-SHA256, Stripe-style', () => {
    const header = signBody(SECRET, '{"a":1}', NOW + 0.7);
    const hex = createHmac('sha256', SECRET).update(`${NOW}.{"a":1}`).digest('hex');
    expect(header).toBe(`t=${NOW},v1=${hex}`);
  });

  it('verifies its own signature within the tolerance', () => {
    const header = signBody(SECRET, 'body', NOW);
    expect(verifySignature(SECRET, header, 'body', 300, NOW)).toBe(true);
    expect(verifySignature(SECRET, header, Buffer.from('body'), 300, NOW + 300)).toBe(true);
    expect(verifySignature(SECRET, header, 'body', 300, NOW - 300)).toBe(true);
  });

  it('refuses a tampered body, a wrong secret, a tampered header and a stale timestamp', () => {
    const header = signBody(SECRET, 'body', NOW);
    expect(verifySignature(SECRET, header, 'body!', 300, NOW)).toBe(false);
    expect(verifySignature('another-secret-0000', header, 'body', 300, NOW)).toBe(false);
    expect(
      verifySignature(SECRET, header.replace(`t=${NOW}`, `t=${NOW + 1}`), 'body', 300, NOW),
    ).toBe(false);
    expect(verifySignature(SECRET, header, 'body', 300, NOW + 301)).toBe(false);
  });

  it('accepts any matching v1 (secret rotation) and refuses malformed headers', () => {
    const good = signBody(SECRET, 'b', NOW);
    const rotated = `${good},v1=${'0'.repeat(64)}`;
    expect(verifySignature(SECRET, rotated, 'b', 300, NOW)).toBe(true);
    for (const bad of [
      undefined,
      '',
      'v1=abc',
      `t=${NOW}`,
      `t=x,v1=${'0'.repeat(64)}`,
      'garbage',
    ]) {
      expect(verifySignature(SECRET, bad, 'b', 300, NOW)).toBe(false);
    }
  });
});
