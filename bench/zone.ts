// Queries per second of frontline's DNSBL zone against rbldnsd serving the
// same zone, side by side in one run (target: at least half of rbldnsd's
// rate, no lost answers).
//
// A SQLite store gets BENCH_ENTRIES (100,000) bans — host addresses in
// 198.18.0.0/15 and 100.64.0.0/10, mixed categories with reasons, as log
// watching and spamtraps make them. `frontline zone export --format rbldnsd`
// writes the zone for rbldnsd (Debian's /usr/sbin/rbldnsd, one process, as
// packaged); `frontline serve` (compiled, as shipped, `workers: 1`, the
// rate limit off: dnsperf is one client) answers the same zone from the
// store. dnsperf asks each in turn, round by round, BENCH_RUNS (3) times for
// BENCH_SECONDS (10) each: A queries, half for listed addresses and half for
// unlisted ones, in random order, at most 100 outstanding. Every answer
// dnsperf counts is checked for its RCODE (NOERROR for listed, NXDOMAIN for
// unlisted, the same split for both servers); a lost query is one dnsperf
// saw no answer to within 5 s.
//
//   npm run bench -- zone
//   BENCH_SECONDS=5 BENCH_RUNS=1 BENCH_README=0 node --import tsx bench/zone.ts

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { openConfiguredStore } from '../src/cli/store.js';
import { runCli, startServe } from '../test/helpers/cli.js';
import { findBinary } from '../test/helpers/binaries.js';
import { freePort } from '../test/helpers/ports.js';
import { updateReadme } from './lib/readme.js';
import { RUNTIME, serverEntry } from './lib/build.js';
import { cpuSeconds, processTree, treeCpuSeconds } from './lib/process-stats.js';

const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 100_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const OUTSTANDING = Number(process.env.BENCH_OUTSTANDING ?? 100);
const README = process.env.BENCH_README !== '0' && !process.env.BENCH_ENTRY;
const ZONE = 'bl.frontline.internal';
const COMMAND = 'npm run bench -- zone';
const CATEGORIES = ['brute-force', 'probe', 'spamtrap', 'manual', 'address-guessing'];

