// Log watching end to end without a store: a file, standard input and a
// stand-in journalctl feed startLogWatch, whose bans land in a recording sink;
// replays and the CLI print what would have been banned.

import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { resolveScenarios } from '../../src/intel/logwatch/config.js';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import type { Logger } from '../../src/log.js';
import type { Store } from '../../src/store/types.js';
import { replay, startLogWatch, type BanRequest, type BanSink } from '../../src/intel/logwatch/index.js';
import { journalLine } from '../../src/intel/logwatch/journal.js';
import { LogwatchUsageError, replayCommand } from '../../src/cli/logwatch.js';
import { streamLines } from '../../src/intel/logwatch/stream.js';
import { createReadStream } from 'node:fs';

// The store's ban() is what log watching calls: this line stops compiling if the two drift apart.
export const storeIsASink = (s: Store): BanSink => s;

const fixture = (name: string) => new URL(`../fixtures/logs/${name}`, import.meta.url).pathname;

function recordingSink(answer: (r: BanRequest) => unknown = () => ({ refused: false })) {
  const bans: BanRequest[] = [];
  return { bans, sink: { ban: async (r: BanRequest) => (bans.push(r), answer(r)) } satisfies BanSink };
}

function captureLogger() {
  const entries: Array<{ level: string; msg: string; obj: unknown }> = [];
  const at = (level: string) => (obj: unknown, msg?: string) => entries.push({ level, msg: typeof obj === 'string' ? obj : (msg ?? ''), obj });
  const logger = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as unknown as Logger;
  return { logger, entries };
}

function sink2string() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return { stream, text: () => text };
}

