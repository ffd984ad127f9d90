// The SPF check (RFC 7208) for the MAIL FROM or the HELO identity, as
// Evidence for the policy. The evaluator lives in ./spf/.

import type { Envelope, Evidence } from '../core/types.js';
import { asciiAddress, asciiDomain } from '../core/address.js';
import { timed } from './evidence.js';
import { type CheckHostOptions, type SpfResult, checkHost } from './spf/evaluate.js';
import type { CheckContext } from './types.js';

export type SpfIdentity = 'mailfrom' | 'helo';

export interface SpfCheckOptions extends Pick<CheckHostOptions, 'defaultExplanation' | 'receivingHost' | 'maxLookups' | 'maxVoidLookups'> {
  identity: SpfIdentity;
}

/**
 * The <sender> and <domain> check_host() gets for an identity (RFC 7208 §2.3,
 * §2.4): the MAIL FROM address and its domain; for the HELO identity, or a
 * null sender, `postmaster@<helo>` and the HELO name. Undefined when there is
 * nothing to check yet.
 */
export function spfIdentity(identity: SpfIdentity, from: string | undefined, helo: string | undefined): { sender: string; domain: string } | undefined {
  if (identity === 'mailfrom' && from !== undefined && from !== '') {
    // An internationalised domain is asked for in A-labels (RFC 8616 §4); the local part is left as sent.
    const sender = asciiAddress(from);
    const at = sender.lastIndexOf('@');
    return { sender, domain: at >= 0 ? sender.slice(at + 1) : asciiDomain(sender) };
  }
  if (identity === 'mailfrom' && from === undefined) return undefined;
  if (!helo) return undefined;
  return { sender: `postmaster@${helo}`, domain: helo };
}

export function checkSpf(env: Envelope, ctx: CheckContext, opts: SpfCheckOptions): Promise<Evidence> {
  const check = opts.identity === 'helo' ? 'spf_helo' : 'spf';
  return timed(check, async () => {
    const id = spfIdentity(opts.identity, env.from, env.helo);
    if (!id) {
      const missing = opts.identity === 'mailfrom' && env.from === undefined ? 'no MAIL FROM yet' : 'no HELO name';
      return { result: 'none', detail: missing, data: { identity: opts.identity, lookups: 0 } };
    }
    const { identity, ...hostOpts } = opts;
    const r = await checkHost({ ip: env.clientIp, domain: id.domain, sender: id.sender, helo: env.helo ?? '' }, ctx.resolver, {
      ...hostOpts,
      clock: ctx.clock,
    });
    const data: Record<string, unknown> = { domain: r.domain, identity, lookups: r.lookups };
    if (r.mechanism !== undefined) data.mechanism = r.mechanism;
    if (r.explanation !== undefined) data.explanation = r.explanation;
    if (r.problem !== undefined) data.problem = r.problem;
    return { result: r.result, detail: describeSpfResult(r, env.clientIp), data };
  });
}

/** One line saying what SPF found, for logs and the admin. */
export function describeSpfResult(r: SpfResult, ip: string): string {
  const via = r.mechanism === undefined ? '' : ` (${r.mechanism}${r.mechanismDomain && r.mechanismDomain !== r.domain ? ` in ${r.mechanismDomain}` : ''})`;
  switch (r.result) {
    case 'pass':
      return `client ${ip} is authorised by ${r.domain}${via}`;
    case 'fail':
      return `client ${ip} is not authorised by ${r.domain}${via}${r.explanation ? `: ${r.explanation}` : ''}`;
    case 'softfail':
      return `client ${ip} is probably not authorised by ${r.domain}${via}`;
    case 'neutral':
      return via ? `${r.domain} makes no assertion about client ${ip}${via}` : `no mechanism of ${r.domain} matches client ${ip} (default neutral)`;
    case 'none':
      return `no SPF policy: ${r.problem ?? `${r.domain} publishes no SPF record`}`;
    case 'temperror':
      return `temporary error evaluating SPF of ${r.domain}: ${r.problem ?? 'DNS failure'}`;
    case 'permerror':
      return `SPF of ${r.domain} cannot be evaluated: ${r.problem ?? 'permanent error'}`;
  }
}
