// The canonical text form of a CIDR that the store uses as a key, with the
// store's error type. The parsing is src/core/cidr.ts (one parser for every
// room), re-exported here for the store's callers.

import { formatV4, parseV4 } from '../core/ip.js';
import { formatNetwork, formatNetworkAddress, parseNetwork, readExactNetwork, widen, type Network } from '../core/cidr.js';
import { InvalidEntryError } from './errors.js';

export { formatV4, parseV4 };
export { formatNetwork, formatV6, isMappedV4, maskV4, networkContains, parseNetwork, parseV6, type Network } from '../core/cidr.js';

/** Canonical "addr/len" text of an IP or CIDR, host bits cleared (lookups, deletes); throws InvalidEntryError on anything else. */
export function canonicalCidr(text: string): string {
  const t = text.trim();
  const n = parseNetwork(t);
  if (!n) throw new InvalidEntryError(`not an IP address or CIDR: ${JSON.stringify(text)}`);
  return formatNetwork(n);
}

/**
 * The network of what is written into the store (a ban, a list entry):
 * strict, so a CIDR with host bits set is refused with the network it
 * would have been, never silently widened. Throws InvalidEntryError.
 */
export function exactNetwork(text: string): Network {
  const r = readExactNetwork(text.trim());
  if (!r.ok) throw new InvalidEntryError(`${JSON.stringify(text)}: ${r.why}`);
  return r.net;
}

/** Canonical text of a single IP address (no length); throws InvalidEntryError otherwise. */
export function canonicalIp(text: string): string {
  const n = parseNetwork(text.trim());
  if (!n || text.includes('/')) throw new InvalidEntryError(`not an IP address: ${JSON.stringify(text)}`);
  return formatNetworkAddress(n);
}

/** The subnet of `ip` with the given prefix lengths, as "addr/len" (e.g. 192.0.2.0/24). */
export function subnetOf(ip: string, v4Len: number, v6Len: number): string {
  const n = parseNetwork(ip.trim());
  if (!n || ip.includes('/')) throw new InvalidEntryError(`not an IP address: ${JSON.stringify(ip)}`);
  return formatNetwork(widen(n, n.v6 ? v6Len : v4Len));
}
