// Narrowing decision-log queries that client_ip's index cannot answer
// exactly: a CIDR becomes a range of the text index (the canonical text of
// every address inside shares a prefix), and the rows in it are then tested
// exactly (events.ts eventMatcher).

import { formatNetworkAddress, parseNetwork } from '../../core/cidr.js';
import { InvalidEntryError } from '../errors.js';

/** `%`, `_` and `\` escaped for LIKE … ESCAPE '\'. */
export function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The text every canonical address inside `cidr` starts with ("192.0.2."
 * for 192.0.2.128/25, "10." for 10.0.0.0/8, "2001:" for 2001:db8::/32),
 * or undefined when there is none to use (0.0.0.0/0, an IPv6 network
 * shorter than /16 or starting with a zero group, which `::` may compress).
 * Throws InvalidEntryError when `cidr` is not a network.
 */
export function cidrTextPrefix(cidr: string): string | undefined {
  const n = parseNetwork(cidr.trim());
  if (!n) throw new InvalidEntryError(`not an IP network: ${JSON.stringify(cidr)}`);
  const text = formatNetworkAddress(n);
  if (!n.v6) {
    const whole = Math.min(3, Math.floor(n.len / 8));
    if (whole === 0) return undefined;
    return `${text.split('.').slice(0, whole).join('.')}.`;
  }
  if (n.len < 16) return undefined;
  const first = text.split(':')[0];
  return first === '' || first === '0' ? undefined : `${first}:`;
}
