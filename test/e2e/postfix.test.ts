// End to end: a real Postfix (Debian package) asks frontline through
// check_policy_service; frontline resolves against a fixture DNS world
// (test/fixtures/world.yaml); swaks plays each client through XCLIENT; accepted
// mail is relayed to a sink in this process and read back.
//
// Run: npm run test:e2e  (needs root, postfix and swaks; skipped loudly
// without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadZoneYaml } from '../helpers/fixture-dns.js';
import { delivered } from '../helpers/contrib-files.js';
import { failureReport, servePolicyPostfix, startPostfixBed } from '../helpers/postfix.js';
import { headerValuesOf as headers, sendWithSwaks, type SwaksResult, type SwaksSender } from '../helpers/swaks.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const CONFIG = new URL('../fixtures/e2e-frontline.yaml', import.meta.url).pathname;

test('Postfix with check_policy_service pointing at frontline', { timeout: 240_000 }, async (t) => {
  const bed = await startPostfixBed(t, loadZoneYaml(WORLD), 'frontline-e2e-data-');
  if (!bed) return;
  const { peers, sink } = bed;
  const { frontline, postfix } = await servePolicyPostfix(bed, ['--config', CONFIG, '--data-dir', bed.dir], {
    // XCLIENT LOGIN= sets sasl_username only when SASL is enabled.
    smtpd_sasl_auth_enable: 'yes',
    smtpd_relay_restrictions: 'permit_sasl_authenticated, reject_unauth_destination',
    // No permit_sasl_authenticated/permit_mynetworks here: frontline itself must let the authenticated client through.
  });
  const swaks = (c: SwaksSender & { subject: string }) => sendWithSwaks(peers.swaks, postfix.smtpPort, { ...c, body: `frontline end-to-end test: ${c.subject}` });

  /** frontline's decision log lines for a client; waits for `count` (the log is flushed at least once a second). */
  const decisions = async (client: string, count = 1) => {
    for (let i = 0; ; i++) {
      const found = frontline
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.msg === 'decision' && l.client === client);
      if (found.length >= count || i >= 50) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const debug = (r: SwaksResult) => failureReport(postfix, frontline, r);

  await t.test('a big provider whose HELO does not resolve passes on SPF; the message carries the result headers once', async () => {
    const r = await swaks({
      ip: '198.51.100.10',
      name: 'mta10.outbound.bigprovider-mail.test',
      helo: 'out-of-sync.bigprovider.test',
      from: 'alice@bigprovider.test',
      to: 'u@dest.test,v@dest.test',
      subject: 'provider-bad-helo',
    });
    assert.equal(r.code, 0, debug(r));
    assert.match(r.transcript, /250 2\.0\.0 Ok: queued as/);
    const m = await delivered(sink, 'provider-bad-helo');
    assert.deepEqual(m.rcpts.sort(), ['u@dest.test', 'v@dest.test']);
    const raw = m.data.toString();
    const ar = headers(raw, 'Authentication-Results');
    assert.equal(ar.length, 1, `one Authentication-Results header, not one per recipient:\n${raw}`);
    assert.match(ar[0], /^mx\.dest\.test; .*spf=pass smtp\.mailfrom=bigprovider\.test/);
    assert.equal(headers(raw, 'X-Frontline-SPF').length, 1, 'the second recipient carried the next header');
    assert.match(headers(raw, 'X-Frontline-SPF')[0], /^pass/);
    const d = await decisions('198.51.100.10', 2);
    assert.equal(d.length, 2);
    assert.ok(d.every((x) => x.stage === 'rcpt' && x.action !== undefined && !/^[45]/.test(String(x.action))));
  });

  await t.test('a home PC forging a large ISP (no SPF, PTR outside the domain, no DKIM) is refused 554 5.7.1 at RCPT', async () => {
    const r = await swaks({
      ip: '192.0.2.77',
      name: 'cpe-192-0-2-77.cable.homenet.test',
      helo: 'DESKTOP-4F2K9',
      from: 'bob@bigisp.test',
      to: 'u@dest.test',
      subject: 'forger',
    });
    assert.equal(r.code, 24, `swaks: no RCPT accepted\n${debug(r)}`);
    assert.match(r.transcript, /-> RCPT TO:<u@dest\.test>\s*\n<\*\* +554 5\.7\.1 /);
    assert.match(r.errors[0], /^554 5\.7\.1 .*bigisp\.test did not authorise 192\.0\.2\.77/);
    assert.match(postfix.maillog(), /NOQUEUE: reject: RCPT from cpe-192-0-2-77\.cable\.homenet\.test\[192\.0\.2\.77\]: 554 5\.7\.1/);
    const [d] = await decisions('192.0.2.77');
    assert.equal(d.rule, 'sender-authorised');
  });

  await t.test('a DNSBL-listed client is refused with the list named', async () => {
    const r = await swaks({
      ip: '192.0.2.200',
      name: '[UNAVAILABLE]',
      helo: 'mail.legit.test',
      from: 'dave@legit.test',
      to: 'u@dest.test',
      subject: 'listed',
    });
    assert.equal(r.code, 24, debug(r));
    assert.match(r.errors[0], /^554 5\.7\.1 .*bl\.test/);
    const [d] = await decisions('192.0.2.200');
    assert.equal(d.rule, 'dnsbl');
  });

  await t.test("a DNS timeout on the sender's domain is answered 4xx, never 5xx", async () => {
    const r = await swaks({
      ip: '192.0.2.88',
      name: '[UNAVAILABLE]',
      helo: 'mail.slowdns.test',
      from: 'carol@slowdns.test',
      to: 'u@dest.test',
      subject: 'slow-dns',
    });
    assert.equal(r.code, 24, debug(r));
    assert.ok(r.errors.length > 0, debug(r));
    for (const e of r.errors) assert.match(e, /^4\d\d 4\.\d+\.\d+ /, `only temporary errors: ${e}`);
    assert.doesNotMatch(r.transcript, /<\*\* +5\d\d/);
    const [d] = await decisions('192.0.2.88');
    assert.equal(d.verdict, 'defer');
  });

  await t.test('an authenticated client passes even from an address that would be refused', async () => {
    const r = await swaks({
      ip: '192.0.2.99',
      name: '[UNAVAILABLE]',
      helo: 'laptop',
      from: 'joe@bigisp.test',
      to: 'u@dest.test',
      login: 'joe',
      subject: 'authenticated',
    });
    assert.equal(r.code, 0, debug(r));
    await delivered(sink, 'authenticated');
    const [d] = await decisions('192.0.2.99');
    assert.equal(d.rule, 'authenticated');
    assert.equal(d.sasl, 'joe');
  });
});