const ssh = (ip: string, n: number) => Array.from({ length: n }, (_, i) => `Nov 22 05:01:0${i % 10} mx1 sshd[1]: Failed password for root from ${ip} port ${4000 + i} ssh2\n`).join('');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'frontline-lw-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('startLogWatch', () => {
  test('a burst of failed ssh logins written to a watched file becomes one ban', async () => {
    const log = join(dir, 'auth.log');
    writeFileSync(log, ssh('203.0.113.200', 10)); // history before we start: not read (start_at end)
    const { bans, sink } = recordingSink();
    const { logger } = captureLogger();
    let now = 1_000_000;
    const watch = await startLogWatch({
      sources: [{ type: 'file', paths: [log], format: 'auto' }],
      sink,
      logger,
      clock: { now: () => now },
      stateFile: join(dir, 'state.json'),
      pollIntervalMs: 3_600_000,
    });
    try {
      await watch.poll();
      appendFileSync(log, ssh('203.0.113.7', 5));
      await watch.poll();
      assert.equal(bans.length, 0);
      now += 1000;
      appendFileSync(log, `${ssh('203.0.113.7', 1)}${ssh('198.51.100.1', 2)}`);
      await watch.poll();
      assert.deepEqual(bans.map((b) => [b.cidr, b.category, b.source]), [['203.0.113.7/32', 'brute-force', `log:${log}`]]);
      assert.match(bans[0].reason, /^logwatch ssh-bruteforce: 6 x sshd\.auth-fail in 1s \(.*auth\.log, lines 11-16\)$/);
      const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
      assert.equal(state.files[log].offset, readFileSync(log).length);
    } finally {
      await watch.stop();
    }
  });

  test('without explicit polls: the poll timer (and fs.watch) pick up new lines', async () => {
    const log = join(dir, 'auth.log');
    writeFileSync(log, '');
    const { bans, sink } = recordingSink();
    const watch = await startLogWatch({ sources: [{ type: 'file', paths: [log, log], format: 'sshd' }], sink, logger: captureLogger().logger, pollIntervalMs: 50 });
    try {
      await watch.poll();
      appendFileSync(log, ssh('203.0.113.8', 6));
      for (let i = 0; i < 200 && bans.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(bans.map((b) => b.cidr), ['203.0.113.8/32']);
    } finally {
      await watch.stop();
    }
  });

  test('a refused ban (never-ban list) and a failing sink are logged; watching goes on', async () => {
    const log = join(dir, 'auth.log');
    writeFileSync(log, '');
    let calls = 0;
    const sink: BanSink = {
      ban: async (r) => {
        calls++;
        if (r.cidr.startsWith('203.0.113.1/')) return { refused: true, cidr: r.cidr, why: 'in my_networks' };
        throw new Error('store unavailable');
      },
    };
    const { logger, entries } = captureLogger();
    const watch = await startLogWatch({ sources: [{ type: 'file', paths: [log], format: 'sshd' }], sink, logger, pollIntervalMs: 3_600_000 });
    try {
      await watch.poll();
      appendFileSync(log, ssh('203.0.113.1', 6) + ssh('203.0.113.2', 6));
      await watch.poll();
      assert.equal(calls, 2);
      assert.ok(entries.some((e) => e.msg === 'logwatch ban refused' && JSON.stringify(e.obj).includes('in my_networks')));
      assert.ok(entries.some((e) => e.level === 'error' && e.msg === 'logwatch ban failed'));
    } finally {
      await watch.stop();
    }
  });

  test('standard input', async () => {
    const stdin = new PassThrough();
    const { bans, sink } = recordingSink();
    const watch = await startLogWatch({ sources: [{ type: 'stdin', format: 'nginx' }], sink, logger: captureLogger().logger, stdin });
    stdin.write('203.0.113.80 - - [22/Nov/2026:07:01:00 +0000] "GET /.env HTTP/1.1" 404 153 "-" "-"\n127.0.0.1 - - [22/Nov/2026:07:01:00 +0000] "GET /.env HTTP/1.1" 404 1 "-" "-"\n');
    stdin.end('203.0.113.81 - - [22/Nov/2026:07:01:05 +0000] "GET /tmUnblock.cgi HTTP/1.1" 400 157 "-" "-"');
    await watch.settled();
    await watch.stop();
    assert.deepEqual(bans.map((b) => [b.cidr, b.category, b.source]), [['203.0.113.80/32', 'probe', 'log:stdin'], ['203.0.113.81/32', 'probe', 'log:stdin']]);
  });

  test('the journal through journalctl -f -o json, resumed after its cursor', async () => {
    const argsFile = join(dir, 'args');
    const fake = join(dir, 'journalctl');
    const entry = (i: number, unit: string, ident: string, ip: string) =>
      JSON.stringify({ __CURSOR: `s=abc;i=${i}`, __REALTIME_TIMESTAMP: '1795000000000000', _SYSTEMD_UNIT: unit, SYSLOG_IDENTIFIER: ident, MESSAGE: `Failed password for root from ${ip} port ${i} ssh2` });
    const out = [
      ...[1, 2, 3, 4, 5, 6].map((i) => entry(i, 'ssh.service', 'sshd', '203.0.113.30')),
      ...[7, 8, 9, 10, 11, 12].map((i) => entry(i, 'user@1000.service', 'sshd', '6.6.6.6')), // a user logging as "sshd"
    ].join('\n');
    writeFileSync(join(dir, 'out.json'), `${out}\n`);
    writeFileSync(fake, `#!/bin/sh\necho "$@" >> '${argsFile}'\ncat '${join(dir, 'out.json')}'\nexec sleep 60\n`);
    chmodSync(fake, 0o755);
    const stateFile = join(dir, 'state.json');
    const { bans, sink } = recordingSink();
    const start = () =>
      startLogWatch({ sources: [{ type: 'journal', units: ['ssh.service'], format: 'auto', journalctl: fake }], sink, logger: captureLogger().logger, stateFile });
    const watch = await start();
    for (let i = 0; i < 100 && bans.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await watch.settled();
    await watch.stop();
    assert.deepEqual(bans.map((b) => [b.cidr, b.source]), [['203.0.113.30/32', 'log:journal']]);
    const state = JSON.parse(readFileSync(stateFile, 'utf8'));
    assert.equal(state.cursors['journal:ssh.service'], 's=abc;i=12');
    // Restarted: journalctl is asked to continue after the saved cursor.
    const again = await start();
    for (let i = 0; i < 100 && readFileSync(argsFile, 'utf8').trim().split('\n').length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    await again.stop();
    const calls = readFileSync(argsFile, 'utf8').trim().split('\n');
    assert.match(calls[0], /^-f -o json --no-pager --output-fields=\S+ -n 0 -u ssh\.service$/);
    assert.match(calls[1], /--after-cursor=s=abc;i=12 -u ssh\.service$/);
  });

  test('without journalctl the journal source is off with a warning', async () => {
    const { logger, entries } = captureLogger();
    const watch = await startLogWatch({ sources: [{ type: 'journal', units: [], format: 'auto', journalctl: join(dir, 'no-such-journalctl') }], sink: recordingSink().sink, logger });
    for (let i = 0; i < 100 && !entries.some((e) => e.level === 'warn'); i++) await new Promise((r) => setTimeout(r, 10));
    await watch.stop();
    assert.ok(entries.some((e) => e.level === 'warn' && /journalctl not found/.test(e.msg)));
  });

  test('journal entries: binary messages, multi-line messages are cut, other units dropped', () => {
    const bytes = [...Buffer.from('Failed password for root from 203.0.113.31 port 1 ssh2')];
    const a = journalLine(JSON.stringify({ MESSAGE: bytes, SYSLOG_IDENTIFIER: 'sshd', _SYSTEMD_UNIT: 'ssh.service', __CURSOR: 'c1' }), 4096, [], 1);
    assert.deepEqual([a.line?.message, a.line?.program, a.line?.cut, a.cursor], ['Failed password for root from 203.0.113.31 port 1 ssh2', 'sshd', false, 'c1']);
    const b = journalLine(JSON.stringify({ MESSAGE: 'Failed password for x from 6.6.6.6 port 22 ssh2\nmore', SYSLOG_IDENTIFIER: 'sshd' }), 4096, [], 1);
    assert.deepEqual([b.line?.message, b.line?.cut], ['Failed password for x from 6.6.6.6 port 22 ssh2', true]);
    assert.equal(journalLine(JSON.stringify({ MESSAGE: 'x', _SYSTEMD_UNIT: 'cron.service', __CURSOR: 'c2' }), 4096, ['ssh.service'], 1).line, undefined);
    assert.deepEqual(journalLine('not json', 4096, [], 1), {});
  });
});

describe('replay and the CLI', () => {
  test("the host's own addresses are never counted, even with an empty ignore list (a webmail on the host makes Dovecot log rip=<own address>)", async () => {
    const own = Object.values(networkInterfaces()).flatMap((l) => l ?? []).map((a) => a.address).filter((a) => !a.includes('%'));
    assert.ok(own.includes('127.0.0.1'));
    const scenarios = resolveScenarios({ 'imap-auth': { count: 1 } });
    for (const ip of own) {
      const line = `Jun  7 07:00:00 mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=${ip}, lip=${ip}, session=<Ab>`;
      assert.deepEqual(await replay([line], { ignore: [], scenarios }), [], ip);
    }
    // Another address on the same line is banned: the check is the address, not the form.
    const other = await replay(['Jun  7 07:00:00 mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=203.0.113.60, lip=192.0.2.1, session=<Ab>'], { ignore: [], scenarios });
    assert.deepEqual(other.map((d) => d.ip), ['203.0.113.60']);
  });

  test('replay of the fixture logs: what would be banned and why', async () => {
    const all: string[] = [];
    for (const f of ['auth.log', 'mail.log', 'nginx-access.log', 'nginx-error.log', 'apache-access.log', 'apache-error.log']) {
      const d = await replay(streamLines(createReadStream(fixture(f)), 4096), { clock: { now: () => new Date(2026, 10, 23).getTime() }, source: f });
      all.push(...d.map((x) => `${f} ${x.ip} ${x.scenario} ${x.count} ${x.firstLine}-${x.lastLine}`));
    }
    assert.deepEqual(all, [
      'auth.log 203.0.113.10 ssh-bruteforce 6 2-8',
      'mail.log 198.51.100.31 smtp-dnsbl 1 5-5',
      'nginx-access.log 203.0.113.80 http-probe 1 3-3',
      'nginx-access.log 203.0.113.81 http-probe 1 4-4',
      'nginx-access.log 203.0.113.83 http-scan 5 6-10',
      'nginx-access.log 2001:db8::85 http-probe 1 13-13',
      'apache-access.log 203.0.113.100 http-probe 1 2-2',
    ]);
  });

  test('frontline logwatch --from-start FILE --dry-run prints one line per ban, or JSON lines', async () => {
    const cfg = join(dir, 'frontline.yaml');
    writeFileSync(cfg, 'logwatch:\n  scenarios:\n    smtp-address-guessing: { count: 2 }\n    imap-auth: { count: 3 }\n');
    const out = sink2string();
    const err = sink2string();
    const io = { stdin: new PassThrough(), stdout: out.stream, stderr: err.stream };
    assert.equal(await replayCommand({ fromStart: fixture('mail.log'), dryRun: true, config: cfg, format: 'auto' }, io), 0);
    const lines = out.text().trim().split('\n');
    assert.deepEqual(
      lines.map((l) => l.replace(/ first=\S+ last=\S+/, '')),
      [
        '198.51.100.31 category=dnsbl scenario=smtp-dnsbl count=1 lines=5-5 kinds=postfix.dnsbl',
        '203.0.113.50 category=address-guessing scenario=smtp-address-guessing count=2 lines=12-13 kinds=postfix.unknown-user',
        '203.0.113.60 category=brute-force scenario=imap-auth count=3 lines=19-19 kinds=dovecot.auth-fail',
      ],
    );
    assert.match(err.text(), /27 lines, 20 events, 3 would be banned \(dry run: nothing banned\)/);

    const json = sink2string();
    await replayCommand({ fromStart: fixture('auth.log'), dryRun: true, json: true, format: 'sshd' }, { ...io, stdout: json.stream });
    const obj = JSON.parse(json.text().trim());
    assert.deepEqual([obj.ip, obj.cidr, obj.category, obj.scenario, obj.count, obj.firstLine, obj.lastLine], ['203.0.113.10', '203.0.113.10/32', 'brute-force', 'ssh-bruteforce', 6, 2, 8]);
    assert.match(obj.reason, /ssh-bruteforce: 6 x /);
  });

  test('the CLI refuses to ban without a store, and unknown formats', async () => {
    const io = { stdin: new PassThrough(), stdout: sink2string().stream, stderr: sink2string().stream };
    await assert.rejects(replayCommand({ fromStart: fixture('auth.log'), format: 'auto' }, io), LogwatchUsageError);
    await assert.rejects(replayCommand({ fromStart: fixture('auth.log'), dryRun: true, format: 'exim' }, io), /unknown format "exim"/);
    await assert.rejects(replayCommand({ fromStart: join(dir, 'missing.log'), dryRun: true, format: 'auto' }, io), /cannot read/);
  });

  test('without --dry-run, a replay bans through the sink it is given', async () => {
    const { bans, sink } = recordingSink();
    let closed = false;
    const io = { stdin: new PassThrough(), stdout: sink2string().stream, stderr: sink2string().stream };
    await replayCommand({ fromStart: fixture('nginx-access.log'), format: 'nginx' }, io, { openSink: async () => ({ sink, close: async () => void (closed = true) }) });
    assert.equal(bans.length, 4);
    assert.ok(closed);
  });
});
