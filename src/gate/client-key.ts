// Who "one client" is for the per-client limits, the tarpit's slots and the
// trap's ban: an IPv4 address (or its /ipv4_prefix network) and an IPv6
// client's /ipv6_prefix network (default /64). One host is usually given a
// whole /64 and can take a new address from it for every connection, so
// counting IPv6 addresses one by one would let it past every per-IP limit.

import { subnetOf } from '../store/ip.js';

/** "192.0.2.7" (a /32 stays a plain address) or "2001:db8:1:2::/64". */
export type ClientKey = (ip: string) => string;

export function clientKeyer(ipv4Prefix: number, ipv6Prefix: number): ClientKey {
  return (ip) => {
    const v6 = ip.includes(':');
    // The common case, an IPv4 client counted alone, costs nothing.
    if (v6 ? ipv6Prefix === 128 : ipv4Prefix === 32) return ip;
    try {
      return subnetOf(ip, ipv4Prefix, ipv6Prefix);
    } catch {
      return ip;
    }
  };
}
