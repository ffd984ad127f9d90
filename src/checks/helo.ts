// HELO/EHLO name: the facts Postfix admins test one by one
// (reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname,
// reject_unknown_helo_hostname) plus whether the name leads back to the
// client. A legitimate big sender's HELO often does not resolve to its IP, so
// that case is `neutral`, not `fail`: policies decide what it is worth.

import type { Envelope, Evidence } from '../core/types.js';
import { addressesOf, clientAddress, settle } from './addresses.js';
import { timed } from './evidence.js';
import { isBareIp, isFqdn, isValidHostname, normaliseName, parseAddressLiteral } from './hostname.js';
import { normaliseIp } from '../dns/reverse.js';
import type { CheckContext } from './types.js';

export interface HeloFacts {
  /** RFC 5321 Domain or a valid address literal. */
  syntax: boolean;
  /** A Domain with a dot whose last label is a TLD-like label. */
  fqdn: boolean;
  /** An IP address without brackets (invalid syntax, but common). */
  bareIp: boolean;
  /** An address literal `[1.2.3.4]` / `[IPv6:…]`. */
  literal: boolean;
  /** The literal or bare IP equals the client IP. */
  literalMatches: boolean;
  /** The name has A or AAAA records. */
  resolves: boolean;
  /** The name's A (IPv4 client) or AAAA (IPv6 client) records include the client IP. */
  matchesClient: boolean;
}

function sameIp(a: string, b: string): boolean {
  try {
    return normaliseIp(a) === normaliseIp(b);
  } catch {
    return false;
  }
}

export function checkHelo(env: Envelope, ctx: CheckContext): Promise<Evidence> {
  return timed('helo', async () => {
    if (env.helo === undefined) return { result: 'none', detail: 'no HELO/EHLO yet' };
    const helo = env.helo.trim();
    const client = clientAddress(env.clientIp);
    const facts: HeloFacts = { syntax: false, fqdn: false, bareIp: false, literal: false, literalMatches: false, resolves: false, matchesClient: false };
    const data = (): Record<string, unknown> => ({ name: helo, ...facts });

    if (helo.startsWith('[')) {
      const ip = parseAddressLiteral(helo);
      if (ip === undefined) return { result: 'fail', detail: `HELO ${helo} is not a valid address literal`, data: data() };
      facts.syntax = facts.literal = true;
      facts.literalMatches = sameIp(ip, client.ip);
      return facts.literalMatches
        ? { result: 'pass', detail: `HELO ${helo} is the client's own address`, data: data() }
        : { result: 'fail', detail: `HELO ${helo} is an address literal other than the client ${client.ip}`, data: data() };
    }
    if (isBareIp(helo)) {
      facts.bareIp = true;
      facts.literalMatches = sameIp(helo, client.ip);
      return facts.literalMatches
        ? { result: 'neutral', detail: `HELO ${helo} is the client's address without brackets (RFC 5321 wants [${helo}])`, data: data() }
        : { result: 'fail', detail: `HELO ${helo} is a bare IP address other than the client ${client.ip}`, data: data() };
    }
    if (!isValidHostname(helo)) return { result: 'fail', detail: `HELO ${JSON.stringify(helo)} is not a valid host name`, data: data() };
    facts.syntax = true;
    facts.fqdn = isFqdn(helo);
    if (!facts.fqdn) return { result: 'neutral', detail: `HELO ${helo} is not a fully qualified domain name`, data: data() };

    const name = normaliseName(helo);
    const [v4, v6] = await Promise.all([settle(addressesOf(ctx.resolver, name, 4)), settle(addressesOf(ctx.resolver, name, 6))]);
    const own = client.family === 4 ? v4 : v6;
    facts.resolves = (v4.ok && v4.value.length > 0) || (v6.ok && v6.value.length > 0);
    facts.matchesClient = own.ok && own.value.includes(client.ip);
    if (facts.matchesClient) return { result: 'pass', detail: `HELO ${name} resolves to the client ${client.ip}`, data: data() };
    const fault = !v4.ok ? v4.error : !v6.ok ? v6.error : undefined;
    if (fault) return { result: 'temperror', detail: `HELO ${name}: DNS ${fault.message}`, data: data() };
    const found = [...(v4.ok ? v4.value : []), ...(v6.ok ? v6.value : [])];
    return facts.resolves
      ? { result: 'neutral', detail: `HELO ${name} resolves to ${found.join(', ')}, not to the client ${client.ip}`, data: data() }
      : { result: 'neutral', detail: `HELO ${name} has no A/AAAA records`, data: data() };
  });
}
