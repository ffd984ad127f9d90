// IP addresses as SPF sees them: the client address (IPv4-mapped IPv6 counts
// as IPv4, RFC 7208 §5), and the strict literals of ip4:/ip6: (§5.6).

import ipaddr from 'ipaddr.js';

export type IpAddr = ipaddr.IPv4 | ipaddr.IPv6;

export interface ClientIp {
  family: 4 | 6;
  addr: IpAddr;
  /** Readable form: dotted quad, or RFC 5952 compressed lower-case IPv6 (the `c` macro). */
  text: string;
}

// qnum = DIGIT / %x31-39 DIGIT / "1" 2DIGIT / "2" %x30-34 DIGIT / "25" %x30-35: no leading zeros.
const QNUM = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const IP4 = new RegExp(`^${QNUM}\\.${QNUM}\\.${QNUM}\\.${QNUM}$`);
const IP6_CHARS = /^[0-9a-f:.]+$/i;

/** The client address, or undefined when `text` is not an IP address. */
export function parseClientIp(text: string): ClientIp | undefined {
  const t = text.trim().replace(/^\[|\]$/g, '').replace(/^ipv6:/i, '');
  const v4 = parseIp4(t);
  if (v4) return { family: 4, addr: v4, text: v4.toString() };
  const v6 = parseIp6(t);
  if (!v6) return undefined;
  if (v6.isIPv4MappedAddress()) {
    const mapped = v6.toIPv4Address();
    return { family: 4, addr: mapped, text: mapped.toString() };
  }
  return { family: 6, addr: v6, text: v6.toString() };
}

/** A strict dotted quad (ip4-network), or undefined. */
export function parseIp4(text: string): ipaddr.IPv4 | undefined {
  return IP4.test(text) ? ipaddr.IPv4.parse(text) : undefined;
}

/** An IPv6 address in RFC 4291 text form (no zone id), or undefined. */
export function parseIp6(text: string): ipaddr.IPv6 | undefined {
  if (!IP6_CHARS.test(text) || !text.includes(':')) return undefined;
  let t = text;
  // ipaddr.js reads `::1.2.3.4` as `::ffff:1.2.3.4`; spell a trailing dotted quad as two hex groups instead.
  const dot = t.lastIndexOf(':');
  const tail = t.slice(dot + 1);
  if (tail.includes('.')) {
    const v4 = parseIp4(tail);
    if (!v4) return undefined;
    const [a, b, c, d] = v4.octets;
    t = `${t.slice(0, dot + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  return ipaddr.IPv6.isValid(t) ? ipaddr.IPv6.parse(t) : undefined;
}

/** Parse an address from a DNS answer of the client's family, or undefined. */
export function parseAnswer(text: string, family: 4 | 6): IpAddr | undefined {
  return family === 4 ? parseIp4(text) : parseIp6(text);
}

/** Does `client` lie in `network/prefix`? Different families never match. */
export function inNetwork(client: ClientIp, network: IpAddr, prefix: number): boolean {
  if (network.kind() !== client.addr.kind()) return false;
  if (client.family === 4) return (client.addr as ipaddr.IPv4).match(network as ipaddr.IPv4, prefix);
  return (client.addr as ipaddr.IPv6).match(network as ipaddr.IPv6, prefix);
}

/** The `i` macro: dotted quad, or 32 dot-separated upper-case nibbles (as RFC 7208 §7.4 writes them). */
export function macroIp(client: ClientIp): string {
  if (client.family === 4) return client.text;
  return (client.addr as ipaddr.IPv6)
    .toByteArray()
    .flatMap((b) => [(b >> 4).toString(16), (b & 15).toString(16)])
    .join('.')
    .toUpperCase();
}

/** Is `addr` the client's own address? */
export function isClient(client: ClientIp, addr: IpAddr | undefined): boolean {
  return addr !== undefined && inNetwork(client, addr, client.family === 4 ? 32 : 128);
}
