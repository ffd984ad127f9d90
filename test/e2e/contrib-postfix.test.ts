// End to end: the Postfix files shipped in contrib/postfix/, loaded as they
// are into a private Postfix (test/helpers/postfix.ts). The only change the
// test makes is the port numbers (each one asserted present, so a file that
// changes them fails here): fixed ports would collide with anything else
// listening on this host.
//
//   postconf   every fragment parses, without a warning, to the settings the docs promise
//   (a)        policy-server/main.cf: Postfix asks frontline; accepted mail is
//              delivered, a forger refused 554; frontline down → 451 4.3.5
//   (b)        gate/master.cf + gate/frontline.yaml: the gate in front; Postfix
//              behind it takes XCLIENT and never asks a policy server
//   (c)        proxy-filter/master.cf + proxy-filter/frontline.yaml: Postfix's
//              smtpd_proxy_filter through the gate to the after-filter smtpd
//   batv/      parsed here; run through Postfix in batv-postfix.test.ts
//
// Run: npm run test:e2e (needs root, postfix and swaks; skipped loudly
// without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Zone } from '../../src/dns/zone.js';
import { requireBinary } from '../helpers/binaries.js';
import { freePort } from '../helpers/ports.js';
import { startFixtureDns } from '../helpers/fixture-dns.js';
import { REPO_ROOT, startServe, type ServingCli } from '../helpers/cli.js';
import { cleanupStack, requirePostfixPeers, startPostfix } from '../helpers/postfix.js';
import { startSink, type Sink } from '../helpers/smtp-sink.js';

const CONTRIB = join(REPO_ROOT, 'contrib/postfix');

/** A shipped file with its ports replaced; each `from` must be in it. */
function shipped(path: string, replace: Record<string, string> = {}): string {
  let text = readFileSync(join(CONTRIB, path), 'utf8');
  for (const [from, to] of Object.entries(replace)) {
    assert.ok(text.includes(from), `${path} no longer contains ${from}`);
    text = text.replaceAll(from, to);
  }
  return text;
}

interface Run {
  code: number;
  out: string;
  err: string;
}

function exec(bin: string, args: string[], timeoutMs = 90_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs }, (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, out, err }));
  });
}

/** swaks from 127.0.0.1; XCLIENT options when given. Errors are the `<**` lines. */
async function swaks(bin: string, port: number, from: string, subject: string, extra: string[] = []): Promise<Run & { errors: string[] }> {
  const r = await exec(bin, ['--server', `127.0.0.1:${port}`, '--ehlo', 'client.example.com', '--from', from, '--to', 'u@dest.test', '--header', `Subject: ${subject}`, '--timeout', '60', ...extra]);
  const transcript = r.out + r.err;
  return { ...r, out: transcript, errors: transcript.split('\n').filter((l) => l.startsWith('<**')).map((l) => l.replace(/^<\*\*\s*/, '')) };
}

