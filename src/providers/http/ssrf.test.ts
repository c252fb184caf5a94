import { describe, expect, it } from 'vitest';
import { checkLiteralHost, classifyAddress, guardedLookup } from './ssrf.js';
import { ProviderError } from '../provider.js';

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'reserved'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['100.127.255.255', 'carrier-grade NAT'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::FFFF:10.0.0.1', 'private'],
    ['0:0:0:0:0:ffff:c0a8:0101', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a00:1', 'private'],
    ['2002:7f00:1::1', 'loopback'],
    ['[::1]', 'loopback'],
  ])('%s is %s', (address, cls) => {
    expect(classifyAddress(address)).toBe(cls);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '93.184.216.34',
    '172.32.0.1',
    '172.15.255.255',
    '100.128.0.1',
    '100.63.255.255',
    '192.169.0.1',
    '169.255.0.1',
    '11.0.0.1',
    '2606:4700:4700::1111',
    '2a00:1450:4001:80b::200e',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    'fec0::1x',
    'example.com',
    '',
  ])('%s is public (or not an address)', (address) => {
    expect(classifyAddress(address)).toBeUndefined();
  });
});

describe('checkLiteralHost', () => {
  it('refuses a non-public literal with a message naming the host and class', () => {
    const err = checkLiteralHost('169.254.169.254');
    expect(err).toBeInstanceOf(ProviderError);
    expect(err?.code).toBe('SY_ERR_DESTINATION_BLOCKED');
    expect(err?.transient).toBe(false);
    expect(err?.message).toContain('169.254.169.254');
    expect(err?.message).toContain('link-local');
    expect(checkLiteralHost('[::1]')?.message).toContain('loopback');
  });

  it('leaves host names and public literals to the connection', () => {
    expect(checkLiteralHost('localhost')).toBeUndefined();
    expect(checkLiteralHost('8.8.8.8')).toBeUndefined();
    expect(checkLiteralHost('2606:4700:4700::1111')).toBeUndefined();
  });
});

describe('guardedLookup', () => {
  const lookup = (host: string, all: boolean) =>
    new Promise<{ err: Error | null; address: unknown }>((resolve) =>
      guardedLookup(host, { all }, (err, address) => resolve({ err, address })),
    );

  it.each([true, false])('refuses a name that resolves to loopback (all=%s)', async (all) => {
    const { err } = await lookup('localhost', all);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).code).toBe('SY_ERR_DESTINATION_BLOCKED');
    expect(err?.message).toContain('localhost');
    expect(err?.message).toContain('loopback');
  });

  it('passes a DNS failure through', async () => {
    const { err } = await lookup('no-such-host.invalid', true);
    expect(err).not.toBeNull();
    expect(err).not.toBeInstanceOf(ProviderError);
  });
});
