// The README's Postfix snippet, loaded as written into a real Postfix
// (issue 17 item 5): its `check_policy_service { … }` parses; with frontline
// down Postfix answers the snippet's default_action (451 4.3.5, never DUNNO:
// mail is not let through unchecked); and a decision whose DNS never answers
// is answered by frontline itself at its deadline (policy.deadline_ms,
// default 8 s) with 451 4.3.0, before Postfix's timeout in the snippet.
//
// Run: npm run test:e2e  (needs root, postfix and swaks; skipped loudly
// without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { startFixtureDns, zoneFromYaml } from '../helpers/fixture-dns.js';
import { startServe } from '../helpers/cli.js';
import { cleanupStack, requirePostfixPeers, startPostfix } from '../helpers/postfix.js';
import { startSink } from '../helpers/smtp-sink.js';

const README = new URL('../../README.md', import.meta.url);

/** The README's `check_policy_service …` restriction, with the port swapped. */
function readmeRestriction(port: number): string {
  const m = /^\s*(check_policy_service \{ inet:127\.0\.0\.1:10040,.*\})\s*$/m.exec(readFileSync(README, 'utf8'));
  assert.ok(m, 'the README has a check_policy_service { inet:127.0.0.1:10040, … } line');
  return m[1].replace('127.0.0.1:10040', `127.0.0.1:${port}`);
}

interface Sent {
  code: number;
  transcript: string;
  ms: number;
}

function swaks(bin: string, port: number, ip: string, from: string): Promise<Sent> {
  const args = ['--server', `127.0.0.1:${port}`, '--ehlo', 'out.example.net', '--from', from, '--to', 'u@dest.test', '--xclient-addr', ip, '--xclient-name', '[UNAVAILABLE]', '--timeout', '60'];
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 90000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, transcript: `${stdout}${stderr}`, ms: performance.now() - t0 });
    });
  });
}

test("the README's check_policy_service snippet in a real Postfix", { timeout: 240_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const cleanup = cleanupStack(t);
  const dns = await startFixtureDns(zoneFromYaml('dead.example:\n  - TIMEOUT\n'));
  cleanup.push(() => dns.close());
  const sink = await startSink();
  cleanup.push(() => sink.close());
  const dir = mkdtempSync(join(tmpdir(), 'fl-e2e-snippet-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));

  const frontlinePort = await freePort();
  const smtpPort = await freePort();
  const restriction = readmeRestriction(frontlinePort);
  const postfix = await startPostfix({
    postfixBin: peers.postfix,
    smtpPort,
    relayDomains: ['dest.test'],
    sinkPort: sink.port,
    mainCf: { smtpd_recipient_restrictions: `reject_unauth_destination, ${restriction}` },
  });
  cleanup.push(() => postfix.stop());
  const debug = (r: Sent) => `swaks exit ${r.code}\n${r.transcript}\n--- main.cf restriction ---\n${restriction}\n--- maillog ---\n${postfix.maillog()}`;

  await t.test('frontline down: the snippet’s default_action, 451 4.3.5 (not DUNNO)', async () => {
    const r = await swaks(peers.swaks, smtpPort, '192.0.2.10', 'a@example.net');
    assert.match(r.transcript, /<\*\* +451 4\.3\.5 /, debug(r));
    assert.equal(sink.messages.length, 0, 'nothing passed unchecked');
  });

  await t.test('DNS that never answers: frontline answers 451 4.3.0 at its 8 s deadline, inside the snippet’s timeout', async () => {
    const config = join(dir, 'frontline.yaml');
    // The resolver would try for 3 × 3 s per question; the decision deadline (default 8000 ms) cuts it off.
    writeFileSync(config, `data_dir: ${join(dir, 'data')}\ndns: { timeout_ms: 3000, retries: 2 }\nmy_networks: []\n`);
    const logBefore = postfix.maillog().length;
    const frontline = await startServe(['--config', config, '--dns', dns.server, '--policy-listen', `127.0.0.1:${frontlinePort}`]);
    cleanup.push(() => frontline.stop());
    const r = await swaks(peers.swaks, smtpPort, '192.0.2.10', 'a@dead.example');
    assert.match(r.transcript, /<\*\* +451 4\.3\.0 <u@dest\.test>: Recipient address rejected: temporary failure: sender_domain: no answer within the decision deadline of 8000 ms/, `${debug(r)}\n--- frontline ---\n${frontline.stderr()}`);
    assert.doesNotMatch(postfix.maillog().slice(logBefore), /problem talking to server/, 'Postfix did not give up on frontline');
    assert.ok(r.ms < 10_000, `answered after ${Math.round(r.ms)} ms`);
  });
});
