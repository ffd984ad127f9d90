// A real Postfix with `reject_rbl_client bl.frontline.test` asks frontline's
// own DNSBL zone: a banned client is refused 554 with the zone's name, and
// accepted again once `frontline ban del` has lifted the ban.
//
// How Postfix reaches our port: Postfix resolves through the C library,
// which reads /etc/resolv.conf and only ever asks port 53. So `frontline
// serve` answers the zone on port 53 of a loopback address of its own
// (127.x.y.z, picked at random, nothing else there), and Postfix runs in a
// private mount namespace (`unshare --mount`) where a resolv.conf naming that
// address is bind-mounted over /etc/resolv.conf — the host's resolver is
// never touched. The same wrapper runs `postfix stop`.
//
// smtpd caches DNSBL answers for as long as its process lives (the test sets
// max_use = 1 so that a new connection asks again; docs/enforce.md).
//
// Run: npm run test:e2e (needs root, postfix, swaks, unshare; skipped loudly
// without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, startServe } from '../helpers/cli.js';
import { requireBinary } from '../helpers/binaries.js';
import { delivered } from '../helpers/contrib-files.js';
import { cleanupStack, failureReport, requirePostfixPeers, startTestPostfix, tempDirFor } from '../helpers/postfix.js';
import { startSink } from '../helpers/smtp-sink.js';
import { sendWithSwaks, type SwaksResult } from '../helpers/swaks.js';

test('Postfix reject_rbl_client against frontline\'s zone: a banned client refused, accepted after ban del', { timeout: 240_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const unshare = requireBinary('unshare', t);
  if (!unshare) return;
  const cleanup = cleanupStack(t);

  const sink = await startSink();
  cleanup.push(() => sink.close());
  const dir = tempDirFor(cleanup, 'fl-e2e-zone-');
  chmodSync(dir, 0o755);

  // frontline's zone on port 53 of a loopback address nobody else uses.
  const dnsHost = `127.${53 + Math.floor(Math.random() * 150)}.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
  const config = join(dir, 'frontline.yaml');
  writeFileSync(config, [`data_dir: ${join(dir, 'data')}`, 'dns: { servers: [127.0.0.1:9], timeout_ms: 500, retries: 0 }', 'zone:', `  listen: ${dnsHost}:53`, '  bl_name: bl.frontline.test', '  wl_name: wl.frontline.test', ''].join('\n'));
  const frontline = await startServe(['--config', config, '--policy-listen', '127.0.0.1:0']);
  cleanup.push(() => frontline.stop());
  assert.match(frontline.stderr(), new RegExp(`frontline zone bl\\.frontline\\.test and wl\\.frontline\\.test on ${dnsHost.replace(/\./g, '\\.')}:53`));

  // Postfix's resolver, in a mount namespace of its own.
  const resolv = join(dir, 'resolv.conf');
  writeFileSync(resolv, `nameserver ${dnsHost}\noptions timeout:2 attempts:2\n`);
  chmodSync(resolv, 0o644);
  const wrapper = join(dir, 'postfix-ns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${unshare} --mount --propagation private sh -c 'mount --bind "$0" /etc/resolv.conf && exec ${peers.postfix} "$@"' ${resolv} "$@"\n`);
  chmodSync(wrapper, 0o755);

  const postfix = await startTestPostfix(cleanup, {
    postfixBin: wrapper,
    relayDomains: ['dest.test'],
    sinkPort: sink.port,
    mainCf: {
      smtpd_recipient_restrictions: 'reject_unauth_destination, reject_rbl_client bl.frontline.test',
      // smtpd keeps every DNSBL answer for the life of its process (up to max_use
      // connections, max_idle seconds): one connection per process, so each test
      // asks the zone afresh.
      max_use: '1',
    },
  });
  const debug = (r: SwaksResult) => failureReport(postfix, frontline, r);
  const swaks = (ip: string, subject: string) =>
    sendWithSwaks(peers.swaks, postfix.smtpPort, { ip, helo: 'mail.sender.test', from: 'someone@sender.test', to: 'u@dest.test', subject, body: 'frontline DNSBL zone end-to-end test' });

  await t.test('an unlisted client is accepted', async () => {
    const r = await swaks('192.0.2.77', 'before');
    assert.equal(r.code, 0, debug(r));
    await delivered(sink, 'before');
  });

  await t.test('after frontline ban add, Postfix refuses it with the zone\'s name and TXT', async () => {
    const ban = await runCli(['ban', 'add', '192.0.2.77', '--config', config, '--reason', 'spamtrap hit', '--category', 'spamtrap', '--duration', '1h']);
    assert.equal(ban.code, 0, ban.stderr);
    // The running serve follows the store's change feed (SQLite: within its 0.5 s poll); ask until refused.
    let r: SwaksResult = { code: -1, transcript: '', errors: [] };
    for (let i = 0; i < 20; i++) {
      r = await swaks('192.0.2.77', `banned-${i}`);
      if (r.code !== 0) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.equal(r.code, 24, debug(r));
    assert.match(r.transcript, /<\*\* +554 5\.7\.1 Service unavailable; Client host \[192\.0\.2\.77\] blocked using bl\.frontline\.test; 192\.0\.2\.77\/32 banned \(spamtrap\): spamtrap hit; until /, debug(r));
    assert.match(postfix.maillog(), /NOQUEUE: reject: RCPT from \S+\[192\.0\.2\.77\]: 554 5\.7\.1 Service unavailable; Client host \[192\.0\.2\.77\] blocked using bl\.frontline\.test/);
  });

  await t.test('after frontline ban del, it is accepted again', async () => {
    const del = await runCli(['ban', 'del', '192.0.2.77/32', '--config', config]);
    assert.equal(del.code, 0, del.stderr);
    let r: SwaksResult = { code: -1, transcript: '', errors: [] };
    for (let i = 0; i < 20; i++) {
      r = await swaks('192.0.2.77', `after-${i}`);
      if (r.code === 0) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.equal(r.code, 0, debug(r));
    assert.match(r.transcript, /250 2\.0\.0 Ok: queued as/);
  });
});
