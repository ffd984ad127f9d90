// IP addresses as SPF sees them: the client address (IPv4-mapped IPv6 counts
// as IPv4, RFC 7208 §5), and the strict literals of ip4:/ip6: (§5.6).

import type ipaddr from 'ipaddr.js';
import { parseIp4, parseIp6, unwrapIpText } from '../../core/ip.js';
import { nibbles } from '../../dns/reverse.js';

// The strict literal parsers live in core/ip.ts; re-exported for the SPF code that names them here.
export { parseIp4, parseIp6 };

export type IpAddr = ipaddr.IPv4 | ipaddr.IPv6;

export interface ClientIp {
  family: 4 | 6;
  addr: IpAddr;
  /** Readable form: dotted quad, or RFC 5952 compressed lower-case IPv6 (the `c` macro). */
  text: string;
}

/** The client address, or undefined when `text` is not an IP address. */
export function parseClientIp(text: string): ClientIp | undefined {
  const t = unwrapIpText(text.trim());
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
  return nibbles(client.addr as ipaddr.IPv6).join('.').toUpperCase();
}

/** Is `addr` the client's own address? */
export function isClient(client: ClientIp, addr: IpAddr | undefined): boolean {
  return addr !== undefined && inNetwork(client, addr, client.family === 4 ? 32 : 128);
}
