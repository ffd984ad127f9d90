// Syntax of host names, address literals and addresses as the sender checks
// need them (RFC 5321 §4.1.2–4.1.3). Shared by helo, rfc and lists.

import { isIP } from 'node:net';
import { asciiDomain } from '../core/address.js';

const MAX_NAME = 253;
const MAX_LABEL = 63;
// A label: RFC 5321 sub-domain = Let-dig [Ldh-str], as the regex
// /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/i says it; isValidHostname reads it
// character by character. Underscore is accepted too, as Postfix's
// valid_hostname() does: real (Windows) hosts send it, and refusing them for
// it would be a false reject.
// A top-level label is letters, or an IDNA A-label; never all digits (that is an IP).
const TLD = /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/i;

/** Lower-case, drop one trailing dot, internationalised labels as A-labels (`müller.de` → `xn--mller-kva.de`). */
export function normaliseName(name: string): string {
  return asciiDomain(name);
}

/** RFC 5321 Domain syntax (one trailing dot tolerated); need not have a dot. */
export function isValidHostname(name: string): boolean {
  // Every label in one pass, without a split or a regex per label: asked several times per decision.
  let n = name.length;
  if (n > 0 && name.charCodeAt(n - 1) === 46) n--;
  if (n === 0 || n > MAX_NAME) return false;
  let start = 0;
  for (let i = 0; i <= n; i++) {
    const c = i === n ? 46 : name.charCodeAt(i);
    if (c === 46) {
      const len = i - start;
      if (len === 0 || len > MAX_LABEL || name.charCodeAt(i - 1) === 45) return false;
      start = i + 1;
    } else if (c === 45) {
      if (i === start) return false;
    } else if (!((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95)) return false;
  }
  return true;
}

/** A syntactically valid name with at least two labels whose last label looks like a TLD. */
export function isFqdn(name: string): boolean {
  if (!isValidHostname(name)) return false;
  const n = name.charCodeAt(name.length - 1) === 46 ? name.length - 1 : name.length;
  const dot = name.lastIndexOf('.', n - 1);
  return dot >= 0 && TLD.test(name.slice(dot + 1, n));
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
