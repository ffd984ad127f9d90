// Greylisting as a check: the first attempt of an unknown (client, sender,
// recipient) is deferred; a retry after the delay passes. When SPF passed,
// the client part of the key is the SPF-authenticated domain instead of the
// subnet, so a sender retrying from another host of its pool passes at the
// first retry. The bookkeeping lives in src/store/greylist.ts.
//
// Results: pass (known triplet, retried after the delay, or an auto-allowed
// client), fail (deferred: data.secondsLeft says how long to wait), skipped
// (`only_untrusted` and the client has forward-confirmed reverse DNS), none
// (no recipient yet; no store), temperror (store down, see store-fault.ts).
// Who is never greylisted (authenticated, my networks, allow lists, DNSWL)
// is the rule order's business: those rules accept before greylist runs.

import type { Envelope, Evidence } from '../core/types.js';
import { greylist, type GreylistConfig } from '../store/greylist.js';
import { timed } from './evidence.js';
import { NO_STORE, storeFault, type OnUnavailable } from './store-fault.js';
import type { CheckContext } from './types.js';

export interface GreylistCheckOptions {
  config: Partial<GreylistConfig>;
  /** Greylist only clients that fail the trust test (no FCrDNS). */
  onlyUntrusted: boolean;
  onUnavailable: OnUnavailable;
}

export function checkGreylist(env: Envelope, ctx: CheckContext, opts: GreylistCheckOptions): Promise<Evidence> {
  return timed('greylist', async () => {
    const store = ctx.store;
    if (!store) return NO_STORE;
    const recipient = env.rcpts[env.rcpts.length - 1];
    if (recipient === undefined) return { result: 'none', detail: 'no recipient yet' };
    if (opts.onlyUntrusted) {
      const fc = await ctx.evidence('fcrdns');
      if (fc.result === 'pass') {
        return { result: 'skipped', detail: `trusted client (${fc.detail}): not greylisted (greylist.only_untrusted)`, data: { action: 'pass' } };
      }
    }
    let spfDomain: string | undefined;
    if (opts.config.keyOnSpfDomain !== false) {
      const spf = await ctx.evidence('spf');
      if (spf.result === 'pass' && typeof spf.data?.domain === 'string') spfDomain = spf.data.domain;
    }
    try {
      const r = await greylist({ clientIp: env.clientIp, sender: env.from ?? '', recipient, spfDomain }, { store, clock: ctx.clock, config: opts.config });
      const data: Record<string, unknown> = { action: r.action, key: r.key, origin: r.origin };
      if (r.action === 'pass') return { result: 'pass', detail: r.reason, data };
      data.secondsLeft = r.secondsLeft ?? 0;
      return { result: 'fail', detail: r.reason, data };
    } catch (e) {
      return storeFault(e, opts.onUnavailable, 'greylisting');
    }
  });
}
