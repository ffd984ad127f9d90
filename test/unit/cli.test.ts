// The CLI as a user runs it: a child process (node --import tsx
// src/cli/main.ts) against a fixture DNS server on loopback.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadZoneYaml, startFixtureDns, type FixtureDns } from '../helpers/fixture-dns.js';
import { runCli, startServe } from '../helpers/cli.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;

describe('frontline CLI', () => {
  let dns: FixtureDns;
  const dir = mkdtempSync(join(tmpdir(), 'frontline-cli-'));
  before(async () => {
    dns = await startFixtureDns(loadZoneYaml(WORLD));
  });
  after(async () => {
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('check --json: the home PC forging an ISP is refused 554 5.7.1 by the OR rule', async () => {
    const r = await runCli(['check', '--json', '--dns', dns.server, '--ip', '192.0.2.77', '--helo', 'DESKTOP-4F2K9', '--from', 'bob@bigisp.test', '--rcpt', 'u@dest.test']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.action, 'reject');
    assert.equal(out.code, 554);
    assert.equal(out.status, '5.7.1');
    assert.equal(out.rule, 'sender-authorised');
    assert.match(out.postfix, /^554 5\.7\.1 .*bigisp\.test/);
    const ev = Object.fromEntries(out.evidence.map((e: { check: string; result: string }) => [e.check, e.result]));
    assert.equal(ev.spf, 'none');
    assert.equal(ev.mx, 'nomatch');
    assert.equal(ev.fcrdns_domain, 'nomatch');
    assert.equal(ev.dkim_domain, 'none');
  });

  test('check (table): the provider with a bad HELO passes on SPF and gets result headers', async () => {
    const r = await runCli(['check', '--dns', dns.server, '--ip', '198.51.100.10', '--helo', 'out-of-sync.bigprovider.test', '--from', 'alice@bigprovider.test', '--rcpt', 'u@dest.test']);
    assert.equal(r.code, 0, r.stderr);
    // issue 17: a pass is called a pass, with what Postfix gets — not CONTINUE / rule default.
    assert.match(r.stdout, /^verdict\s+PASS: no rule refused it \(Postfix gets PREPEND \(a pass that adds a header\)\)$/m);
    assert.match(r.stdout, /^rule\s+none \(every rule let it through\)$/m);
    assert.doesNotMatch(r.stdout, /CONTINUE|rule\s+default/);
    assert.match(r.stdout, /^postfix\s+action=PREPEND Authentication-Results: .*spf=pass smtp\.mailfrom=bigprovider\.test/m);
    assert.match(r.stdout, /^spf\s+pass\s/m);
    assert.match(r.stdout, /^check\s+result\s+ms\s+detail$/m);
  });

  test('check --json with several --rcpt judges each recipient', async () => {
    const r = await runCli(['check', '--json', '--dns', dns.server, '--ip', '203.0.113.5', '--helo', 'mail.small.test', '--from', 'x@small.test', '--rcpt', 'a@dest.test', '--rcpt', 'b@dest.test']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.rcpt, ['a@dest.test', 'b@dest.test']);
    assert.equal(out.recipients.length, 2);
    assert.notEqual(out.action, 'reject', 'a correctly configured small server (MX, no SPF) is not refused');
    assert.match(out.recipients[0].postfix, /^PREPEND Authentication-Results/);
    assert.match(out.recipients[1].postfix, /^PREPEND X-Frontline-/);
  });

  test('check --stdin: one JSON result per line; bad lines give an error object', async () => {
    const input = [
      JSON.stringify({ ip: '192.0.2.77', helo: 'DESKTOP-4F2K9', from: 'bob@bigisp.test', rcpt: 'u@dest.test' }),
      '{not json',
      JSON.stringify({ helo: 'x', from: 'a@b.test' }),
      '',
      JSON.stringify({ ip: '2001:db8:25::25', helo: 'mx6.bigprovider.test', from: 'alice@bigprovider.test', rcpt: ['u@dest.test'] }),
      JSON.stringify({ ip: '192.0.2.99', from: 'joe@bigisp.test', rcpt: 'u@dest.test', auth: 'joe' }),
      JSON.stringify([1, 2]),
      JSON.stringify({ ip: 'nope', from: 'a@b.test' }),
    ].join('\n');
    const r = await runCli(['check', '--stdin', '--dns', dns.server], { input });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 7);
    assert.equal(lines[0].action, 'reject');
    assert.equal(lines[1].line, 2);
    assert.match(lines[1].error, /not JSON/);
    assert.match(lines[2].error, /"ip".*required/);
    assert.equal(lines[3].ip, '2001:db8:25::25');
    assert.equal(lines[3].evidence.find((e: { check: string }) => e.check === 'spf').result, 'pass');
    assert.equal(lines[4].action, 'accept');
    assert.equal(lines[4].rule, 'authenticated');
    assert.match(lines[5].error, /JSON object/);
    assert.match(lines[6].error, /not an IP address/);
  });

  test('check: a DNS timeout on the sender domain is a 4xx, never a 5xx', async () => {
    const r = await runCli(['check', '--json', '--dns', dns.server, '--dns-timeout', '200', '--ip', '192.0.2.88', '--helo', 'mail.slowdns.test', '--from', 'carol@slowdns.test', '--rcpt', 'u@dest.test']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.action, 'defer');
    assert.match(String(out.code), /^4/);
    assert.match(out.postfix, /^4\d\d 4\./);
  });

  test('check: bad flags are reported without a stack trace', async () => {
    const r = await runCli(['check', '--dns', dns.server, '--ip', '300.1.1.1', '--from', 'a@b.test']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not an IP address/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    const t = await runCli(['check', '--dns', dns.server, '--dns-timeout', 'soon', '--ip', '192.0.2.1']);
    assert.equal(t.code, 1);
    assert.match(t.stderr, /--dns-timeout/);
    const s = await runCli(['check', '--dns', dns.server, '--ip', '192.0.2.1', '--stage', 'lunch']);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /--stage/);
  });

  test('config check: OK for a good file, file:line:col: key errors for a bad one', async () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'postfix:\n  accept_reply: OK\ndns:\n  timeout_ms: 500\n');
    const ok = await runCli(['config', 'check', good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /OK/);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'postfix:\n  accept_reply: MAYBE\ndns:\n  timout_ms: 500\n');
    const r = await runCli(['config', 'check', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:\\d+: postfix\\.accept_reply: `));
    assert.match(r.stderr, /:4:\d+: dns\.timout_ms: unknown key/);

    const missing = await runCli(['config', 'check', join(dir, 'absent.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read/);
  });

  test('serve: ready line, answers Postfix on TCP and a unix socket, creates the data dir, exits cleanly on SIGTERM', async () => {
    const dataDir = join(dir, 'data', 'nested');
    const socket = join(dir, 'policy.sock');
    const s = await startServe(['--policy-listen', '127.0.0.1:0', '--policy-socket', socket, '--dns', dns.server, '--data-dir', dataDir]);
    try {
      assert.ok(existsSync(dataDir));
      assert.match(s.stderr(), /and unix:/);
      const forger = rcptRequest({ client_address: '192.0.2.77', helo_name: 'DESKTOP-4F2K9', sender: 'bob@bigisp.test', recipient: 'u@dest.test' });
      const c = await PolicyClient.connect({ host: '127.0.0.1', port: s.port });
      assert.match(await c.ask(forger), /^554 5\.7\.1 /);
      await c.close();
      const u = await PolicyClient.connect({ path: socket });
      assert.match(await u.ask({ ...forger, instance: 'other' }), /^554 5\.7\.1 /);
      await u.close();
    } finally {
      assert.equal(await s.stop(), 0);
    }
    assert.ok(!existsSync(socket), 'the socket file is removed on exit');
    const decision = s
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === 'decision');
    assert.equal(decision.rule, 'sender-authorised');
    assert.equal(decision.client, '192.0.2.77');
  });

  test('serve: a bad config stops it with the problems named', async () => {
    const bad = join(dir, 'bad-serve.yaml');
    writeFileSync(bad, 'listen:\n  policy: nowhere\n');
    const r = await runCli(['serve', '--config', bad, '--data-dir', join(dir, 'd2')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad-serve\.yaml:2:\d+: listen\.policy: /);
  });
});
