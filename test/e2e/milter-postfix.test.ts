// End to end: a real Postfix (Debian package, a private instance in a temp
// dir) with `frontline serve --milter-listen` as its smtpd_milters, the
// fixture DNS server, swaks as the client. Postfix is set up as docs/milter.md
// says (milter_default_action = tempfail, the macros frontline reads).
//
// Run: npm run test:e2e (needs root, postfix and swaks; skipped loudly without
// them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { startFixtureDns } from '../helpers/fixture-dns.js';
import { startServe, type ServingCli } from '../helpers/cli.js';
import { cleanupStack, failureReport, requirePostfixPeers, startTestPostfix, tempDirFor, virtualMailboxes } from '../helpers/postfix.js';
import { milterTestZone } from '../helpers/milter-world.js';
import { generateKey, plainMessage, signMessage } from '../helpers/signed-mail.js';
import { headerValuesOf, sendAsLocalClient, writeDataFile, type SwaksResult } from '../helpers/swaks.js';

/** The milter address from `frontline serve`'s stderr. */
function milterAddress(s: ServingCli): string {
  const m = /frontline milter on (\S+)/.exec(s.stderr());
  if (!m) throw new Error(`no milter line in:\n${s.stderr()}`);
  return m[1];
}

/** main.cf lines of docs/milter.md ("Postfix setup"), with the test's milter address. */
export function milterMainCf(address: string): Record<string, string> {
  return {
    smtpd_milters: address,
    non_smtpd_milters: '',
    milter_default_action: 'tempfail',
    milter_protocol: '6',
    milter_connect_macros: 'j _ {daemon_name} {daemon_addr} {client_addr} {client_name} {client_ptr}',
    milter_mail_macros: 'i {auth_type} {auth_authen} {auth_author} {mail_addr}',
    milter_rcpt_macros: 'i {rcpt_addr}',
    milter_end_of_data_macros: 'i',
  };
}

const RULES = `
policy:
  rules:
    - { name: spf-fail, if: spf=fail, action: reject, code: 550, status: 5.7.23, text: "SPF says {ip} may not send for {from_domain}", stage: rcpt }
    - { name: dmarc-reject, if: { all: [dmarc=fail, dmarc.policy=reject] }, action: reject, code: 550, status: 5.7.1, text: "the From domain's DMARC policy says reject" }
    - { name: authorised, if: { any: [spf=pass, dkim_domain=match] }, action: accept }
    - { name: unauthorised, if: { not: { any: [spf=pass, dkim_domain=match] } }, action: reject, code: 554, status: 5.7.1, text: "{from_domain} did not authorise {ip}" }
`;

