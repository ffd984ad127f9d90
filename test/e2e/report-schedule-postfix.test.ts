// report.schedule end to end: `frontline serve --workers 2` with a schedule
// due some seconds after it starts. swaks sends two messages through a real
// Postfix that asks serve (check_policy_service): one refused, one accepted.
// At the scheduled time the report is mailed through that Postfix, which
// relays it to the mailbox of report.mail_to (an SMTP sink): exactly one
// message, though two workers run (the cluster primary sends it), counting
// the real traffic. A second serve whose MTA is down logs the failure,
// retries later, and keeps answering Postfix.
//
// Run: npm run test:e2e  (needs root, postfix and swaks; skipped loudly
// without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { loadZoneYaml } from '../helpers/fixture-dns.js';
import { startServe } from '../helpers/cli.js';
import { policyServiceMainCf, startPostfixBed, startTestPostfix } from '../helpers/postfix.js';
import { sendWithSwaks } from '../helpers/swaks.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const CONFIG = new URL('../fixtures/e2e-frontline.yaml', import.meta.url).pathname;
/** How long after the test starts the report is due: time for two workers to start and two messages to be sent. */
const DUE_IN_MS = 90_000;

const hhmmss = (ms: number) => new Date(ms).toISOString().slice(11, 19);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('report.schedule: serve mails the report at its time through a real Postfix, once with two workers; a down MTA is retried, serve goes on', { timeout: 300_000 }, async (t) => {
  const bed = await startPostfixBed(t, loadZoneYaml(WORLD), 'fl-e2e-report-schedule-');
  if (!bed) return;
  const { peers, cleanup, dns, sink, dir } = bed;

  const smtpPort = await freePort();
  const deadPort = await freePort();
  const due = Math.ceil((Date.now() + DUE_IN_MS) / 1000) * 1000;
  const configWith = (name: string, mta: number) => {
    const path = join(dir, `${name}.yaml`);
    const report = ['report:', '  mail_to: [postmaster@dest.test]', '  mail_from: frontline@mx.dest.test', `  smtp: 127.0.0.1:${mta}`, `  schedule: daily ${hhmmss(due)} UTC`, '  since: 1h'];
    writeFileSync(path, `${readFileSync(CONFIG, 'utf8')}\ndata_dir: ${join(dir, name)}\n${report.join('\n')}\n`);
    return path;
  };
  const frontline = await startServe(['--config', configWith('serve', smtpPort), '--dns', dns.server, '--policy-listen', '127.0.0.1:0', '--workers', '2'], { timeoutMs: 70_000 });
  cleanup.push(() => frontline.stop());
  const downMta = await startServe(['--config', configWith('down', deadPort), '--dns', dns.server, '--policy-listen', '127.0.0.1:0'], { timeoutMs: 40_000 });
  cleanup.push(() => downMta.stop());
  assert.ok(Date.now() < due - 10_000, `the servers took too long to start for the schedule (${hhmmss(due)})`);

  const postfix = await startTestPostfix(cleanup, { postfixBin: peers.postfix, smtpPort, relayDomains: ['dest.test'], sinkPort: sink.port, mainCf: policyServiceMainCf(frontline.port) });
  const debug = () => `--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${frontline.stderr()}\n${frontline.stdout()}`;

  // Real traffic for the report: the forger of the fixture world is refused, the small server accepted.
  const refused = await sendWithSwaks(peers.swaks, smtpPort, { ip: '192.0.2.77', name: '[UNAVAILABLE]', reverseName: 'cpe-192-0-2-77.cable.homenet.test', helo: 'DESKTOP-4F2K9', from: 'bob@bigisp.test', to: 'u@dest.test' });
  assert.equal(refused.code, 24, `${refused.transcript}\n${debug()}`);
  const accepted = await sendWithSwaks(peers.swaks, smtpPort, { ip: '203.0.113.5', name: 'mail.small.test', helo: 'mail.small.test', from: 'erin@small.test', to: 'u@dest.test', subject: 'hello' });
  assert.equal(accepted.code, 0, `${accepted.transcript}\n${debug()}`);
  assert.ok(Date.now() < due, `the traffic was sent after the report was due (${hhmmss(due)})`);

  const reports = () => sink.messages.filter((m) => m.rcpts.includes('postmaster@dest.test'));
  await t.test('at its time, the report is delivered once, counting the traffic Postfix asked about', async () => {
    while (reports().length === 0 && Date.now() < due + 60_000) await sleep(250);
    assert.equal(reports().length, 1, `no report by ${hhmmss(due + 60_000)}\n${debug()}`);
    // Another worker, or a second timer, would have sent its copy by now.
    await sleep(5_000);
    assert.equal(reports().length, 1, 'one report, not one per worker');
    const text = reports()[0].data.toString('utf8');
    assert.match(text, /^Subject: frontline report for .*: 1 refused, 1 accepted/m, text);
    assert.match(text, /^Auto-Submitted: auto-generated/m);
    assert.match(postfix.maillog(), /to=<postmaster@dest\.test>.*status=sent/, 'Postfix relayed it');
    const sent = frontline.stdout().split('\n').filter((l) => l.includes('"report mailed to postmaster@dest.test"'));
    assert.equal(sent.length, 1, `one log line for the send:\n${frontline.stdout()}`);
    assert.match(sent[0], new RegExp(`"slot":"${new Date(due).toISOString()}"`));
    assert.match(sent[0], new RegExp(`"pid":${frontline.child.pid},`), 'sent by the cluster primary (the process started), not a worker');
  });

  await t.test('with its MTA down, serve logs the failure, will retry, and keeps answering the policy service', async () => {
    let failed: string | undefined;
    while (!failed && Date.now() < due + 30_000) {
      failed = downMta.stdout().split('\n').find((l) => l.includes('report mail failed; retrying'));
      if (!failed) await sleep(250);
    }
    assert.ok(failed, `no failure line:\n${downMta.stdout()}\n${downMta.stderr()}`);
    assert.match(failed, /ECONNREFUSED/);
    assert.match(failed, /"retryAt":"[^"]+"/);
    const policy = await PolicyClient.connect({ host: '127.0.0.1', port: downMta.port });
    try {
      const answer = await policy.ask(rcptRequest({ client_address: '203.0.113.5', client_name: 'mail.small.test', reverse_client_name: 'mail.small.test', helo_name: 'mail.small.test', sender: 'erin@small.test', recipient: 'u@dest.test', instance: 'after.1' }));
      assert.match(answer, /^(DUNNO|OK|PREPEND)/, answer);
    } finally {
      await policy.close();
    }
    assert.equal(downMta.child.exitCode, null, 'still running');
    assert.equal(await downMta.stop(), 0);
  });
});
