// One decision in plain words: what each check asked and found, and what an
// innocent sender can do about the rule that decided (its remedy).

import { renderTemplate } from '../../../../policy/template.js';
import type { DecisionEvent } from '../../../../store/index.js';
import { domainOf } from '../../../../core/address.js';
import type { RuleInfo } from '../context.js';

/** What each check asks, for an admin who has not read docs/checks.md. */
const QUESTIONS: Readonly<Record<string, string>> = {
  auth: 'Did the client log in (SMTP AUTH)?',
  my_networks: 'Is the client in my_networks?',
  dnsbl: 'Is the client on a DNS blocklist?',
  dnswl: 'Is the client on a DNS allowlist?',
  fcrdns: 'Does the client’s reverse DNS name point back to it?',
  helo: 'Is the HELO name a real name of this client?',
  spf_helo: 'Does the HELO name’s SPF record allow the client?',
  spf: 'Does the sender domain’s SPF record allow the client?',
  mx: 'Is the client one of the sender domain’s mail servers?',
  fcrdns_domain: 'Is the client’s reverse DNS name in the sender’s domain?',
  sender_domain: 'Does the sender’s domain exist and take mail?',
  null_sender: 'Is a bounce (null sender) addressed to one recipient?',
  rcpt_fqdn: 'Is the recipient a full address?',
  dkim: 'Is the message DKIM-signed, and does the signature verify?',
  dkim_domain: 'Does a valid DKIM signature come from the sender’s domain?',
  dmarc: 'Does the message pass the sender domain’s DMARC policy?',
  banned: 'Is the client banned?',
  ratelimit_message: 'Is the client within its message rate?',
  ratelimit: 'Is the client within its recipient rate?',
  spamtrap: 'Is a recipient a spamtrap?',
  greylist: 'Has this sender retried after the greylisting delay?',
  correspondent: 'Have our users written to this sender before?',
  sasl_spread: 'Is this login sending from too many places, or to too many new people?',
};

export function checkQuestion(check: string): string {
  if (check.startsWith('list:')) return `Is it on list ${check.slice(5)}?`;
  return QUESTIONS[check] ?? check;
}

/** Plain words for a result word. */
export function resultWords(result: string): string {
  switch (result) {
    case 'pass':
      return 'yes (pass)';
    case 'fail':
      return 'no (fail)';
    case 'softfail':
      return 'probably not (softfail)';
    case 'neutral':
      return 'no opinion (neutral)';
    case 'none':
      return 'nothing to check (none)';
    case 'temperror':
      return 'could not tell now: a temporary fault (temperror)';
    case 'permerror':
      return 'broken record (permerror)';
    case 'listed':
      return 'yes (listed)';
    case 'unlisted':
      return 'no (unlisted)';
    default:
      return result;
  }
}

/** The rule's remedy filled in from what the decision recorded (evidence data is not kept: those fields stay empty). */
export function remedyOf(rule: RuleInfo | undefined, e: DecisionEvent): string | undefined {
  if (!rule?.remedy) return undefined;
  return renderTemplate(rule.remedy, {
    vars: {
      ip: e.clientIp,
      helo: e.helo ?? '',
      from: e.from ?? '',
      from_domain: domainOf(e.from) ?? '',
      rcpt: e.rcpts[0] ?? '',
      rule: e.rule,
      stage: e.stage,
      dkim_option: '',
    },
    evidence: (check) => {
      const ev = e.evidence.find((x) => x.check === check);
      return ev ? { result: ev.result, detail: ev.detail ?? '' } : undefined;
    },
  });
}

/** What the decision's action means to the sender. */
export function actionWords(e: DecisionEvent): string {
  const code = e.code !== undefined ? ` ${e.code}` : '';
  switch (e.action) {
    case 'reject':
      return `refused${code} (permanent: the sender gets a bounce from its own server)`;
    case 'defer':
      return `deferred${code} (temporary: a real mail server retries)`;
    case 'accept':
      return 'accepted';
    case 'continue':
      return 'let through (no rule decided)';
    case 'tag':
      return 'accepted and tagged';
    case 'tarpit':
      return `slowed down${code}`;
    default:
      return `${e.action}${code}`;
  }
}
