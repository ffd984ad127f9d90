// Greylisting on top of the Store: the first attempt of an unknown
// (origin, sender, recipient) triplet is deferred; a retry after the delay
// and within the retry window passes, and the triplet is then remembered.
//
// origin is the client's subnet (IPv4 /24, IPv6 /64 by default) — or, when
// SPF passed, the SPF-authenticated domain, so a large sender that retries
// from another address of its pool passes at the first retry instead of
// starting over.
//
// Skipping (DNSWL-listed, whitelisted, authenticated clients; "only clients
// without FCrDNS") is the caller's business: this module answers for the
// messages it is asked about.

import type { Clock } from '../core/types.js';
import { subnetOf } from './ip.js';
import type { GreyAttempt, GreyEntry, GreyTiming, Store } from './types.js';

export interface GreylistConfig {
  /** Seconds a new triplet is deferred (default 300). */
  delaySeconds: number;
  /** A retry must come within this many seconds of the first attempt (default 2 days). */
  retryWindowSeconds: number;
  /** A passed triplet is kept this long after it was last seen (default 36 days). */
  passedTtlSeconds: number;
  /** Auto-allow an origin after this many passed triplets; 0 = never (default 5). */
  autoAllowAfter: number;
  /** Prefix lengths of the client subnet (default 24 and 64). */
  ipv4Prefix: number;
  ipv6Prefix: number;
  /** Key on the SPF-authenticated domain when SPF passed (default true). */
  keyOnSpfDomain: boolean;
}

export const DEFAULT_GREYLIST: GreylistConfig = {
  delaySeconds: 300,
  retryWindowSeconds: 2 * 86400,
  passedTtlSeconds: 36 * 86400,
  autoAllowAfter: 5,
  ipv4Prefix: 24,
  ipv6Prefix: 64,
  keyOnSpfDomain: true,
};

export interface GreylistInput {
  clientIp: string;
  /** MAIL FROM ('' = null sender). */
  sender: string;
  recipient: string;
  /** The domain SPF authenticated (MAIL FROM domain, or HELO for the null sender) — only when SPF passed. */
  spfDomain?: string;
}

export interface GreylistResult {
  action: 'pass' | 'defer';
  /** Seconds until a retry can pass (defer only). */
  secondsLeft?: number;
  /** Human-readable: why it passed or was deferred. */
  reason: string;
  /** The triplet key used in the store. */
  key: string;
  /** The origin (subnet or spf:domain) used for the key and auto-allow. */
  origin: string;
}

/** The store operations greylisting needs (a Store has them all; greyAttempt, where a store has it, does greyGet and greyPut in one step). */
export type GreyStore = Pick<Store, 'greyGet' | 'greyPut' | 'greyClientPasses' | 'greyClientPass'> & Partial<Pick<Store, 'greyAttempt'>>;

/** One attempt on a triplet: the store's own step where it has one, else a read, the decision and a write. */
async function attempt(store: GreyStore, key: string, clientIp: string, now: number, timing: GreyTiming): Promise<GreyAttempt> {
  if (store.greyAttempt) return store.greyAttempt(key, clientIp, now, timing);
  const a = attemptOf(await store.greyGet(key), clientIp, now, timing);
  await store.greyPut(key, a.entry);
  return a;
}

const ALNUM = /[a-z0-9]/;

/**
 * Sender as used in the key, so the per-message parts of bounce and list
 * addresses do not make every message a new triplet. In order:
 *  1. lower-case; the null sender becomes "<>";
 *  2. BATV: a local part "prvs=TAG=rest" or "msprvs1=TAG=rest" becomes
 *     "rest"; "btv1==TAG==rest" becomes "rest";
 *  3. SRS: "srs0=HASH=TT=domain=local" keeps domain and local, hash and
 *     timestamp become "#" ("srs0=#=#=domain=local"); srs1 likewise;
 *  4. "+extension": everything from the first "+" (not at the start) goes;
 *  5. VERP tokens: each run of letters/digits (split at any other
 *     character) that contains a digit and is all digits, or 8+ characters
 *     long, or 4+ hex digits, becomes "#" ("bounce-12345-x" → "bounce-#-x",
 *     "0100018f3a2b4c5d-e6f7-9abc" → "#-#-#", "john2024" → "#";
 *     "user", "info", "ab1" are kept).
 * The domain part is only lower-cased.
 */
export function normaliseSender(sender: string): string {
  const s = sender.trim().replace(/^<(.*)>$/, '$1').toLowerCase();
  if (s === '') return '<>';
  const at = s.lastIndexOf('@');
  if (at < 0) return s;
  let local = s.slice(0, at);
  const domain = s.slice(at + 1);
  let m = /^(?:prvs|msprvs1)=[^=]+=(.+)$/.exec(local) ?? /^btv1==[^=]+==(.+)$/.exec(local);
  if (m) local = m[1];
  m = /^(srs[01])=[^=]*=[^=]*=(.*)$/.exec(local);
  if (m) local = `${m[1]}=#=#=${m[2]}`;
  const plus = local.indexOf('+');
  if (plus > 0) local = local.slice(0, plus);
  local = local.replace(/[a-z0-9]+/g, (tok) => (isVariableToken(tok) ? '#' : tok));
  return `${local}@${domain}`;
}

function isVariableToken(tok: string): boolean {
  if (!/\d/.test(tok)) return false;
  return /^\d+$/.test(tok) || tok.length >= 8 || (tok.length >= 4 && /^[0-9a-f]+$/.test(tok));
}

