// RFC checks on the envelope addresses, as Postfix admins know them:
// reject_non_fqdn_sender, reject_unknown_sender_domain,
// reject_non_fqdn_recipient and reject_multi_recipient_bounce.

import type { Envelope, Evidence } from '../core/types.js';
import type { MxRecord } from '../dns/types.js';
import { settle } from './addresses.js';
import { displayDomain } from '../core/address.js';
import { domainOf, sharedEvidence, timed } from './evidence.js';
import { addressDomainProblem } from './hostname.js';
import type { CheckContext } from './types.js';

const PROBLEM_TEXT: Record<string, string> = {
  'no-at': 'has no @domain',
  'empty-local': 'has an empty local part',
  'bad-domain': 'has an invalid domain',
  'non-fqdn': 'has a domain that is not fully qualified',
};

/**
 * `sender_domain`: the MAIL FROM domain is an FQDN and exists in DNS as a mail
 * domain (has MX, A or AAAA records). A null MX alone does not make a domain
 * able to receive bounces, so null MX without A/AAAA is `unknown-domain`; null
 * MX with an address record passes, with `data.nullMx` for rules that care.
 */
export function checkSenderDomain(env: Envelope, ctx: CheckContext): Promise<Evidence> {
  return timed('sender_domain', async () => {
    if (env.from === undefined) return { result: 'none', detail: 'no MAIL FROM yet' };
    if (env.from === '') return { result: 'none', detail: 'null sender' };
    const problem = addressDomainProblem(env.from);
    if (problem === 'address-literal') {
      return { result: 'none', detail: `sender ${env.from} uses an address literal: no domain to look up`, data: { reason: 'address-literal' } };
    }
    if (problem) {
      return { result: 'fail', detail: `sender ${env.from} ${PROBLEM_TEXT[problem]}`, data: { reason: 'non-fqdn', problem } };
    }
    const domain = domainOf(env.from) as string;
    // Texts name the domain as the sender wrote it (a U-label); `data.domain` and DNS use the A-label.
    const shown = displayDomain(domain, env.from);
    // MX first: a real MX proves the domain receives mail, and A/AAAA are not asked at all (issue 17:
    // waiting for A/AAAA that time out after the MX answered cost seconds Postfix did not have). Not
    // asked in parallel and abandoned either: a question left open keeps the evidence out of the
    // shared cache (src/policy/evidence-cache.ts). A domain without a real MX — none, a null MX, or an
    // MX lookup that failed — is judged by its A/AAAA records, as RFC 5321 §5.1's implicit MX.
    const mx = await settle<MxRecord[]>(ctx.resolver.mx(domain));
    const realMx = mx.ok ? mx.value.filter((r) => r.exchange !== '' && r.exchange !== '.') : [];
    if (realMx.length > 0) {
      return { result: 'pass', detail: `sender domain ${shown} has MX ${realMx.map((r) => r.exchange).join(', ')}`, data: { domain } };
    }
    const nullMx = mx.ok && mx.value.length > 0;
    const [a, aaaa] = await Promise.all([settle(ctx.resolver.a(domain)), settle(ctx.resolver.aaaa(domain))]);
    const found: string[] = [];
    if (a.ok && a.value.length > 0) found.push(`A ${a.value.join(', ')}`);
    if (aaaa.ok && aaaa.value.length > 0) found.push(`AAAA ${aaaa.value.join(', ')}`);
    const data: Record<string, unknown> = { domain };
    if (nullMx) data.nullMx = true;
    if (found.length > 0) return { result: 'pass', detail: `sender domain ${shown} has ${found.join('; ')}`, data };
    const faults = [mx, a, aaaa].flatMap((l) => (!l.ok && !l.error.isVoid ? [l.error.message] : []));
    if (faults.length > 0) return { result: 'temperror', detail: `sender domain ${shown}: DNS ${faults.join('; ')}`, data };
    const what = nullMx ? 'a null MX and no A/AAAA records' : 'no MX, A or AAAA records';
    return { result: 'fail', detail: `sender domain ${shown} has ${what}`, data: { ...data, reason: 'unknown-domain' } };
  });
}

/**
 * `rcpt_fqdn`: the current (last) recipient has a fully qualified domain.
 * The bare `postmaster` recipient RFC 5321 §4.5.1 allows is a pass.
 */
export function checkRcptFqdn(env: Envelope): Promise<Evidence> {
  return Promise.resolve(rcptFqdnEvidence(env));
}

/** `rcpt_fqdn` at once: it needs no lookup (the policy's quick path). */
export function rcptFqdnEvidence(env: Envelope): Evidence {
  const e = (r: Omit<Evidence, 'check' | 'ms'>): Evidence => ({ check: 'rcpt_fqdn', ...r, ms: 0 });
  const rcpt = env.rcpts[env.rcpts.length - 1];
  if (rcpt === undefined) return e({ result: 'none', detail: 'no RCPT TO yet' });
  if (/^postmaster$/i.test(rcpt)) return e({ result: 'pass', detail: 'bare postmaster recipient (RFC 5321 §4.5.1)', data: { rcpt } });
  const problem = addressDomainProblem(rcpt);
  if (problem && problem !== 'address-literal') {
    return e({ result: 'fail', detail: `recipient ${rcpt} ${PROBLEM_TEXT[problem]}`, data: { rcpt, reason: 'non-fqdn', problem } });
  }
  return e({ result: 'pass', detail: `recipient ${rcpt} is fully qualified`, data: { rcpt } });
}

/**
 * `null_sender`: `match` for a bounce (MAIL FROM:<>) with one recipient,
 * `fail` for a bounce with more than one — a delivery status notification goes
 * to exactly one address (the original sender), so several recipients mean a
 * spammer using the null sender (Postfix: reject_multi_recipient_bounce).
 * `nomatch` for any other sender, `none` before MAIL FROM.
 */
export function checkNullSender(env: Envelope): Promise<Evidence> {
  return Promise.resolve(nullSenderEvidence(env));
}

/** The everyday answer, for a sender with one recipient so far (at RCPT, nearly always). */
const notNullWithOne = sharedEvidence((from) => ({ check: 'null_sender', result: 'nomatch', detail: `sender ${from} is not the null sender`, ms: 0, data: { rcpts: 1 } }));

/** `null_sender` at once: it needs no lookup (the policy's quick path). */
export function nullSenderEvidence(env: Envelope): Evidence {
  if (env.from === undefined) return { check: 'null_sender', result: 'none', detail: 'no MAIL FROM yet', ms: 0 };
  if (env.from !== '' && env.rcpts.length === 1) return notNullWithOne(env.from);
  const data = { rcpts: env.rcpts.length };
  if (env.from !== '') return { check: 'null_sender', result: 'nomatch', detail: `sender ${env.from} is not the null sender`, ms: 0, data };
  if (env.rcpts.length > 1) {
    return { check: 'null_sender', result: 'fail', detail: `null sender with ${env.rcpts.length} recipients: a bounce goes to one recipient`, ms: 0, data };
  }
  return { check: 'null_sender', result: 'match', detail: 'null sender (bounce)', ms: 0, data };
}
