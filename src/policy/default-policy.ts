// The shipped default policy, as the same data an admin would write under
// `policy.rules` (frontline.example.yaml spells it out; a test keeps the two
// equal). It is conservative: it must not refuse a correctly configured small
// mail server. docs/policy.md says why each rule is safe.
//
// Rules naming a list or DNSBL/DNSWL zones that are not configured are left
// out quietly (allowlist, denylist, dnswl, dnsbl by default), and so are the
// store's opt-in rules: ratelimit (no `ratelimits:`), sasl-spread (`sasl_spread.enabled: false`), greylist
// (`greylist.enabled: false`), and banned/spamtrap where no store is open.

export const DEFAULT_RULES: ReadonlyArray<Record<string, unknown>> = [
  // First, so limits on SASL users (a hacked account) apply to authenticated clients too.
  {
    name: 'ratelimit',
    if: 'ratelimit=listed',
    action: 'defer',
    code: 450,
    status: '4.7.1',
    text: 'rate limit {evidence.ratelimit.limit} exceeded ({evidence.ratelimit.key}); try again in {evidence.ratelimit.retryAfterSeconds} seconds',
  },
  // Hacked accounts (sasl_spread.enabled): a held SASL user's mail waits until an admin releases it.
  // `auth` first, so that the rule is passed over at once for everyone else.
  {
    name: 'sasl-spread',
    if: ['auth', 'sasl_spread=listed'],
    action: 'defer',
    code: 450,
    status: '4.7.1',
    text: 'account {evidence.sasl_spread.user} is held for review ({evidence.sasl_spread.reason}); ask your postmaster',
  },
  { name: 'authenticated', if: 'auth', action: 'accept' },
  { name: 'my-networks', if: 'my_networks', action: 'accept' },
  // Looks like an unknown user; the client is banned as it is refused (unless spared:
  // allow-listed, DNSWL-listed, or SPF-authenticated for a big sender). Before the
  // allow rules: nobody writes to a trap in good faith.
  {
    name: 'spamtrap',
    if: 'spamtrap=listed',
    action: 'reject',
    code: 550,
    status: '5.1.1',
    text: '<{rcpt}>: recipient address rejected: user unknown',
  },
  { name: 'allowlist', if: 'list:allow=listed', action: 'accept' },
  {
    name: 'banned',
    if: 'banned=listed',
    action: 'reject',
    code: 554,
    status: '5.7.1',
    text: 'rejected: {ip} is banned ({evidence.banned.category}: {evidence.banned.reason}) until {evidence.banned.expires}',
  },
  {
    name: 'denylist',
    if: 'list:deny=listed',
    action: 'reject',
    code: 554,
    status: '5.7.1',
    text: 'rejected by local policy: {evidence.list:deny.field} {evidence.list:deny.value} is on the deny list',
  },
  { name: 'dnswl', if: 'dnswl=listed', action: 'accept' },
  {
    name: 'dnsbl',
    if: 'dnsbl=listed',
    action: 'reject',
    code: 554,
    status: '5.7.1',
    text: 'rejected by policy: {ip} is listed by {evidence.dnsbl.hits.zone}',
  },
  // Its own name for a DNS fault of the sender-domain check, which would otherwise surface as a
  // fault of sender-fqdn below (issue 17). Left out with policy.on_fault: continue (policy.ts).
  {
    name: 'sender-domain-fault',
    if: 'sender_domain=temperror',
    action: 'defer',
    code: 451,
    status: '4.4.3',
    text: 'temporary failure: sender_domain: {evidence.sender_domain.detail}',
  },
  {
    name: 'sender-fqdn',
    if: 'sender_domain.reason=non-fqdn',
    action: 'reject',
    code: 504,
    status: '5.5.2',
    text: 'sender address rejected: {evidence.sender_domain.detail}',
  },
  {
    name: 'unknown-sender-domain',
    if: 'sender_domain=fail',
    action: 'defer',
    code: 450,
    status: '4.1.8',
    text: 'sender address rejected: {evidence.sender_domain.detail}',
  },
  {
    name: 'multi-recipient-bounce',
    if: 'null_sender=fail',
    action: 'reject',
    code: 550,
    status: '5.5.3',
    text: 'multi-recipient bounce rejected: {evidence.null_sender.detail}',
  },
  // Backscatter: a bounce to one of our signing addresses without our BATV tag (batv.enabled).
  {
    name: 'batv-bounce',
    if: 'batv=fail',
    action: 'reject',
    code: 550,
    status: '5.7.1',
    text: 'bounce to an address that sent no mail: {evidence.batv.detail}',
  },
  {
    name: 'sender-authorised',
    if: { all: ['sender_domain=pass', { not: { any: ['spf=pass', 'mx=match', 'fcrdns_domain=match', 'dkim_domain=match'] } }] },
    action: 'reject',
    code: 554,
    status: '5.7.1',
    text: 'rejected by policy: {from_domain} did not authorise {ip} ({client_name}) to send its mail.',
    remedy: "To fix: list {ip} in the SPF record of {from_domain}{dkim_option}, or send through {from_domain}'s own MX hosts.",
  },
  // Last: what every rule above let through. Opt-in (greylist.enabled).
  {
    name: 'greylist',
    if: 'greylist=fail',
    action: 'defer',
    code: 450,
    status: '4.7.1',
    text: 'Greylisted, try again in {evidence.greylist.secondsLeft} seconds',
  },
];
