// Merging networks exactly: the result covers the same addresses as the
// input, no more and no fewer, in the fewest CIDR blocks. Overlapping and
// adjacent networks are joined into ranges, and each range is cut back into
// aligned blocks — so 192.0.2.0/24 + 192.0.3.0/24 becomes 192.0.2.0/23, but
// 192.0.3.0/24 + 192.0.4.0/24 stays two /24s (no aligned /23 holds both).

import { compareNets, formatNet, lastOf, parseCidr, rangeToNets, type Family, type Net } from '../cidr.js';

/** Merge networks (IPv4 and IPv6 apart); sorted IPv4 first. */
export function mergeNets(nets: Iterable<Net>): Net[] {
  const sorted = [...nets].sort(compareNets);
  const out: Net[] = [];
  let family: Family | undefined;
  let first = 0n;
  let last = -1n;
  const flush = (): void => {
    if (family !== undefined) out.push(...rangeToNets(family, first, last));
  };
  for (const n of sorted) {
    const end = lastOf(n);
    if (n.family === family && n.first <= last + 1n) {
      if (end > last) last = end;
      continue;
    }
    flush();
    family = n.family;
    first = n.first;
    last = end;
  }
  flush();
  return out;
}

/**
 * Merge CIDR texts; returns canonical texts, IPv4 first. Throws on a string
 * that is not an IP or CIDR (callers pass networks they produced).
 */
export function mergeCidrs(cidrs: Iterable<string>): string[] {
  const nets: Net[] = [];
  for (const c of cidrs) {
    const n = parseCidr(c);
    if (!n) throw new Error(`not an IP address or CIDR: ${JSON.stringify(c)}`);
    nets.push(n);
  }
  return mergeNets(nets).map(formatNet);
}

/** Canonical, de-duplicated and sorted, without joining anything (`--no-merge`). */
export function sortCidrs(cidrs: Iterable<string>): string[] {
  const seen = new Map<string, Net>();
  for (const c of cidrs) {
    const n = parseCidr(c);
    if (!n) throw new Error(`not an IP address or CIDR: ${JSON.stringify(c)}`);
    seen.set(formatNet(n), n);
  }
  return [...seen.values()].sort(compareNets).map(formatNet);
}
