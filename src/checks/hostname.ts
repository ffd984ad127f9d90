// Syntax of host names, address literals and addresses as the sender checks
// need them (RFC 5321 §4.1.2–4.1.3). Shared by helo, rfc and lists.

import { isIP } from 'node:net';
import { asciiDomain } from '../core/address.js';

const MAX_NAME = 253;
const MAX_LABEL = 63;
// RFC 5321 sub-domain = Let-dig [Ldh-str]. Underscore is accepted too, as
// Postfix's valid_hostname() does: real (Windows) hosts send it, and refusing
// them for it would be a false reject.
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/i;
// A top-level label is letters, or an IDNA A-label; never all digits (that is an IP).
const TLD = /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/i;

/** Lower-case, drop one trailing dot, internationalised labels as A-labels (`müller.de` → `xn--mller-kva.de`). */
export function normaliseName(name: string): string {
  return asciiDomain(name);
}

/** RFC 5321 Domain syntax (one trailing dot tolerated); need not have a dot. */
export function isValidHostname(name: string): boolean {
  const n = name.replace(/\.$/, '');
  if (n.length === 0 || n.length > MAX_NAME) return false;
  return n.split('.').every((l) => l.length <= MAX_LABEL && LABEL.test(l));
}

/** A syntactically valid name with at least two labels whose last label looks like a TLD. */
export function isFqdn(name: string): boolean {
  if (!isValidHostname(name)) return false;
  const labels = name.replace(/\.$/, '').split('.');
  return labels.length >= 2 && TLD.test(labels[labels.length - 1]);
}

/** The IP text of an address literal `[1.2.3.4]` / `[IPv6:…]`, or undefined when `text` is not a valid one. */
export function parseAddressLiteral(text: string): string | undefined {
  if (!text.startsWith('[') || !text.endsWith(']')) return undefined;
  const inner = text.slice(1, -1);
  if (isIP(inner) === 4) return inner;
  const m = /^ipv6:(.+)$/i.exec(inner);
  if (m && isIP(m[1]) === 6) return m[1];
  return undefined;
}

/** `text` is an IP address written without brackets. */
export function isBareIp(text: string): boolean {
  return isIP(text) !== 0;
}

export type AddressProblem = 'no-at' | 'empty-local' | 'bad-domain' | 'non-fqdn' | 'address-literal';

/**
 * What is wrong with an envelope address, or undefined when its domain is an
 * FQDN. An address-literal domain is reported separately: valid, but there is
 * no name to look up.
 */
export function addressDomainProblem(address: string): AddressProblem | undefined {
  const at = address.lastIndexOf('@');
  if (at < 0) return 'no-at';
  if (at === 0) return 'empty-local';
  // A U-label domain (SMTPUTF8) is judged by its A-label form; one that has none is invalid.
  const domain = asciiDomain(address.slice(at + 1));
  if (parseAddressLiteral(domain) !== undefined) return 'address-literal';
  if (!isValidHostname(domain)) return 'bad-domain';
  if (!isFqdn(domain)) return 'non-fqdn';
  return undefined;
}
