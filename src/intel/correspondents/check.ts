// The `correspondent` check: is the sender someone our users write to? It
// matches only when the sender is a known correspondent (its domain, or in a
// free-mail domain its address) AND something other than the envelope itself
// vouches for that domain — SPF pass, a DKIM signature of the domain, or a
// forward-confirmed client name in it. A forger who writes a correspondent's
// address into MAIL FROM has none of these, and gets `nomatch`.
//
// Limit: for free-mail, SPF/DKIM/FCrDNS authenticate the provider's domain,
// not the address; trust then rests on the provider not letting one user send
// as another, which the large ones enforce.

import type { Envelope, Evidence } from '../../core/types.js';
import type { CheckContext } from '../../checks/types.js';
import { timed } from '../../checks/evidence.js';
import { orgDomain } from '../../checks/org-domain.js';
import { FreeMailDomains } from './free-mail.js';
import { correspondentKey } from './learn.js';
import type { Correspondent, CorrespondentStore } from './store.js';

export interface CorrespondentCheckOptions {
  store: CorrespondentStore;
  freeMail?: FreeMailDomains;
  /** Messages our users must have sent there before it counts. Default 1. */
  minCount?: number;
}

/** Evidence that authenticates the MAIL FROM domain, cheapest first, and the result that means "yes". */
const AUTHENTICATORS: ReadonlyArray<[check: string, result: Evidence['result'], label: string]> = [
  ['spf', 'pass', 'SPF'],
  ['fcrdns_domain', 'match', 'FCrDNS'],
  ['dkim_domain', 'match', 'DKIM'],
];

const defaultFreeMail = new FreeMailDomains();

export type CorrespondentNoMatch = 'no-sender' | 'null-sender' | 'unknown' | 'too-few' | 'unauthenticated';

export function checkCorrespondent(env: Envelope, ctx: CheckContext, opts: CorrespondentCheckOptions): Promise<Evidence> {
  return timed('correspondent', async () => {
    const no = (reason: CorrespondentNoMatch, detail: string, data: Record<string, unknown> = {}) =>
      ({ result: 'nomatch', detail, data: { reason, ...data } }) as const;
    if (env.from === undefined) return no('no-sender', 'no MAIL FROM yet');
    if (env.from === '') return no('null-sender', 'null sender: not a correspondent');
    const key = correspondentKey(env.from, opts.freeMail ?? defaultFreeMail);
    if (!key) return no('no-sender', `sender ${env.from} has no domain to look up`);

    const now = ctx.clock.now();
    let known: Correspondent | undefined = await opts.store.get(key.key, now);
    if (!known && key.kind === 'domain') {
      // Replies often come from a sibling of the domain written to (mail.example.com → example.com).
      const org = orgDomain(key.domain);
      if (org && org !== key.domain) known = await opts.store.get(org, now);
    }
    const who = key.kind === 'address' ? `address ${key.key}` : `domain ${key.key}`;
    if (!known) return no('unknown', `${who} is not a known correspondent`, { key: key.key, kind: key.kind });
    const minCount = opts.minCount ?? 1;
    const base = { key: known.key, kind: known.kind, count: known.count };
    if (known.count < minCount) {
      return no('too-few', `${who}: our users wrote there ${known.count} time(s), fewer than ${minCount}`, base);
    }

    const seen: string[] = [];
    for (const [check, wanted, label] of AUTHENTICATORS) {
      let ev: Evidence;
      try {
        ev = await ctx.evidence(check);
      } catch {
        seen.push(`${check} unavailable`);
        continue;
      }
      if (ev.result === wanted) {
        return {
          result: 'match',
          detail: `${who} is a correspondent (${known.count} message(s) from our users), authenticated by ${label}`,
          data: { ...base, authenticatedBy: check },
        };
      }
      seen.push(`${check}=${ev.result}`);
    }
    return no(
      'unauthenticated',
      `${who} is a correspondent, but neither SPF, FCrDNS nor DKIM authenticates ${key.domain} (${seen.join(', ')})`,
      { ...base, evidence: seen },
    );
  });
}

/** The check bound to its store, in the shape the policy registry adds. */
export function correspondentCheck(opts: CorrespondentCheckOptions): (env: Envelope, ctx: CheckContext) => Promise<Evidence> {
  return (env, ctx) => checkCorrespondent(env, ctx, opts);
}
