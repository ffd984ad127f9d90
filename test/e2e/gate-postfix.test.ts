// End to end: `frontline serve` runs the SMTP gate (a separate process, so it
// can be SIGKILLed) in front of a real Postfix (Debian package, a private
// instance in a temp dir) that delivers to virtual mailboxes in a temp dir.
// DNS is the fixture DNS server with a zone built here (a DKIM key generated
// at test time). swaks and a scripted client play the senders.
//
// Arrangements:
//   A  client → gate A → Postfix smtpd (XCLIENT)                   [standalone]
//   B  client → Postfix smtpd (smtpd_proxy_filter) → gate B → Postfix
//      after-filter smtpd (XFORWARD)                                [before-queue proxy]
//   C  client → gate → Postfix with its defaults (mynetworks_style = host,
//      smtpd_authorized_xclient_hosts empty): issue 16's open relay  [no relay as itself]
//
// Run: npm run test:e2e (needs root, postfix and swaks; skipped loudly without
// them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Zone } from '../../src/dns/zone.js';
import { freePort } from '../helpers/ports.js';
import { startFixtureDns } from '../helpers/fixture-dns.js';
import { startServe, type ServingCli } from '../helpers/cli.js';
import { cleanupStack, failureReport, requirePostfixPeers, startTestPostfix, tempDirFor, virtualMailboxes } from '../helpers/postfix.js';
import { milterTestZone } from '../helpers/milter-world.js';
import { generateKey, plainMessage, signMessage } from '../helpers/signed-mail.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { headerValuesOf as headers, sendAsLocalClient, sendWithSwaks, waitFor, writeDataFile, type SwaksResult } from '../helpers/swaks.js';

/** The gate's address from `frontline serve`'s stderr. */
function gatePort(s: ServingCli): number {
  const m = /frontline gate on \S+:(\d+)/.exec(s.stderr());
  if (!m) throw new Error(`no gate line in:\n${s.stderr()}`);
  return Number(m[1]);
}

