// GET /metrics of a real `frontline serve`: counters move after real policy
// requests, gate sessions (swaks through the gate, a pregreeting client) and
// log lines; the text passes the real `promtool check metrics`; no label
// carries an address; with --workers 2 every scrape counts every worker.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { loadZoneYaml, startFixtureDns, type FixtureDns } from '../helpers/fixture-dns.js';
import { runCli, startServe, type ServingCli } from '../helpers/cli.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';
import { requireBinary } from '../helpers/binaries.js';
import { startSink } from '../helpers/smtp-sink.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const FORGER = { client_address: '192.0.2.77', helo_name: 'DESKTOP-4F2K9', sender: 'bob@bigisp.test', recipient: 'u@dest.test' };
const PROVIDER = { client_address: '198.51.100.10', reverse_client_name: 'mta10.outbound.bigprovider-mail.test', helo_name: 'x.bigprovider.test', sender: 'alice@bigprovider.test' };

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of Prometheus' text format (enough of it for what frontline writes). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function total(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** At least `min` summed over the samples of `name` matching `where`; the failure lists what there was. */
function atLeast(samples: Sample[], name: string, where: Record<string, string>, min: number): void {
  const got = total(samples, name, where);
  const seen = samples.filter((s) => s.name === name).map((s) => `${JSON.stringify(s.labels)} ${s.value}`);
  assert.ok(got >= min, `${name} ${JSON.stringify(where)}: ${got} < ${min}; samples:\n${seen.join('\n')}`);
}

function webUrl(s: ServingCli): string {
  const m = /web (http:\/\/\S+?)(?:,|$|\s)/m.exec(s.stderr());
  assert.ok(m, s.stderr());
  return m[1];
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; text: string }> {
  const r = await fetch(`${url}/metrics`, { headers });
  return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
}

async function until<T>(what: string | (() => string), probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function promtool(bin: string, text: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(bin, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.end(text);
  });
}

const IPV4 = /\b\d{1,3}(\.\d{1,3}){3}\b/;
const IPV6 = /[0-9a-f]{1,4}:[0-9a-f:]*:/i;

let dns: FixtureDns;
let dir: string;

