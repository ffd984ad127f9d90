// Log watching throughput: a mixed 1,000,000-line log (sshd, nginx, Postfix)
// read, split, parsed and counted in the default scenarios on one core, and —
// when fail2ban is installed — fail2ban-regex with its sshd filter on a
// 200,000-line sshd log, for comparison.
//
//   node --import tsx bench/logwatch.ts [--lines N]    (npm run bench -- logwatch)
//   BENCH_README=0 …   print only, leave bench/README.md alone (so does --lines)

import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/core/types.js';
import { IgnoreList } from '../src/intel/logwatch/ip.js';
import { Pipeline } from '../src/intel/logwatch/pipeline.js';
import { ScenarioEngine, type Decision } from '../src/intel/logwatch/scenarios.js';
import { resolveScenarios } from '../src/intel/logwatch/config.js';
import { LineSplitter } from '../src/intel/logwatch/splitter.js';
import { updateReadme } from './lib/readme.js';

const argLines = process.argv.indexOf('--lines');
const TOTAL = argLines > 0 ? Number(process.argv[argLines + 1]) : 1_000_000;
const F2B_LINES = 200_000;

// mulberry32: the same log on every run.
let seed = 20261122;
function rand(n: number): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) % n;
}
const pick = <T>(a: readonly T[]): T => a[rand(a.length)];

/** Attackers come from a pool of 20,000 addresses (a botnet); visitors from 10,000. */
const randomAddress = () => `${45 + rand(40)}.${rand(256)}.${rand(256)}.${1 + rand(254)}`;
const ATTACKERS = Array.from({ length: 20_000 }, randomAddress);
const VISITORS = Array.from({ length: 10_000 }, () => `198.51.${rand(256)}.${1 + rand(254)}`);
/**
 * Attacks come in runs, as in real logs (a brute-force session writes several lines, a scanner asks
 * for many URLs in a row): each daemon's current attacker changes with probability 1/6 per line.
 * `flood`: every attack from a new address instead, the worst case for the bounded map.
 */
let flood = false;
const current = new Map<string, string>();
const attacker = (daemon = '') => {
  if (flood) return randomAddress();
  let ip = current.get(daemon);
  if (ip === undefined || rand(6) === 0) current.set(daemon, (ip = pick(ATTACKERS)));
  return ip;
};
const visitor = () => pick(VISITORS);
const USERS = ['root', 'admin', 'test', 'oracle', 'ubuntu', 'git', 'postgres', 'user', 'pi', 'ftpuser'];
const PATHS = ['/', '/index.html', '/css/site.css', '/js/app.js', '/img/logo.png', '/blog/2026/11/hello', '/about', '/contact', '/feed.xml'];
const PROBES = ['/.env', '/wp-login.php', '/xmlrpc.php', '/phpmyadmin/', '/cgi-bin/luci', '/.git/config', '/wp-admin/setup-config.php', '/tmUnblock.cgi', '/admin.php'];
const UA = ['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36', 'curl/8.5.0', 'python-requests/2.31.0'];

function stamp(i: number): string {
  const s = Math.floor(i / 20);
  const hh = String(Math.floor(s / 3600) % 24).padStart(2, '0');
  const mm = String(Math.floor(s / 60) % 60).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return `${hh}:${mm}:${ss}`;
}

function sshdLine(i: number): string {
  const t = `Nov 22 ${stamp(i)} mx1 sshd[${1000 + rand(30000)}]: `;
  const ip = rand(10) < 8 ? attacker('sshd') : visitor();
  switch (rand(8)) {
    case 0:
      return `${t}Invalid user ${pick(USERS)} from ${ip} port ${1024 + rand(60000)}`;
    case 1:
    case 2:
      return `${t}Failed password for ${rand(2) ? 'invalid user ' : ''}${pick(USERS)} from ${ip} port ${1024 + rand(60000)} ssh2`;
    case 3:
      return `${t}Connection closed by invalid user ${pick(USERS)} ${ip} port ${1024 + rand(60000)} [preauth]`;
    case 4:
      return `${t}Accepted publickey for alice from ${visitor()} port ${1024 + rand(60000)} ssh2: ED25519 SHA256:Zx9b1O5Lr5Hn3T8kq0mQvWq3Ai1o9n0wGkq0yJv2eE4`;
    case 5:
      return `${t}pam_unix(sshd:session): session opened for user alice(uid=1000) by alice(uid=0)`;
    case 6:
      return `${t}Received disconnect from ${ip} port ${1024 + rand(60000)}:11: Bye Bye [preauth]`;
    default:
      return `${t}Did not receive identification string from ${ip} port ${1024 + rand(60000)}`;
  }
}

