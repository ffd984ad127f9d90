// The SMTP gate's cost: messages per second through the gate to a fast sink,
// beside the same load sent straight to the sink, and the gate's memory with
// 10,000 idle client connections open.
//
// Three processes, as in production: this one (the sending clients and the
// fixture DNS server), the sink (a raw-socket SMTP server that accepts
// everything; bench/lib/smtp-load.ts) and the gate (startGate with the real
// policy engine and the shipped default policy, decisions logged to
// /dev/null, resolving against a small fixture DNS world in which the
// clients' sender domain authorises 127.0.0.1 by SPF). 32 clients send 1 KB
// messages in lock step (MAIL, RCPT, DATA, message), one transaction after
// another on one connection each. The gate's teaser wait (greet_wait_ms) is 0
// here: it delays each connection's start, not the throughput.
//
//   node --import tsx bench/gate.ts          (or npm run bench -- gate)
//   BENCH_SECONDS=20 BENCH_CLIENTS=32 BENCH_IDLE=10000 node --import tsx bench/gate.ts
//   BENCH_PROFILE=1 …   also writes a CPU profile of the gate (node --cpu-prof) to bench/profiles/
//
// A third run puts the gate in front of the sink with a policy that never
// decides, separating the relay's own cost from the policy engine's.
//
// Re-executes itself under `ulimit -n` raised as far as the hard limit allows.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { startFixtureDns } from '../test/helpers/fixture-dns.js';
import { Zone } from '../src/dns/zone.js';
import { SmtpConn, runLoad, startFastSink, type LoadResult } from './lib/smtp-load.js';
import { updateReadme } from './lib/readme.js';
import type { GatePolicy } from '../src/gate/policy-port.js';

const SELF = fileURLToPath(import.meta.url);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const IDLE = Number(process.env.BENCH_IDLE ?? 10_000);
const MESSAGE_SIZE = 1024;
const FROM = 'alice@bench.test';
const HELO = 'client.bench.test';
const COMMAND = 'npm run bench -- gate';
const PROFILE = process.env.BENCH_PROFILE === '1';
const PROFILE_DIR = fileURLToPath(new URL('./profiles/', import.meta.url));

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

/** `BENCH_GATE_ROLE=gate`: the gate with the real policy engine in front of BENCH_BACKEND. */
async function gateRole(): Promise<void> {
  const { parseConfig } = await import('../src/config/load.js');
  const { Policy } = await import('../src/policy/index.js');
  const { createResolver } = await import('../src/dns/index.js');
  const { startGate } = await import('../src/gate/server.js');
  const dns = process.env.BENCH_DNS as string;
  const cfg = parseConfig(
    [
      'my_networks: []', // so the clients on 127.0.0.1 go through the whole default policy
      `dns: { servers: ["${dns}"] }`,
      'headers: { authserv_id: gate.bench.test }',
      'gate:',
      '  hostname: gate.bench.test',
      '  greet_wait_ms: 0',
      '  limits: { connections: 30000, connections_per_ip: 30000, connections_per_ip_per_minute: 0, commands: 100000000 }',
      '  overload: { fraction: 0.95 }',
    ].join('\n'),
    'bench-gate.yaml',
  );
  const logger = pino({ level: 'info' }, pino.destination('/dev/null'));
  const resolver = createResolver({ servers: cfg.dns.servers });
  // BENCH_POLICY=none: a policy that never decides, to tell the relay's own cost from the policy's.
  const policy: GatePolicy =
    process.env.BENCH_POLICY === 'none'
      ? { transaction: () => ({ evaluate: async (stage) => ({ action: 'continue', headers: [], rule: 'default', stage, evidence: [] }) }) }
      : Policy.fromConfig(cfg, { resolver, logger });
  const gate = await startGate({ config: cfg, policy, logger, listen: '127.0.0.1:0', backend: process.env.BENCH_BACKEND as string, resolver });
  console.log(`gate ready ${gate.port}`);
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l === 'connections') console.log(`connections ${gate.connections}`);
  });
  process.stdin.on('end', () => process.exit(0));
}