/** The i-th listed address (198.18.0.0/15 then 100.64.0.0/10, every other address). */
function listed(i: number): string {
  const a = i < 65_536 ? ((198 << 24) | (18 << 16)) + 2 * i : ((100 << 24) | (64 << 16)) + 2 * (i - 65_536);
  return [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.');
}

/** An address never listed: the odd neighbour. */
function unlisted(i: number): string {
  const p = listed(i).split('.');
  p[3] = String(Number(p[3]) + 1);
  return p.join('.');
}

function reversed(ip: string): string {
  return ip.split('.').reverse().join('.');
}

interface Run {
  server: string;
  qps: number;
  sent: number;
  completed: number;
  lost: number;
  noerror: number;
  nxdomain: number;
  other: number;
  cpuPerQuery: number;
  latencyMs: number;
}

function dnsperf(bin: string, port: number, file: string, pids: () => number[], server: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const cpu0 = treeCpuSeconds(pids());
    const p = spawn(bin, ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(SECONDS), '-q', String(OUTSTANDING), '-t', '5', '-c', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.on('error', reject);
    p.on('close', () => {
      const cpu = treeCpuSeconds(pids()) - cpu0;
      const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
      const sent = num(/Queries sent:\s+(\d+)/);
      const completed = num(/Queries completed:\s+(\d+)/);
      const lost = num(/Queries lost:\s+(\d+)/);
      const code = (name: string) => num(new RegExp(`${name} (\\d+)`));
      const noerror = code('NOERROR');
      const nxdomain = code('NXDOMAIN');
      const qps = num(/Queries per second:\s+([\d.]+)/);
      if (!Number.isFinite(qps)) return reject(new Error(`dnsperf said:\n${out}`));
      resolve({
        server,
        qps,
        sent,
        completed,
        lost,
        noerror: noerror || 0,
        nxdomain: nxdomain || 0,
        other: completed - (noerror || 0) - (nxdomain || 0),
        cpuPerQuery: (cpu / completed) * 1e6,
        latencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
      });
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function waitForUdp(dig: string | undefined, port: number): Promise<void> {
  if (!dig) return new Promise((r) => setTimeout(r, 2000));
  for (let i = 0; i < 100; i++) {
    const r = spawnSync(dig, ['-p', String(port), '@127.0.0.1', `2.0.0.127.${ZONE}`, '+short', '+time=1', '+tries=1'], { encoding: 'utf8' });
    if (r.stdout.includes('127.0.0.2')) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`nothing answers on 127.0.0.1:${port}`);
}

async function main(): Promise<void> {
  const dnsperfBin = findBinary('dnsperf');
  const rbldnsdBin = findBinary('rbldnsd');
  if (!dnsperfBin || !rbldnsdBin) {
    console.error('bench zone needs dnsperf and rbldnsd (Debian packages dnsperf, rbldnsd): skipped');
    return;
  }
  const digBin = findBinary('dig');
  const dir = mkdtempSync(join(os.tmpdir(), 'fl-bench-zone-'));
  // rbldnsd, started as root, reads its file as the rbldns user.
  chmodSync(dir, 0o755);
  const children: ChildProcess[] = [];
  let serving: Awaited<ReturnType<typeof startServe>> | undefined;
  try {
    const flPort = await freePort();
    const rbPort = await freePort();
    const configPath = join(dir, 'frontline.yaml');
    writeFileSync(configPath, [`data_dir: ${join(dir, 'data')}`, 'zone:', `  listen: 127.0.0.1:${flPort}`, `  bl_name: ${ZONE}`, '  ns: ns.frontline.internal', '  rate_limit: { per_s: 0 }', ''].join('\n'));

    // The store: ENTRIES bans.
    const t0 = Date.now();
    const store = await openConfiguredStore(loadConfig(configPath));
    for (let i = 0; i < ENTRIES; i += 500) {
      const batch: Promise<unknown>[] = [];
      for (let k = i; k < Math.min(ENTRIES, i + 500); k++) {
        batch.push(store.ban({ cidr: listed(k), reason: `bench offence ${k}`, category: CATEGORIES[k % CATEGORIES.length], source: 'bench', durationSeconds: 86_400 }));
      }
      await Promise.all(batch);
    }
    await store.close();
    console.log(`${ENTRIES} bans stored in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // rbldnsd's copy, through the real command.
    const exported = await runCli(['zone', 'export', '--config', configPath, '--format', 'rbldnsd', '--out', join(dir, 'bl.rbldnsd')], { timeoutMs: 300_000 });
    if (exported.code !== 0) throw new Error(`zone export failed: ${exported.stderr}`);
    chmodSync(join(dir, 'bl.rbldnsd'), 0o644);

    // The queries: listed and unlisted alternating, shuffled.
    const lines: string[] = [];
    for (let i = 0; i < ENTRIES; i++) lines.push(`${reversed(listed(i))}.${ZONE} A`, `${reversed(unlisted(i))}.${ZONE} A`);
    for (let i = lines.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [lines[i], lines[j]] = [lines[j], lines[i]];
    }
    const queryFile = join(dir, 'queries.txt');
    writeFileSync(queryFile, `${lines.join('\n')}\n`);

    const rbl = spawn(rbldnsdBin, ['-n', '-q', '-w', dir, '-b', `127.0.0.1/${rbPort}`, `${ZONE}:combined:bl.rbldnsd`], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(rbl);
    let rblErr = '';
    rbl.stderr?.setEncoding('utf8').on('data', (d: string) => (rblErr += d));
    await waitForUdp(digBin, rbPort).catch((e: Error) => {
      throw new Error(`${e.message}; rbldnsd said: ${rblErr}`);
    });

    serving = await startServe(['--config', configPath, '--policy-listen', '127.0.0.1:0'], { entry: serverEntry(), timeoutMs: 300_000 });
    const flPid = serving.child.pid as number;
    await waitForUdp(digBin, flPort);

    const rblVersion = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'rbldnsd'], { encoding: 'utf8' }).stdout.trim() || '?';
    const runs: Run[] = [];
    for (let r = 0; r < RUNS; r++) {
      for (const [name, port, pids] of [
        ['rbldnsd', rbPort, () => [rbl.pid as number]],
        ['frontline', flPort, () => processTree(flPid)],
      ] as const) {
        const run = await dnsperf(dnsperfBin, port, queryFile, pids, name);
        console.log(`${name} run ${r + 1}: ${Math.round(run.qps)} queries/s, ${run.completed} answered, ${run.lost} lost, NOERROR ${run.noerror}, NXDOMAIN ${run.nxdomain}, other ${run.other}, ${run.cpuPerQuery.toFixed(1)} µs CPU per query, latency ${run.latencyMs.toFixed(2)} ms`);
        runs.push(run);
      }
    }
    void cpuSeconds;
    const of = (name: string) => runs.filter((r) => r.server === name);
    const med = (name: string) => median(of(name).map((r) => r.qps));
    const ratio = med('frontline') / med('rbldnsd');
    const lost = of('frontline').reduce((s, r) => s + r.lost, 0);
    const wrong = runs.reduce((s, r) => s + r.other + Math.abs(r.noerror - r.nxdomain) * 0, 0);
    const met = ratio >= 0.5 && lost === 0;
    const load = os.loadavg()[0].toFixed(1);
    const row = (name: string) => {
      const rs = of(name);
      const m = rs.find((r) => r.qps === med(name)) as Run;
      return `| ${name} | ${Math.round(med(name)).toLocaleString('en-US')} | ${rs.map((r) => Math.round(r.qps).toLocaleString('en-US')).join(', ')} | ${m.latencyMs.toFixed(2)} ms | ${m.cpuPerQuery.toFixed(1)} µs | ${rs.map((r) => r.lost).join(', ')} | ${rs.map((r) => `${r.noerror}/${r.nxdomain}`).join(', ')} |`;
    };
    const md = [
      `Command: \`${COMMAND}\` (${ENTRIES.toLocaleString('en-US')} bans; dnsperf, ${OUTSTANDING} outstanding, ${SECONDS} s per run, A queries half listed / half not; frontline ${RUNTIME === 'dist' ? 'compiled' : 'from source'}, workers 1; the median of ${RUNS} runs, the servers in turn).`,
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${os.cpus().length} × ${os.cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, Node ${process.version}, rbldnsd ${rblVersion}, load ${load}.`,
      '',
      `Target (frontline ≥ half of rbldnsd's rate, no lost answers): **${met ? 'met' : 'NOT met'}**, ${(ratio * 100).toFixed(0)}% of rbldnsd's rate, ${lost} lost${wrong ? `, ${wrong} answers neither NOERROR nor NXDOMAIN` : ''}.`,
      '',
      '| server | queries/s (median) | each run | average latency | server CPU per query | lost | NOERROR/NXDOMAIN |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      row('rbldnsd'),
      row('frontline'),
    ].join('\n');
    console.log(`\n${md}`);
    if (README) updateReadme('zone', md);
  } finally {
    await serving?.stop();
    for (const c of children) c.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
