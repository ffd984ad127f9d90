// Spamtraps (spamd's greytrapping): a recipient that no one would write to
// in good faith. A client that sends to one is banned (category spamtrap;
// repeat offenders get longer bans, see src/store/bans.ts) and its greylist
// entries are dropped, so it cannot pass greylisting with what it learnt.
//
// Trap addresses come from the config (`spamtraps:`) and from the store's
// address list `spamtraps` (`frontline list add spamtraps trap@example.com`).
// The result is `listed` whether or not the ban could be made (the address
// is a trap either way); the detail says what happened to the ban.

import type { Envelope, Evidence } from '../core/types.js';
import { normaliseRecipient } from '../store/greylist.js';
import { isStoreUnavailable } from '../store/errors.js';
import { sharedEvidence, timed } from './evidence.js';
import type { CheckContext } from './types.js';

/** The store list whose addresses are traps, besides the configured ones. */
export const SPAMTRAP_LIST = 'spamtraps';

export interface SpamtrapCheckOptions {
  /** Lower-case addresses from the config. */
  traps: ReadonlySet<string>;
}

const notATrap = sharedEvidence((address) => ({ check: 'spamtrap', result: 'unlisted', detail: `${address} is not a spamtrap`, ms: 0 }));

/** The common answer at once: no recipient yet, or not a trap. Undefined for a trap (the ban needs the store). */
export function spamtrapQuick(env: Envelope, ctx: Pick<CheckContext, 'store'>, opts: SpamtrapCheckOptions): Evidence | undefined {
  const rcpt = env.rcpts[env.rcpts.length - 1];
  if (rcpt === undefined) return { check: 'spamtrap', result: 'none', detail: 'no recipient yet', ms: 0 };
  const address = normaliseRecipient(rcpt);
  const trap = opts.traps.has(address) || (ctx.store?.lookup.listHas(SPAMTRAP_LIST, address) ?? false);
  return trap ? undefined : notATrap(address);
}

export function checkSpamtrap(env: Envelope, ctx: CheckContext, opts: SpamtrapCheckOptions): Promise<Evidence> {
  return timed('spamtrap', async () => {
    const rcpt = env.rcpts[env.rcpts.length - 1];
    if (rcpt === undefined) return { result: 'none', detail: 'no recipient yet' };
    const address = normaliseRecipient(rcpt);
    const store = ctx.store;
    const trap = opts.traps.has(address) || (store?.lookup.listHas(SPAMTRAP_LIST, address) ?? false);
    if (!trap) return { result: 'unlisted', detail: `${address} is not a spamtrap` };
    const data: Record<string, unknown> = { trap: address, banned: false };
    if (!store) return { result: 'listed', detail: `${address} is a spamtrap (no store: ${env.clientIp} not banned)`, data };
    let what: string;
    try {
      const r = await store.ban({ cidr: env.clientIp, reason: `sent to spamtrap <${address}>`, category: 'spamtrap', source: 'spamtrap' });
      if (r.refused) {
        what = `not banned: ${r.why}`;
        data.refused = r.why;
      } else {
        data.banned = true;
        data.expiresAt = r.ban.expiresAt;
        data.offences = r.ban.offences;
        what = `${r.created ? 'banned' : 'already banned'} until ${new Date(r.ban.expiresAt).toISOString()} (offence ${r.ban.offences})`;
      }
      data.greylistDropped = await store.greyDeleteByClient(env.clientIp);
    } catch (e) {
      if (!isStoreUnavailable(e)) throw e;
      what = `ban not recorded: store unavailable (${e.message})`;
      data.store = 'unavailable';
    }
    return { result: 'listed', detail: `${address} is a spamtrap: ${env.clientIp} ${what}`, data };
  });
}
