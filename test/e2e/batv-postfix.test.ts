// End to end: BATV through a real Postfix, configured with the files shipped
// in contrib/postfix/ loaded as they are (policy-server/main.cf, batv/main.cf,
// batv/master.cf, batv/frontline.yaml). The test changes only ports, the key
// file paths and the domain (each one asserted present, as in
// contrib-postfix.test.ts), and adds what a Debian master.cf already has
// (tlsmgr) and what a real server sets in its own main.cf (the TLS
// certificate, the SASL backend, where mail for other domains goes).
//
//   submission   a user who really authenticates (AUTH PLAIN over STARTTLS, a
//                Dovecot-protocol SASL backend) sends to another domain: the
//                next MTA receives MAIL FROM:<prvs=1DDDHHHHHH=alice@dest.test>
//                (what its delivery agent writes as Return-Path); header From unchanged
//   relay        a mynetworks host on its own listener: signed; an outsider
//                there is refused; mail from the internet on port 25 is not signed
//   bounce       a null-sender bounce to the signed address is accepted and
//                delivered to alice@dest.test (the tag stripped); a bounce to
//                the bare address, with a bad hash, or with an expired tag: 550 5.7.1
//   rotation     new key first, old one kept: old tags still accepted, new mail
//                signed with the new key; old key removed: its tags refused
//                (frontline restarted on the same ports; Postfix reconnects, no lookup fails)
//   down         frontline stopped: submission gets 451 4.3.0 from Postfix, nothing leaves unsigned
//
// Run: TEST_FILTER=batv npm run test:e2e (needs root, postfix, swaks and openssl;
// skipped loudly without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Zone } from '../../src/dns/zone.js';
import { batvSign } from '../../src/checks/batv-tag.js';
import { requireBinary } from '../helpers/binaries.js';
import { freePort } from '../helpers/ports.js';
import { startFixtureDns } from '../helpers/fixture-dns.js';
import { startServe, type ServingCli } from '../helpers/cli.js';
import { cleanupStack, requirePostfixPeers, startPostfix } from '../helpers/postfix.js';
import { startSink } from '../helpers/smtp-sink.js';
import { startDovecotAuth } from '../helpers/dovecot-auth.js';
import { delivered, exec, shipped, type Run } from '../helpers/contrib-files.js';

const DAY = 86_400_000;