interface Child {
  proc: ChildProcess;
  port: number;
  /** Send a line and wait for the answer line starting with `prefix`. */
  ask(line: string, prefix: string): Promise<string>;
  stop(): Promise<void>;
}

function startChild(role: 'sink' | 'gate', env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Child> {
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

function procStat(pid: number): { cpuS: number; rssMb: number } {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
    return { cpuS: (Number(fields[11]) + Number(fields[12])) / 100, rssMb: rssKb / 1024 };
  } catch {
    return { cpuS: NaN, rssMb: NaN };
  }
}

async function measureLoad(port: number, pids: number[]): Promise<LoadResult & { cpu: number[] }> {
  // CPU is sampled around the whole run and scaled to the measured window's rate.
  const before = pids.map((p) => procStat(p).cpuS);
  const t0 = performance.now();
  const r = await runLoad({ port, clients: CLIENTS, seconds: SECONDS, warmupS: WARMUP_SECONDS, messageSize: MESSAGE_SIZE, from: FROM, helo: HELO });
  const wall = (performance.now() - t0) / 1000;
  const cpu = pids.map((p, i) => (procStat(p).cpuS - before[i]) / wall);
  return { ...r, cpu };
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

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const limit = nofileLimit();
  // This process holds the idle client sockets; the gate child (same limit) holds their other ends.
  const idle = Math.min(IDLE, limit - 500);
  const dns = await startFixtureDns(new Zone(ZONE));
  const sink = await startChild('sink');
  const sinkPid = sink.proc.pid!;
  const messages = async (): Promise<number> => Number((await sink.ask('count', 'messages ')).split(' ')[1]);

  console.log(`gate bench: ${CLIENTS} clients, ${MESSAGE_SIZE} B messages, ${SECONDS} s after ${WARMUP_SECONDS} s warm-up; ${idle} idle connections (ulimit -n ${limit})`);
  const m0 = await messages();
  const direct = await measureLoad(sink.port, [sinkPid]);
  const m1 = await messages();
  const directRate = direct.accepted / direct.seconds;
  console.log(`  direct to sink:  ${Math.round(directRate)} msg/s (${direct.errors} errors)`);

  const gateEnv = { BENCH_DNS: dns.server, BENCH_BACKEND: `127.0.0.1:${sink.port}` };
  const gate = await startChild('gate', gateEnv, PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []);
  const via = await measureLoad(gate.port, [gate.proc.pid!, sinkPid]);
  const m2 = await messages();
  const gateRate = via.accepted / via.seconds;
  console.log(`  through gate:    ${Math.round(gateRate)} msg/s (${via.errors} errors)`);
  await gate.stop();

  const relay = await startChild('gate', { ...gateEnv, BENCH_POLICY: 'none' });
  const bare = await measureLoad(relay.port, [relay.proc.pid!, sinkPid]);
  const m3 = await messages();
  const bareRate = bare.accepted / bare.seconds;
  console.log(`  gate, no policy: ${Math.round(bareRate)} msg/s (${bare.errors} errors)`);
  await relay.stop();

  // Idle connections: a fresh gate, so its memory is the idle cost and not the throughput run's heap.
  const idleGate = await startChild('gate', gateEnv);
  await new Promise((r) => setTimeout(r, 1000));
  const rssBefore = procStat(idleGate.proc.pid!).rssMb;
  const t0 = performance.now();
  const opened = await openIdle(idleGate.port, idle);
  const openSeconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 2000));
  const held = Number((await idleGate.ask('connections', 'connections ')).split(' ')[1]);
  const rssIdle = procStat(idleGate.proc.pid!).rssMb;
  const stillOpen = opened.conns.filter((c) => !c.isClosed).length;
  console.log(`  idle: ${stillOpen} open (gate counts ${held}), RSS ${rssBefore.toFixed(0)} → ${rssIdle.toFixed(0)} MB`);
  for (const c of opened.conns) c.destroy();
  await idleGate.stop();
  await sink.stop();
  await dns.close();

  const ratio = gateRate / directRate;
  // Every 250 a client got must be a message the sink has.
  const lost = Math.max(0, direct.acceptedTotal - (m1 - m0)) + Math.max(0, via.acceptedTotal - (m2 - m1)) + Math.max(0, bare.acceptedTotal - (m3 - m2));
  const errors = direct.errors + via.errors + bare.errors;
  const throughputMet = ratio >= 0.85 && errors === 0;
  const idleMet = stillOpen >= IDLE && rssIdle < 600;
  const perMsg = (cpu: number, rate: number): string => `${((cpu / rate) * 1e6).toFixed(0)} µs/msg`;
  const rows: Array<[string, string]> = [
    ['direct to sink', `${Math.round(directRate).toLocaleString('en-US')} msg/s (sink CPU ${(direct.cpu[0] * 100).toFixed(0)}%, ${perMsg(direct.cpu[0], directRate)})`],
    ['through the gate', `${Math.round(gateRate).toLocaleString('en-US')} msg/s (gate CPU ${(via.cpu[0] * 100).toFixed(0)}%, ${perMsg(via.cpu[0], gateRate)}; sink ${(via.cpu[1] * 100).toFixed(0)}%)`],
    ['gate / direct', `${(ratio * 100).toFixed(1)}% (target ≥ 85%)`],
    ['gate without policy', `${Math.round(bareRate).toLocaleString('en-US')} msg/s, ${((bareRate / directRate) * 100).toFixed(1)}% of direct (gate CPU ${(bare.cpu[0] * 100).toFixed(0)}%, ${perMsg(bare.cpu[0], bareRate)}): the relay's own cost`],
    ['errors', `direct ${direct.errors}, gate ${via.errors}, no policy ${bare.errors}${[...direct.errorExamples, ...via.errorExamples, ...bare.errorExamples].map((e) => `; ${e}`).join('')}`],
    ['250s not at the sink', String(lost)],
    ['idle connections', `${stillOpen.toLocaleString('en-US')} of ${idle.toLocaleString('en-US')} open after greeting (${opened.failed} failed${opened.firstError ? `: ${opened.firstError}` : ''}), opened in ${openSeconds.toFixed(1)} s`],
    ['gate RSS', `${rssBefore.toFixed(0)} MB fresh → ${rssIdle.toFixed(0)} MB with the idle connections (target < 600 MB)`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log('');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  console.log(`  throughput target: ${throughputMet ? 'met' : 'NOT met'}; idle target: ${idleMet ? 'met' : 'NOT met'}`);

  const table = ['| measure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v.replace(/\|/g, '\\|')} |`)].join('\n');
  updateReadme(
    'gate',
    [
      `Command: \`${COMMAND}\` (${CLIENTS} clients, ${MESSAGE_SIZE} B messages, ${SECONDS} s measured after ${WARMUP_SECONDS} s warm-up; ${idle.toLocaleString('en-US')} idle connections).`,
      `Gate with the real policy engine (default policy, warm DNS cache, decisions logged to /dev/null); sink and gate in their own processes.`,
      `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; throughput target ${throughputMet ? 'met' : 'NOT met'}, idle target ${idleMet ? 'met' : 'NOT met'}.`,
      '',
      table,
    ].join('\n'),
  );
  if (PROFILE) console.log(`  CPU profile of the gate (with policy) written to ${PROFILE_DIR}`);
  if (errors > 0 || lost > 0) process.exitCode = 1;
}

const role = process.env.BENCH_GATE_ROLE;
if (role === 'sink') await sinkRole();
else if (role === 'gate') await gateRole();
else if (process.env.BENCH_GATE_NOFILE !== '1') {
  // Raise the open-files limit for this process and its children, then run again.
  const r = spawnSync('bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', process.execPath, '--import', 'tsx', SELF], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_GATE_NOFILE: '1' },
  });
  process.exit(r.status ?? 1);
} else await main();
