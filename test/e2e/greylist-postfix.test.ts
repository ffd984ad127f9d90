// End to end through a real Postfix with greylisting on (delay 2 s):
// check_policy_service asks frontline; swaks plays the sender through
// XCLIENT. The first attempt is deferred 450 with the greylist text; the
// retry after the delay is accepted and delivered; the same message from
// another host of the sender's SPF pool (another /24) is accepted at once,
// without a second delay — the triplet is keyed on the SPF domain.
//
// Run: npm run test:e2e  (needs root, postfix and swaks; skipped loudly
// without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { loadZoneYaml, startFixtureDns } from '../helpers/fixture-dns.js';
import { runCli, startServe } from '../helpers/cli.js';
import { cleanupStack, requirePostfixPeers, startPostfix } from '../helpers/postfix.js';
import { startSink } from '../helpers/smtp-sink.js';

const WORLD = new URL('../fixtures/greylist-world.yaml', import.meta.url).pathname;

interface Sent {
  code: number;
  transcript: string;
}

function swaks(bin: string, port: number, ip: string, subject: string): Promise<Sent> {
  const args = [
    '--server', `127.0.0.1:${port}`,
    '--ehlo', 'out.pool.test',
    '--from', 'news@pool.test',
    '--to', 'u@dest.test',
    '--xclient-addr', ip,
    '--xclient-name', '[UNAVAILABLE]',
    '--xclient-helo', 'out.pool.test',
    '--header', `Subject: ${subject}`,
    '--body', 'frontline greylisting end-to-end test',
    '--timeout', '30',
  ];
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, transcript: `${stdout}${stderr}` });
    });
  });
}

test('greylisting through a real Postfix: deferred, retried, accepted; the SPF pool is one sender', { timeout: 180_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const { postfix: postfixBin, swaks: swaksBin } = peers;
  const cleanup = cleanupStack(t);

  const dns = await startFixtureDns(loadZoneYaml(WORLD));
  cleanup.push(() => dns.close());
  const sink = await startSink();
  cleanup.push(() => sink.close());
  const dir = mkdtempSync(join(tmpdir(), 'fl-e2e-grey-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'frontline.yaml');
  writeFileSync(config, `data_dir: ${join(dir, 'data')}\ndns: { timeout_ms: 500, retries: 0 }\nheaders: { authserv_id: mx.dest.test }\ngreylist: { enabled: true, delay_s: 2 }\n`);
  const frontline = await startServe(['--config', config, '--dns', dns.server, '--policy-listen', '127.0.0.1:0']);
  cleanup.push(() => frontline.stop());

  const smtpPort = await freePort();
  const postfix = await startPostfix({
    postfixBin,
    smtpPort,
    relayDomains: ['dest.test'],
    sinkPort: sink.port,
    mainCf: {
      smtpd_recipient_restrictions: `reject_unauth_destination, check_policy_service inet:127.0.0.1:${frontline.port}`,
      smtpd_policy_service_timeout: '30s',
      smtpd_policy_service_default_action: '451 4.3.5 policy service unavailable',
    },
  });
  cleanup.push(() => postfix.stop());
  const debug = (r: Sent) => `swaks exit ${r.code}\n${r.transcript}\n--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${frontline.stderr()}`;
  const delivered = async (subject: string) => {
    for (let i = 0; i < 200; i++) {
      if (sink.messages.some((m) => m.data.toString().includes(`Subject: ${subject}`))) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };

  await t.test('first attempt deferred 450 with the greylist text', async () => {
    const r = await swaks(swaksBin, smtpPort, '192.0.2.21', 'greylisted');
    assert.equal(r.code, 24, debug(r));
    assert.match(r.transcript, /<\*\* +450 4\.7\.1 <u@dest\.test>: Recipient address rejected: Greylisted, try again in 2 seconds/, debug(r));
    assert.match(postfix.maillog(), /NOQUEUE: reject: RCPT from \S+\[192\.0\.2\.21\]: 450 4\.7\.1 <u@dest\.test>: Recipient address rejected: Greylisted, try again in 2 seconds/);
  });

  await t.test('the retry after the delay is accepted and delivered', async () => {
    await new Promise((r) => setTimeout(r, 2100));
    const r = await swaks(swaksBin, smtpPort, '192.0.2.21', 'retried');
    assert.equal(r.code, 0, debug(r));
    assert.match(r.transcript, /250 2\.0\.0 Ok: queued as/);
    assert.ok(await delivered('retried'), 'the retried message reached the sink');
  });

  await t.test('the same message from another host of the SPF pool (another /24) is accepted without a second delay', async () => {
    const r = await swaks(swaksBin, smtpPort, '198.51.100.77', 'pool');
    assert.equal(r.code, 0, debug(r));
    assert.match(r.transcript, /250 2\.0\.0 Ok: queued as/);
    assert.ok(await delivered('pool'));
    // The decision log has the story: one greylist deferral, then passes.
    const out = await runCli(['log', '--domain', 'pool.test', '--json', '--config', config]);
    const events = (JSON.parse(out.stdout) as Array<{ rule: string; action: string; clientIp: string }>).reverse();
    assert.deepEqual(
      events.map((e) => `${e.clientIp} ${e.action} ${e.rule}`),
      ['192.0.2.21 defer greylist', '192.0.2.21 continue default', '198.51.100.77 continue default'],
    );
  });
});
