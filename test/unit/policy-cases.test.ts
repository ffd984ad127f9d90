// The cases the issue is judged on, through the shipped default policy over
// in-memory DNS worlds.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { header, run, world } from '../helpers/policy-world.js';
import { generateKey, plainMessage, signMessage } from '../helpers/signed-mail.js';

// A big provider: SPF authorises its outbound range; its HELO name does not
// resolve to the sending IP; PTR names lie in an infrastructure domain.
// A large ISP: MX and A records, no SPF; a home cable client whose PTR lies
// in another domain.
const WORLD = `
bigmail.example:
  - TXT: "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:b16::/48 -all"
  - MX: [10, mx.bigmail.example]
mx.bigmail.example:
  - A: 198.51.100.200
7.100.51.198.in-addr.arpa:
  - PTR: o7.outbound.bigmail-infra.example
o7.outbound.bigmail-infra.example:
  - A: 198.51.100.7
isp.example:
  - MX: [10, mx.isp.example]
  - A: 203.0.113.5
mx.isp.example:
  - A: 203.0.113.10
  - AAAA: 2001:db8:15b::10
77.2.0.192.in-addr.arpa:
  - PTR: c-192-0-2-77.cable.homenet.example
c-192-0-2-77.cable.homenet.example:
  - A: 192.0.2.77
smallorg.example:
  - MX: [10, mail.smallorg.example]
mail.smallorg.example:
  - A: 192.0.2.25
  - AAAA: 2001:db8:5::25
25.2.0.192.in-addr.arpa:
  - PTR: mail.smallorg.example
other-host.smallorg.example:
  - A: 192.0.2.26
26.2.0.192.in-addr.arpa:
  - PTR: other-host.smallorg.example
slowdomain.example:
  - TIMEOUT
nofqdn:
  - A: 192.0.2.200
`;

const PROVIDER = { clientIp: '198.51.100.7', helo: 'smtp-out-7.bigmail.example', from: 'alice@bigmail.example', rcpts: ['bob@dest.example'] };
const FORGER = { clientIp: '192.0.2.77', helo: 'home-pc', from: 'carol@isp.example', rcpts: ['bob@dest.example'] };

