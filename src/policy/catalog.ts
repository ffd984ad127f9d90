// What the rule language knows about each check before any check runs: the
// stage whose data it needs, what it costs, whether it depends on the current
// recipient. The condition parser validates leaves against this table; the
// registry (registry.ts) attaches the functions.

import type { EvidenceResult, Stage } from '../core/types.js';

export interface CheckInfo {
  stage: Stage;
  /** 0 local, 1 syntax, 10 DNS, 100 message (DKIM). Cheapest leaves run first. */
  cost: number;
  /** Depends on the current recipient: memoised per recipient, not per transaction. */
  perRcpt: boolean;
  /** Needs the message; resolves to `none` when the frontend cannot see it. */
  needsMessage: boolean;
}

/**
 * Store checks (greylist, rate limits) cost 5: below DNS, so they never run
 * speculatively in parallel with DNS leaves — they write state, and should
 * only run when the cheaper leaves left the node undecided.
 */
export const COST = { local: 0, syntax: 1, store: 5, dns: 10, message: 100 } as const;

const info = (stage: Stage, cost: number, perRcpt = false): CheckInfo => ({
  stage,
  cost,
  perRcpt,
  needsMessage: stage === 'data' || stage === 'eom',
});

export const CHECKS: Readonly<Record<string, CheckInfo>> = {
  auth: info('mail', COST.local),
  my_networks: info('connect', COST.local),
  dnsbl: info('connect', COST.dns),
  dnswl: info('connect', COST.dns),
  fcrdns: info('connect', COST.dns),
  helo: info('helo', COST.dns),
  spf_helo: info('helo', COST.dns),
  spf: info('mail', COST.dns),
  mx: info('mail', COST.dns),
  fcrdns_domain: info('mail', COST.dns),
  sender_domain: info('mail', COST.dns),
  // Counts recipients of a bounce, so it changes with every RCPT.
  null_sender: info('rcpt', COST.syntax, true),
  rcpt_fqdn: info('rcpt', COST.syntax, true),
  // A bounce to a signing address must carry our BATV tag (batv.enabled).
  batv: info('rcpt', COST.local, true),
  dkim: info('eom', COST.message),
  dkim_domain: info('eom', COST.message),
  dmarc: info('eom', COST.message),
  // The store's checks (registered only when a store is open).
  banned: info('connect', COST.local),
  // Takes one token per message: memoised per transaction, not per recipient.
  ratelimit_message: info('mail', COST.store),
  ratelimit: info('rcpt', COST.store, true),
  spamtrap: info('rcpt', COST.local, true),
  greylist: info('rcpt', COST.store, true),
  // Records the client and the recipient per SASL user (hacked accounts); per recipient.
  sasl_spread: info('rcpt', COST.store, true),
  // Learned correspondents (src/intel/correspondents); asks spf, fcrdns_domain, dkim_domain to vouch.
  correspondent: info('mail', COST.dns),
};

/** Stage of a list check by what it matches. */
export const LIST_STAGE: Readonly<Record<ListMatch, Stage>> = {
  client: 'connect',
  helo: 'helo',
  sender: 'mail',
  rcpt: 'rcpt',
};
export type ListMatch = 'client' | 'helo' | 'sender' | 'rcpt';

export function listInfo(match: ListMatch): CheckInfo {
  return info(LIST_STAGE[match], COST.local, match === 'rcpt');
}

/** Every result word a leaf may name (core EvidenceResult). */
export const RESULT_WORDS: readonly EvidenceResult[] = [
  'pass',
  'fail',
  'softfail',
  'neutral',
  'none',
  'temperror',
  'permerror',
  'policy',
  'listed',
  'unlisted',
  'match',
  'nomatch',
  'skipped',
];

export const LIST_PREFIX = 'list:';
export const LIST_NAME_RE = /^[A-Za-z0-9_-]+$/;

export function isListCheck(name: string): boolean {
  return name.startsWith(LIST_PREFIX);
}
