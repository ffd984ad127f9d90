import ipaddr from 'ipaddr.js';
import { memoiseString } from '../core/lru.js';
import { parseIpAddress } from '../core/ip.js';

/** Results kept per memoised function: the same few addresses come back decision after decision. */
const MEMO_ENTRIES = 10_000;

/** The in-addr.arpa / ip6.arpa name of an address (RFC 1035 §3.5, RFC 3596 §2.5). */
export const reverseName: (ip: string) => string = memoiseString((ip: string): string => {
  const addr = parseIpAddress(ip);
  if (addr.kind() === 'ipv4') return `${(addr as ipaddr.IPv4).octets.slice().reverse().join('.')}.in-addr.arpa`;
  return `${nibbles(addr as ipaddr.IPv6).reverse().join('.')}.ip6.arpa`;
}, MEMO_ENTRIES);

/** The 32 hex nibbles of an IPv6 address, most significant first. */
export function nibbles(addr: ipaddr.IPv6): string[] {
  return addr
    .toByteArray()
    .flatMap((b) => [(b >> 4).toString(16), (b & 15).toString(16)]);
}

/** Map `::ffff:a.b.c.d` back to `a.b.c.d`; normalise IPv6 text. Throws on garbage. */
export const normaliseIp: (ip: string) => string = memoiseString(
  (ip: string): string => parseIpAddress(ip.replace(/^\[|\]$/g, '').replace(/^ipv6:/i, '')).toString(),
  MEMO_ENTRIES,
);
