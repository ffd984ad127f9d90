// The SMTP gate's cost: messages per second through the gate to a fast sink,
// beside the same load sent straight to the sink, and the gate's memory with
// 10,000 idle client connections open.
//
// Three processes, as in production: this one (the sending clients and the
// fixture DNS server), the sink (a raw-socket SMTP server that accepts
// everything; bench/lib/smtp-load.ts) and the gate (startGate with the real
// policy engine and the shipped default policy, logging as `serve` does
// (createLogger) to /dev/null, resolving against a small fixture DNS world in which the
// clients' sender domain authorises 127.0.0.1 by SPF). 32 clients send 1 KB
// messages in lock step (MAIL, RCPT, DATA, message), one transaction after
// another on one connection each. The gate's teaser wait (greet_wait_ms) is 0
// here: it delays each connection's start, not the throughput.
//
//   node --import tsx bench/gate.ts          (or npm run bench -- gate)
//   BENCH_SECONDS=20 BENCH_CLIENTS=32 BENCH_IDLE=10000 node --import tsx bench/gate.ts
//   BENCH_PROFILE=1 …   also writes CPU profiles (node --cpu-prof) of the gate, with and without policy, and of the raw relay to bench/profiles/{gate-policy,gate-no-policy,raw-relay}/
//   BENCH_README=0 …    prints the table without rewriting bench/README.md (for trial runs)
//   BENCH_ONLY=gate,bare …  only these of direct, relay, gate, bare, idle (a trial run: README left alone)
//   BENCH_GATE_WORKERS=1 …  one gate process in the throughput runs (default 2, as `serve --workers 2`: one per core)
//
// Two more runs bound it: the gate in front of the sink with a policy that
// never decides, separating the relay's own cost from the policy engine's; and
// a raw TCP relay (bench/lib/raw-relay.ts: bytes piped both ways, no SMTP at
// all), the ceiling for any relay process written in Node on this machine.
//
// The gate runs compiled, as shipped (`npm run build`, modules from dist/), as
// bench/policy-server.ts runs `frontline serve`; BENCH_RUNTIME=tsx runs it from
// source. The CPU figures count the gate (all its threads), the sink, this
// process (the clients) and the whole machine, from /proc.
//
// Re-executes itself under `ulimit -n` raised as far as the hard limit allows.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import net from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { startFixtureDns } from '../test/helpers/fixture-dns.js';
import { REPO_ROOT } from '../test/helpers/cli.js';
import { Zone } from '../src/dns/zone.js';
import { SmtpConn, runLoad, startFastSink, type LoadResult } from './lib/smtp-load.js';
import { startRawRelay } from './lib/raw-relay.js';
import { updateReadme } from './lib/readme.js';
import { RUNTIME, buildServer } from './lib/build.js';
import { cpuSeconds as cpuOf, machineBusySeconds, processTree, rssMb, userCpuSeconds as userCpuOf } from './lib/process-stats.js';
import type { GatePolicy } from '../src/gate/policy-port.js';

const SELF = fileURLToPath(import.meta.url);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const IDLE = Number(process.env.BENCH_IDLE ?? 10_000);
const ALL_RUNS = ['direct', 'relay', 'gate', 'bare', 'idle'];
const ONLY = new Set(process.env.BENCH_ONLY?.split(',').map((s) => s.trim()) ?? ALL_RUNS);
const WRITE_README = process.env.BENCH_README !== '0' && ALL_RUNS.every((r) => ONLY.has(r));
const MESSAGE_SIZE = 1024;
const FROM = 'alice@bench.test';
const HELO = 'client.bench.test';
const COMMAND = `${RUNTIME === 'tsx' ? 'BENCH_RUNTIME=tsx ' : ''}npm run bench -- gate`;
const PROFILE = process.env.BENCH_PROFILE === '1';
const PROFILE_DIR = fileURLToPath(new URL('./profiles/', import.meta.url));
const CPUS = os.cpus().length;
/** Gate processes in the throughput runs (the idle run measures one process's memory). */
const GATE_WORKERS = Math.max(1, Number(process.env.BENCH_GATE_WORKERS ?? 2));

const ZONE = {
  'bench.test': [{ TXT: 'v=spf1 ip4:127.0.0.1 -all' }, { MX: [10, 'mx.bench.test'] }, { A: '127.0.0.1' }],
  'mx.bench.test': [{ A: '127.0.0.1' }],
  'client.bench.test': [{ A: '127.0.0.1' }],
  '1.0.0.127.in-addr.arpa': [{ PTR: 'client.bench.test' }],
  'dest.test': [{ MX: [10, 'mx.dest.test'] }],
  'mx.dest.test': [{ A: '192.0.2.25' }],
};

