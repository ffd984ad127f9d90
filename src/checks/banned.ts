// Is the client banned? Answered from the store's in-memory index (no I/O on
// a miss); a hit reads the ban's details (category, reason, expiry) for the
// reply text. While the store is down the index still answers and the
// details say so, so a ban keeps working through an outage.

import type { Envelope, Evidence } from '../core/types.js';
import { sharedEvidence, timed } from './evidence.js';
import { NO_STORE } from './store-fault.js';
import type { CheckContext } from './types.js';

const notBanned = sharedEvidence((ip) => ({ check: 'banned', result: 'unlisted', detail: `${ip} is not banned`, ms: 0 }));

/**
 * The common answer at once, without waiting: not banned (the in-memory
 * index says so) or no store. Undefined when a ban's details must be read.
 */
export function bannedQuick(env: Envelope, ctx: Pick<CheckContext, 'store'>): Evidence | undefined {
  const store = ctx.store;
  if (!store) return { check: 'banned', ...NO_STORE, ms: 0 };
  const ip = env.clientIp;
  return store.lookup.isBanned(ip) ? undefined : notBanned(ip);
}

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