test('BATV through a real Postfix: signed submission, bounces checked and stripped, key rotation', { timeout: 420_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const openssl = requireBinary('openssl', t);
  if (!openssl) return;
  const cleanup = cleanupStack(t);
  const tmp = mkdtempSync(join(tmpdir(), 'frontline-batv-e2e-'));
  chmodSync(tmp, 0o755);
  cleanup.push(async () => rmSync(tmp, { recursive: true, force: true }));

  // The internet: dest.test (ours) lets 198.51.100.0/24 send for it, so that a
  // forged-looking but SPF-passing mail on port 25 reaches the sink and shows it is not signed.
  const dns = await startFixtureDns(
    new Zone({
      'dest.test': [{ MX: [10, 'mx.dest.test'] }, { TXT: 'v=spf1 ip4:198.51.100.0/24 -all' }],
      'mx.dest.test': [{ A: '192.0.2.25' }],
      'remote.test': [{ MX: [10, 'mx.remote.test'] }, { TXT: 'v=spf1 ip4:198.51.100.30 -all' }],
      'mx.remote.test': [{ A: '198.51.100.30' }, { TXT: 'v=spf1 ip4:198.51.100.30 -all' }],
    }),
  );
  cleanup.push(() => dns.close());
  const sink = await startSink({ relay: false });
  cleanup.push(() => sink.close());
  const sasl = await startDovecotAuth({ alice: 'alice-password' });
  cleanup.push(() => sasl.close());

  // Two keys: 1 signs first, 2 is the one rotated in.
  const key1 = join(tmp, 'batv-1.key');
  const key2 = join(tmp, 'batv-2.key');
  writeFileSync(key1, 'first-secret-0123456789abcdef\n', { mode: 0o600 });
  writeFileSync(key2, 'second-secret-fedcba9876543210\n', { mode: 0o600 });
  const secrets = { 1: Buffer.from('first-secret-0123456789abcdef'), 2: Buffer.from('second-secret-fedcba9876543210') };

  // A self-signed certificate for STARTTLS on submission (smtpd_tls_security_level=encrypt).
  const tlsKey = join(tmp, 'tls.key');
  const tlsCert = join(tmp, 'tls.crt');
  const cert = await exec(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=mx.dest.test', '-days', '2', '-keyout', tlsKey, '-out', tlsCert]);
  assert.equal(cert.code, 0, cert.out);

  const [policyPort, batvPort, submissionPort, relayPort, smtpPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const base = 'my_networks: [10.255.255.0/24]\ndns: { timeout_ms: 500, retries: 0 }\nheaders: { authserv_id: mx.dest.test }\n';
  const shippedYaml = shipped('batv/frontline.yaml', { 'example.com': 'dest.test', '127.0.0.1:10041': `127.0.0.1:${batvPort}` });
  let frontline: ServingCli | undefined;
  /** (Re)start frontline on the same ports with these key lines (the shipped key line replaced). */
  const serve = async (keyLines: string) => {
    await frontline?.stop();
    const yaml = shippedYaml.replace(/^ {4}- \{ id: 1, secret_file: \/etc\/frontline\/batv-1\.key \}.*$/m, keyLines);
    assert.notEqual(yaml, shippedYaml, 'frontline.yaml no longer has the key line');
    const file = join(tmp, 'frontline.yaml');
    writeFileSync(file, base + yaml);
    const s = await startServe(['--config', file, '--dns', dns.server, '--policy-listen', `127.0.0.1:${policyPort}`, '--data-dir', join(tmp, 'data')], { timeoutMs: 120_000 });
    assert.match(s.stderr(), new RegExp(`frontline BATV socketmap on 127\\.0\\.0\\.1:${batvPort}`));
    frontline = s;
    return s;
  };
  cleanup.push(async () => frontline?.stop());
  await serve(`    - { id: 1, secret_file: ${key1} }`);

  const postfix = await startPostfix({
    postfixBin: peers.postfix,
    smtpPort,
    relayDomains: ['dest.test'],
    sinkPort: sink.port,
    mainCf: {
      // Mail for other domains goes to the sink too (no DNS of Postfix's own here).
      default_transport: `smtp:[127.0.0.1]:${sink.port}`,
      smtpd_sasl_type: 'dovecot',
      smtpd_sasl_path: `inet:127.0.0.1:${sasl.port}`,
      smtpd_tls_chain_files: `${tlsKey}, ${tlsCert}`,
    },
    mainCfText: shipped('policy-server/main.cf', { '127.0.0.1:10040': `127.0.0.1:${policyPort}` }) + shipped('batv/main.cf', { '127.0.0.1:10041': `127.0.0.1:${batvPort}` }),
    masterCfText:
      shipped('batv/master.cf', {
        '127.0.0.1:10041': `127.0.0.1:${batvPort}`,
        'submission inet': `127.0.0.1:${submissionPort} inet`,
        '10.0.0.1:2525 inet': `127.0.0.1:${relayPort} inet`,
      }) + 'tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n',
  });
  cleanup.push(() => postfix.stop());
  const debug = (r: Run) => `${r.out}\n--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${frontline?.stderr()}`;

  const swaks = (port: number, from: string, to: string, subject: string, extra: string[]) =>
    exec(peers.swaks, ['--server', `127.0.0.1:${port}`, '--from', from, '--to', to, '--header', `Subject: ${subject}`, '--timeout', '60', ...extra]);
  const submit = (to: string, subject: string) =>
    swaks(submissionPort, 'alice@dest.test', to, subject, ['--ehlo', 'laptop.dest.test', '--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'alice-password']);
  const fromInternet = (from: string, to: string, subject: string, ip = '198.51.100.30') =>
    swaks(smtpPort, from, to, subject, ['--ehlo', 'mx.remote.test', '--xclient-addr', ip, '--xclient-name', '[UNAVAILABLE]', '--xclient-helo', 'mx.remote.test']);
  const bounce = (to: string, subject: string) => fromInternet('<>', to, subject);
  // swaks marks a server's error reply <** (or <~* inside TLS).
  const refusal = (r: Run) => r.out.split('\n').find((l) => /^<[*~]\*/.test(l))?.replace(/^<[*~]\*\s*/, '') ?? '';

  let tag1 = '';
  await t.test('submission: an authenticated user\'s mail to another domain leaves with a signed envelope sender', async () => {
    const r = await submit('bob@remote.test', 'batv-submission');
    assert.equal(r.code, 0, debug(r));
    assert.deepEqual(sasl.attempts, [{ user: 'alice', ok: true }], 'Postfix ran AUTH against the SASL backend');
    const m = await delivered(sink, 'batv-submission');
    assert.match(m.from, /^prvs=1\d{3}[0-9a-f]{6}=alice@dest\.test$/, debug(r));
    assert.deepEqual(m.rcpts, ['bob@remote.test']);
    assert.match(m.data.toString(), /^From: alice@dest\.test\r$/m, 'header From is not rewritten');
    assert.match(postfix.maillog(), /postfix\/submission\/smtpd\[\d+\]: [0-9A-F]+: client=\S+, sasl_method=PLAIN, sasl_username=alice/);
    tag1 = m.from;

    const wrong = await swaks(submissionPort, 'alice@dest.test', 'bob@remote.test', 'batv-badauth', ['--ehlo', 'laptop.dest.test', '--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'guess']);
    assert.notEqual(wrong.code, 0, debug(wrong));
    assert.match(refusal(wrong), /^535 5\.7\.8 /, debug(wrong));
  });

  await t.test('relay listener: a mynetworks host is signed, an outsider refused; port 25 from the internet is not signed', async () => {
    const mine = await swaks(relayPort, 'carol@dest.test', 'dave@remote.test', 'batv-mynetworks', ['--ehlo', 'app.dest.test', '--xclient-addr', '10.255.255.5', '--xclient-name', '[UNAVAILABLE]']);
    assert.equal(mine.code, 0, debug(mine));
    assert.match((await delivered(sink, 'batv-mynetworks')).from, /^prvs=1\d{3}[0-9a-f]{6}=carol@dest\.test$/);

    const outsider = await swaks(relayPort, 'carol@dest.test', 'dave@remote.test', 'batv-outsider', ['--ehlo', 'x.example', '--xclient-addr', '198.51.100.40', '--xclient-name', '[UNAVAILABLE]']);
    assert.notEqual(outsider.code, 0, debug(outsider));
    assert.match(refusal(outsider), /^554 5\.7\.1 .*Client host rejected: Access denied/, debug(outsider));

    const inbound = await fromInternet('alice@dest.test', 'u@dest.test', 'batv-inbound', '198.51.100.41');
    assert.equal(inbound.code, 0, debug(inbound));
    assert.equal((await delivered(sink, 'batv-inbound')).from, 'alice@dest.test', 'mail received on port 25 keeps its sender');
  });

  await t.test('bounces: to the signed address accepted and delivered untagged; to the bare address, a bad hash or an expired tag refused 550 5.7.1', async () => {
    const real = await bounce(tag1, 'batv-real-bounce');
    assert.equal(real.code, 0, debug(real));
    const m = await delivered(sink, 'batv-real-bounce');
    assert.equal(m.from, '');
    assert.deepEqual(m.rcpts, ['alice@dest.test'], 'the tag is stripped for delivery');

    const bare = await bounce('alice@dest.test', 'batv-fake-bare');
    assert.equal(bare.code, 24, debug(bare));
    assert.match(refusal(bare), /^550 5\.7\.1 .*bounce to an address that sent no mail: bounce to alice@dest\.test, which signs its mail, carries no BATV tag/, debug(bare));

    const badHash = await bounce(tag1.replace(/^(prvs=\d{4})[0-9a-f]{6}/, (_, p: string) => `${p}${tag1.slice(9, 15) === '000000' ? '111111' : '000000'}`), 'batv-fake-hash');
    assert.equal(badHash.code, 24, debug(badHash));
    assert.match(refusal(badHash), /^550 5\.7\.1 .*tag hash does not match: not a tag we made/, debug(badHash));

    const expired = batvSign('alice@dest.test', { current: { id: 1, secret: secrets[1] }, all: [] }, Date.now() - 10 * DAY, 7);
    const late = await bounce(expired, 'batv-expired');
    assert.equal(late.code, 24, debug(late));
    assert.match(refusal(late), /^550 5\.7\.1 .*tag expired 3 day\(s\) ago/, debug(late));

    for (const s of ['batv-fake-bare', 'batv-fake-hash', 'batv-expired']) assert.ok(!sink.messages.some((x) => x.data.toString().includes(`Subject: ${s}\r\n`)), `${s} was not delivered`);
  });

  await t.test('rotation: the new key signs while the old one still verifies; once removed, its tags are refused', async () => {
    await serve(`    - { id: 2, secret_file: ${key2} }\n    - { id: 1, secret_file: ${key1} }`);
    const r = await submit('bob@remote.test', 'batv-rotated');
    assert.equal(r.code, 0, debug(r));
    const tag2 = (await delivered(sink, 'batv-rotated')).from;
    assert.match(tag2, /^prvs=2\d{3}[0-9a-f]{6}=alice@dest\.test$/, 'signed with the new key');

    const old = await bounce(tag1, 'batv-overlap-old');
    assert.equal(old.code, 0, debug(old));
    assert.deepEqual((await delivered(sink, 'batv-overlap-old')).rcpts, ['alice@dest.test']);

    await serve(`    - { id: 2, secret_file: ${key2} }`);
    const gone = await bounce(tag1, 'batv-removed-old');
    assert.equal(gone.code, 24, debug(gone));
    assert.match(refusal(gone), /^550 5\.7\.1 .*tag signed with key 1, which is not configured/, debug(gone));
    const current = await bounce(tag2, 'batv-current');
    assert.equal(current.code, 0, debug(current));
    assert.deepEqual((await delivered(sink, 'batv-current')).rcpts, ['alice@dest.test']);
  });

  await t.test('Postfix never failed a lookup: restarts of frontline are picked up by its socketmap client', () => {
    const warnings = postfix.maillog().split('\n').filter((l) => /warning:/.test(l) && !/SASL PLAIN authentication failed/.test(l));
    assert.deepEqual(warnings, []);
    assert.doesNotMatch(postfix.maillog(), /status=deferred|status=bounced/);
  });

  await t.test('frontline down: submission is answered 4xx, never sent on unsigned', async () => {
    assert.equal(await frontline!.stop(), 0);
    const r = await submit('bob@remote.test', 'batv-down');
    assert.notEqual(r.code, 0, debug(r));
    assert.match(refusal(r), /^451 4\.3\.0 /, debug(r));
    // smtpd itself looks the recipient up in recipient_canonical_maps at RCPT, so the refusal comes before DATA.
    assert.match(postfix.maillog(), /warning: socketmap:inet:127\.0\.0\.1:\d+:batv-(sign|strip) lookup error/);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.ok(!sink.messages.some((x) => x.data.toString().includes('Subject: batv-down\r\n')), 'nothing sent unsigned');
  });
});
