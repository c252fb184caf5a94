import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { ProviderError } from '../provider.js';

/**
 * The SSRF guard: an outbound HTTP provider must not be usable to reach the gateway's own
 * network (cloud metadata at 169.254.169.254, an admin port on 127.0.0.1, a database on 10.x).
 * Every address a connection is about to be opened to is classified here; the transport refuses
 * any class but public unless the provider says `allowPrivateNetworks: true`.
 */
export type AddressClass =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'unspecified'
  | 'carrier-grade NAT'
  | 'multicast'
  | 'reserved';

interface Range4 {
  base: number;
  bits: number;
  cls: AddressClass;
}

function ipv4ToInt(address: string): number {
  const parts = address.split('.').map(Number);
  return (
    (((parts[0] ?? 0) << 24) |
      ((parts[1] ?? 0) << 16) |
      ((parts[2] ?? 0) << 8) |
      (parts[3] ?? 0)) >>>
    0
  );
}

function range4(cidr: string, cls: AddressClass): Range4 {
  const [base = '', bits = '32'] = cidr.split('/');
  return { base: ipv4ToInt(base), bits: Number(bits), cls };
}

/** Most specific first: 0.0.0.0/32 before 0.0.0.0/8. */
const V4_RANGES: readonly Range4[] = [
  range4('0.0.0.0/32', 'unspecified'),
  range4('0.0.0.0/8', 'reserved'), // "this network"
  range4('10.0.0.0/8', 'private'),
  range4('100.64.0.0/10', 'carrier-grade NAT'),
  range4('127.0.0.0/8', 'loopback'),
  range4('169.254.0.0/16', 'link-local'), // includes cloud metadata 169.254.169.254
  range4('172.16.0.0/12', 'private'),
  range4('192.0.0.0/24', 'reserved'), // IETF protocol assignments
  range4('192.168.0.0/16', 'private'),
  range4('198.18.0.0/15', 'reserved'), // benchmarking
  range4('224.0.0.0/4', 'multicast'),
  range4('240.0.0.0/4', 'reserved'), // includes 255.255.255.255
];

function classifyV4Int(n: number): AddressClass | undefined {
  for (const r of V4_RANGES) {
    const mask = r.bits === 0 ? 0 : (0xffffffff << (32 - r.bits)) >>> 0;
    if ((n & mask) >>> 0 === r.base) return r.cls;
  }
  return undefined;
}

/** The eight 16-bit groups of an IPv6 address (valid per net.isIPv6, zone id removed). */
function ipv6Groups(address: string): number[] {
  let text = address;
  // A trailing dotted quad (::ffff:127.0.0.1) is two groups: rewrite it as hex.
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    const n = ipv4ToInt(last);
    text = `${text.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const parse = (s: string): number[] =>
    s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16));
  const gap = text.indexOf('::');
  if (gap === -1) return parse(text);
  const head = parse(text.slice(0, gap));
  const rest = parse(text.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
}

function classifyV6(address: string): AddressClass | undefined {
  const g = ipv6Groups(address);
  const at = (i: number): number => g[i] ?? 0;
  const embedded = ((at(6) << 16) | at(7)) >>> 0;
  const zeroUpTo = (n: number): boolean => g.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(8)) return 'unspecified';
  if (zeroUpTo(7) && at(7) === 1) return 'loopback';
  // IPv4-mapped ::ffff:a.b.c.d — the connection goes to the IPv4 address.
  if (zeroUpTo(5) && at(5) === 0xffff) return classifyV4Int(embedded);
  // IPv4-compatible ::a.b.c.d (deprecated): judge by the IPv4 address, else reserved.
  if (zeroUpTo(6)) return classifyV4Int(embedded) ?? 'reserved';
  // NAT64 well-known prefix 64:ff9b::/96 reaches the embedded IPv4 address.
  if (
    at(0) === 0x64 &&
    at(1) === 0xff9b &&
    at(2) === 0 &&
    at(3) === 0 &&
    at(4) === 0 &&
    at(5) === 0
  )
    return classifyV4Int(embedded);
  if (at(0) === 0x64 && at(1) === 0xff9b && at(2) === 1) return 'private'; // local-use NAT64
  // 6to4 2002:AABB:CCDD::/48 embeds the IPv4 address AA.BB.CC.DD.
  if (at(0) === 0x2002) return classifyV4Int(((at(1) << 16) | at(2)) >>> 0);
  if (at(0) === 0x100 && at(1) === 0 && at(2) === 0 && at(3) === 0) return 'reserved'; // discard
  if ((at(0) & 0xfe00) === 0xfc00) return 'private'; // unique local fc00::/7
  if ((at(0) & 0xffc0) === 0xfe80) return 'link-local'; // fe80::/10
  if ((at(0) & 0xffc0) === 0xfec0) return 'private'; // site-local fec0::/10 (deprecated)
  if ((at(0) & 0xff00) === 0xff00) return 'multicast'; // ff00::/8
  return undefined;
}

/**
 * The class of a non-public IP address, or undefined when it is public (or not an IP address).
 * IPv4-mapped (::ffff:127.0.0.1, ::ffff:7f00:1), IPv4-compatible, NAT64 and 6to4 forms are judged
 * by the IPv4 address they embed.
 */
export function classifyAddress(address: string): AddressClass | undefined {
  const bare = unbracket(address);
  if (isIPv4(bare)) return classifyV4Int(ipv4ToInt(bare));
  const noZone = bare.split('%')[0] ?? bare;
  if (isIPv6(noZone)) return classifyV6(noZone);
  return undefined;
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** The ProviderError for a refused destination. */
export function blockedError(host: string, address: string, cls: AddressClass): ProviderError {
  const shown = unbracket(host) === address ? host : `${host} (${address})`;
  return new ProviderError(
    'SY_ERR_DESTINATION_BLOCKED',
    `destination ${shown} is a ${cls} address: refused by the SSRF guard (set allowPrivateNetworks: true on the provider to allow it)`,
    { transient: false },
  );
}

/**
 * The ProviderError when `host` is an IP literal of a non-public class, else undefined. Host
 * names are judged later, on the addresses DNS returns (guardedLookup).
 */
export function checkLiteralHost(host: string): ProviderError | undefined {
  const bare = unbracket(host);
  if (isIP(bare.split('%')[0] ?? bare) === 0) return undefined;
  const cls = classifyAddress(bare);
  return cls === undefined ? undefined : blockedError(host, bare, cls);
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for net.connect / tls.connect that resolves like dns.lookup and fails with
 * SY_ERR_DESTINATION_BLOCKED when any address the name resolves to is not public. Because the
 * socket connects to exactly the addresses returned here, a DNS answer that changes between a
 * check and the connection (DNS rebinding) cannot slip through.
 */
export function guardedLookup(
  hostname: string,
  options: LookupOptions,
  callback: LookupCallback,
): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err !== null) {
      callback(err, options.all === true ? [] : '');
      return;
    }
    for (const a of addresses) {
      const cls = classifyAddress(a.address);
      if (cls !== undefined) {
        callback(
          blockedError(hostname, a.address, cls) as unknown as NodeJS.ErrnoException,
          options.all === true ? [] : '',
        );
        return;
      }
    }
    if (options.all === true) {
      callback(null, addresses);
      return;
    }
    const first = addresses[0];
    if (first === undefined) {
      const none = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
        code: 'ENOTFOUND',
        hostname,
      });
      callback(none, '');
      return;
    }
    callback(null, first.address, first.family);
  });
}
