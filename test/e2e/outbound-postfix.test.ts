// Hacked accounts end to end through a real Postfix with real SASL: smtpd
// runs AUTH PLAIN against a SASL backend speaking Dovecot's auth protocol
// (test/helpers/dovecot-auth.ts; Dovecot is not installed), so Postfix
// itself sets sasl_username in the policy requests. swaks plays one user
// logging in from several client addresses (XCLIENT ADDR before AUTH, as a
// roaming laptop or a botnet would arrive from different places):
//
// - the first two addresses: accepted and delivered;
// - the third (sasl_spread.hold.ips: 3): deferred 450 4.7.1 "held for
//   review", and the user is held — its next message from its first address
//   is deferred too;
// - `frontline user list` shows the hold; `frontline user release` lifts it
//   and the next message is delivered.
//
// Run: npm run test:e2e (needs root, postfix and swaks).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Zone } from '../../src/dns/zone.js';
import { freePort } from '../helpers/ports.js';
import { startFixtureDns } from '../helpers/fixture-dns.js';
import { runCli, startServe } from '../helpers/cli.js';
import { cleanupStack, requirePostfixPeers, startPostfix } from '../helpers/postfix.js';
import { startSink } from '../helpers/smtp-sink.js';
import { startDovecotAuth } from '../helpers/dovecot-auth.js';

interface Run {
  code: number;
  out: string;
}

function exec(bin: string, args: string[], timeoutMs = 90_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs }, (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, out: out + err }));
  });
}

test('one SASL user from many addresses through a real Postfix: held and deferred 450, released by frontline user release', { timeout: 300_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const cleanup = cleanupStack(t);
  const tmp = mkdtempSync(join(tmpdir(), 'frontline-outbound-e2e-'));
  chmodSync(tmp, 0o755);
  cleanup.push(async () => rmSync(tmp, { recursive: true, force: true }));

  const dns = await startFixtureDns(new Zone({ 'dest.test': [{ MX: [10, 'mx.dest.test'] }], 'mx.dest.test': [{ A: '192.0.2.25' }], 'remote.test': [{ MX: [10, 'mx.remote.test'] }], 'mx.remote.test': [{ A: '198.51.100.30' }] }));
  cleanup.push(() => dns.close());
  const sink = await startSink({ relay: false });
  cleanup.push(() => sink.close());
  const sasl = await startDovecotAuth({ joe: 'joe-password' });
  cleanup.push(() => sasl.close());

  const config = join(tmp, 'frontline.yaml');
  writeFileSync(
    config,
    [
      `data_dir: ${join(tmp, 'data')}`,
      'my_networks: [10.255.255.0/24]',
      'dns: { timeout_ms: 500, retries: 0 }',
      'headers: { authserv_id: mx.dest.test }',
      'sasl_spread: { enabled: true, hold: { ips: 3 } }',
      'intel: { spf_whitelist: { enabled: false }, correspondents: { enabled: false } }',
      '',
    ].join('\n'),
  );
  const frontline = await startServe(['--config', config, '--dns', dns.server, '--policy-listen', '127.0.0.1:0'], { timeoutMs: 120_000 });
  cleanup.push(() => frontline.stop());

  const smtpPort = await freePort();
  const postfix = await startPostfix({
    postfixBin: peers.postfix,
    smtpPort,
    relayDomains: ['dest.test'],
    sinkPort: sink.port,
    mainCf: {
      default_transport: `smtp:[127.0.0.1]:${sink.port}`,
      smtpd_sasl_auth_enable: 'yes',
      smtpd_sasl_type: 'dovecot',
      smtpd_sasl_path: `inet:127.0.0.1:${sasl.port}`,
      // frontline first, so that a held user is deferred although it authenticated.
      smtpd_relay_restrictions: 'permit_sasl_authenticated, reject_unauth_destination',
      smtpd_recipient_restrictions: `check_policy_service inet:127.0.0.1:${frontline.port}, permit_sasl_authenticated, reject_unauth_destination`,
      smtpd_policy_service_timeout: '30s',
      smtpd_policy_service_default_action: '451 4.3.5 policy service unavailable',
    },
  });
  cleanup.push(() => postfix.stop());

  const send = (ip: string, subject: string) =>
    exec(peers.swaks, [
      '--server', `127.0.0.1:${smtpPort}`,
      '--ehlo', 'laptop',
      '--xclient-addr', ip,
      '--xclient-name', '[UNAVAILABLE]',
      '--auth', 'PLAIN', '--auth-user', 'joe', '--auth-password', 'joe-password',
      '--from', 'joe@dest.test',
      '--to', 'friend@remote.test',
      '--header', `Subject: ${subject}`,
      '--timeout', '60',
    ]);
  const debug = (r: Run) => `${r.out}\n--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${frontline.stderr()}`;
  const delivered = async (subject: string) => {
    const end = Date.now() + 30_000;
    while (!sink.messages.some((m) => m.data.toString().includes(`Subject: ${subject}\r\n`))) {
      if (Date.now() > end) assert.fail(`"${subject}" not delivered\n${postfix.maillog()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  for (const [i, ip] of ['203.0.113.11', '203.0.113.12'].entries()) {
    const r = await send(ip, `spread-${i}`);
    assert.equal(r.code, 0, debug(r));
    await delivered(`spread-${i}`);
  }
  assert.deepEqual(sasl.attempts, [{ user: 'joe', ok: true }, { user: 'joe', ok: true }], 'Postfix ran AUTH against the SASL backend');
  assert.match(postfix.maillog(), /client=unknown\[203\.0\.113\.12\], sasl_method=PLAIN, sasl_username=joe/);

  const third = await send('203.0.113.13', 'spread-2');
  assert.notEqual(third.code, 0, debug(third));
  assert.match(third.out, /<\*\* 450 4\.7\.1 <friend@remote\.test>: Recipient address rejected: account joe is held for review \(3 client addresses in 3600 s \(hold at 3\)\); ask your postmaster/, debug(third));
  // Held: its first address is deferred now too.
  const back = await send('203.0.113.11', 'spread-3');
  assert.match(back.out, /<\*\* 450 4\.7\.1 .*account joe is held for review/, debug(back));

  const list = await runCli(['user', 'list', '--config', config]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^joe\s+\S+\s+sasl_spread\s+3 client addresses in 3600 s \(hold at 3\)$/m);
  const release = await runCli(['user', 'release', 'joe', '--config', config]);
  assert.equal(release.code, 0, release.stderr);
  assert.match(release.stdout, /^joe: released \(was joe held since \S+ by sasl_spread: 3 client addresses/);

  const after = await send('203.0.113.13', 'spread-4');
  assert.equal(after.code, 0, debug(after));
  await delivered('spread-4');
  assert.ok(!sink.messages.some((m) => /Subject: spread-[23]\r\n/.test(m.data.toString())), 'the deferred messages were not delivered');
  const shown = await runCli(['user', 'show', 'joe', '--config', config]);
  assert.equal(shown.stdout, 'joe is not held\n');
});
