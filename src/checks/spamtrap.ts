// Spamtraps (spamd's greytrapping): a recipient that no one would write to
// in good faith. A client that sends to one is banned (category spamtrap;
// repeat offenders get longer bans, see src/store/bans.ts) and its greylist
// entries are dropped, so it cannot pass greylisting with what it learnt.
//
// Trap addresses come from the config (`spamtraps:`) and from the store's
// address list `spamtraps` (`frontline list add spamtraps trap@example.com`).
// The result is `listed` whether or not the ban could be made (the address
// is a trap either way); the detail says what happened to the ban.
//
// Spamtrap poisoning: a free-mail user who writes to a trap (a typo, a
// harvested address, malice) would get the provider's shared outbound
// address banned for everyone. So a trap hit bans nothing — the message is
// still refused — when the client is one we trust by address (an allow
// list, the SPF-walked big senders, correspondents' networks, DNSWL) or
// passes SPF for a big-sender domain (`spared()` says which). A fault that
// leaves this unknown (DNS temperror) bans nothing either: the ban is a
// bonus, poisoning is the harm.

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
  /** Who is never banned for a trap hit; without it every trap hit bans. */
  spare?: SpamtrapSparing;
  /** Told of every trap hit that banned nothing because the client is spared (serve logs it). */
  onSpared?: (info: { client: string; trap: string; why: string }) => void;
}

/** The clients a trap hit must not ban. */
export interface SpamtrapSparing {
  /** An address-based allow list of the config (`lists.allow`, `my_networks`): the matching entry's description, or undefined. */
  staticAllow?: (ip: string) => string | undefined;
  /** Store ip lists whose entries are spared: `allow`, the SPF-walked big senders, the correspondents' networks. */
  storeLists: readonly string[];
  /** Ask the `dnswl` check (configured zones only). */
  dnswl: boolean;
  /** Big-sender domains: SPF pass for one of them, or a name below one, spares the client. */
  bigSenders: ReadonlySet<string>;
}

/** `domain` or a parent of it in `set`, or undefined. */
function underAny(domain: string, set: ReadonlySet<string>): string | undefined {
  let d = domain.toLowerCase().replace(/\.$/, '');
  for (;;) {
    if (set.has(d)) return d;
    const dot = d.indexOf('.');
    if (dot < 0) return undefined;
    d = d.slice(dot + 1);
  }
}

/** Why a trap hit from this client must ban nothing, or undefined when it may ban. */
export async function spared(env: Envelope, ctx: CheckContext, spare: SpamtrapSparing): Promise<string | undefined> {
  const ip = env.clientIp;
  const fromStatic = spare.staticAllow?.(ip);
  if (fromStatic) return fromStatic;
  const lookup = ctx.store?.lookup;
  for (const list of spare.storeLists) {
    if (lookup?.listKind(list) === 'ip' && lookup.listHas(list, ip)) return `${ip} is on the ${list} list`;
  }
  if (spare.dnswl) {
    const ev = await ctx.evidence('dnswl');
    if (ev.result === 'listed') return `${ip} is listed by DNSWL (${ev.detail})`;
    if (ev.result === 'temperror') return `DNSWL could not be asked (${ev.detail}): not banned while unknown`;
  }
  if (spare.bigSenders.size > 0 && env.from !== undefined) {
    const ev = await ctx.evidence('spf');
    const domain = typeof ev.data?.domain === 'string' ? ev.data.domain : undefined;
    const big = domain === undefined ? undefined : underAny(domain, spare.bigSenders);
    if (big !== undefined) {
      if (ev.result === 'pass') return `${ip} passes SPF for ${domain}, a big sender (${big})`;
      if (ev.result === 'temperror') return `SPF for big sender ${domain} could not be checked (${ev.detail}): not banned while unknown`;
    }
  }
  return undefined;
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
    const why = opts.spare && (await spared(env, ctx, opts.spare));
    if (why) {
      data.spared = why;
      opts.onSpared?.({ client: env.clientIp, trap: address, why });
      return { result: 'listed', detail: `${address} is a spamtrap: ${env.clientIp} not banned: ${why}`, data };
    }
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