// ---------------------------------------------------------------- children

/** `BENCH_GATE_ROLE=sink`: run the fast sink, print its port. */
async function sinkRole(): Promise<void> {
  const sink = await startFastSink();
  console.log(`sink ready ${sink.port}`);
  // The parent asks for the count on stdin ("count\n") and gets "messages N".
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l === 'count') console.log(`messages ${sink.messages}`);
  });
  process.stdin.on('end', () => process.exit(0));
}

/** `BENCH_GATE_ROLE=relay`: the raw TCP relay in front of BENCH_BACKEND. */
async function relayRole(): Promise<void> {
  const relay = await startRawRelay(Number((process.env.BENCH_BACKEND as string).split(':')[1]));
  console.log(`relay ready ${relay.port}`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

/** A module of the product: compiled (dist/, as shipped) or from source (src/, through tsx). */
function product<T>(path: string): Promise<T> {
  const dir = RUNTIME === 'tsx' ? 'src' : 'dist';
  return import(pathToFileURL(join(REPO_ROOT, dir, path)).href) as Promise<T>;
}

/** `BENCH_GATE_ROLE=gate`: the gate with the real policy engine in front of BENCH_BACKEND. */
async function gateRole(): Promise<void> {
  const { parseConfig } = await product<typeof import('../src/config/load.js')>('config/load.js');
  const { Policy } = await product<typeof import('../src/policy/index.js')>('policy/index.js');
  const { createResolver } = await product<typeof import('../src/dns/index.js')>('dns/index.js');
  const { startGate } = await product<typeof import('../src/gate/server.js')>('gate/server.js');
  const { createLogger } = await product<typeof import('../src/log.js')>('log.js');
  const dns = process.env.BENCH_DNS as string;
  const cfg = parseConfig(
    [
      'my_networks: []', // so the clients on 127.0.0.1 go through the whole default policy
      `dns: { servers: ["${dns}"] }`,
      'headers: { authserv_id: gate.bench.test }',
      'gate:',
      '  hostname: gate.bench.test',
      '  greet_wait_ms: 0',
      // The fast sink speaks no XCLIENT and relays for anyone: the path measured is the one without an identity command.
      '  backend_identity: none',
      '  limits: { connections: 30000, connections_per_ip: 30000, connections_per_ip_per_minute: 0, commands: 100000000 }',
      '  overload: { fraction: 0.95 }',
    ].join('\n'),
    'bench-gate.yaml',
  );
  // The logger `frontline serve` makes (buffered JSON lines), writing to /dev/null.
  const logger = createLogger({ level: 'info', file: '/dev/null' });
  const resolver = createResolver({ servers: cfg.dns.servers });
  // BENCH_POLICY=none: a policy that never decides, to tell the relay's own cost from the policy's.
  const policy: GatePolicy =
    process.env.BENCH_POLICY === 'none'
      ? { transaction: () => ({ evaluate: async (stage) => ({ action: 'continue', headers: [], rule: 'default', stage, evidence: [] }) }) }
      : Policy.fromConfig(cfg, { resolver, logger });
  const port = process.env.BENCH_GATE_PORT ?? '0';
  const gate = await startGate({ config: cfg, policy, logger, listen: `127.0.0.1:${port}`, backend: process.env.BENCH_BACKEND as string, resolver });
  if (cluster.isWorker) {
    process.send?.('ready');
    return;
  }
  console.log(`gate ready ${gate.port}`);
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l === 'connections') console.log(`connections ${gate.connections}`);
  });
  process.stdin.on('end', () => process.exit(0));
}

/**
 * `BENCH_GATE_WORKERS=N` (N > 1): N gate processes sharing one port through
 * node:cluster, as `frontline serve --workers N` runs its gate — one per
 * core; a single gate process is one busy core while the other has time.
 */
async function gateCluster(workers: number): Promise<void> {
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork({ BENCH_GATE_PORT: String(port) }).on('message', () => {
      if (++ready === workers) console.log(`gate ready ${port}`);
    });
  }
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    process.exit(0);
  });
}

type Role = 'sink' | 'relay' | 'gate';

interface Child {
  proc: ChildProcess;
  port: number;
  /** Send a line and wait for the answer line starting with `prefix`. */
  ask(line: string, prefix: string): Promise<string>;
  stop(): Promise<void>;
}