function nginxLine(i: number): string {
  const t = `[22/Nov/2026:${stamp(i)} +0000]`;
  if (rand(10) < 8) return `${visitor()} - - ${t} "GET ${pick(PATHS)} HTTP/1.1" ${rand(20) ? 200 : 404} ${100 + rand(50000)} "https://example.com/" "${pick(UA)}"`;
  return `${attacker('nginx')} - - ${t} "${rand(4) ? 'GET' : 'POST'} ${pick(PROBES)} HTTP/1.1" ${pick([404, 404, 403, 400])} ${rand(500)} "-" "${pick(UA)}"`;
}

function postfixLine(i: number): string {
  const t = `Nov 22 ${stamp(i)} mx1 postfix/`;
  const pid = 2000 + rand(20000);
  const ip = attacker('postfix');
  switch (rand(8)) {
    case 0:
      return `${t}smtpd[${pid}]: connect from unknown[${ip}]`;
    case 1:
      return `${t}smtpd[${pid}]: disconnect from unknown[${ip}] ehlo=1 auth=0/1 quit=1 commands=2/3`;
    case 2:
      return `${t}smtpd[${pid}]: warning: unknown[${ip}]: SASL LOGIN authentication failed: authentication failure`;
    case 3:
      return `${t}smtpd[${pid}]: NOQUEUE: reject: RCPT from unknown[${ip}]: 550 5.1.1 <${pick(USERS)}${rand(50)}@example.com>: Recipient address rejected: User unknown in virtual mailbox table; from=<a@example.net> to=<x@example.com> proto=ESMTP helo=<x>`;
    case 4:
      return `${t}postscreen[${pid}]: CONNECT from [${ip}]:${1024 + rand(60000)} to [192.0.2.1]:25`;
    case 5:
      return `${t}postscreen[${pid}]: PREGREET 11 after 0.1 from [${ip}]:${1024 + rand(60000)}: EHLO x\\r\\n`;
    case 6:
      return `${t}postscreen[${pid}]: DNSBL rank 3 for [${ip}]:${1024 + rand(60000)}`;
    default:
      return `${t}smtp[${pid}]: 4BxYz${rand(100000)}: to=<x@example.net>, relay=mx.example.net[203.0.113.9]:25, delay=0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok)`;
  }
}

function writeLog(path: string, lines: number, make: (i: number) => string): number {
  const fd = openSync(path, 'w');
  let buf: string[] = [];
  for (let i = 0; i < lines; i++) {
    buf.push(make(i));
    if (buf.length === 10_000) {
      writeSync(fd, `${buf.join('\n')}\n`);
      buf = [];
    }
  }
  if (buf.length > 0) writeSync(fd, `${buf.join('\n')}\n`);
  closeSync(fd);
  return statSync(path).size;
}

