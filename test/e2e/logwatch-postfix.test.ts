// End to end (issue 5): a burst of failed ssh logins written to a file that
// `frontline serve` watches becomes a ban in its SQLite store, which the
// policy server then enforces: real Postfix (check_policy_service) refuses
// that client 554 at RCPT with the ban's reason, and `frontline ban show`
// names the category. The large-sender whitelist walked from the fixture
// DNS world lands in the store's `spf-walked` list.
//
// Run: npm run test:e2e  (needs root, postfix and swaks; skipped loudly
// without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadZoneYaml } from '../helpers/fixture-dns.js';
import { runCli } from '../helpers/cli.js';
import { failureReport, servePolicyPostfix, startPostfixBed } from '../helpers/postfix.js';
import { sendWithSwaks, waitFor, type SwaksResult } from '../helpers/swaks.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const ATTACKER = '203.0.113.77';

/** Lines as Debian's rsyslog writes sshd's to /var/log/auth.log. */
function sshdBurst(ip: string, n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = String(10 + i).padStart(2, '0');
    lines.push(`Nov 22 05:01:${s} mx1 sshd[${31000 + i}]: Failed password for root from ${ip} port ${4242 + i} ssh2`);
  }
  return `${lines.join('\n')}\n`;
}

test('failed ssh logins in a watched log become a ban that Postfix enforces through frontline', { timeout: 240_000 }, async (t) => {
  const bed = await startPostfixBed(t, loadZoneYaml(WORLD), 'frontline-e2e-logwatch-');
  if (!bed) return;
  const { peers, sink, dir } = bed;
  const authLog = join(dir, 'auth.log');
  // Exists before serve starts: start_at end then means "every line written from now on".
  writeFileSync(authLog, 'Nov 22 05:00:00 mx1 sshd[30000]: Server listening on 0.0.0.0 port 22.\n');
  const config = join(dir, 'frontline.yaml');
  writeFileSync(
    config,
    [
      `data_dir: ${JSON.stringify(join(dir, 'data'))}`,
      'dns: { timeout_ms: 400, retries: 0 }',
      'headers: { authserv_id: mx.dest.test }',
      'store: { backend: sqlite }',
      'logwatch:',
      '  enabled: true',
      '  poll_interval_ms: 100',
      '  sources:',
      `    - { type: file, paths: [${JSON.stringify(authLog)}], format: auto }`,
      'intel:',
      '  spf_whitelist: { domains: [bigprovider.test, small.test] }',
      '  correspondents: { ignore_domains: [dest.test] }',
      '',
    ].join('\n'),
  );

  const { frontline, postfix } = await servePolicyPostfix(bed, ['--config', config]);
  const swaks = (ip: string, subject: string) =>
    sendWithSwaks(peers.swaks, postfix.smtpPort, { ip, helo: 'mail.legit.test', from: 'dave@legit.test', to: 'u@dest.test', subject, body: `frontline logwatch end-to-end test: ${subject}` });
  const debug = (r?: SwaksResult) => failureReport(postfix, frontline, r);
  const logLines = () =>
    frontline
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  await t.test('the burst becomes a ban with its category; Postfix refuses the client 554 at RCPT with the reason', async () => {
    // Not banned before the burst: whatever the policy says, it is not the ban.
    const shown = await runCli(['ban', 'show', `${ATTACKER}/32`, '--json', '--config', config]);
    assert.equal(shown.code, 1, `${shown.stdout}${shown.stderr}`);

    // The default ssh-bruteforce scenario: 6 counted lines within 10 minutes.
    appendFileSync(authLog, sshdBurst(ATTACKER, 6));
    const t0 = Date.now();
    const banLine = await waitFor('logwatch ban logged', () => logLines().find((l) => l.msg === 'logwatch ban' && l.cidr === `${ATTACKER}/32`), 10_000);
    assert.equal(banLine.category, 'brute-force');
    assert.equal(banLine.scenario, 'ssh-bruteforce');
    assert.ok(Date.now() - t0 < 5000, `the ban took ${Date.now() - t0} ms`);

    const r = await swaks(ATTACKER, 'from-banned');
    assert.equal(r.code, 24, `swaks: no RCPT accepted\n${debug(r)}`);
    assert.match(r.transcript, /-> RCPT TO:<u@dest\.test>\s*\n<\*\* +554 5\.7\.1 /, debug(r));
    const ip = ATTACKER.replace(/\./g, '\\.');
    // Postfix puts the recipient and "Recipient address rejected:" before the policy's text.
    assert.match(r.errors[0], new RegExp(`^554 5\\.7\\.1 <u@dest\\.test>: Recipient address rejected: rejected: ${ip} is banned \\(brute-force: logwatch ssh-bruteforce: 6 x sshd\\.auth-fail in \\d+s \\(.*auth\\.log, lines 2-7\\)\\) until `), debug(r));
    assert.match(postfix.maillog(), new RegExp(`NOQUEUE: reject: RCPT from unknown\\[${ip}\\]: 554 5\\.7\\.1 `));
    const decision = await waitFor('decision logged', () => logLines().find((l) => l.msg === 'decision' && l.client === ATTACKER), 10_000);
    assert.equal(decision.rule, 'banned');
    assert.equal(sink.messages.length, 0);

    const show = await runCli(['ban', 'show', `${ATTACKER}/32`, '--json', '--config', config]);
    assert.equal(show.code, 0, `${show.stdout}${show.stderr}`);
    const ban = JSON.parse(show.stdout) as { cidr: string; category: string; source: string; reason: string };
    assert.equal(ban.cidr, `${ATTACKER}/32`);
    assert.equal(ban.category, 'brute-force');
    assert.equal(ban.source, `log:${authLog}`);
    assert.match(ban.reason, /^logwatch ssh-bruteforce: 6 x sshd\.auth-fail in \d+s \(.*auth\.log, lines 2-7\)$/);
  });

  await t.test('another client is not affected by the ban', async () => {
    const r = await swaks('203.0.113.78', 'from-neighbour');
    assert.doesNotMatch(r.transcript, /is banned/, debug(r));
    const decision = await waitFor('decision logged', () => logLines().find((l) => l.msg === 'decision' && l.client === '203.0.113.78'), 10_000);
    assert.notEqual(decision.rule, 'banned');
  });

  await t.test('the large-sender whitelist is walked from DNS into the store list spf-walked', async () => {
    const entries = await waitFor('spf-walked filled', async () => {
      const r = await runCli(['list', 'show', 'spf-walked', '--json', '--config', config]);
      if (r.code !== 0) return undefined;
      const parsed = JSON.parse(r.stdout) as unknown;
      const rows = (Array.isArray(parsed) ? parsed : ((parsed as { entries?: unknown[] }).entries ?? [])) as Array<{ entry: string; source: string }>;
      return rows.length > 0 ? rows : undefined;
    }, 10_000);
    assert.ok(entries.every((e) => /^spf:(bigprovider|small)\.test$/.test(e.source)), JSON.stringify(entries));
    assert.ok(entries.some((e) => e.source === 'spf:bigprovider.test'), JSON.stringify(entries));
  });

  await t.test('SIGTERM stops serve cleanly, with the log offset saved', async () => {
    assert.equal(await frontline.stop(), 0, debug());
    const state = JSON.parse(readFileSync(join(dir, 'data', 'logwatch-state.json'), 'utf8')) as { files: Record<string, { offset: number; line: number }> };
    assert.deepEqual([state.files[authLog].offset, state.files[authLog].line], [statSync(authLog).size, 7]);
  });
});
