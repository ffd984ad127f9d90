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
import { execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { freePort } from '../helpers/ports.js';
import { loadZoneYaml, startFixtureDns } from '../helpers/fixture-dns.js';
import { runCli, startServe } from '../helpers/cli.js';
import { cleanupStack, requirePostfixPeers, startPostfix } from '../helpers/postfix.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const ATTACKER = '203.0.113.77';

/** A sink for whatever Postfix relays (nothing should arrive from the banned client). */
async function startSink() {
  let received = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => {
        received++;
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.server.address() as { port: number }).port,
    received: () => received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function swaks(bin: string, port: number, ip: string, subject: string): Promise<{ code: number; transcript: string; errors: string[] }> {
  const args = [
    '--server', `127.0.0.1:${port}`,
    '--ehlo', 'mail.legit.test',
    '--from', 'dave@legit.test',
    '--to', 'u@dest.test',
    '--xclient-addr', ip,
    '--xclient-name', '[UNAVAILABLE]',
    '--xclient-helo', 'mail.legit.test',
    '--header', `Subject: ${subject}`,
    '--body', `frontline logwatch end-to-end test: ${subject}`,
    '--timeout', '60',
  ];
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 90000 }, (err, stdout, stderr) => {
      const transcript = `${stdout}${stderr}`;
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      const errors = transcript
        .split('\n')
        .filter((l) => l.startsWith('<**'))
        .map((l) => l.replace(/^<\*\*\s*/, ''));
      resolve({ code, transcript, errors });
    });
  });
}

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
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const { postfix: postfixBin, swaks: swaksBin } = peers;
  const cleanup = cleanupStack(t);

  const dns = await startFixtureDns(loadZoneYaml(WORLD));
  cleanup.push(() => dns.close());
  const sink = await startSink();
  cleanup.push(() => sink.close());

  const dir = mkdtempSync(join(tmpdir(), 'frontline-e2e-logwatch-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
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

  const debug = (transcript = '') => `${transcript}\n--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${frontline.stdout()}${frontline.stderr()}`;
  const logLines = () =>
    frontline
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${debug()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  await t.test('the burst becomes a ban with its category; Postfix refuses the client 554 at RCPT with the reason', async () => {
    // Not banned before the burst: whatever the policy says, it is not the ban.
    const shown = await runCli(['ban', 'show', `${ATTACKER}/32`, '--json', '--config', config]);
    assert.equal(shown.code, 1, `${shown.stdout}${shown.stderr}`);

    // The default ssh-bruteforce scenario: 6 counted lines within 10 minutes.
    appendFileSync(authLog, sshdBurst(ATTACKER, 6));
    const t0 = Date.now();
    const banLine = await waitFor('logwatch ban logged', () => logLines().find((l) => l.msg === 'logwatch ban' && l.cidr === `${ATTACKER}/32`));
    assert.equal(banLine.category, 'brute-force');
    assert.equal(banLine.scenario, 'ssh-bruteforce');
    assert.ok(Date.now() - t0 < 5000, `the ban took ${Date.now() - t0} ms`);

    const r = await swaks(swaksBin, smtpPort, ATTACKER, 'from-banned');
    assert.equal(r.code, 24, `swaks: no RCPT accepted\n${debug(r.transcript)}`);
    assert.match(r.transcript, /-> RCPT TO:<u@dest\.test>\s*\n<\*\* +554 5\.7\.1 /, debug(r.transcript));
    const ip = ATTACKER.replace(/\./g, '\\.');
    // Postfix puts the recipient and "Recipient address rejected:" before the policy's text.
    assert.match(r.errors[0], new RegExp(`^554 5\\.7\\.1 <u@dest\\.test>: Recipient address rejected: rejected: ${ip} is banned \\(brute-force: logwatch ssh-bruteforce: 6 x sshd\\.auth-fail in \\d+s \\(.*auth\\.log, lines 2-7\\)\\) until `), debug(r.transcript));
    assert.match(postfix.maillog(), new RegExp(`NOQUEUE: reject: RCPT from unknown\\[${ip}\\]: 554 5\\.7\\.1 `));
    const decision = await waitFor('decision logged', () => logLines().find((l) => l.msg === 'decision' && l.client === ATTACKER));
    assert.equal(decision.rule, 'banned');
    assert.equal(sink.received(), 0);

    const show = await runCli(['ban', 'show', `${ATTACKER}/32`, '--json', '--config', config]);
    assert.equal(show.code, 0, `${show.stdout}${show.stderr}`);
    const ban = JSON.parse(show.stdout) as { cidr: string; category: string; source: string; reason: string };
    assert.equal(ban.cidr, `${ATTACKER}/32`);
    assert.equal(ban.category, 'brute-force');
    assert.equal(ban.source, `log:${authLog}`);
    assert.match(ban.reason, /^logwatch ssh-bruteforce: 6 x sshd\.auth-fail in \d+s \(.*auth\.log, lines 2-7\)$/);
  });

  await t.test('another client is not affected by the ban', async () => {
    const r = await swaks(swaksBin, smtpPort, '203.0.113.78', 'from-neighbour');
    assert.doesNotMatch(r.transcript, /is banned/, debug(r.transcript));
    const decision = await waitFor('decision logged', () => logLines().find((l) => l.msg === 'decision' && l.client === '203.0.113.78'));
    assert.notEqual(decision.rule, 'banned');
  });

  await t.test('the large-sender whitelist is walked from DNS into the store list spf-walked', async () => {
    const entries = await waitFor('spf-walked filled', async () => {
      const r = await runCli(['list', 'show', 'spf-walked', '--json', '--config', config]);
      if (r.code !== 0) return undefined;
      const parsed = JSON.parse(r.stdout) as unknown;
      const rows = (Array.isArray(parsed) ? parsed : ((parsed as { entries?: unknown[] }).entries ?? [])) as Array<{ entry: string; source: string }>;
      return rows.length > 0 ? rows : undefined;
    });
    assert.ok(entries.every((e) => /^spf:(bigprovider|small)\.test$/.test(e.source)), JSON.stringify(entries));
    assert.ok(entries.some((e) => e.source === 'spf:bigprovider.test'), JSON.stringify(entries));
  });

  await t.test('SIGTERM stops serve cleanly, with the log offset saved', async () => {
    assert.equal(await frontline.stop(), 0, debug());
    const state = JSON.parse(readFileSync(join(dir, 'data', 'logwatch-state.json'), 'utf8')) as { files: Record<string, { offset: number; line: number }> };
    assert.deepEqual([state.files[authLog].offset, state.files[authLog].line], [statSync(authLog).size, 7]);
  });
});
