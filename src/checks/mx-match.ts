// MX match: is the client one of the sender domain's MX hosts? Many small
// domains send from the host that receives their mail. Implicit MX (RFC 5321
// §5.1) and null MX (RFC 7505) are honoured; the number of MX names resolved
// is capped, as SPF caps its mx mechanism (RFC 7208 §4.6.4).

import type { Envelope, Evidence } from '../core/types.js';
import { isDnsError, type MxRecord } from '../dns/types.js';
import { addressesOf, clientAddress, settle } from './addresses.js';
import { domainOf, timed } from './evidence.js';
import type { CheckContext } from './types.js';

export interface MxMatchOptions {
  /** MX names resolved at most, lowest preference first (default 10). */
  maxNames?: number;
}

export const MX_MAX_NAMES = 10;

/** RFC 7505: a single `0 .` record; our resolvers give the root as an empty exchange. */
function isNullMx(r: MxRecord): boolean {
  return r.exchange === '' || r.exchange === '.';
}

export function checkMxMatch(env: Envelope, ctx: CheckContext, opts: MxMatchOptions = {}): Promise<Evidence> {
  return timed('mx', async () => {
    const domain = domainOf(env.from);
    if (env.from === undefined) return { result: 'none', detail: 'no MAIL FROM yet' };
    if (env.from === '') return { result: 'none', detail: 'null sender: no domain to match' };
    if (!domain) return { result: 'none', detail: `sender ${env.from} has no domain` };
    const maxNames = Math.max(1, opts.maxNames ?? MX_MAX_NAMES);
    const client = clientAddress(env.clientIp);

    let records: MxRecord[];
    try {
      records = await ctx.resolver.mx(domain);
    } catch (e) {
      if (!isDnsError(e) || !e.isVoid) throw e;
      if (e.code === 'NXDOMAIN') {
        return { result: 'nomatch', detail: `${domain} does not exist (MX NXDOMAIN)`, data: { domain } };
      }
      records = [];
    }

    if (records.length > 0 && records.every(isNullMx)) {
      return { result: 'none', detail: `${domain}: domain accepts no mail (null MX)`, data: { domain, nullMx: true } };
    }

    if (records.length === 0) {
      // RFC 5321 §5.1: no MX → the domain itself is the implicit MX.
      const addrs = await addressesOf(ctx.resolver, domain, client.family);
      if (addrs.includes(client.ip)) {
        return { result: 'match', detail: `${client.ip} is an address of ${domain} (implicit MX, no MX records)`, data: { domain, host: domain, implicit: true } };
      }
      return {
        result: 'nomatch',
        detail: `${domain} has no MX; its own ${client.family === 4 ? 'A' : 'AAAA'} records (${addrs.join(', ') || 'none'}) do not include ${client.ip}`,
        data: { domain, implicit: true },
      };
    }

    const names = [...new Set(records.filter((r) => !isNullMx(r)).sort((a, b) => a.preference - b.preference).map((r) => r.exchange.toLowerCase()))];
    const resolved = names.slice(0, maxNames);
    const truncated = names.length > resolved.length;
    const lookups = await Promise.all(resolved.map((n) => settle(addressesOf(ctx.resolver, n, client.family))));
    const hit = resolved.findIndex((_, i) => {
      const l = lookups[i];
      return l.ok && l.value.includes(client.ip);
    });
    const data: Record<string, unknown> = { domain, mx: resolved };
    if (truncated) data.truncated = names.length;
    if (hit >= 0) {
      return { result: 'match', detail: `${client.ip} is an address of ${resolved[hit]}, an MX host of ${domain}`, data: { ...data, host: resolved[hit] } };
    }
    const faults = resolved.flatMap((n, i) => {
      const l = lookups[i];
      return l.ok ? [] : [`${n}: ${l.error.code}`];
    });
    if (faults.length > 0) {
      // A name we could not resolve might have been the client: never a nomatch.
      return { result: 'temperror', detail: `${domain}: no MX host matched ${client.ip}, and lookups failed (${faults.join(', ')})`, data: { ...data, errors: faults } };
    }
    const capNote = truncated ? ` (only the first ${maxNames} of ${names.length} MX names resolved)` : '';
    return { result: 'nomatch', detail: `${client.ip} is not an address of any MX host of ${domain} (${resolved.join(', ')})${capNote}`, data };
  });
}
