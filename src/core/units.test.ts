import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseDuration, parseSize } from './units.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['1.5s', 1500],
    [1200, 1200],
  ])('%s is %d ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each(['5 minutes', '1.5.0s', '-1s', 's', '', '10', 'ten', -5, Number.NaN, null, {}])(
    'rejects %s',
    (input) => {
      expect(parseDuration(input)).toBeUndefined();
    },
  );

  it('round-trips any whole number of seconds', () => {
    fc.assert(fc.property(fc.nat(1_000_000), (n) => parseDuration(`${n}s`) === n * 1000));
  });
});

describe('parseSize', () => {
  it.each([
    ['64KiB', 65_536],
    ['1MiB', 1_048_576],
    ['10B', 10],
    ['1KB', 1000],
    [4096, 4096],
  ])('%s is %d bytes', (input, expected) => {
    expect(parseSize(input)).toBe(expected);
  });

  it.each(['1 MiB', '1mib', '1.5', 1.5, -1, 'big'])('rejects %s', (input) => {
    expect(parseSize(input)).toBeUndefined();
  });
});