function startChild(role: Role, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Child> {
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', SELF], { env: { ...process.env, ...env, BENCH_GATE_ROLE: role }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! });
  const waiters: Array<{ prefix: string; resolve: (l: string) => void }> = [];
  lines.on('line', (l) => {
    const i = waiters.findIndex((w) => l.startsWith(w.prefix));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(l);
  });
  const next = (prefix: string): Promise<string> => new Promise((resolve) => waiters.push({ prefix, resolve }));
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${role} exited (${code}) before it was ready`)));
    void next(`${role} ready `).then((l) => {
      resolve({
        proc,
        port: Number(l.split(' ')[2]),
        ask: (line, prefix) => {
          const p = next(prefix);
          proc.stdin!.write(`${line}\n`);
          return p;
        },
        stop: () =>
          new Promise<void>((r) => {
            if (proc.exitCode !== null) return r();
            proc.once('exit', () => r());
            proc.stdin!.end();
            setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
          }),
      });
    });
  });
}

// ---------------------------------------------------------------- measures

interface Run extends LoadResult {
  rate: number;
  /** CPU of each watched process, in cores (1 = one core busy). */
  cpu: number[];
  /** The user-space part of cpu (the rest is the kernel's: system calls, loopback TCP, wake-ups). */
  userCpu: number[];
  /** This process: the 32 clients (and the idle fixture DNS server). */
  clientCpu: number;
  /** The whole machine, in cores, out of CPUS. */
  machineCpu: number;
  load: number;
}

async function measureLoad(port: number, roots: number[]): Promise<Run> {
  // CPU is sampled around the whole run (warm-up included) and scaled to the measured window's rate;
  // a process counts with its children (a clustered gate's workers).
  const trees = roots.map(processTree);
  const cpuSeconds = (i: number): number => trees[i].reduce((sum, p) => sum + cpuOf(p), 0);
  const userCpuSeconds = (i: number): number => trees[i].reduce((sum, p) => sum + userCpuOf(p), 0);
  const pids = roots.map((_, i) => i);
  const before = pids.map(cpuSeconds);
  const userBefore = pids.map(userCpuSeconds);
  const machine0 = machineBusySeconds();
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await runLoad({ port, clients: CLIENTS, seconds: SECONDS, warmupS: WARMUP_SECONDS, messageSize: MESSAGE_SIZE, from: FROM, helo: HELO });
  const wall = (performance.now() - t0) / 1000;
  const client = process.cpuUsage(client0);
  return {
    ...r,
    rate: r.accepted / r.seconds,
    cpu: pids.map((i) => (cpuSeconds(i) - before[i]) / wall),
    userCpu: pids.map((i) => (userCpuSeconds(i) - userBefore[i]) / wall),
    clientCpu: (client.user + client.system) / 1e6 / wall,
    machineCpu: (machineBusySeconds() - machine0) / wall,
    load: os.loadavg()[0],
  };
}

/** Open `n` connections to the gate, each waiting until it has the full greeting. */
async function openIdle(port: number, n: number): Promise<{ conns: SmtpConn[]; failed: number; firstError?: string }> {
  const conns: SmtpConn[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const BATCH = 250;
  for (let i = 0; i < n; i += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BATCH, n - i) }, async () => {
        try {
          const c = await SmtpConn.connect(port);
          const r = await c.reply();
          if (r.startsWith('220')) return c;
          firstError ??= r;
          c.destroy();
        } catch (e) {
          firstError ??= (e as Error).message;
        }
        failed++;
        return undefined;
      }),
    );
    for (const c of batch) if (c) conns.push(c);
  }
  return { conns, failed, firstError };
}

function nofileLimit(): number {
  const r = spawnSync('bash', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  return Number(r.stdout.trim()) || 1024;
}

/** Idle connections: a fresh gate, so its memory is the idle cost and not the throughput run's heap. */
async function idleRun(env: Record<string, string>, n: number) {
  const gate = await startChild('gate', env);
  await new Promise((r) => setTimeout(r, 1000));
  const rssBefore = rssMb(gate.proc.pid!);
  const t0 = performance.now();
  const opened = await openIdle(gate.port, n);
  const openSeconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 2000));
  const held = Number((await gate.ask('connections', 'connections ')).split(' ')[1]);
  const rssIdle = rssMb(gate.proc.pid!);
  const stillOpen = opened.conns.filter((c) => !c.isClosed).length;
  console.log(`  idle: ${stillOpen} open (gate counts ${held}), RSS ${rssBefore.toFixed(0)} → ${rssIdle.toFixed(0)} MB`);
  for (const c of opened.conns) c.destroy();
  await gate.stop();
  return { stillOpen, failed: opened.failed, firstError: opened.firstError, openSeconds, rssBefore, rssIdle };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (n: number): string => `${(n * 100).toFixed(0)}%`;
const us = (cpu: number, rate: number): string => `${((cpu / rate) * 1e6).toFixed(0)} µs`;

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const limit = nofileLimit();
  // This process holds the idle client sockets; the gate child (same limit) holds their other ends.
  const idle = Math.min(IDLE, limit - 500);
  if (RUNTIME === 'dist') buildServer();
  // One directory per gate: node writes a profile per thread (the loader's too), named by pid and thread.
  const profile = (name: string): string[] => {
    if (!PROFILE) return [];
    const dir = join(PROFILE_DIR, name);
    mkdirSync(dir, { recursive: true });
    return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  };
  const dns = await startFixtureDns(new Zone(ZONE));
  const sink = await startChild('sink');
  const sinkPid = sink.proc.pid!;
  const messages = async (): Promise<number> => Number((await sink.ask('count', 'messages ')).split(' ')[1]);
  const env = { BENCH_DNS: dns.server, BENCH_BACKEND: `127.0.0.1:${sink.port}`, BENCH_RUNTIME: RUNTIME };

  console.log(`gate bench: ${CLIENTS} clients, ${MESSAGE_SIZE} B messages, ${SECONDS} s after ${WARMUP_SECONDS} s warm-up; ${idle} idle connections (ulimit -n ${limit}); gate ${RUNTIME === 'dist' ? 'compiled' : 'from source'}, ${GATE_WORKERS} gate process${GATE_WORKERS === 1 ? '' : 'es'} (BENCH_GATE_WORKERS); load average ${os.loadavg()[0].toFixed(2)}`);
  let lost = 0;
  /** One load run against `port`, the sink's message count checked against the clients' 250s. */
  const run = async (what: string, port: number, relayPid?: number): Promise<Run> => {
    const m0 = await messages();
    const r = await measureLoad(port, relayPid === undefined ? [sinkPid] : [relayPid, sinkPid]);
    // Every 250 a client got must be a message the sink has.
    lost += Math.max(0, r.acceptedTotal - ((await messages()) - m0));
    console.log(`  ${what.padEnd(16)} ${int(r.rate)} msg/s (${r.errors} errors; load average ${r.load.toFixed(2)})`);
    return r;
  };

  /** A run through a relay process (the raw relay or a gate), stopped afterwards. */
  const through = async (what: string, child: Promise<Child>): Promise<Run> => {
    const c = await child;
    try {
      return await run(what, c.port, c.proc.pid!);
    } finally {
      await c.stop();
    }
  };
  const direct = ONLY.has('direct') ? await run('direct to sink:', sink.port) : undefined;
  const relay = ONLY.has('relay') ? await through('raw TCP relay:', startChild('relay', env, profile('raw-relay'))) : undefined;
  const gateEnv = { ...env, BENCH_GATE_WORKERS: String(GATE_WORKERS) };
  const via = ONLY.has('gate') ? await through('through gate:', startChild('gate', gateEnv, profile('gate-policy'))) : undefined;
  const bare = ONLY.has('bare') ? await through('gate, no policy:', startChild('gate', { ...gateEnv, BENCH_POLICY: 'none' }, profile('gate-no-policy'))) : undefined;

  const idling = ONLY.has('idle') ? await idleRun(env, idle) : undefined;
  await sink.stop();
  await dns.close();

  const named: Array<[string, Run | undefined]> = [
    ['direct to sink', direct],
    ['raw TCP relay (ceiling)', relay],
    ['through the gate', via],
    ['gate, policy never decides', bare],
  ];
  const runs = named.filter((r): r is [string, Run] => r[1] !== undefined);
  const ratio = via && direct ? via.rate / direct.rate : NaN;
  const errors = runs.reduce((n, [, r]) => n + r.errors, 0);
  const throughputMet = ratio >= 0.85 && errors === 0;
  const idleMet = idling !== undefined && idling.stillOpen >= IDLE && idling.rssIdle < 600;

  // Per message: the relay process (when there is one), the sink, the clients; the machine's busy share.
  const header = ['run', 'msg/s', 'of direct', 'relay CPU', 'relay µs/msg', 'of which user', 'sink µs/msg', 'clients µs/msg', 'machine busy', 'load'];
  const throughput = runs.map(([name, r]) => {
    const relayed = r.cpu.length > 1;
    return [
      name,
      int(r.rate),
      !direct ? '—' : r === direct ? '100%' : `${((r.rate / direct.rate) * 100).toFixed(1)}%`,
      relayed ? pct(r.cpu[0]) : '—',
      relayed ? us(r.cpu[0], r.rate) : '—',
      relayed ? us(r.userCpu[0], r.rate) : '—',
      us(r.cpu[r.cpu.length - 1], r.rate),
      us(r.clientCpu, r.rate),
      `${pct(r.machineCpu)} of ${CPUS * 100}%`,
      r.load.toFixed(2),
    ];
  });
  const rows: Array<[string, string]> = [
    ['gate / direct', `${(ratio * 100).toFixed(1)}% (target ≥ 85%; the raw relay keeps ${relay && direct ? ((relay.rate / direct.rate) * 100).toFixed(1) : '—'}%)`],
    ['errors', `${runs.map(([name, r]) => `${name} ${r.errors}`).join(', ')}${runs.flatMap(([, r]) => r.errorExamples).map((e) => `; ${e}`).join('')}`],
    ['250s not at the sink', String(lost)],
  ];
  if (idling) {
    const { stillOpen, failed, firstError, openSeconds, rssBefore, rssIdle } = idling;
    rows.push(
      ['idle connections', `${stillOpen.toLocaleString('en-US')} of ${idle.toLocaleString('en-US')} open after greeting (${failed} failed${firstError ? `: ${firstError}` : ''}), opened in ${openSeconds.toFixed(1)} s`],
      ['gate RSS', `${rssBefore.toFixed(0)} MB fresh → ${rssIdle.toFixed(0)} MB with the idle connections (target < 600 MB)`],
    );
  }
  const widths = header.map((h, i) => Math.max(h.length, ...throughput.map((r) => r[i].length)));
  console.log('');
  for (const r of [header, ...throughput]) console.log(`  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`);
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log('');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  console.log(`  throughput target: ${throughputMet ? 'met' : 'NOT met'}; idle target: ${idleMet ? 'met' : 'NOT met'}`);
  if (PROFILE) console.log(`  CPU profiles of the gate (with and without policy) and of the raw relay written to ${PROFILE_DIR}`);
  if (errors > 0 || lost > 0) process.exitCode = 1;
  if (!WRITE_README) return;

  const md = (cells: string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  updateReadme(
    'gate',
    [
      `Command: \`${COMMAND}\` (${CLIENTS} clients, ${MESSAGE_SIZE} B messages, ${SECONDS} s measured after ${WARMUP_SECONDS} s warm-up; ${idle.toLocaleString('en-US')} idle connections; ${GATE_WORKERS} gate process${GATE_WORKERS === 1 ? '' : 'es'} in the throughput runs, one in the idle run).`,
      `Gate ${RUNTIME === 'dist' ? 'compiled (npm run build)' : 'from source (tsx)'} with the real policy engine (default policy, warm DNS cache, decisions logged to /dev/null); sink, relay and gate in their own processes; CPU per message from /proc over each run.`,
      `Measured ${new Date().toISOString().slice(0, 10)} on ${CPUS} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; throughput target ${throughputMet ? 'met' : 'NOT met'}, idle target ${idleMet ? 'met' : 'NOT met'}.`,
      '',
      md(header),
      md(header.map((_, i) => (i === 0 ? '---' : '---:'))),
      ...throughput.map(md),
      '',
      '| measure | value |',
      '| --- | --- |',
      ...rows.map(([k, v]) => md([k, v])),
    ].join('\n'),
  );
}

const role = process.env.BENCH_GATE_ROLE;
if (role === 'sink') await sinkRole();
else if (role === 'relay') await relayRole();
else if (role === 'gate') {
  const workers = Number(process.env.BENCH_GATE_WORKERS ?? 1);
  if (workers > 1 && cluster.isPrimary) await gateCluster(workers);
  else await gateRole();
}
else if (process.env.BENCH_GATE_NOFILE !== '1') {
  // Raise the open-files limit for this process and its children, then run again.
  const r = spawnSync('bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', process.execPath, '--import', 'tsx', SELF], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_GATE_NOFILE: '1' },
  });
  process.exit(r.status ?? 1);
} else await main();