/** `frontline serve` with its gate in front of 127.0.0.1:backendPort and the config `yaml`, stopped after the test. */
async function serveGate(cleanup: Array<() => Promise<unknown>>, tmp: string, dnsServer: string, backendPort: number, yaml: string) {
  const config = join(tmp, `frontline-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(config, yaml);
  const s = await startServe([
    '--config', config,
    '--dns', dnsServer,
    '--policy-listen', '127.0.0.1:0',
    '--data-dir', join(tmp, `data-${Math.random().toString(36).slice(2)}`),
    '--gate-listen', '127.0.0.1:0',
    '--gate-backend', `127.0.0.1:${backendPort}`,
  ]);
  cleanup.push(() => s.stop());
  return { serving: s, port: gatePort(s) };
}

test('the SMTP gate in front of a real Postfix', { timeout: 300_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const cleanup = cleanupStack(t);
  const tmp = tempDirFor(cleanup, 'frontline-gate-e2e-');

  // --- DNS: dkim-only.test authorises nobody but its DKIM key; spf-ok.test authorises 127.0.0.1.
  const key = generateKey();
  const dns = await startFixtureDns(milterTestZone(key, 'ip4:127.0.0.1 ip4:192.0.2.0/24'));
  cleanup.push(() => dns.close());

  // --- Postfix: virtual mailboxes for bob and carol at dest.test, XCLIENT/XFORWARD from loopback.
  const { mainCf: mailboxes, mailbox, delivered } = virtualMailboxes(tmp, ['bob', 'carol']);
  const postfix = await startTestPostfix(cleanup, {
    postfixBin: peers.postfix,
    relayDomains: [],
    sinkPort: 9,
    mainCf: { ...mailboxes, smtpd_authorized_xforward_hosts: '127.0.0.0/8' },
  });
  const smtpPort = postfix.smtpPort;

  // --- frontline config: 127.0.0.1 is not "my network" here, so the clients must earn acceptance.
  const serveGateA = (backendPort: number, extra = '') =>
    serveGate(
      cleanup,
      tmp,
      dns.server,
      backendPort,
      `my_networks: []
dns: { timeout_ms: 500, retries: 0 }
headers: { authserv_id: gate.test }
gate:
  hostname: gate.test
  greet_wait_ms: 300
  door_cache_ttl_s: 0   # every connection comes from 127.0.0.1: test each one at the door
  backend_options: { data_timeout_s: 20 }
${extra}`,
    );
  const gateA = await serveGateA(smtpPort);
  const debug = (r?: SwaksResult) => failureReport(postfix, gateA.serving, r);

  const signed = await signMessage(plainMessage({ from: 'alice@dkim-only.test', to: 'bob@dest.test', subject: 'dkim-only', body: 'Signed by dkim-only.test.\r\n' }), {
    domain: 'dkim-only.test',
    key,
  });
  const signedFile = writeDataFile(join(tmp, 'signed.eml'), signed);
  const tamperedFile = writeDataFile(join(tmp, 'tampered.eml'), signed.toString().replace('Subject: dkim-only', 'Subject: tampered').replace('Signed by', 'Tampered by'));

  const viaGate = (port: number, from: string, to: string, extra: string[]) => sendAsLocalClient(peers.swaks, port, from, to, extra);

  await t.test('a message whose only credential is a valid DKIM signature reaches the mailbox with Authentication-Results', async () => {
    const r = await viaGate(gateA.port, 'alice@dkim-only.test', 'bob@dest.test', ['--data', `@${signedFile}`, '--no-data-fixup']);
    assert.equal(r.code, 0, debug(r));
    // Postfix's own final reply (to BDAT: "Ok: N bytes queued as …"), relayed.
    assert.match(r.transcript, /<- {2}250 2\.0\.0 Ok: (\d+ bytes )?queued as [0-9A-F]+/, 'the client got Postfix\'s own queue id');
    assert.doesNotMatch(r.transcript, /<\*\*/, 'no error replies at all');
    const m = await delivered('bob', 'dkim-only');
    const ar = headers(m, 'Authentication-Results');
    assert.equal(ar.length, 1, m);
    assert.match(ar[0], /^gate\.test; .*dkim=pass [^;]*header\.d=dkim-only\.test/);
    assert.match(postfix.maillog(), /client=localhost\[127\.0\.0\.1\]|client=unknown\[127\.0\.0\.1\]/, 'XCLIENT: Postfix logs the real client');
  });

  await t.test('the same message with a modified body is refused 554 at end of DATA', async () => {
    const r = await viaGate(gateA.port, 'alice@dkim-only.test', 'bob@dest.test', ['--data', `@${tamperedFile}`, '--no-data-fixup']);
    assert.notEqual(r.code, 0, debug(r));
    assert.match(r.transcript, /<\*\* +554 5\.7\.1 /, debug(r));
    assert.match(r.transcript, /-> RCPT TO:<bob@dest\.test>\s*\n<- +250 /, 'RCPT accepted: undecided until the message is seen');
    await new Promise((res) => setTimeout(res, 1000));
    assert.doesNotMatch(mailbox('bob'), /Subject: tampered/);
  });

  await t.test('a recipient Postfix does not know is refused at RCPT by Postfix', async () => {
    const r = await viaGate(gateA.port, 'someone@spf-ok.test', 'nobody@dest.test', ['--header', 'Subject: unknown-rcpt']);
    assert.equal(r.code, 24, `no recipient accepted\n${debug(r)}`);
    assert.match(r.errors[0] ?? '', /^550 5\.1\.1 <nobody@dest\.test>: Recipient address rejected/, debug(r));
  });

  await t.test('swaks with PIPELINING through the gate: accepted, delivered', async () => {
    const r = await viaGate(gateA.port, 'someone@spf-ok.test', 'carol@dest.test', ['--pipeline', '--header', 'Subject: pipelined']);
    assert.equal(r.code, 0, debug(r));
    const m = await delivered('carol', 'pipelined');
    assert.match(headers(m, 'Authentication-Results')[0] ?? '', /spf=pass smtp\.mailfrom=spf-ok\.test/);
  });

  await t.test('a pregreeting client is refused', async () => {
    const c = await SmtpTalk.connect(gateA.port);
    c.send('EHLO eager.example.com');
    assert.equal((await c.reply(3000)).code, 220);
    const r = await c.reply();
    assert.equal(r.code, 554);
    assert.equal((await c.command('MAIL FROM:<someone@spf-ok.test>')).code, 554);
    c.close();
  });

  await t.test('Postfix smtpd_proxy_filter → gate → after-filter smtpd with XFORWARD: Postfix logs the real client', async () => {
    const afterPort = await freePort();
    const proxyPort = await freePort();
    // The after-filter trusts the front smtpd's relay check (mynetworks = 127.0.0.0/8): XFORWARD, chosen explicitly.
    const gateB = await serveGateA(afterPort, '  xforward_hosts: [127.0.0.1]\n  backend_identity: xforward\n');
    // SMTPD_PROXY_README's arrangement, with the gate as the proxy filter.
    appendFileSync(
      join(postfix.dir, 'conf', 'master.cf'),
      `127.0.0.1:${proxyPort} inet n - n - - smtpd
  -o smtpd_proxy_filter=127.0.0.1:${gateB.port}
  -o syslog_name=postfix/before-filter
127.0.0.1:${afterPort} inet n - n - - smtpd
  -o syslog_name=postfix/after-filter
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
  -o smtpd_authorized_xclient_hosts=
  -o smtpd_client_restrictions=
  -o smtpd_helo_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_data_restrictions=
  -o mynetworks=127.0.0.0/8
  -o receive_override_options=no_unknown_recipient_checks
`,
    );
    await postfix.control('reload');
    await new Promise((res) => setTimeout(res, 1500));
    const r = await sendWithSwaks(peers.swaks, proxyPort, { ip: '192.0.2.50', helo: 'mail.spf-ok.test', from: 'someone@spf-ok.test', to: 'bob@dest.test', subject: 'proxied' });
    assert.equal(r.code, 0, `${debug(r)}\n--- gate B ---\n${gateB.serving.stdout()}${gateB.serving.stderr()}`);
    const m = await delivered('bob', 'proxied');
    assert.match(headers(m, 'Authentication-Results')[0] ?? '', /^gate\.test; .*spf=pass smtp\.mailfrom=spf-ok\.test/, 'gate B judged the real client (SPF of 192.0.2.50)');
    // XFORWARD: the after-filter smtpd logs the client the gate forwarded as orig_client.
    assert.match(postfix.maillog(), /postfix\/after-filter\/smtpd\[\d+\]: [0-9A-F]+: client=\S+, orig_queue_id=\S+, orig_client=unknown\[192\.0\.2\.50\]/, debug());

    // A client whose sender does not authorise it is refused by the gate, through Postfix, at RCPT.
    const bad = await sendWithSwaks(peers.swaks, proxyPort, { ip: '198.51.100.99', helo: 'somewhere.example', from: 'alice@dkim-only.test', to: 'bob@dest.test', subject: 'unsigned' });
    assert.notEqual(bad.code, 0, debug(bad));
    assert.match(bad.transcript, /<\*\* +554 5\.7\.1 /, debug(bad));

    // SIGKILL of the gate during DATA: the client sees no 250 (the connection drops).
    const c = await SmtpTalk.connect(gateB.port);
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command('EHLO mx.dest.test')).code, 250);
    assert.equal((await c.command('XFORWARD ADDR=192.0.2.51 NAME=[UNAVAILABLE] HELO=mail.spf-ok.test')).code, 250);
    assert.equal((await c.command('MAIL FROM:<someone@spf-ok.test>')).code, 250);
    assert.equal((await c.command('RCPT TO:<bob@dest.test>')).code, 250);
    assert.equal((await c.command('DATA')).code, 354);
    c.sendRaw('Subject: killed-gate\r\n\r\nhalf a message\r\n');
    await new Promise((res) => setTimeout(res, 200));
    gateB.serving.child.kill('SIGKILL');
    assert.ok(await c.waitClosed(5000), 'the connection drops');
    assert.doesNotMatch(c.transcript, /^250 .*queued/m);
    await new Promise((res) => setTimeout(res, 1000));
    assert.doesNotMatch(mailbox('bob'), /killed-gate/);
  });

  await t.test('the backend dies during DATA: the client gets a 4xx, never a 250', async () => {
    const c = await SmtpTalk.connect(gateA.port);
    assert.equal((await c.reply(3000)).code, 220);
    assert.equal((await c.command('EHLO client.example.com')).code, 250);
    assert.equal((await c.command('MAIL FROM:<someone@spf-ok.test>')).code, 250);
    assert.equal((await c.command('RCPT TO:<bob@dest.test>')).code, 250);
    assert.equal((await c.command('DATA')).code, 354);
    c.sendRaw('Subject: killed-backend\r\n\r\nhalf a message\r\n');
    await postfix.control('abort');
    await new Promise((res) => setTimeout(res, 1500));
    c.sendRaw('the other half\r\n.\r\n');
    const r = await c.reply(30_000);
    assert.ok(r.code >= 400 && r.code < 500, `got ${r.code} ${r.text}\n${debug()}`);
    c.close();
    assert.doesNotMatch(mailbox('bob'), /killed-backend/);
  });
});

// Issue 16, item 1: a stock Postfix trusts its own host (mynetworks_style =
// host) and lets nobody use XCLIENT. The gate used to fall back to XFORWARD
// or nothing there, Postfix judged 127.0.0.1 (the gate) and relayed
// RCPT TO:<victim@outside.example> for any client with 250.
test('the gate in front of a Postfix with default mynetworks and no XCLIENT: no relay for anyone', { timeout: 180_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const cleanup = cleanupStack(t);
  const tmp = tempDirFor(cleanup, 'frontline-gate-relay-e2e-');
  const dns = await startFixtureDns(new Zone({}));
  cleanup.push(() => dns.close());
  const postfix = await startTestPostfix(cleanup, {
    postfixBin: peers.postfix,
    relayDomains: [],
    sinkPort: 9,
    // Postfix's own defaults for what matters here: mynetworks from mynetworks_style (host), no XCLIENT.
    mainCf: { mynetworks: null, smtpd_authorized_xclient_hosts: null, smtpd_authorized_xforward_hosts: '127.0.0.0/8' },
  });
  const smtpPort = postfix.smtpPort;

  // Postfix itself relays for the gate's address: the hole the gate must not open.
  const direct = await SmtpTalk.connect(smtpPort);
  assert.equal((await direct.reply()).code, 220);
  assert.equal((await direct.command('EHLO gate.test')).code, 250);
  assert.equal((await direct.command('MAIL FROM:<spammer@example.com>')).code, 250);
  assert.equal((await direct.command('RCPT TO:<victim@outside.example>')).code, 250, 'this Postfix relays for 127.0.0.1, as a stock one does');
  direct.close();

  // The policy trusts the outsider (my_networks: accept): what is tested is the backend's relay decision.
  const serveRelayGate = (extra: string) =>
    serveGate(
      cleanup,
      tmp,
      dns.server,
      smtpPort,
      `my_networks: [203.0.113.0/24]
dns: { timeout_ms: 500, retries: 0 }
gate:
  hostname: gate.test
  greet_wait_ms: 0
  proxy_protocol: { trusted: [127.0.0.1] }
${extra}`,
    );
  /** An outside client (203.0.113.7, named in a PROXY header) tries to relay; the replies to MAIL and RCPT. */
  const attack = async (port: number) => {
    const c = await SmtpTalk.connect(port);
    c.sendRaw('PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n');
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command('EHLO spammer.example')).code, 250);
    const mail = await c.command('MAIL FROM:<spammer@example.com>');
    const rcpt = await c.command('RCPT TO:<victim@outside.example>');
    c.close();
    return { mail, rcpt };
  };

  await t.test('default backend_identity (xclient): 451 4.3.0 at MAIL, RCPT never 250, an error naming smtpd_authorized_xclient_hosts', async () => {
    const gate = await serveRelayGate('');
    const { mail, rcpt } = await attack(gate.port);
    const log = () => `${gate.serving.stdout()}${gate.serving.stderr()}\n--- maillog ---\n${postfix.maillog()}`;
    assert.equal(mail.code, 451, `${mail.code} ${mail.text}\n${log()}`);
    assert.match(mail.text, /^4\.3\.0 /);
    assert.notEqual(rcpt.code, 250, log());
    await waitFor('the error line', () => (/smtpd_authorized_xclient_hosts = 127\.0\.0\.1/.test(gate.serving.stdout() + gate.serving.stderr()) ? true : undefined));
    assert.doesNotMatch(postfix.maillog(), /to=<victim@outside\.example>/, 'nothing queued for the victim');
  });

  await t.test('with smtpd_authorized_xclient_hosts set, Postfix judges the real client: the self-test passes and the outsider gets Relay access denied', async () => {
    appendFileSync(join(postfix.dir, 'conf', 'main.cf'), 'smtpd_authorized_xclient_hosts = 127.0.0.1\n');
    await postfix.control('reload');
    await new Promise((r) => setTimeout(r, 1500));
    const gate = await serveRelayGate('');
    const out = () => gate.serving.stdout() + gate.serving.stderr();
    await waitFor('the self-test', () => (/relay self-test passed/.test(out()) ? true : undefined));
    assert.match(out(), /"reply":"454 4\.7\.1 <relay-test@example\.invalid>: Relay access denied"/);
    const { mail, rcpt } = await attack(gate.port);
    assert.equal(mail.code, 250, out());
    assert.equal(rcpt.code, 454, `${rcpt.code} ${rcpt.text}`);
    assert.match(rcpt.text, /Relay access denied/);
  });
});