/** Read, split, parse and count, as the tailer does; returns seconds and counts. */
function run(path: string, time: 'clock' | 'log'): { seconds: number; lines: number; events: number; bans: number; tracked: number } {
  const engine = new ScenarioEngine(resolveScenarios(), { ignore: new IgnoreList(['127.0.0.0/8', '::1/128']) });
  const pipeline = new Pipeline({ format: 'auto', engine, clock: systemClock, time, source: path });
  const splitter = new LineSplitter(4096);
  const decisions: Decision[] = [];
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let offset = 0;
  const t0 = process.hrtime.bigint();
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, offset);
    if (n === 0) break;
    const split = splitter.push(buf.subarray(0, n), offset);
    offset += n;
    for (let i = 0; i < split.length; i++) pipeline.feed({ text: split[i].text, cut: split[i].cut, lineNo: i }, decisions);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  closeSync(fd);
  return { seconds, lines: pipeline.lines, events: pipeline.events, bans: decisions.length, tracked: engine.tracked };
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const dir = mkdtempSync(join(tmpdir(), 'frontline-bench-logwatch-'));
try {
  const mixed = join(dir, 'mixed.log');
  const gen = [sshdLine, nginxLine, postfixLine];
  const size = writeLog(mixed, TOTAL, (i) => gen[i % 3](i));
  console.log(`mixed log: ${TOTAL.toLocaleString('en')} lines, ${(size / 1e6).toFixed(1)} MB (sshd, nginx, Postfix in turn)`);

  run(mixed, 'clock'); // warm-up: let the JIT settle before measuring
  const rows: Array<[string, number, number, string]> = [];
  for (const [label, mode] of [
    ['frontline logwatch, live (clock time)', 'clock'],
    ['frontline logwatch, replay (log time)', 'log'],
  ] as const) {
    const r = run(mixed, mode);
    rows.push([label, r.lines, r.seconds, `${r.events.toLocaleString('en')} events, ${r.bans.toLocaleString('en')} bans`]);
  }

  // The worst case for memory: every attack from an address never seen before.
  const floodLog = join(dir, 'flood.log');
  flood = true;
  writeLog(floodLog, 300_000, (i) => gen[i % 3](i));
  flood = false;
  const f = run(floodLog, 'clock');
  rows.push(['same mix, every attacker a new address', f.lines, f.seconds, `${f.bans.toLocaleString('en')} bans, ${f.tracked.toLocaleString('en')} addresses tracked (cap 100,000)`]);

  const f2b = which('fail2ban-regex');
  if (f2b) {
    const sshLog = join(dir, 'sshd.log');
    writeLog(sshLog, F2B_LINES, sshdLine);
    const ours = run(sshLog, 'log');
    rows.push(['frontline logwatch, same sshd log', ours.lines, ours.seconds, `${ours.events.toLocaleString('en')} events`]);
    const t0 = process.hrtime.bigint();
    const r = spawnSync(f2b, [sshLog, 'sshd'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const matched = /Lines: \d+ lines, \d+ ignored, (\d+) matched/.exec(r.stdout)?.[1];
    rows.push([`fail2ban-regex <${F2B_LINES.toLocaleString('en')}-line sshd log> sshd`, F2B_LINES, seconds, r.status === 0 ? `${matched ?? '?'} matched` : `exit ${r.status}`]);
  } else {
    console.log('fail2ban-regex not installed: no comparison (apt-get install -y fail2ban)');
  }

  console.log('');
  console.log(`${'run'.padEnd(52)} ${'lines'.padStart(10)} ${'seconds'.padStart(8)} ${'lines/s'.padStart(11)}  notes`);
  for (const [label, lines, seconds, notes] of rows) {
    console.log(`${label.padEnd(52)} ${lines.toLocaleString('en').padStart(10)} ${seconds.toFixed(2).padStart(8)} ${Math.round(lines / seconds).toLocaleString('en').padStart(11)}  ${notes}`);
  }
  const live = rows[0][1] / rows[0][2];
  console.log(`\ntarget ≥ 300,000 lines/s on one core: ${live >= 300_000 ? 'met' : 'NOT met'} (${Math.round(live).toLocaleString('en')} lines/s)`);
  if (process.env.BENCH_README !== '0' && argLines < 0) {
    updateReadme(
      'logwatch',
      [
        `Command: \`npm run bench -- logwatch\` (a generated ${TOTAL.toLocaleString('en')}-line mixed log, ${(size / 1e6).toFixed(1)} MB: sshd, nginx, Postfix in turn; read in 1 MiB chunks, default formats and scenarios, one core; load average ${os.loadavg()[0].toFixed(2)}).`,
        `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}; target ≥ 300,000 lines/s ${live >= 300_000 ? 'met' : 'NOT met'}.${f2b ? '' : ' fail2ban-regex not installed: no comparison.'}`,
        '',
        '| run | lines | seconds | lines/s | notes |',
        '| --- | ---: | ---: | ---: | --- |',
        ...rows.map(([label, lines, seconds, notes]) => `| ${label.replace(/[<>]/g, '`')} | ${lines.toLocaleString('en')} | ${seconds.toFixed(2)} | ${Math.round(lines / seconds).toLocaleString('en')} | ${notes} |`),
      ].join('\n'),
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
