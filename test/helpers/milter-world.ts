// The DNS world and rules of the milter frontend's unit tests and miltertest
// scripts (test/milter/*.lua), also the world of the milter and gate e2e
// tests: 192.0.2.10 sends for spf-ok.test (SPF passes; the e2e tests name the
// hosts their client comes from); dkim-only.test publishes no SPF and signs
// with the given key; strict.test publishes DMARC p=reject; hardfail.test has
// SPF -all.

import { Zone } from '../../src/dns/zone.js';
import { generateKey, type TestKey } from './signed-mail.js';

/** `spfOkHosts`: the SPF mechanisms of spf-ok.test before its -all. */
export function milterTestZone(key: TestKey = generateKey(), spfOkHosts = 'ip4:192.0.2.10'): Zone {
  return new Zone({
    'spf-ok.test': [{ TXT: `v=spf1 ${spfOkHosts} -all` }, { MX: [10, 'mx.spf-ok.test'] }],
    'mx.spf-ok.test': [{ A: '203.0.113.7' }],
    'dkim-only.test': [{ MX: [10, 'mx.dkim-only.test'] }],
    'mx.dkim-only.test': [{ A: '203.0.113.5' }],
    's._domainkey.dkim-only.test': [{ TXT: key.txt }],
    'strict.test': [{ MX: [10, 'mx.strict.test'] }, { TXT: 'v=spf1 ip4:203.0.113.9 -all' }],
    'mx.strict.test': [{ A: '203.0.113.9' }],
    '_dmarc.strict.test': [{ TXT: 'v=DMARC1; p=reject' }],
    'hardfail.test': [{ TXT: 'v=spf1 -all' }, { MX: [10, 'mx.hardfail.test'] }],
    'mx.hardfail.test': [{ A: '203.0.113.11' }],
  });
}

/** SPF-only refusal at RCPT, DMARC p=reject at end of message, then authorised (SPF or DKIM) or not. */
export const MILTER_TEST_CONFIG = `
my_networks: []
headers: { authserv_id: mx.test }
policy:
  rules:
    - { name: spf-fail, if: spf=fail, action: reject, code: 550, status: 5.7.23, text: "SPF says {ip} may not send for {from_domain}", stage: rcpt }
    - { name: dmarc-reject, if: { all: [dmarc=fail, dmarc.policy=reject] }, action: reject, code: 550, status: 5.7.1, text: "the From domain's DMARC policy says reject" }
    - { name: authorised, if: { any: [spf=pass, dkim_domain=match] }, action: accept }
    - { name: unauthorised, if: { not: { any: [spf=pass, dkim_domain=match] } }, action: reject, code: 554, status: 5.7.1, text: "not authorised" }
`;
