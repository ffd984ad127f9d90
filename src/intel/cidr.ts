// IP networks as exact integers, for the intel room's list building: SPF
// walking, merging and imported lists. BigInt keeps IPv6 arithmetic exact;
// these run once per walk or fetch, never per SMTP command, so speed is not
// the concern here that it is in the store's lookup path.

import { formatIp6Groups, formatV4, parseIp4, parseIp6 } from '../core/ip.js';

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

function fromBytes(bytes: number[]): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
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

/**
 * An address in strict text form (dotted quad without leading zeros, or
 * RFC 4291 IPv6) as [family, integer]; IPv4-mapped IPv6 stays IPv6 here, as
 * it is written. Undefined when it is not one.
 */
export function parseAddress(text: string): [Family, bigint] | undefined {
  const v4 = parseIp4(text);
  if (v4) return [4, fromBytes(v4.toByteArray())];
  const v6 = parseIp6(text);
  if (v6) return [6, fromBytes(v6.toByteArray())];
  return undefined;
}

/**
 * "ip" or "ip/len" → the network (host bits cleared), or undefined. A bare
 * address is a /32 or /128. `::ffff:a.b.c.d/len` (len ≥ 96) becomes IPv4, as
 * the store and the SPF check treat mapped addresses.
 */
export function parseCidr(text: string): Net | undefined {
  const s = text.trim();
  const slash = s.indexOf('/');
  const addr = parseAddress(slash < 0 ? s : s.slice(0, slash));
  if (!addr) return undefined;
  const [family, value] = addr;
  let len = widthOf(family);
  if (slash >= 0) {
    const digits = s.slice(slash + 1);
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(digits)) return undefined;
    len = Number(digits);
    if (len > widthOf(family)) return undefined;
  }
  if (family === 6 && len >= 96 && value >> 32n === 0xffffn) return netOf(4, value & 0xffffffffn, len - 96);
  return netOf(family, value, len);
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
