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
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadZoneYaml } from '../helpers/fixture-dns.js';
import { runCli } from '../helpers/cli.js';
import { delivered } from '../helpers/contrib-files.js';
import { failureReport, servePolicyPostfix, startPostfixBed } from '../helpers/postfix.js';
import { sendWithSwaks, type SwaksResult } from '../helpers/swaks.js';

const WORLD = new URL('../fixtures/greylist-world.yaml', import.meta.url).pathname;

test('greylisting through a real Postfix: deferred, retried, accepted; the SPF pool is one sender', { timeout: 180_000 }, async (t) => {
  const bed = await startPostfixBed(t, loadZoneYaml(WORLD), 'fl-e2e-grey-');
  if (!bed) return;
  const { peers, sink, dir } = bed;
  const config = join(dir, 'frontline.yaml');
  writeFileSync(config, `data_dir: ${join(dir, 'data')}\ndns: { timeout_ms: 500, retries: 0 }\nheaders: { authserv_id: mx.dest.test }\ngreylist: { enabled: true, delay_s: 2 }\n`);
  const { frontline, postfix } = await servePolicyPostfix(bed, ['--config', config]);
  const debug = (r: SwaksResult) => failureReport(postfix, frontline, r);
  const swaks = (ip: string, subject: string) =>
    sendWithSwaks(peers.swaks, postfix.smtpPort, { ip, helo: 'out.pool.test', from: 'news@pool.test', to: 'u@dest.test', subject, body: 'frontline greylisting end-to-end test' });

  await t.test('first attempt deferred 450 with the greylist text', async () => {
    const r = await swaks('192.0.2.21', 'greylisted');
    assert.equal(r.code, 24, debug(r));
    assert.match(r.transcript, /<\*\* +450 4\.7\.1 <u@dest\.test>: Recipient address rejected: Greylisted, try again in 2 seconds/, debug(r));
    assert.match(postfix.maillog(), /NOQUEUE: reject: RCPT from \S+\[192\.0\.2\.21\]: 450 4\.7\.1 <u@dest\.test>: Recipient address rejected: Greylisted, try again in 2 seconds/);
  });

  await t.test('the retry after the delay is accepted and delivered', async () => {
    await new Promise((r) => setTimeout(r, 2100));
    const r = await swaks('192.0.2.21', 'retried');
    assert.equal(r.code, 0, debug(r));
    assert.match(r.transcript, /250 2\.0\.0 Ok: queued as/);
    await delivered(sink, 'retried');
  });

  await t.test('the same message from another host of the SPF pool (another /24) is accepted without a second delay', async () => {
    const r = await swaks('198.51.100.77', 'pool');
    assert.equal(r.code, 0, debug(r));
    assert.match(r.transcript, /250 2\.0\.0 Ok: queued as/);
    await delivered(sink, 'pool');
    // The decision log has the story: one greylist deferral, then passes.
    const out = await runCli(['log', '--domain', 'pool.test', '--json', '--config', config]);
    const events = (JSON.parse(out.stdout) as Array<{ rule: string; action: string; clientIp: string }>).reverse();
    assert.deepEqual(
      events.map((e) => `${e.clientIp} ${e.action} ${e.rule}`),
      ['192.0.2.21 defer greylist', '192.0.2.21 continue default', '198.51.100.77 continue default'],
    );
  });
});
