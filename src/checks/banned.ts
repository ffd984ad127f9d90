// Is the client banned? Answered from the store's in-memory index (no I/O on
// a miss); a hit reads the ban's details (category, reason, expiry) for the
// reply text. While the store is down the index still answers and the
// details say so, so a ban keeps working through an outage.

import type { Envelope, Evidence } from '../core/types.js';
import { timed } from './evidence.js';
import { NO_STORE } from './store-fault.js';
import type { CheckContext } from './types.js';

export function checkBanned(env: Envelope, ctx: CheckContext): Promise<Evidence> {
  return timed('banned', async () => {
    const store = ctx.store;
    if (!store) return NO_STORE;
    const ip = env.clientIp;
    if (!store.lookup.isBanned(ip)) return { result: 'unlisted', detail: `${ip} is not banned` };
    const ban = await store.getBan(ip);
    // The index ran ahead of an unban it had not heard of yet: the store's word counts.
    if (!ban) return { result: 'unlisted', detail: `${ip} is not banned (ban just lifted)` };
    const expires = new Date(ban.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return {
      result: 'listed',
      detail: `${ip} is banned by ${ban.cidr} (${ban.category}: ${ban.reason || 'no reason given'}) until ${expires}`,
      data: {
        cidr: ban.cidr,
        category: ban.category,
        reason: ban.reason,
        source: ban.source,
        expires,
        expiresAt: ban.expiresAt,
        offences: ban.offences,
      },
    };
  });
}
