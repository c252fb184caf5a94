import { BlockList, isIP } from 'node:net';
import { ProviderError } from '../provider.js';

/*
 * A deliberately minimal destination guard, isolated here so it can be replaced by the shared
 * SSRF-guarded transport (src/providers/http/) later. It looks only at the URL's host as written:
 * a literal IP in a loopback, private, link-local or otherwise non-public range, or `localhost`
 * (and `*.localhost`), is refused. Host names are NOT resolved, so a DNS name that points at a
 * private address passes.
 */

const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata endpoints)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 3], // multicast, reserved, broadcast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv6');
}

/**
 * Why `hostname` (a URL's hostname, IPv6 in brackets) is not a public destination, or undefined
 * when it is allowed. IPv4-mapped IPv6 addresses are checked as the IPv4 address they carry.
 */
export function privateHostReason(hostname: string): string | undefined {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return `"${hostname}" is loopback`;
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = isIP(bare);
  if (family === 0) return undefined;
  return BLOCKED.check(bare, family === 4 ? 'ipv4' : 'ipv6')
    ? `${bare} is a loopback, private, link-local or reserved address`
    : undefined;
}

/**
 * The error to fail every call with when `url` is not allowed, or undefined when it is.
 * Computed once per provider (the URL is fixed by config).
 */
export function checkDestination(
  provider: string,
  url: URL,
  allowPrivateNetworks: boolean,
): ProviderError | undefined {
  if (allowPrivateNetworks) return undefined;
  const reason = privateHostReason(url.hostname);
  if (reason === undefined) return undefined;
  return new ProviderError(
    'SY_ERR_DESTINATION_BLOCKED',
    `provider "${provider}" may not call ${url.origin}: ${reason} (set allowPrivateNetworks: true to allow it)`,
    { transient: false },
  );
}
