// Ban arithmetic, pure: how long a ban lasts for the n-th offence, when the
// offence count is forgotten, and what a new ban() does to an existing ban.
// Both backends use it (Redis through a table of durations handed to its Lua
// script), so they agree to the millisecond.

import { InvalidEntryError } from './errors.js';
import { DEFAULT_BAN_POLICY, type Ban, type BanInput, type BanPolicy } from './types.js';

/** What the store remembers about an address between bans. */
export interface OffenceRecord {
  offences: number;
  firstSeen: number;
  /** End of the last ban (or when it was lifted): the quiet period counts from here. */
  quietSince: number;
}

/** Defaults filled in and checked; throws InvalidEntryError on nonsense. */
export function resolveBanPolicy(p: Partial<BanPolicy> = {}): BanPolicy {
  const policy = { ...DEFAULT_BAN_POLICY, ...p };
  const bad = (k: keyof BanPolicy, why: string) => new InvalidEntryError(`ban policy: ${k} ${why} (got ${policy[k]})`);
  if (!(policy.baseSeconds > 0)) throw bad('baseSeconds', 'must be > 0');
  if (!(policy.factor >= 1)) throw bad('factor', 'must be ≥ 1');
  if (!(policy.maxSeconds >= policy.baseSeconds)) throw bad('maxSeconds', 'must be ≥ baseSeconds');
  if (!(policy.jitter >= 0 && policy.jitter < 1)) throw bad('jitter', 'must be in [0, 1)');
  if (!(policy.forgetAfterSeconds > 0)) throw bad('forgetAfterSeconds', 'must be > 0');
  return policy;
}

/** Length in seconds of the ban for offence number `offences` (1-based): min(base × factor^(n−1), max) × (1 ± jitter). */
export function banSeconds(offences: number, policy: BanPolicy, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(offences));
  const capped = Math.min(policy.baseSeconds * policy.factor ** (n - 1), policy.maxSeconds);
  const jittered = capped * (1 + policy.jitter * (2 * random() - 1));
  return Math.max(1, Math.round(jittered));
}

/** Offences after which the cap is reached: longer histories all get the same (capped) length. */
export function offencesToCap(policy: BanPolicy): number {
  if (policy.factor === 1) return 1;
  const n = 1 + Math.ceil(Math.log(policy.maxSeconds / policy.baseSeconds) / Math.log(policy.factor));
  return Math.min(Math.max(1, n), 64);
}

/** Ban lengths in seconds for offences 1..offencesToCap (each with its own jitter); the last one applies beyond. */
export function durationTable(policy: BanPolicy, random: () => number = Math.random): number[] {
  const out: number[] = [];
  for (let n = 1; n <= offencesToCap(policy); n++) out.push(banSeconds(n, policy, random));
  return out;
}

/** The offence number of a new ban, given what is remembered: counts on within the quiet period, restarts after. */
export function nextOffence(prev: OffenceRecord | undefined, now: number, policy: BanPolicy): { offences: number; firstSeen: number } {
  if (prev && now - prev.quietSince < policy.forgetAfterSeconds * 1000) {
    return { offences: prev.offences + 1, firstSeen: prev.firstSeen };
  }
  return { offences: 1, firstSeen: now };
}

export interface BanPlan {
  ban: Ban;
  offence: OffenceRecord;
  /** A new ban (false: an unexpired one existed). */
  created: boolean;
  /** Something must be written (a new ban, or an existing one extended). */
  changed: boolean;
}

/**
 * What ban() does. An unexpired ban on the same CIDR is kept and is not a
 * new offence (a burst of spamtrap hits must not escalate in seconds); a
 * fixed `durationSeconds` can only extend it. Otherwise the offence count
 * goes up (or restarts after the quiet period) and sets the length.
 */
export function planBan(args: {
  now: number;
  cidr: string;
  input: BanInput;
  policy: BanPolicy;
  active?: Ban;
  offence?: OffenceRecord;
  /** Seconds for offence n; defaults to banSeconds with Math.random. */
  seconds?: (offences: number) => number;
}): BanPlan {
  const { now, cidr, input, policy, active, offence } = args;
  const fixedMs = input.durationSeconds !== undefined ? Math.round(input.durationSeconds * 1000) : undefined;
  if (fixedMs !== undefined && !(fixedMs > 0)) throw new InvalidEntryError(`ban duration must be > 0 seconds (got ${input.durationSeconds})`);
  if (active && active.expiresAt > now) {
    const extended = fixedMs !== undefined && now + fixedMs > active.expiresAt;
    const ban = extended ? { ...active, expiresAt: now + (fixedMs as number) } : active;
    const prev = offence ?? { offences: active.offences, firstSeen: active.firstSeen, quietSince: active.expiresAt };
    return { ban, offence: { ...prev, quietSince: Math.max(prev.quietSince, ban.expiresAt) }, created: false, changed: extended };
  }
  const { offences, firstSeen } = nextOffence(offence, now, policy);
  const ms = fixedMs ?? (args.seconds ?? ((n) => banSeconds(n, policy)))(offences) * 1000;
  const ban: Ban = {
    cidr,
    reason: input.reason,
    category: input.category,
    source: input.source,
    firstSeen,
    createdAt: now,
    expiresAt: now + ms,
    offences,
  };
  return { ban, offence: { offences, firstSeen, quietSince: ban.expiresAt }, created: true, changed: true };
}

/** After an unban the quiet period starts now (not at the planned expiry). */
export function offenceAfterUnban(prev: OffenceRecord | undefined, now: number): OffenceRecord | undefined {
  return prev ? { ...prev, quietSince: Math.min(prev.quietSince, now) } : undefined;
}
