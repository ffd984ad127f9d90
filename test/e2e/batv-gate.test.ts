// End to end: gate.outbound — the frontline gate in front of a real Postfix
// (contrib/postfix/gate/master.cf and gate/frontline.yaml as shipped, ports
// changed) signs and checks BATV by itself: Postfix has no canonical maps.
//
//   outbound   a user authenticates through the gate (STARTTLS, AUTH passed
//              through to Postfix and its SASL backend): the mail leaves Postfix
//              with MAIL FROM:<prvs=…=alice@dest.test>
//   bounces    a real bounce to the signed address: accepted by the gate's own
//              policy (batv=pass) and passed to Postfix untagged; a bounce to
//              the bare address or with a bad hash: 550 5.7.1 from the gate
//
// Run: TEST_FILTER=batv-gate npm run test:e2e (needs root, postfix, swaks and
// openssl; skipped loudly without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Zone } from '../../src/dns/zone.js';
import { requireBinary } from '../helpers/binaries.js';
import { freePort } from '../helpers/ports.js';
import { startFixtureDns } from '../helpers/fixture-dns.js';
import { startServe } from '../helpers/cli.js';
import { cleanupStack, requirePostfixPeers, startPostfix } from '../helpers/postfix.js';
import { startSink } from '../helpers/smtp-sink.js';
import { startDovecotAuth } from '../helpers/dovecot-auth.js';
import { delivered, exec, shipped, type Run } from '../helpers/contrib-files.js';

test('gate.outbound in front of a real Postfix: the gate signs its users\' senders and checks and strips bounces', { timeout: 300_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const openssl = requireBinary('openssl', t);
  if (!openssl) return;
  const cleanup = cleanupStack(t);
  const tmp = mkdtempSync(join(tmpdir(), 'frontline-batv-gate-'));
  chmodSync(tmp, 0o755);
  cleanup.push(async () => rmSync(tmp, { recursive: true, force: true }));

  const dns = await startFixtureDns(
    new Zone({
      'dest.test': [{ MX: [10, 'mx.dest.test'] }, { TXT: 'v=spf1 -all' }],
      'mx.dest.test': [{ A: '192.0.2.25' }],
      'mx.remote.test': [{ A: '127.0.0.1' }, { TXT: 'v=spf1 ip4:127.0.0.1 -all' }],
    }),
  );
  cleanup.push(() => dns.close());
  const sink = await startSink({ relay: false });
  cleanup.push(() => sink.close());
  const sasl = await startDovecotAuth({ alice: 'alice-password' });
  cleanup.push(() => sasl.close());

  const key = join(tmp, 'batv-1.key');
  writeFileSync(key, 'gate-secret-0123456789abcdef\n', { mode: 0o600 });
  const tlsKey = join(tmp, 'tls.key');
  const tlsCert = join(tmp, 'tls.crt');
  const cert = await exec(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=gate.dest.test', '-days', '2', '-keyout', tlsKey, '-out', tlsCert]);
  assert.equal(cert.code, 0, cert.out);

  const backendPort = await freePort();
  const postfix = await startPostfix({
    postfixBin: peers.postfix,
    smtpPort: backendPort,
    smtpService: false,
    relayDomains: ['dest.test'],
    sinkPort: sink.port,
    mainCf: {
      default_transport: `smtp:[127.0.0.1]:${sink.port}`,
      // The gate passes AUTH through; Postfix behind it authenticates.
      smtpd_sasl_auth_enable: 'yes',
      smtpd_sasl_type: 'dovecot',
      smtpd_sasl_path: `inet:127.0.0.1:${sasl.port}`,
    },
    masterCfText: shipped('gate/master.cf', { '127.0.0.1:10025': `127.0.0.1:${backendPort}` }),
  });
  cleanup.push(() => postfix.stop());

  // The gate's shipped section, plus what this arrangement adds: STARTTLS, AUTH passed through, outbound.
  const gateYaml =
    shipped('gate/frontline.yaml', { '0.0.0.0:25': '127.0.0.1:0', '127.0.0.1:10025': `127.0.0.1:${backendPort}` }) +
    `  outbound: true\n  auth: passthrough\n  tls: { cert_file: ${tlsCert}, key_file: ${tlsKey} }\n`;
  const batvYaml = shipped('batv/frontline.yaml', { 'example.com': 'dest.test', '/etc/frontline/batv-1.key': key, 'listen: 127.0.0.1:10041': 'listen: null' });
  const file = join(tmp, 'frontline.yaml');
  writeFileSync(file, `my_networks: [10.255.255.0/24]\ndns: { timeout_ms: 500, retries: 0 }\nheaders: { authserv_id: mx.dest.test }\n${gateYaml}${batvYaml}`);
  const frontline = await startServe(['--config', file, '--dns', dns.server, '--policy-listen', '127.0.0.1:0', '--data-dir', join(tmp, 'data')], { timeoutMs: 120_000 });
  cleanup.push(() => frontline.stop());
  const m = /frontline gate on \S+:(\d+)/.exec(frontline.stderr());
  assert.ok(m, frontline.stderr());
  const gatePort = Number(m[1]);
  const debug = (r: Run) => `${r.out}\n--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${frontline.stderr()}`;
  const refusal = (r: Run) => r.out.split('\n').find((l) => /^<[*~]\*/.test(l))?.replace(/^<[*~]\*\s*/, '') ?? '';
  const swaks = (from: string, to: string, subject: string, extra: string[] = []) =>
    exec(peers.swaks, ['--server', `127.0.0.1:${gatePort}`, '--ehlo', 'mx.remote.test', '--from', from, '--to', to, '--header', `Subject: ${subject}`, '--timeout', '60', ...extra]);

  const out = await swaks('alice@dest.test', 'bob@remote.test', 'gate-outbound', ['--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'alice-password']);
  assert.equal(out.code, 0, debug(out));
  const sent = await delivered(sink, 'gate-outbound');
  assert.match(sent.from, /^prvs=1\d{3}[0-9a-f]{6}=alice@dest\.test$/, debug(out));
  assert.deepEqual(sasl.attempts, [{ user: 'alice', ok: true }], 'Postfix authenticated the user the gate passed through');
  assert.match(postfix.maillog(), /postfix\/gate-backend\/smtpd\[\d+\]: [0-9A-F]+: client=\S+, sasl_method=PLAIN, sasl_username=alice/);

  const real = await swaks('<>', sent.from, 'gate-real-bounce');
  assert.equal(real.code, 0, debug(real));
  assert.deepEqual((await delivered(sink, 'gate-real-bounce')).rcpts, ['alice@dest.test'], 'the gate passed the bounce on untagged');

  const bare = await swaks('<>', 'alice@dest.test', 'gate-fake-bare');
  assert.equal(bare.code, 24, debug(bare));
  assert.match(refusal(bare), /^550 5\.7\.1 bounce to an address that sent no mail: bounce to alice@dest\.test, which signs its mail, carries no BATV tag/, debug(bare));
  const forged = await swaks('<>', sent.from.replace(/^(prvs=\d{4})[0-9a-f]{6}/, (_, p: string) => `${p}${sent.from.slice(9, 15) === '000000' ? '111111' : '000000'}`), 'gate-fake-hash');
  assert.equal(forged.code, 24, debug(forged));
  assert.match(refusal(forged), /^550 5\.7\.1 .*tag hash does not match/, debug(forged));
  assert.ok(!sink.messages.some((x) => /Subject: gate-fake-/.test(x.data.toString())), 'no fake bounce delivered');
});
