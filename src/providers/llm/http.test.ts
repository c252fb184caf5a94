import { describe, expect, it } from 'vitest';
import { apiErrorMessage, isTransientStatus, retryAfterMs } from './http.js';
import { canonicalJson, cacheKey } from './cache.js';

const NOW = Date.UTC(2026, 0, 5, 12, 0, 0);

describe('llm http helpers', () => {
  it.each([
    [{ 'retry-after-ms': '1500', 'retry-after': '9' }, 1500],
    [{ 'retry-after': '7' }, 7000],
    [{ 'retry-after': '0.5' }, 500],
    [{ 'retry-after': new Date(NOW + 30_000).toUTCString() }, 30_000],
    [{ 'retry-after': new Date(NOW - 30_000).toUTCString() }, 0],
    [{ 'retry-after': 'soon' }, undefined],
    [{}, undefined],
  ])('retry headers %j mean %s ms', (headers, ms) => {
    expect(retryAfterMs(headers, NOW)).toBe(ms);
  });

  it.each([
    [408, true],
    [409, true],
    [429, true],
    [500, true],
    [503, true],
    [400, false],
    [401, false],
    [404, false],
    [422, false],
  ])('HTTP %d transient=%s', (status, transient) => {
    expect(isTransientStatus(status)).toBe(transient);
  });

  it('reads the API error message in its common shapes', () => {
    expect(apiErrorMessage({ error: { message: 'bad key' } })).toBe('bad key');
    expect(apiErrorMessage({ error: 'oops' })).toBe('oops');
    expect(apiErrorMessage({ message: 'top' })).toBe('top');
    expect(apiErrorMessage('plain\ntext')).toBe('plain text');
    expect(apiErrorMessage({})).toBeUndefined();
  });

  it('hashes requests independently of key order', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: null }], u: undefined })).toBe(
      '{"a":[{"c":null,"d":2}],"b":1}',
    );
    const one = { endpoint: 'e', model: 'm', messages: [], parameters: { a: 1, b: 2 } };
    const two = { endpoint: 'e', model: 'm', messages: [], parameters: { b: 2, a: 1 } };
    expect(cacheKey(one)).toBe(cacheKey(two));
    expect(cacheKey(one)).not.toBe(cacheKey({ ...one, model: 'n' }));
  });
});
