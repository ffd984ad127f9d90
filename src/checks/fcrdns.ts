// Forward-confirmed reverse DNS: the PTR names of the client IP whose A/AAAA
// records lead back to it. Only a confirmed name says anything about who runs
// the host; an unconfirmed PTR can be set by whoever holds the address block.

import type { Envelope, Evidence } from '../core/types.js';
import { isDnsError } from '../dns/types.js';
import { addressesOf, clientAddress, settle } from './addresses.js';
import { domainOf, stringList, timed } from './evidence.js';
import { isValidHostname, normaliseName } from './hostname.js';
import { sameOrgDomain } from './org-domain.js';
import type { CheckContext } from './types.js';

export interface FcrdnsOptions {
  /** PTR names looked up at most (default 10, as RFC 7208 §4.6.4 caps its ptr mechanism). */
  maxNames?: number;
}

export const FCRDNS_MAX_NAMES = 10;

export function checkFcrdns(env: Envelope, ctx: CheckContext, opts: FcrdnsOptions = {}): Promise<Evidence> {
  return timed('fcrdns', async () => {
    const maxNames = Math.max(1, opts.maxNames ?? FCRDNS_MAX_NAMES);
    const client = clientAddress(env.clientIp);
    let answer: string[];
    try {
      answer = await ctx.resolver.ptr(client.ip);
    } catch (e) {
      if (isDnsError(e) && e.isVoid) {
        return { result: 'none', detail: `${client.ip} has no PTR record (${e.code})`, data: { names: [], ptr: [] } };
      }
      throw e;
    }
    const ptr = [...new Set(answer.map(normaliseName))].filter(isValidHostname);
    if (ptr.length === 0) {
      return { result: 'none', detail: `${client.ip} has no usable PTR name (${answer.join(', ')})`, data: { names: [], ptr: [] } };
    }
    const looked = ptr.slice(0, maxNames);
    const lookups = await Promise.all(looked.map((n) => settle(addressesOf(ctx.resolver, n, client.family))));
    const names = looked.filter((_, i) => {
      const l = lookups[i];
      return l.ok && l.value.includes(client.ip);
    });
    const faulted = looked.filter((_, i) => !lookups[i].ok);
    const data: Record<string, unknown> = { names, ptr };
    if (faulted.length > 0) data.faulted = faulted;
    if (ptr.length > looked.length) data.truncated = ptr.length;
    const rr = client.family === 4 ? 'A' : 'AAAA';
    if (names.length > 0) {
      return { result: 'pass', detail: `${client.ip} has PTR ${names.join(', ')}, whose ${rr} leads back to it`, data };
    }
    if (faulted.length === looked.length) {
      const codes = lookups.map((l, i) => `${looked[i]}: ${l.ok ? 'ok' : l.error.code}`);
      return { result: 'temperror', detail: `${client.ip} has PTR ${looked.join(', ')}, but every ${rr} lookup failed (${codes.join(', ')})`, data };
    }
    const faultNote = faulted.length > 0 ? `; lookups failed for ${faulted.join(', ')}` : '';
    return { result: 'fail', detail: `${client.ip} has PTR ${looked.join(', ')}, but no ${rr} of those names leads back to it${faultNote}`, data };
  });
}

export function checkFcrdnsDomain(env: Envelope, ctx: CheckContext): Promise<Evidence> {
  return timed('fcrdns_domain', async () => {
    if (env.from === undefined) return { result: 'none', detail: 'no MAIL FROM yet' };
    const domain = domainOf(env.from);
    if (env.from === '' || !domain) return { result: 'none', detail: 'null sender: no domain to match' };
    const fc = await ctx.evidence('fcrdns');
    if (fc.result === 'temperror') return { result: 'temperror', detail: `FCrDNS unknown: ${fc.detail}`, data: { domain } };
    const names = stringList(fc.data?.names);
    const name = names.find((n) => sameOrgDomain(n, domain));
    if (name) {
      return { result: 'match', detail: `confirmed client name ${name} lies in the organisational domain of ${domain}`, data: { domain, name } };
    }
    // A name in the sender's domain whose lookup failed might have confirmed: not a nomatch.
    const faulted = stringList(fc.data?.faulted).find((n) => sameOrgDomain(n, domain));
    if (faulted) {
      return { result: 'temperror', detail: `lookup of ${faulted} (in the domain of ${domain}) failed, FCrDNS unknown`, data: { domain, name: faulted } };
    }
    const why = names.length > 0 ? `confirmed client names ${names.join(', ')} lie outside` : `no forward-confirmed client name (fcrdns ${fc.result}), so none lies in`;
    return { result: 'nomatch', detail: `${why} the organisational domain of ${domain}`, data: { domain } };
  });
}
