// The daily report mailed through a real Postfix: `frontline report --mail`
// hands it to a private Postfix (report.smtp), which relays it to the
// mailbox of report.mail_to (the SMTP sink behind it); the test reads the
// delivered message: subject, text and HTML parts, a false positive
// candidate (a refused sender domain our users write to), a new ban, and an
// escape sequence from a client shown escaped.
//
// Run: npm run test:e2e  (needs root, postfix; skipped loudly without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { captureIo } from '../helpers/cli.js';
import { cleanupStack, requirePostfixPeers, startPostfix } from '../helpers/postfix.js';
import { startSink } from '../helpers/smtp-sink.js';
import { report } from '../../src/cli/report.js';
import { openConfiguredStore } from '../../src/cli/store.js';
import { loadConfig } from '../../src/config/load.js';

test('frontline report --mail: delivered through a real Postfix and read from the mailbox', { timeout: 180_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const cleanup = cleanupStack(t);
  const sink = await startSink();
  cleanup.push(() => sink.close());
  const smtpPort = await freePort();
  const postfix = await startPostfix({ postfixBin: peers.postfix, smtpPort, relayDomains: ['dest.test'], sinkPort: sink.port, mainCf: {} });
  cleanup.push(() => postfix.stop());

  const dir = mkdtempSync(join(tmpdir(), 'fl-e2e-report-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'frontline.yaml');
  writeFileSync(config, `data_dir: ${join(dir, 'data')}\nreport:\n  mail_to: [postmaster@dest.test]\n  mail_from: frontline@mx.dest.test\n  smtp: 127.0.0.1:${smtpPort}\n`);

  const store = await openConfiguredStore(loadConfig(config));
  const now = Date.now();
  const ev = (ip: string, rule: string, action: string, from: string, ago: number) => ({ ts: now - ago, clientIp: ip, from, rcpts: ['u@dest.test'], stage: 'rcpt', action, rule, evidence: [] });
  await Promise.all([
    store.logEvent(ev('203.0.113.5', 'sender-authorised', 'reject', 'boss@partner.example', 3_600_000)),
    store.logEvent(ev('203.0.113.9', 'dnsbl', 'reject', 'x@evil\x1b[31m.example', 3_000_000)),
    store.logEvent(ev('198.51.100.1', 'default', 'continue', 'a@good.example', 60_000)),
  ]);
  await store.correspondentRecord('partner.example', 'domain', now - 1_800_000, now + 86_400_000);
  await store.ban({ cidr: '203.0.113.9', reason: 'listed', category: 'dnsbl', source: 'dnsbl-rule' });
  await store.close();

  const io = captureIo();
  assert.equal(await report({ config, mail: true }, io), 0, io.err());
  assert.match(io.out(), /report mailed to postmaster@dest\.test/);

  const deadline = Date.now() + 60_000;
  while (!sink.messages.some((m) => m.rcpts.includes('postmaster@dest.test')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const msg = sink.messages.find((m) => m.rcpts.includes('postmaster@dest.test'));
  assert.ok(msg, `no report in the mailbox\n--- maillog ---\n${postfix.maillog()}`);
  const text = msg.data.toString('utf8');
  assert.match(text, /^Subject: frontline report for .*: 2 refused, 1 accepted, 1 new bans/m);
  assert.match(text, /^Auto-Submitted: auto-generated/m);
  assert.match(text, /Content-Type: text\/plain/);
  assert.match(text, /Content-Type: text\/html/);
  assert.match(postfix.maillog(), /to=<postmaster@dest\.test>.*status=sent/, 'Postfix relayed it');
  // The body is quoted-printable: undo the soft line breaks before reading it.
  const body = text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  assert.match(body, /refused senders our users write to\r?\nsender +refused/);
  assert.match(body, /partner\.example +1 +1 /);
  assert.match(body, /New bans\r?\nnetwork/);
  assert.match(body, /203\.0\.113\.9\/32 +dnsbl +dnsbl-rule/);
  assert.ok(!body.includes('\x1b'), 'no raw escape character in the mail');
  assert.match(body, /evil\\x1b\[31m\.example/);
});