async function delivered(sink: Sink, subject: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = sink.messages.find((x) => x.data.toString().includes(`Subject: ${subject}`));
    if (m) return m.data.toString();
    if (Date.now() > deadline) throw new Error(`"${subject}" not delivered within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function gatePort(s: ServingCli): number {
  const m = /frontline gate on \S+:(\d+)/.exec(s.stderr());
  if (!m) throw new Error(`no gate line in:\n${s.stderr()}`);
  return Number(m[1]);
}

test('contrib/postfix fragments parse with postconf, without a warning', async (t) => {
  const postconf = requireBinary('postconf', t);
  if (!postconf) return;
  const dir = mkdtempSync(join(tmpdir(), 'frontline-postconf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const load = async (name: string, main: string, master: string) => {
    const conf = join(dir, name);
    mkdirSync(conf);
    writeFileSync(join(conf, 'main.cf'), `compatibility_level = 3.6\n${main}`);
    writeFileSync(join(conf, 'master.cf'), master);
    const checks = [await exec(postconf, ['-c', conf, '-n']), await exec(postconf, ['-c', conf, '-M']), await exec(postconf, ['-c', conf, '-P'])];
    for (const r of checks) {
      assert.equal(r.code, 0, r.err);
      assert.equal(r.err, '', `postconf warned about ${name}:\n${r.err}`);
    }
    return (args: string[]) => exec(postconf, ['-c', conf, ...args]).then((r) => r.out.trim());
  };

  const a = await load('policy-server', shipped('policy-server/main.cf'), '');
  const restrictions = await a(['-h', 'smtpd_recipient_restrictions']);
  assert.match(restrictions, /reject_unauth_destination, check_policy_service \{ inet:127\.0\.0\.1:10040, timeout=10s, \{ default_action = 451 4\.3\.5 [^}]*\} \}$/);

  const b = await load('gate', '', shipped('gate/master.cf'));
  assert.equal(await b(['-P', '127.0.0.1:10025/inet/smtpd_authorized_xclient_hosts']), '127.0.0.1:10025/inet/smtpd_authorized_xclient_hosts = 127.0.0.1');
  assert.doesNotMatch(await b(['-P']), /check_policy_service/);
  assert.doesNotMatch(await b(['-M']), /^smtp\s+inet/m, 'port 25 is left to the gate');

  const c = await load('proxy-filter', '', shipped('proxy-filter/master.cf'));
  assert.equal(await c(['-P', 'smtp/inet/smtpd_proxy_filter']), 'smtp/inet/smtpd_proxy_filter = 127.0.0.1:10024');
  assert.equal(await c(['-P', '127.0.0.1:10025/inet/smtpd_authorized_xforward_hosts']), '127.0.0.1:10025/inet/smtpd_authorized_xforward_hosts = 127.0.0.0/8');
  assert.doesNotMatch(await c(['-P']), /check_policy_service/);

  // batv/: with the policy server's main.cf, as docs/batv.md has it (run through Postfix in batv-postfix.test.ts).
  const d = await load('batv', shipped('policy-server/main.cf') + shipped('batv/main.cf'), shipped('batv/master.cf'));
  assert.equal(await d(['-h', 'recipient_canonical_maps']), 'socketmap:inet:127.0.0.1:10041:batv-strip');
  assert.equal(await d(['-P', 'cleanup_batv/unix/sender_canonical_maps']), 'cleanup_batv/unix/sender_canonical_maps = socketmap:inet:127.0.0.1:10041:batv-sign');
  assert.equal(await d(['-P', 'submission/inet/cleanup_service_name']), 'submission/inet/cleanup_service_name = cleanup_batv');
  assert.equal(await d(['-P', '10.0.0.1:2525/inet/cleanup_service_name']), '10.0.0.1:2525/inet/cleanup_service_name = cleanup_batv');
  assert.doesNotMatch(await d(['-h', 'sender_canonical_maps']), /socketmap/, 'main.cf signs nothing: only cleanup_batv does');
});

test('contrib/postfix with a real Postfix: policy server, gate in front, before-queue proxy', { timeout: 300_000 }, async (t) => {
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const cleanup = cleanupStack(t);
  const tmp = mkdtempSync(join(tmpdir(), 'frontline-contrib-e2e-'));
  cleanup.push(async () => rmSync(tmp, { recursive: true, force: true }));

  // spf-ok.test authorises 127.0.0.1 (every client here) and 198.51.100.0/24; forged.test authorises nobody.
  const dns = await startFixtureDns(
    new Zone({
      'spf-ok.test': [{ MX: [10, 'mx.spf-ok.test'] }, { TXT: 'v=spf1 ip4:127.0.0.1 ip4:198.51.100.0/24 -all' }],
      'mx.spf-ok.test': [{ A: '203.0.113.6' }],
      'forged.test': [{ MX: [10, 'mx.forged.test'] }, { TXT: 'v=spf1 ip4:203.0.113.7 -all' }],
      'mx.forged.test': [{ A: '203.0.113.7' }],
    }),
  );
  cleanup.push(() => dns.close());
  const sink = await startSink();
  cleanup.push(() => sink.close());
  // 127.0.0.1 is not "my network" here: every client must earn its acceptance.
  const base = 'my_networks: [10.255.255.0/24]\ndns: { timeout_ms: 500, retries: 0 }\nheaders: { authserv_id: mx.dest.test }\n';
  const serve = async (name: string, yaml: string, args: string[] = []) => {
    const file = join(tmp, `${name}.yaml`);
    writeFileSync(file, base + yaml);
    // From source through tsx: slow to start on a loaded machine, hence 2 minutes.
    const s = await startServe(['--config', file, '--dns', dns.server, '--policy-listen', '127.0.0.1:0', '--data-dir', join(tmp, `data-${name}`), ...args], { timeoutMs: 120_000 });
    cleanup.push(() => s.stop());
    return s;
  };
  const postfixWith = async (opts: { smtpPort: number; mainCfText?: string; masterCfText?: string; smtpService?: boolean }) => {
    const p = await startPostfix({ postfixBin: peers.postfix, relayDomains: ['dest.test'], sinkPort: sink.port, mainCf: {}, ...opts });
    cleanup.push(() => p.stop());
    return p;
  };

  await t.test('(a) policy-server/main.cf: Postfix asks frontline; frontline down gives 451 4.3.5, never an accept', async () => {
    const frontline = await serve('policy', '');
    const smtpPort = await freePort();
    const postfix = await postfixWith({ smtpPort, mainCfText: shipped('policy-server/main.cf', { '127.0.0.1:10040': `127.0.0.1:${frontline.port}` }) });
    const debug = (r: Run) => `${r.out}\n--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${frontline.stderr()}`;

    const ok = await swaks(peers.swaks, smtpPort, 'someone@spf-ok.test', 'policy-accepted', ['--xclient-addr', '198.51.100.10', '--xclient-name', '[UNAVAILABLE]']);
    assert.equal(ok.code, 0, debug(ok));
    const m = await delivered(sink, 'policy-accepted');
    assert.match(m, /^Authentication-Results: mx\.dest\.test; .*spf=pass smtp\.mailfrom=spf-ok\.test/m);

    const forged = await swaks(peers.swaks, smtpPort, 'someone@forged.test', 'policy-forged', ['--xclient-addr', '198.51.100.11', '--xclient-name', '[UNAVAILABLE]']);
    assert.equal(forged.code, 24, debug(forged));
    assert.match(forged.errors[0] ?? '', /^554 5\.7\.1 .*forged\.test did not authorise 198\.51\.100\.11/, debug(forged));

    assert.equal(await frontline.stop(), 0);
    const down = await swaks(peers.swaks, smtpPort, 'someone@spf-ok.test', 'policy-down', ['--xclient-addr', '198.51.100.12', '--xclient-name', '[UNAVAILABLE]']);
    assert.equal(down.code, 24, debug(down));
    assert.match(down.errors[0] ?? '', /^451 4\.3\.5 .*Policy service unavailable, try again later$/, debug(down));
    assert.ok(!sink.messages.some((x) => x.data.toString().includes('Subject: policy-down')), 'nothing accepted while frontline is down');
  });

  await t.test('(b) gate/master.cf + gate/frontline.yaml: the gate in front, Postfix behind takes XCLIENT and asks no policy server', async () => {
    const backendPort = await freePort();
    const gate = await serve('gate', shipped('gate/frontline.yaml', { '0.0.0.0:25': '127.0.0.1:0', '127.0.0.1:10025': `127.0.0.1:${backendPort}` }));
    // main.cf as an admin who used the policy server before has it, the policy
    // server now unreachable: had the backend smtpd asked it, mail would get 451.
    const deadPolicy = await freePort();
    const postfix = await postfixWith({
      smtpPort: backendPort,
      smtpService: false,
      mainCfText: shipped('policy-server/main.cf', { '127.0.0.1:10040': `127.0.0.1:${deadPolicy}` }),
      masterCfText: shipped('gate/master.cf', { '127.0.0.1:10025': `127.0.0.1:${backendPort}` }),
    });
    const port = gatePort(gate);
    const debug = (r: Run) => `${r.out}\n--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${gate.stderr()}`;

    const ok = await swaks(peers.swaks, port, 'someone@spf-ok.test', 'gate-accepted');
    assert.equal(ok.code, 0, debug(ok));
    assert.match(ok.out, /<- {2}250 2\.0\.0 Ok: (\d+ bytes )?queued as [0-9A-F]+/, 'the client got Postfix\'s own queue id');
    const m = await delivered(sink, 'gate-accepted');
    assert.equal(m.match(/^Authentication-Results:/gm)?.length, 1, `one Authentication-Results header:\n${m}`);
    // XCLIENT: Postfix's Received line names the client's HELO, not the gate's.
    assert.match(m, /^Received: from client\.example\.com \(/m, m);
    assert.match(postfix.maillog(), /postfix\/gate-backend\/smtpd\[\d+\]: [0-9A-F]+: client=/);
    assert.doesNotMatch(postfix.maillog(), /problem talking to server|policy/i, 'the backend smtpd asked no policy server');

    const forged = await swaks(peers.swaks, port, 'someone@forged.test', 'gate-forged');
    assert.notEqual(forged.code, 0, debug(forged));
    assert.match(forged.out, /<\*\* +554 5\.7\.1 .*forged\.test did not authorise 127\.0\.0\.1/, debug(forged));
  });

  await t.test('(c) proxy-filter/master.cf + proxy-filter/frontline.yaml: smtpd_proxy_filter through the gate', async () => {
    const [frontPort, afterPort] = [await freePort(), await freePort()];
    const gate = await serve('proxy', shipped('proxy-filter/frontline.yaml', { '127.0.0.1:10024': '127.0.0.1:0', '127.0.0.1:10025': `127.0.0.1:${afterPort}` }));
    const port = gatePort(gate);
    const postfix = await postfixWith({
      smtpPort: frontPort,
      smtpService: false,
      masterCfText: shipped('proxy-filter/master.cf', {
        'smtp      inet': `127.0.0.1:${frontPort} inet`,
        '127.0.0.1:10024': `127.0.0.1:${port}`,
        '127.0.0.1:10025': `127.0.0.1:${afterPort}`,
      }),
    });
    const debug = (r: Run) => `${r.out}\n--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${gate.stderr()}`;

    // The front smtpd believes swaks's XCLIENT (the helper authorises loopback),
    // passes the client on with XFORWARD, and the gate judges that client.
    const ok = await swaks(peers.swaks, frontPort, 'someone@spf-ok.test', 'proxy-accepted', ['--xclient-addr', '198.51.100.20', '--xclient-name', '[UNAVAILABLE]']);
    assert.equal(ok.code, 0, debug(ok));
    const m = await delivered(sink, 'proxy-accepted');
    assert.match(m, /^Authentication-Results: mx\.dest\.test; .*spf=pass smtp\.mailfrom=spf-ok\.test/m);
    assert.match(postfix.maillog(), /postfix\/after-filter\/smtpd\[\d+\]: [0-9A-F]+: client=\S+, orig_queue_id=[0-9A-F]+, orig_client=unknown\[198\.51\.100\.20\]/, postfix.maillog());

    const forged = await swaks(peers.swaks, frontPort, 'someone@forged.test', 'proxy-forged', ['--xclient-addr', '198.51.100.21', '--xclient-name', '[UNAVAILABLE]']);
    assert.notEqual(forged.code, 0, debug(forged));
    assert.match(forged.out, /<\*\* +554 5\.7\.1 .*forged\.test did not authorise 198\.51\.100\.21/, debug(forged));
  });
});
