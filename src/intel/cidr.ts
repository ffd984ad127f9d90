// IP networks as exact integers, for the intel room's list building: SPF
// walking, merging and imported lists. BigInt keeps IPv6 arithmetic exact;
// these run once per walk or fetch, never per SMTP command, so speed is not
// the concern here that it is in the store's lookup path.

import { networkBigInt, parseNetwork, type Network } from '../core/cidr.js';
import { formatIp6Groups, formatV4 } from '../core/ip.js';

export type Family = 4 | 6;

/** A network with its host bits cleared. */
export interface Net {
  family: Family;
  /** The network address as an integer. */
  first: bigint;
  /** Prefix length. */
  len: number;
}

export function widthOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** The network of `addr/len`: host bits cleared. */
export function netOf(family: Family, addr: bigint, len: number): Net {
  const host = BigInt(widthOf(family) - len);
  return { family, first: (addr >> host) << host, len };
}

/** The last address of a network. */
export function lastOf(n: Net): bigint {
  return n.first | ((1n << BigInt(widthOf(n.family) - n.len)) - 1n);
}

/** The core parser's network as an integer network. */
function fromNetwork(n: Network): Net {
  return { family: n.v6 ? 6 : 4, first: networkBigInt(n), len: n.len };
}

/**
 * An address (no length) as [family, integer], read by the one parser
 * (src/core/cidr.ts); IPv4-mapped IPv6 is IPv4. Undefined when it is not one.
 */
export function parseAddress(text: string): [Family, bigint] | undefined {
  if (text.includes('/')) return undefined;
  const n = parseNetwork(text);
  return n && [n.v6 ? 6 : 4, networkBigInt(n)];
}

/**
 * "ip" or "ip/len" → the network (host bits cleared, as SPF's `ip4:` and
 * published lists mean them), or undefined. A bare address is a /32 or /128.
 * `::ffff:a.b.c.d/len` (len ≥ 96) becomes IPv4, as everywhere.
 */
export function parseCidr(text: string): Net | undefined {
  const n = parseNetwork(text.trim());
  return n && fromNetwork(n);
}

/** RFC 5952 text of a 128-bit integer. */
function formatV6(n: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((n >> BigInt(16 * i)) & 0xffffn));
  return formatIp6Groups(groups);
}

export function formatAddress(family: Family, n: bigint): string {
  return family === 4 ? formatV4(Number(n)) : formatV6(n);
}

/** Canonical `addr/len` text (always with the length). */
export function formatNet(n: Net): string {
  return `${formatAddress(n.family, n.first)}/${n.len}`;
}

/** Canonical text of an IP or CIDR, or undefined when it is neither. */
export function canonicalCidr(text: string): string | undefined {
  const n = parseCidr(text);
  return n && formatNet(n);
}

/** Order: IPv4 before IPv6, then by address, then shorter prefix first. */
export function compareNets(a: Net, b: Net): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.first !== b.first) return a.first < b.first ? -1 : 1;
  return a.len - b.len;
}

/** The fewest aligned networks that cover exactly [first, last]. */
export function rangeToNets(family: Family, first: bigint, last: bigint): Net[] {
  const width = widthOf(family);
  const out: Net[] = [];
  let start = first;
  while (start <= last) {
    // The largest block aligned at `start` that does not run past `last`.
    let size = 0;
    while (size < width) {
      const bigger = BigInt(size + 1);
      if ((start & ((1n << bigger) - 1n)) !== 0n) break;
      if (start + (1n << bigger) - 1n > last) break;
      size++;
    }
    out.push({ family, first: start, len: width - size });
    start += 1n << BigInt(size);
  }
  return out;
}
