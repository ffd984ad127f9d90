// `frontline replay` end to end: a real Postfix asks a real `frontline serve`
// (check_policy_service) while swaks plays five senders of the fixture world;
// the decisions land in the server's decision log (SQLite). Then the replay
// command, as an admin runs it next to the server: the policy in force
// changes nothing; a deny list added in the proposed config refuses exactly
// the sender on it; a rule that needs evidence the log never had is
// reported as not reproducible (and is computed with --live-dns); a
// proposed config with an error is refused naming file:line:key.
//
// Run: npm run test:e2e  (needs postfix and swaks; skipped loudly without
// them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadZoneYaml } from '../helpers/fixture-dns.js';
import { runCli } from '../helpers/cli.js';
import { servePolicyPostfix, startPostfixBed } from '../helpers/postfix.js';
import { sendWithSwaks, type SwaksSender } from '../helpers/swaks.js';
import type { ReplayReport } from '../../src/report/replay.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const CONFIG = new URL('../fixtures/e2e-frontline.yaml', import.meta.url).pathname;

const SENDERS: SwaksSender[] = [
  { ip: '198.51.100.10', name: 'mta10.outbound.bigprovider-mail.test', helo: 'out-of-sync.bigprovider.test', from: 'alice@bigprovider.test', to: 'u@dest.test,v@dest.test' },
  { ip: '192.0.2.77', name: 'cpe-192-0-2-77.cable.homenet.test', helo: 'DESKTOP-4F2K9', from: 'bob@bigisp.test', to: 'u@dest.test' },
  { ip: '192.0.2.200', name: '[UNAVAILABLE]', helo: 'mail.legit.test', from: 'dave@legit.test', to: 'u@dest.test' },
  { ip: '203.0.113.5', name: 'mail.small.test', helo: 'mail.small.test', from: 'erin@small.test', to: 'u@dest.test' },
  { ip: '192.0.2.99', name: '[UNAVAILABLE]', helo: 'laptop', from: 'joe@bigisp.test', to: 'u@dest.test', login: 'joe' },
];

test('frontline replay over decisions a real Postfix asked a real frontline serve for', { timeout: 300_000 }, async (t) => {
  const bed = await startPostfixBed(t, loadZoneYaml(WORLD), 'fl-e2e-replay-');
  if (!bed) return;
  const { peers, dns, dir } = bed;
  const inForce = readFileSync(CONFIG, 'utf8');
  const current = join(dir, 'frontline.yaml');
  writeFileSync(current, `${inForce}\ndata_dir: ${join(dir, 'data')}\n`);
  const { frontline, postfix } = await servePolicyPostfix(bed, ['--config', current], {
    smtpd_sasl_auth_enable: 'yes',
    smtpd_relay_restrictions: 'permit_sasl_authenticated, reject_unauth_destination',
  });

  for (const s of SENDERS) await sendWithSwaks(peers.swaks, postfix.smtpPort, s);
  // Stopping the server commits its decision log; the replay reads the file it leaves.
  assert.equal(await frontline.stop(), 0, frontline.stderr());

  const replay = async (proposedYaml: string, ...args: string[]): Promise<ReplayReport> => {
    const proposed = join(dir, 'new.yaml');
    writeFileSync(proposed, `${proposedYaml}\ndata_dir: ${join(dir, 'data')}\n`);
    const r = await runCli(['replay', '--config', proposed, '--current', current, '--since', '1h', '--json', ...args], { env: { FRONTLINE_DNS: dns.server } });
    assert.equal(r.code, 0, `${r.stderr}\n--- maillog ---\n${postfix.maillog()}`);
    return JSON.parse(r.stdout) as ReplayReport;
  };

  await t.test('the policy in force changes nothing', async () => {
    const r = await replay(inForce);
    // Six decisions: two recipients of the provider, one of each other sender.
    assert.equal(r.replayed, 6, JSON.stringify(r));
    assert.equal(r.changed, 0, JSON.stringify(r.changes));
    assert.equal(r.notReproducible, 0, JSON.stringify(r.unreproducible));
    assert.equal(r.unchanged, 6);
    assert.equal(r.oldRecords, 0);
  });

  await t.test('a deny list added refuses exactly the sender on it, named with its client', async () => {
    const r = await replay(`${inForce}\nlists:\n  deny:\n    type: domain\n    entries: [small.test]\n`);
    assert.equal(r.changed, 1, JSON.stringify(r));
    assert.equal(r.changes[0].from.action, 'continue');
    assert.equal(r.changes[0].to.action, 'reject');
    assert.equal(r.changes[0].to.rule, 'denylist');
    assert.deepEqual(r.byRule, [{ rule: 'denylist', count: 1 }]);
    const x = r.changes[0].examples[0];
    assert.equal(x.clientIp, '203.0.113.5');
    assert.equal(x.clientPtr, 'mail.small.test');
    assert.equal(x.from, 'erin@small.test');
    assert.deepEqual(x.rcpts, ['u@dest.test']);
  });

  await t.test('evidence the log never had is not reproducible offline, and computed with --live-dns', async () => {
    // Without the DNSBL, the listed client's sender would be judged on SPF, which was never checked for it.
    const noBl = inForce.replace('zones: ["bl.test=127.0.0.[2..11]"]', 'zones: []');
    assert.notEqual(noBl, inForce);
    const offline = await replay(noBl);
    assert.ok(offline.notReproducible >= 1, JSON.stringify(offline));
    assert.ok(offline.unreproducible.some((u) => u.examples.some((x) => x.clientIp === '192.0.2.200')));
    assert.equal(offline.liveDns, false);
    const live = await replay(noBl, '--live-dns');
    assert.equal(live.liveDns, true);
    assert.equal(live.notReproducible, 0, JSON.stringify(live.unreproducible));
    // legit.test authorises 192.0.2.0/24: the listed client would now be accepted.
    const freed = live.changes.find((c) => c.from.rule === 'dnsbl');
    assert.equal(freed?.to.action, 'continue', JSON.stringify(live.changes));
  });

  await t.test('the table names the change; a proposed config with an error changes nothing and names file:line:key', async () => {
    const proposed = join(dir, 'new.yaml');
    writeFileSync(proposed, `${inForce}\nlists:\n  deny:\n    type: domain\n    entries: [small.test]\ndata_dir: ${join(dir, 'data')}\n`);
    const text = await runCli(['replay', '--config', proposed, '--current', current, '--since', '1h']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^changed +1$/m);
    assert.match(text.stdout, /^1 +continue \(default\) +reject 5\d\d \(denylist\) +\S+ 203\.0\.113\.5 \[mail\.small\.test\] erin@small\.test → u@dest\.test$/m);

    writeFileSync(proposed, `${inForce}\npolicy:\n  rules:\n    - name: typo\n      if: spff=pass\n      action: reject\ndata_dir: ${join(dir, 'data')}\n`);
    const bad = await runCli(['replay', '--config', proposed, '--current', current]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /new\.yaml:\d+:\d+: policy\.rules\[0\]\.if: .*unknown check "spff"/);
    assert.equal(bad.stdout, '');
  });
});