test('frontline as a milter of a real Postfix', { timeout: 300_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const cleanup = cleanupStack(t);
  const tmp = tempDirFor(cleanup, 'frontline-milter-e2e-');

  const key = generateKey();
  const dns = await startFixtureDns(milterTestZone(key, 'ip4:127.0.0.1'));
  cleanup.push(() => dns.close());

  const configFile = join(tmp, 'frontline.yaml');
  writeFileSync(configFile, `my_networks: []\ndns: { timeout_ms: 500, retries: 0 }\nheaders: { authserv_id: milter.test }\nmilter: { max_body: 65536 }\n${RULES}`);
  const milterPort = await freePort();
  const serveMilter = async () => {
    const s = await startServe(['--config', configFile, '--dns', dns.server, '--policy-listen', '127.0.0.1:0', '--data-dir', join(tmp, 'data'), '--milter-listen', `inet:127.0.0.1:${milterPort}`], { timeoutMs: 120_000 });
    return s;
  };
  let serving = await serveMilter();
  cleanup.push(() => serving.stop());
  assert.equal(milterAddress(serving), `inet:127.0.0.1:${milterPort}`);

  const { mainCf: mailboxes, mailbox, delivered } = virtualMailboxes(tmp, ['bob', 'carol']);
  const postfix = await startTestPostfix(cleanup, {
    postfixBin: peers.postfix,
    relayDomains: [],
    sinkPort: 9,
    mainCf: { ...mailboxes, ...milterMainCf(`inet:127.0.0.1:${milterPort}`) },
  });

  const debug = (r?: SwaksResult) => failureReport(postfix, serving, r);
  const send = (from: string, to: string, extra: string[]) => sendAsLocalClient(peers.swaks, postfix.smtpPort, from, to, extra);
  const dataFile = (name: string, msg: Buffer) => writeDataFile(join(tmp, name), msg);

  const signed = await signMessage(plainMessage({ from: 'alice@dkim-only.test', to: 'bob@dest.test', subject: 'dkim-signed', body: 'Signed by dkim-only.test.\r\n' }), { domain: 'dkim-only.test', key });

  await t.test('a DKIM-signed message is accepted and delivered with dkim=pass in Authentication-Results', async () => {
    const r = await send('alice@dkim-only.test', 'bob@dest.test', ['--data', `@${dataFile('signed.eml', signed)}`, '--no-data-fixup']);
    assert.equal(r.code, 0, debug(r));
    const m = await delivered('bob', 'dkim-signed');
    const ar = headerValuesOf(m, 'Authentication-Results');
    assert.equal(ar.length, 1, m);
    assert.match(ar[0], /^milter\.test; .*dkim=pass [^;]*header\.d=dkim-only\.test/, m);
    // On top of the message, above Postfix's own Received line.
    assert.match(m, /^[^\n]*\n(?:[^\n]*\n)*?Authentication-Results: milter\.test;[\s\S]*Received: from/);
  });

  await t.test('a forged From of a DMARC p=reject domain is refused 550 at end of DATA', async () => {
    const forged = plainMessage({ from: 'ceo@strict.test', to: 'bob@dest.test', subject: 'forged-from' });
    const r = await send('alice@spf-ok.test', 'bob@dest.test', ['--data', `@${dataFile('forged.eml', forged)}`, '--no-data-fixup']);
    assert.notEqual(r.code, 0, debug(r));
    assert.match(r.transcript, /-> RCPT TO:<bob@dest\.test>\s*\n<- +250 /, debug(r));
    assert.match(r.transcript, /\r?\n<\*\* +550 5\.7\.1 the From domain's DMARC policy says reject/, debug(r));
    await new Promise((res) => setTimeout(res, 500));
    assert.doesNotMatch(mailbox('bob'), /Subject: forged-from/);
  });

  await t.test('an SPF-only refusal comes at RCPT with the rule code and text', async () => {
    const r = await send('x@hardfail.test', 'bob@dest.test', ['--header', 'Subject: spf-hardfail']);
    assert.notEqual(r.code, 0, debug(r));
    assert.match(r.transcript, /-> RCPT TO:<bob@dest\.test>\s*\n<\*\* +550 5\.7\.23 SPF says 127\.0\.0\.1 may not send for hardfail\.test/, debug(r));
  });

  await t.test('forged Authentication-Results with our authserv-id are removed; a foreign one is kept', async () => {
    const msg = plainMessage({
      from: 'alice@spf-ok.test',
      to: 'carol@dest.test',
      subject: 'forged-ar',
      extra: ['Authentication-Results: milter.test; dkim=pass header.d=bank.example', 'Authentication-Results: other.example; spf=pass', 'X-Frontline-SPF: pass (forged)'],
    });
    const r = await send('alice@spf-ok.test', 'carol@dest.test', ['--data', `@${dataFile('forged-ar.eml', msg)}`, '--no-data-fixup']);
    assert.equal(r.code, 0, debug(r));
    const m = await delivered('carol', 'forged-ar');
    const ar = headerValuesOf(m, 'Authentication-Results');
    assert.equal(ar.length, 2, m);
    assert.ok(ar.some((v) => /^milter\.test; spf=pass smtp\.mailfrom=spf-ok\.test/.test(v)), m);
    assert.ok(ar.some((v) => v.startsWith('other.example;')), m);
    assert.doesNotMatch(m, /bank\.example/);
    assert.deepEqual(headerValuesOf(m, 'X-Frontline-SPF').filter((v) => v.includes('forged')), []);
  });

  await t.test('a body over milter.max_body is skipped: the message is judged on what was read, DKIM counts as not verified', async () => {
    const big = await signMessage(plainMessage({ from: 'alice@dkim-only.test', to: 'bob@dest.test', subject: 'dkim-big', body: `${'z'.repeat(76)}\r\n`.repeat(2000) }), { domain: 'dkim-only.test', key });
    const r = await send('alice@dkim-only.test', 'bob@dest.test', ['--data', `@${dataFile('big.eml', big)}`, '--no-data-fixup']);
    assert.notEqual(r.code, 0, debug(r));
    assert.match(r.transcript, /<\*\* +554 5\.7\.1 dkim-only\.test did not authorise 127\.0\.0\.1/, debug(r));
  });

  await t.test('frontline down: Postfix answers 4xx (milter_default_action = tempfail), never accepts, never 5xx', async () => {
    await serving.stop();
    const r = await send('alice@dkim-only.test', 'bob@dest.test', ['--data', `@${dataFile('signed2.eml', signed)}`, '--no-data-fixup']);
    assert.notEqual(r.code, 0, debug(r));
    assert.ok(r.errors.length > 0, debug(r));
    for (const e of r.errors) assert.match(e, /^4\d\d /, debug(r));
    assert.match(r.errors[0], /^451 4\.7\.1 /, debug(r));
    assert.match(postfix.maillog(), /milter inet:127\.0\.0\.1:\d+: can't (connect|read)|Connection refused/, debug(r));
    // Back up: mail flows again.
    serving = await serveMilter();
    const again = await send('someone@spf-ok.test', 'carol@dest.test', ['--header', 'Subject: back-up']);
    assert.equal(again.code, 0, debug(again));
    await delivered('carol', 'back-up');
  });
});