before(async () => {
  dns = await startFixtureDns(loadZoneYaml(WORLD));
  dir = mkdtempSync(join(os.tmpdir(), 'fl-metrics-'));
});
after(async () => {
  await dns.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /metrics', () => {
  test('counters move after policy requests, gate sessions and log lines; promtool accepts the text; no address in a label', { timeout: 240_000 }, async (t) => {
    const promtoolBin = requireBinary('promtool', t);
    const swaksBin = requireBinary('swaks', t);
    if (!promtoolBin || !swaksBin) return;
    const sink = await startSink({ xclient: true });
    t.after(() => sink.close());
    const authLog = join(dir, 'auth.log');
    writeFileSync(authLog, '');
    const dataDir = join(dir, 'data1');
    const config = join(dir, 'one.yaml');
    writeFileSync(
      config,
      [
        `data_dir: ${JSON.stringify(dataDir)}`,
        'logwatch:',
        '  enabled: true',
        '  poll_interval_ms: 100',
        '  sources:',
        `    - { type: file, paths: [${JSON.stringify(authLog)}], format: auto, name: auth }`,
        'gate:',
        '  hostname: gate.test',
        '  greet_wait_ms: 300',
        '  door_cache_ttl_s: 0',
        '',
      ].join('\n'),
    );
    const banned = await runCli(['ban', 'add', '203.0.113.9', '--reason', 'metrics test', '--duration', '1h', '--config', config]);
    assert.equal(banned.code, 0, banned.stderr);

    const s = await startServe([
      '--config', config,
      '--dns', dns.server,
      '--policy-listen', '127.0.0.1:0',
      '--web-listen', '127.0.0.1:0',
      '--gate-listen', '127.0.0.1:0',
      '--gate-backend', `127.0.0.1:${sink.port}`,
    ], { timeoutMs: 120_000 }); // prettier-ignore
    t.after(() => s.stop());
    const url = webUrl(s);
    const gatePort = Number(/frontline gate on 127\.0\.0\.1:(\d+)/.exec(s.stderr())?.[1]);

    const before = parse((await scrape(url)).text);
    assert.equal(total(before, 'frontline_decisions_total'), 0);

    const client = await PolicyClient.connect({ host: '127.0.0.1', port: s.port });
    t.after(() => client.close());
    for (let i = 0; i < 5; i++) assert.match(await client.ask(rcptRequest({ ...FORGER, instance: `f${i}` })), /^(4|5)\d\d /);
    for (let i = 0; i < 3; i++) await client.ask(rcptRequest({ ...PROVIDER, instance: `p${i}` }));

    // A client that talks before the greeting fails the pregreet door test; a real client's message is relayed.
    const rude = await SmtpTalk.connect(gatePort);
    rude.send('EHLO rude.example');
    await rude.waitClosed(1000);
    rude.close();
    const sent = await new Promise<{ code: number | null; out: string }>((resolve) =>
      execFile(swaksBin, ['--server', `127.0.0.1:${gatePort}`, '--ehlo', 'client.example.com', '--from', 'alice@example.com', '--to', 'bob@dest.test'], (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    assert.equal(sent.code, 0, sent.out);

    appendFileSync(authLog, [1, 2, 3].map((i) => `Dec  7 10:00:0${i} host sshd[100${i}]: Failed password for root from 198.51.100.200 port 4000${i} ssh2\n`).join(''));

    let seen: Sample[] = [];
    const samples = await until(() => `every counter to move; last scrape:\n${seen.filter((x) => x.name.startsWith('frontline_')).map((x) => `${x.name}${JSON.stringify(x.labels)} ${x.value}`).join('\n')}`, async () => {
      const got = parse((await scrape(url)).text);
      seen = got;
      const ok =
        total(got, 'frontline_decisions_total', { frontend: 'postfix' }) === 8 &&
        total(got, 'frontline_gate_relayed_messages_total') === 1 &&
        total(got, 'frontline_logwatch_lines_total', { source: 'auth' }) === 3 &&
        // The decision log is written in batches: its operation is timed when the batch is stored.
        total(got, 'frontline_store_operation_duration_seconds_count', { op: 'logEvent' }) > 0 &&
        total(got, 'frontline_bans_active', { category: 'manual' }) >= 1;
      return ok ? got : undefined;
    });

    // Decisions by frontend, stage, action and rule.
    const refused = samples.filter((x) => x.name === 'frontline_decisions_total' && x.labels.frontend === 'postfix' && (x.labels.action === 'reject' || x.labels.action === 'defer'));
    assert.equal(refused.reduce((a, x) => a + x.value, 0), 5, JSON.stringify(refused));
    assert.ok(refused.every((x) => x.labels.stage === 'rcpt' && x.labels.rule !== ''), JSON.stringify(refused));
    atLeast(samples, 'frontline_decisions_total', { frontend: 'gate', rule: 'gate:pregreet' }, 1);
    assert.equal(total(samples, 'frontline_policy_requests_total'), 8);
    // Check latency, DNS, store, gate, log watching.
    atLeast(samples, 'frontline_check_duration_seconds_count', {}, 1);
    atLeast(samples, 'frontline_check_duration_seconds_bucket', { le: '+Inf' }, 1);
    atLeast(samples, 'frontline_dns_queries_total', {}, 1);
    assert.ok(total(samples, 'frontline_dns_cache_lookups_total', { result: 'hit' }) + total(samples, 'frontline_dns_cache_lookups_total', { result: 'miss' }) > 0);
    atLeast(samples, 'frontline_store_operation_duration_seconds_count', { op: 'logEvent' }, 1);
    atLeast(samples, 'frontline_gate_connections_total', {}, 2);
    atLeast(samples, 'frontline_gate_door_test_failures_total', { test: 'pregreet', action: 'enforce' }, 1);
    assert.equal(total(samples, 'frontline_logwatch_events_total', { source: 'auth' }), 3);

    // Bounded labels: no client address anywhere, whatever the metric.
    for (const x of samples) {
      for (const [k, v] of Object.entries(x.labels)) {
        if (k === 'le' || k === 'version') continue;
        assert.ok(!IPV4.test(v) && !IPV6.test(v), `${x.name} has an address in ${k}="${v}"`);
      }
    }

    const last = await scrape(url);
    assert.equal(last.status, 200);
    assert.match(last.type ?? '', /^text\/plain; version=0\.0\.4/);
    const checked = await promtool(promtoolBin, last.text);
    assert.equal(checked.code, 0, checked.out);
    assert.equal(checked.out.trim(), '', `promtool found problems:\n${checked.out}`);
  });

  test('--workers 2: every scrape counts the decisions of both workers, and the bans once', { timeout: 180_000 }, async (t) => {
    const banned = await runCli(['ban', 'add', '203.0.113.9', '--reason', 'metrics test', '--duration', '1h', '--data-dir', join(dir, 'data2')]);
    assert.equal(banned.code, 0, banned.stderr);
    const s = await startServe(['--workers', '2', '--policy-listen', '127.0.0.1:0', '--web-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'data2')], { timeoutMs: 100_000 });
    t.after(() => s.stop());
    const url = webUrl(s);
    // Connections are dealt out round-robin: four of them reach both workers.
    const clients = await Promise.all([1, 2, 3, 4].map(() => PolicyClient.connect({ host: '127.0.0.1', port: s.port })));
    t.after(() => Promise.all(clients.map((c) => c.close())));
    let n = 0;
    for (const [i, c] of clients.entries()) {
      for (let j = 0; j < 5; j++, n++) await c.ask(rcptRequest({ ...FORGER, instance: `w${i}-${j}` }));
    }
    for (let i = 0; i < 6; i++) {
      const got = parse((await scrape(url)).text);
      assert.equal(total(got, 'frontline_decisions_total'), n, `scrape ${i}`);
      assert.equal(total(got, 'frontline_policy_connections_total'), 4, `scrape ${i}`);
      // Counted by one worker (src/cli/cluster.ts).
      assert.equal(total(got, 'frontline_bans_active', { category: 'manual' }), 1, `scrape ${i}`);
    }
  });

  test('web.auth token: 401 without it, 200 with it; web.metrics false: 404', { timeout: 240_000 }, async (t) => {
    const token = 'k'.repeat(40);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const config = join(dir, 'auth.yaml');
    writeFileSync(config, `web:\n  auth:\n    token_file: ${JSON.stringify(tokenFile)}\n`);
    const s = await startServe(['--config', config, '--policy-listen', '127.0.0.1:0', '--web-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'data3')], { timeoutMs: 120_000 });
    t.after(() => s.stop());
    const url = webUrl(s);
    const denied = await scrape(url);
    assert.equal(denied.status, 401);
    assert.doesNotMatch(denied.text, /frontline_/);
    assert.equal((await scrape(url, { authorization: `Bearer ${'j'.repeat(40)}` })).status, 401);
    const ok = await scrape(url, { authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200);
    assert.match(ok.text, /^# HELP frontline_decisions_total /m);

    const off = join(dir, 'off.yaml');
    writeFileSync(off, 'web:\n  metrics: false\n');
    const s2 = await startServe(['--config', off, '--policy-listen', '127.0.0.1:0', '--web-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'data4')], { timeoutMs: 120_000 });
    t.after(() => s2.stop());
    const none = await scrape(webUrl(s2));
    assert.equal(none.status, 404);
    assert.match(none.text, /metrics are off/);
  });
});
