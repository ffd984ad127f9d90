// sasl_spread: how far one SASL user's mail spreads — distinct client
// addresses, AS numbers and countries (with asn.table) in a sliding window,
// and recipients it never wrote to before, per window. A stolen password
// shows up as one login suddenly sending from many places to many new
// people (docs/outbound.md).
//
// The counts live in the store (shared by every host on Redis, bounded per
// user: store/types.ts SpreadRecord). When one reaches its `hold` limit the
// check holds the user — its mail is deferred until an admin releases it
// (`frontline user release`, the dashboard) — and answers `listed`, as it
// does for every message of a held user. Rules read the counts as
// `sasl_spread.ips>=5`, `sasl_spread.new_rcpts>=100`, `sasl_spread.held=true`.

import { createHash } from 'node:crypto';
import type { Envelope, Evidence } from '../core/types.js';
import type { SpreadCounts, SpreadKind, Store, UserHold } from '../store/types.js';
import { timed } from './evidence.js';
import { NO_STORE, storeFault, type OnUnavailable } from './store-fault.js';
import type { CheckContext } from './types.js';

/** Limits that hold a user; 0 = that count holds nobody. */
export interface SpreadHoldLimits {
  ips: number;
  asns: number;
  countries: number;
  new_rcpts: number;
}

export interface SaslSpreadOptions {
  windowS: number;
  newRcptWindowS: number;
  knownRcptDays: number;
  maxValues: number;
  hold: SpreadHoldLimits;
  /** The client's AS number and country (asn.table); absent = counted by address only. */
  geo?: (ip: string) => { asn: number; country: string } | undefined;
  onUnavailable: OnUnavailable;
  /** Told when the check holds a user (serve logs it at warn level). */
  onHold?: (hold: UserHold, counts: SpreadCounts) => void;
}

/** Who the check names as the holder. */
export const SPREAD_HOLDER = 'sasl_spread';

/** Longest login kept as it is; a longer one is keyed by its hash (no truncation: two users must not merge). */
const MAX_USER = 256;

/**
 * The store key of a SASL login: lower case (a login whose case the
 * backend ignores must not spread over several counters), a long one
 * hashed.
 */
export function spreadUserKey(login: string): string {
  const u = login.trim().toLowerCase();
  return u.length <= MAX_USER ? u : `sha256:${createHash('sha256').update(u).digest('hex')}`;
}

function dataOf(user: string, c: SpreadCounts, hold?: UserHold): Record<string, unknown> {
  return {
    user,
    ips: c.ips,
    asns: c.asns,
    countries: c.countries,
    new_rcpts: c.newRcpts,
    held: hold !== undefined,
    held_by: hold?.by ?? '',
    reason: hold?.reason ?? '',
  };
}

const ZERO: SpreadCounts = { ips: 0, asns: 0, countries: 0, newRcpts: 0 };

/** The first limit the counts reach, as a sentence; undefined when none. */
export function overLimit(c: SpreadCounts, limits: SpreadHoldLimits, opts: Pick<SaslSpreadOptions, 'windowS' | 'newRcptWindowS'>): string | undefined {
  const over: string[] = [];
  const w = `in ${opts.windowS} s`;
  if (limits.ips > 0 && c.ips >= limits.ips) over.push(`${c.ips} client addresses ${w} (hold at ${limits.ips})`);
  if (limits.asns > 0 && c.asns >= limits.asns) over.push(`${c.asns} networks (AS) ${w} (hold at ${limits.asns})`);
  if (limits.countries > 0 && c.countries >= limits.countries) over.push(`${c.countries} countries ${w} (hold at ${limits.countries})`);
  if (limits.new_rcpts > 0 && c.newRcpts >= limits.new_rcpts) over.push(`${c.newRcpts} new recipients in ${opts.newRcptWindowS} s (hold at ${limits.new_rcpts})`);
  return over.length > 0 ? over.join(', ') : undefined;
}

function valuesOf(env: Envelope, opts: SaslSpreadOptions): Array<{ kind: SpreadKind; value: string }> {
  const values: Array<{ kind: SpreadKind; value: string }> = [{ kind: 'ip', value: env.clientIp.toLowerCase() }];
  const g = opts.geo?.(env.clientIp);
  if (g && g.asn > 0) values.push({ kind: 'asn', value: `AS${g.asn}` });
  if (g && /^[A-Za-z]{2}$/.test(g.country)) values.push({ kind: 'country', value: g.country.toUpperCase() });
  const rcpt = env.rcpts[env.rcpts.length - 1];
  // Longer than an address can be (RFC 5321: 256 with brackets): counted by its first 320 characters.
  if (rcpt) values.push({ kind: 'rcpt', value: rcpt.toLowerCase().slice(0, 320) });
  return values;
}

export function checkSaslSpread(env: Envelope, ctx: CheckContext, opts: SaslSpreadOptions): Promise<Evidence> {
  return timed('sasl_spread', async () => {
    if (!env.saslUser) return { result: 'none', detail: 'not authenticated', data: dataOf('', ZERO) };
    if (!ctx.store) return NO_STORE;
    const store: Store = ctx.store;
    const user = spreadUserKey(env.saslUser);
    try {
      const held = await store.userHoldGet(user);
      // A held user's mail is not counted: it does not go out, and the release starts afresh.
      if (held) return heldEvidence(user, ZERO, held);
      const now = ctx.clock.now();
      const counts = await store.spreadRecord({
        user,
        values: valuesOf(env, opts),
        now,
        windowMs: opts.windowS * 1000,
        newWindowMs: opts.newRcptWindowS * 1000,
        knownMs: opts.knownRcptDays * 86400_000,
        maxValues: opts.maxValues,
      });
      const over = overLimit(counts, opts.hold, opts);
      if (over !== undefined) {
        const { hold, created } = await store.userHold({ user, by: SPREAD_HOLDER, reason: over, createdAt: now });
        if (created) opts.onHold?.(hold, counts);
        return heldEvidence(user, counts, hold);
      }
      return {
        result: 'unlisted',
        detail: `${user}: ${counts.ips} client addresses, ${counts.asns} networks, ${counts.countries} countries in ${opts.windowS} s; ${counts.newRcpts} new recipients in ${opts.newRcptWindowS} s`,
        data: dataOf(user, counts),
      };
    } catch (e) {
      return storeFault(e, opts.onUnavailable, 'sasl_spread');
    }
  });
}

function heldEvidence(user: string, counts: SpreadCounts, hold: UserHold): Omit<Evidence, 'check' | 'ms'> {
  return {
    result: 'listed',
    detail: `${user} is held since ${new Date(hold.createdAt).toISOString()} by ${hold.by}: ${hold.reason || 'no reason given'}`,
    data: dataOf(user, counts, hold),
  };
}
