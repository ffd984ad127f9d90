// Addresses taken from log lines: strictly validated (no leading zeros, no
// zone ids, no brackets, no host names), IPv4-mapped IPv6 read as IPv4, and
// written in one canonical form so one attacker is one key.

import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import { isStrictIp4, parseIp6, parseV4 } from '../../core/ip.js';
import { parseNetwork } from '../../config/address.js';

/** Canonical text of a valid IPv4/IPv6 address, or undefined. */
export function strictIp(text: string): string | undefined {
  // A dotted quad without leading zeros is already in canonical form: no need to build an object.
  if (isStrictIp4(text)) return text;
  if (!text.includes(':')) return undefined;
  const v6 = parseIp6(text);
  if (!v6) return undefined;
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toString();
}

/** The network a ban covers: the address itself, or its IPv6 /prefix (attackers rotate inside a /64). */
export function banNetwork(ip: string, ipv6Prefix: number): string {
  if (!ip.includes(':')) return `${ip}/32`;
  if (ipv6Prefix >= 128) return `${ip}/128`;
  const bytes = ipaddr.IPv6.parse(ip).toByteArray();
  for (let bit = ipv6Prefix; bit < 128; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return `${ipaddr.fromByteArray(bytes).toString()}/${ipv6Prefix}`;
}

/**
 * This host's own addresses (every interface, as the system lists them now), as
 * single-address networks. A daemon logs them as the client when a local program
 * connects to it — a webmail on the same host makes Dovecot write `rip=` with the
 * host's public address — and banning them would cut the host off from itself.
 */
export function hostNetworks(): string[] {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const ip = strictIp(a.address);
      if (ip) out.add(ip.includes(':') ? `${ip}/128` : `${ip}/32`);
    }
  }
  return [...out];
}

/** Addresses never tracked nor banned by log watching (loopback, the admin's own networks). */
export class IgnoreList {
  private readonly v4: Array<[base: number, size: number]> = [];
  private readonly v6: Array<[ipaddr.IPv6, number]> = [];
  constructor(networks: readonly string[]) {
    for (const n of networks) {
      const net = parseNetwork(n);
      if (!net) throw new Error(`not an IP network: ${JSON.stringify(n)}`);
      const [addr, len] = net;
      if (addr.kind() === 'ipv4') {
        const size = 2 ** (32 - len);
        this.v4.push([Math.floor(parseV4(addr.toString()) / size) * size, size]);
      } else this.v6.push([addr as ipaddr.IPv6, len]);
    }
  }
  /** `ip` as strictIp() returns it. */
  has(ip: string): boolean {
    if (!ip.includes(':')) {
      if (this.v4.length === 0) return false;
      const n = parseV4(ip);
      return this.v4.some(([base, size]) => n >= base && n < base + size);
    }
    if (this.v6.length === 0) return false;
    const addr = ipaddr.IPv6.parse(ip);
    return this.v6.some(([net, len]) => addr.match(net, len));
  }
}