describe('headline cases (default policy)', () => {
  test('(a) big provider with a HELO that does not resolve to it, passing SPF: accepted with spf=pass', async () => {
    const w = world(WORLD);
    const v = await run(w, PROVIDER);
    assert.equal(v.action, 'continue');
    assert.equal(v.rule, 'default');
    assert.equal(v.stage, 'rcpt');
    const ar = header(v, 'Authentication-Results');
    assert.ok(ar?.startsWith('mx.test; '), ar);
    assert.match(ar ?? '', /spf=pass smtp\.mailfrom=bigmail\.example/);
    assert.match(header(v, 'X-Frontline-SPF') ?? '', /^pass \(/);
    assert.equal(v.evidence.find((e) => e.check === 'spf')?.result, 'pass');
  });

  test('(b) home PC forging an ISP without SPF, PTR outside, no DKIM: 554 5.7.1 rejected by policy at RCPT', async () => {
    const w = world(WORLD);
    const v = await run(w, FORGER);
    assert.equal(v.action, 'reject');
    assert.equal(v.code, 554);
    assert.equal(v.status, '5.7.1');
    assert.equal(v.rule, 'sender-authorised');
    assert.equal(v.stage, 'rcpt');
    assert.match(v.text ?? '', /rejected by policy: isp\.example did not authorise 192\.0\.2\.77/);
    assert.deepEqual(v.headers, []);
    const results = Object.fromEntries(v.evidence.map((e) => [e.check, e.result]));
    assert.equal(results.spf, 'none');
    assert.equal(results.mx, 'nomatch');
    assert.equal(results.fcrdns_domain, 'nomatch');
    assert.equal(results.dkim_domain, 'none');
    assert.match(v.evidence.find((e) => e.check === 'dkim_domain')?.detail ?? '', /not visible/);
  });

  test('(b) when the frontend sees the message: UNKNOWN at RCPT (continue), decided at end of data', async () => {
    const w = world(WORLD);
    const tx = w.policy.transaction({ seesMessage: true });
    const atRcpt = await tx.evaluate('rcpt', FORGER);
    assert.equal(atRcpt.action, 'continue');
    assert.equal(atRcpt.rule, 'sender-authorised');
    const atData = await tx.evaluate('data', FORGER);
    assert.equal(atData.action, 'continue');
    const message = plainMessage({ from: 'carol@isp.example' });
    const atEom = await tx.evaluate('eom', { ...FORGER, message });
    assert.equal(atEom.action, 'reject');
    assert.equal(atEom.code, 554);
    assert.equal(atEom.stage, 'eom');
  });

  test('(b) with a valid DKIM signature of the ISP, the message is accepted at end of data', async () => {
    const key = generateKey();
    const w = world(`${WORLD}\ns._domainkey.isp.example:\n  - TXT: ${JSON.stringify(key.txt)}\n`);
    const tx = w.policy.transaction({ seesMessage: true });
    assert.equal((await tx.evaluate('rcpt', FORGER)).action, 'continue');
    const message = await signMessage(plainMessage({ from: 'carol@isp.example' }), { domain: 'isp.example', key });
    const v = await tx.evaluate('eom', { ...FORGER, message });
    assert.equal(v.action, 'continue');
    assert.equal(v.rule, 'default');
    assert.match(header(v, 'Authentication-Results') ?? '', /dkim=pass header\.d=isp\.example header\.s=s/);
  });

  test('a client that is an MX host of the sender domain passes without SPF', async () => {
    const v = await run(world(WORLD), { clientIp: '192.0.2.25', helo: 'mail.smallorg.example', from: 'x@smallorg.example', rcpts: ['y@dest.example'] });
    assert.equal(v.action, 'continue');
    assert.equal(v.evidence.find((e) => e.check === 'mx')?.result, 'match');
  });

  test('a client whose confirmed PTR lies in the sender domain passes without SPF or MX', async () => {
    const v = await run(world(WORLD), { clientIp: '192.0.2.26', helo: 'other-host.smallorg.example', from: 'x@smallorg.example', rcpts: ['y@dest.example'] });
    assert.equal(v.action, 'continue');
    assert.equal(v.evidence.find((e) => e.check === 'fcrdns_domain')?.result, 'match');
    assert.match(header(v, 'Authentication-Results') ?? '', /iprev=pass policy\.iprev=192\.0\.2\.26 \(other-host\.smallorg\.example\)/);
  });

  test('a DNS timeout on the sender domain gives 4xx, never 5xx', async () => {
    const v = await run(world(WORLD), { clientIp: '192.0.2.77', helo: 'home-pc', from: 'x@slowdomain.example', rcpts: ['y@dest.example'] });
    assert.equal(v.action, 'defer');
    assert.equal(v.code, 451);
    assert.equal(v.status, '4.4.3');
    assert.match(v.text ?? '', /^temporary failure: sender_domain: /);
    // issue 17: under its own rule name, not as a fault of sender-fqdn.
    assert.equal(v.rule, 'sender-domain-fault');
  });

  test('an authenticated client is accepted even from a forging position', async () => {
    const v = await run(world(WORLD), { ...FORGER, saslUser: 'carol' });
    assert.equal(v.action, 'accept');
    assert.equal(v.rule, 'authenticated');
  });

  test('my_networks are accepted', async () => {
    const v = await run(world(WORLD), { ...FORGER, clientIp: '127.0.0.1' });
    assert.equal(v.action, 'accept');
    assert.equal(v.rule, 'my-networks');
  });

  test('a bounce (null sender) is not refused by the sender rule; a multi-recipient bounce is 550 5.5.3', async () => {
    const w = world(WORLD);
    const tx = w.policy.transaction({ seesMessage: false });
    const bounce = { clientIp: '192.0.2.77', helo: 'home-pc', from: '', rcpts: ['a@dest.example'] };
    assert.equal((await tx.evaluate('rcpt', bounce)).action, 'continue');
    const second = await tx.evaluate('rcpt', { ...bounce, rcpts: ['a@dest.example', 'b@dest.example'] });
    assert.equal(second.action, 'reject');
    assert.equal(second.code, 550);
    assert.equal(second.status, '5.5.3');
  });

  test('a non-FQDN sender is 504 5.5.2; an unknown sender domain is 450 4.1.8', async () => {
    const w = world(WORLD);
    const a = await run(w, { ...FORGER, from: 'x@nofqdn' });
    assert.deepEqual([a.action, a.code, a.status, a.rule], ['reject', 504, '5.5.2', 'sender-fqdn']);
    const b = await run(w, { ...FORGER, from: 'x@no-such-domain.example' });
    assert.deepEqual([b.action, b.code, b.status, b.rule], ['defer', 450, '4.1.8', 'unknown-sender-domain']);
  });

  test('a DNSBL-listed client is refused with the list named; DNSWL wins over it', async () => {
    const zones = `${WORLD}
2.0.0.127.bl.example:
  - A: 127.0.0.2
77.2.0.192.bl.example:
  - A: 127.0.0.4
7.100.51.198.bl.example:
  - A: 127.0.0.4
7.100.51.198.wl.example:
  - A: 127.0.0.2
`;
    const cfg = 'checks:\n  dnsbl: { zones: ["bl.example=127.0.0.[2..11]"] }\n  dnswl: { zones: [wl.example] }\n';
    const w = world(zones, cfg);
    const v = await run(w, FORGER);
    assert.deepEqual([v.action, v.code, v.rule], ['reject', 554, 'dnsbl']);
    assert.match(v.text ?? '', /bl\.example/);
    const ok = await run(w, PROVIDER);
    assert.deepEqual([ok.action, ok.rule], ['accept', 'dnswl']);
  });
});

describe('IPv6 clients', () => {
  test('a provider host on IPv6 passing SPF ip6 is accepted', async () => {
    const v = await run(world(WORLD), { ...PROVIDER, clientIp: '2001:db8:b16::7' });
    assert.equal(v.action, 'continue');
    assert.match(header(v, 'Authentication-Results') ?? '', /spf=pass/);
  });

  test('an IPv6 MX host of the sender domain passes', async () => {
    const v = await run(world(WORLD), { clientIp: '2001:db8:15b::10', helo: 'mx.isp.example', from: 'x@isp.example', rcpts: ['y@dest.example'] });
    assert.equal(v.action, 'continue');
    assert.equal(v.evidence.find((e) => e.check === 'mx')?.result, 'match');
  });

  test('an IPv6 home client forging the ISP is refused', async () => {
    const v = await run(world(WORLD), { ...FORGER, clientIp: '2001:db8:ffff::77' });
    assert.deepEqual([v.action, v.code, v.rule], ['reject', 554, 'sender-authorised']);
  });

  test('an IPv6 client listed by nibble in a DNSBL is refused; ::1 is in my_networks', async () => {
    const nib = '7.7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.f.f.8.b.d.0.1.0.0.2';
    const w = world(`${WORLD}\n2.0.0.127.bl.example:\n  - A: 127.0.0.2\n${nib}.bl.example:\n  - A: 127.0.0.2\n`, 'checks: { dnsbl: { zones: [bl.example] } }');
    const v = await run(w, { ...FORGER, clientIp: '2001:db8:ffff::77' });
    assert.deepEqual([v.action, v.rule], ['reject', 'dnsbl']);
    const local = await run(w, { ...FORGER, clientIp: '::1' });
    assert.deepEqual([local.action, local.rule], ['accept', 'my-networks']);
  });
});