/** Recipient as used in the key: lower-case, without angle brackets. */
export function normaliseRecipient(rcpt: string): string {
  return rcpt.trim().replace(/^<(.*)>$/, '$1').toLowerCase();
}

/** The origin part of the key: "spf:<domain>" when SPF passed (and enabled), else "net:<subnet>". */
export function greyOrigin(input: GreylistInput, cfg: GreylistConfig = DEFAULT_GREYLIST): string {
  const d = input.spfDomain?.trim().toLowerCase().replace(/\.$/, '');
  if (cfg.keyOnSpfDomain && d && ALNUM.test(d)) return `spf:${d}`;
  return `net:${subnetOf(input.clientIp, cfg.ipv4Prefix, cfg.ipv6Prefix)}`;
}

/** The triplet key: origin|sender|recipient. */
export function greyKey(input: GreylistInput, cfg: GreylistConfig = DEFAULT_GREYLIST): string {
  return `${greyOrigin(input, cfg)}|${normaliseSender(input.sender)}|${normaliseRecipient(input.recipient)}`;
}

export interface GreyDecision {
  action: 'pass' | 'defer';
  secondsLeft?: number;
  reason: string;
  /** True when this attempt is the retry that passed the delay (counts toward auto-allow). */
  firstPass: boolean;
}

/**
 * The pure decision for one attempt, given the stored entry (or none).
 * Mirrored, line for line, by the Redis store's GREY_ATTEMPT_LUA (one round
 * trip instead of a read and a write); the store conformance suite holds
 * both to the same answers.
 */
export function attemptOf(entry: GreyEntry | undefined, clientIp: string, now: number, timing: GreyTiming): GreyAttempt & { entry: GreyEntry } {
  const delay = timing.delaySeconds * 1000;
  const keepPassed = now + timing.passedTtlSeconds * 1000;
  if (entry && entry.passedAt !== undefined && entry.expiresAt > now) {
    return {
      outcome: 'known',
      seconds: Math.round((now - entry.passedAt) / 1000),
      entry: { ...entry, lastSeen: now, attempts: entry.attempts + 1, passes: entry.passes + 1, clientIp, expiresAt: keepPassed },
    };
  }
  const fresh = !entry || entry.expiresAt <= now || now - entry.firstSeen > timing.retryWindowSeconds * 1000;
  if (fresh) {
    return {
      outcome: 'first',
      seconds: timing.delaySeconds,
      entry: { firstSeen: now, lastSeen: now, attempts: 1, passes: 0, clientIp, expiresAt: now + timing.retryWindowSeconds * 1000 },
    };
  }
  const waited = now - entry.firstSeen;
  if (waited < delay) {
    return {
      outcome: 'early',
      seconds: Math.max(1, Math.ceil((delay - waited) / 1000)),
      entry: { ...entry, lastSeen: now, attempts: entry.attempts + 1, clientIp },
    };
  }
  return {
    outcome: 'retried',
    seconds: Math.round(waited / 1000),
    entry: { ...entry, lastSeen: now, passedAt: now, attempts: entry.attempts + 1, passes: entry.passes + 1, clientIp, expiresAt: keepPassed },
  };
}

/** What an attempt's outcome means: pass or defer, and the reason the log and the reply give. */
export function verdictOf(a: GreyAttempt, cfg: Pick<GreylistConfig, 'delaySeconds'>): GreyDecision {
  switch (a.outcome) {
    case 'known':
      return { action: 'pass', reason: `triplet passed greylisting ${a.seconds} s ago`, firstPass: false };
    case 'first':
      return { action: 'defer', secondsLeft: a.seconds, reason: `greylisted: first attempt of this triplet, retry after ${cfg.delaySeconds} s`, firstPass: false };
    case 'early':
      return { action: 'defer', secondsLeft: a.seconds, reason: `greylisted: retried too early, ${a.seconds} s left`, firstPass: false };
    case 'retried':
      return { action: 'pass', reason: `retried after ${a.seconds} s: greylisting passed`, firstPass: true };
  }
}

/**
 * Greylist one (client, sender, recipient): auto-allowed origins pass at
 * once; otherwise the stored triplet decides (see attemptOf()). Store faults
 * propagate (StoreUnavailableError): the caller turns them into 4xx or
 * "continue", as configured.
 */
export async function greylist(
  input: GreylistInput,
  deps: { store: GreyStore; clock: Clock; config?: Partial<GreylistConfig> },
): Promise<GreylistResult> {
  const cfg: GreylistConfig = { ...DEFAULT_GREYLIST, ...deps.config };
  const origin = greyOrigin(input, cfg);
  const key = `${origin}|${normaliseSender(input.sender)}|${normaliseRecipient(input.recipient)}`;
  const now = deps.clock.now();
  if (cfg.autoAllowAfter > 0) {
    const passes = await deps.store.greyClientPasses(origin);
    if (passes >= cfg.autoAllowAfter) {
      return { action: 'pass', reason: `auto-allowed: ${origin} passed greylisting ${passes} times`, key, origin };
    }
  }
  const d = verdictOf(await attempt(deps.store, key, input.clientIp, now, cfg), cfg);
  if (d.firstPass && cfg.autoAllowAfter > 0) await deps.store.greyClientPass(origin, now + cfg.passedTtlSeconds * 1000);
  const out: GreylistResult = { action: d.action, reason: d.reason, key, origin };
  if (d.secondsLeft !== undefined) out.secondsLeft = d.secondsLeft;
  return out;
}
