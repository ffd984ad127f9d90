// Addresses taken from log lines: strictly validated by the one parser
// (src/core/cidr.ts: no leading zeros, no zone ids, no brackets, no host
// names), IPv4-mapped IPv6 read as IPv4, and written in one canonical form so
// one attacker is one key.

import { firstContaining, formatNetwork, formatNetworkAddress, parseNetwork, widen, type Network } from '../../core/cidr.js';
import { isStrictIp4 } from '../../core/ip.js';

/** Canonical text of a valid IPv4/IPv6 address, or undefined. */
export function strictIp(text: string): string | undefined {
  // A dotted quad without leading zeros is already in canonical form: no need to build an object.
  if (isStrictIp4(text)) return text;
  if (!text.includes(':') || text.includes('/') || text.includes('%')) return undefined;
  const n = parseNetwork(text);
  return n && formatNetworkAddress(n);
}

/** The network a ban covers: the address itself, or its IPv6 /prefix (attackers rotate inside a /64). */
export function banNetwork(ip: string, ipv6Prefix: number): string {
  if (!ip.includes(':')) return `${ip}/32`;
  if (ipv6Prefix >= 128) return `${ip}/128`;
  const n = parseNetwork(ip);
  if (!n) throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
  return formatNetwork(widen(n, ipv6Prefix));
}

/** Addresses never tracked nor banned by log watching (loopback, the admin's own networks). */
export class IgnoreList {
  private readonly nets: Network[] = [];
  constructor(networks: readonly string[]) {
    for (const n of networks) {
      const net = parseNetwork(n);
      if (!net) throw new Error(`not an IP network: ${JSON.stringify(n)}`);
      this.nets.push(net);
    }
  }
  /** `ip` as strictIp() returns it. */
  has(ip: string): boolean {
    return firstContaining(this.nets, ip) !== undefined;
  }
}
