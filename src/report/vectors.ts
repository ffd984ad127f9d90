// How the report room names what happened: each decision's outcome
// (accepted, refused, deferred, greylisted) and each refusal's vector — the
// kind of test that refused it (DNSBL, SPF and the OR rule, bans,
// spamtraps, greylisting, the gate's door tests, rate limits…). Rules are
// the admin's to name, so a rule's vector comes from the checks its
// condition reads (the CLI hands them over from the policy config); a rule
// the config does not know (an older config, the gate's own) is judged by
// its name.

/** What a decision amounted to for the sender. */
export const OUTCOMES = ['accepted', 'refused', 'deferred', 'greylisted'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const VECTORS = ['dnsbl', 'spf', 'ban', 'spamtrap', 'greylist', 'door', 'ratelimit', 'list', 'content', 'helo', 'fault', 'other'] as const;
export type Vector = (typeof VECTORS)[number];

/** What each vector means, for tables and the report. */
export const VECTOR_TITLES: Record<Vector, string> = {
  dnsbl: 'DNS block lists',
  spf: 'sender authorisation (SPF / OR rule / DMARC)',
  ban: 'bans',
  spamtrap: 'spamtraps',
  greylist: 'greylisting',
  door: "the gate's door tests",
  ratelimit: 'rate and connection limits',
  list: 'local lists',
  content: 'content rules',
  helo: 'HELO and address syntax',
  fault: 'faults (temporary failures)',
  other: 'other rules',
};

/** The checks a rule's condition reads, by rule name (from the policy config). */
export type RuleChecks = ReadonlyMap<string, readonly string[]>;

/** Checks in the order their vector wins when a rule reads several. */
const CHECK_VECTORS: Array<[RegExp, Vector]> = [
  [/^banned$/, 'ban'],
  [/^spamtrap$/, 'spamtrap'],
  [/^greylist$/, 'greylist'],
  [/^ratelimit/, 'ratelimit'],
  [/^(dnsbl|dnswl)/, 'dnsbl'],
  [/^(spf|sender_domain|mx|fcrdns_domain|dkim|dkim_domain|dmarc|arc)/, 'spf'],
  [/^(content|message|header|body)/, 'content'],
  [/^list:/, 'list'],
  [/^(helo|fcrdns|rfc|null_sender|ptr)/, 'helo'],
];

function byName(rule: string): Vector {
  if (rule === 'fault' || rule === 'gate:fault') return 'fault';
  if (rule.startsWith('gate:limit-')) return 'ratelimit';
  if (rule === 'gate:trap') return 'door';
  if (rule.startsWith('gate:') && rule !== 'gate:backend') return 'door';
  for (const [re, v] of CHECK_VECTORS) if (re.test(rule)) return v;
  if (/allow|deny/.test(rule)) return 'list';
  return 'other';
}

/** The vector of a rule: from the checks it reads when known, else from its name. */
export function vectorOf(rule: string, ruleChecks?: RuleChecks): Vector {
  const checks = ruleChecks?.get(rule);
  if (checks === undefined || checks.length === 0) return byName(rule);
  for (const [re, v] of CHECK_VECTORS) if (checks.some((c) => re.test(c))) return v;
  return byName(rule);
}

/** The outcome of an action (and, for a deferral, the rule that deferred). */
export function outcomeOf(action: string, rule: string, ruleChecks?: RuleChecks): Outcome {
  if (action === 'reject') return 'refused';
  if (action === 'defer') return vectorOf(rule, ruleChecks) === 'greylist' ? 'greylisted' : 'deferred';
  return 'accepted';
}

/** Actions that turned a sender away (now or for now). */
export const REFUSING_ACTIONS: readonly string[] = ['reject', 'defer'];
