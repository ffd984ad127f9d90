// The gate's memory under big messages from one IPv6 /64 (issue 16): 60
// clients, each from its own address of 2001:db8:64::/64, each sending one
// 9 MiB message at the same time (MAIL FROM with SIZE=, as MTAs do when SIZE
// is offered), the final dots only once every message was sent: all 60 in
// progress at once, the worst case. Measures the gate process's RSS growth: its peak (VmHWM) less
// its RSS before the clients came, and what each client was answered.
//
// Real addresses, really bound: the bench makes a network namespace of its
// own (`ip netns add`, root needed), puts the 60 addresses on its loopback,
// and runs itself inside it; the namespace is deleted at the end. Three
// processes in it: this one (the clients and the fixture DNS server), the
// fast sink (bench/lib/smtp-load.ts) and the gate (startGate from source,
// the real policy engine and the shipped default policy, a fixture DNS world
// in which the sender domain authorises the /64 by SPF, default gate limits
// and gate.limits.memory_mb).
//
//   npm run bench -- gate-memory       (three runs, the median written to bench/README.md)
//   BENCH_RUNS=1 BENCH_README=0 …      one trial run, README left alone
//   BENCH_CLIENTS=60 BENCH_MESSAGE_MB=9 BENCH_MEMORY_MB=256 …
//   BENCH_IPV6_PREFIX=128 …            per-client limits by address, not by /64: the memory budget alone

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { startFixtureDns } from '../test/helpers/fixture-dns.js';
import { Zone } from '../src/dns/zone.js';
import { startFastSink } from './lib/smtp-load.js';
import { updateReadme } from './lib/readme.js';

const SELF = fileURLToPath(import.meta.url);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 60);
const MESSAGE_MB = Number(process.env.BENCH_MESSAGE_MB ?? 9);
const MEMORY_MB = process.env.BENCH_MEMORY_MB;
/** BENCH_IPV6_PREFIX=128: count each address alone (the memory budget alone bounds the run). */
const IPV6_PREFIX = process.env.BENCH_IPV6_PREFIX;
const LIMITS = [...(MEMORY_MB ? [`memory_mb: ${MEMORY_MB}`] : []), ...(IPV6_PREFIX ? [`ipv6_prefix: ${IPV6_PREFIX}`] : [])];
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WRITE_README = process.env.BENCH_README !== '0' && RUNS >= 3;
const PREFIX = '2001:db8:64::';
const NETNS = `frontline-gmem-${process.pid}`;
const FROM = 'alice@bench.test';

// ---------------------------------------------------------------- outside: the namespace

function ip(args: string[], input?: string): void {
  const r = spawnSync('ip', args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error?.message}`);
}

function outside(): void {
  ip(['netns', 'add', NETNS]);
  try {
    ip(['-n', NETNS, 'link', 'set', 'lo', 'up']);
    const lines = [`address add ${PREFIX}1/128 dev lo nodad`];
    for (let i = 0; i < CLIENTS; i++) lines.push(`address add ${PREFIX}${(0x100 + i).toString(16)}/128 dev lo nodad`);
    ip(['-n', NETNS, '-6', '-batch', '-'], `${lines.join('\n')}\n`);
    const r = spawnSync('ip', ['netns', 'exec', NETNS, process.execPath, '--import', 'tsx', SELF], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_GMEM_ROLE: 'main' },
    });
    process.exitCode = r.status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'delete', NETNS]);
  }
}

// ---------------------------------------------------------------- inside: the gate

async function gateRole(): Promise<void> {
  const { parseConfig } = await import('../src/config/load.js');
  const { Policy } = await import('../src/policy/index.js');
  const { createResolver } = await import('../src/dns/index.js');
  const { startGate } = await import('../src/gate/server.js');
  const { createLogger } = await import('../src/log.js');
  const cfg = parseConfig(
    [
      'my_networks: []',
      `dns: { servers: ["${process.env.BENCH_DNS as string}"] }`,
      'headers: { authserv_id: gate.bench.test }',
      'gate:',
      '  hostname: gate.bench.test',
      '  greet_wait_ms: 0',
      // The fast sink cannot be told the client (no XCLIENT) and takes every recipient: the memory is measured here, not relaying.
      '  backend_identity: none',
      ...(LIMITS.length > 0 ? [`  limits: { ${LIMITS.join(', ')} }`] : []),
    ].join('\n'),
    'bench-gate-memory.yaml',
  );
  const logger = createLogger({ level: 'info', file: process.env.BENCH_GATE_LOG ?? '/dev/null' });
  const resolver = createResolver({ servers: cfg.dns.servers });
  const policy = Policy.fromConfig(cfg, { resolver, logger });
  const gate = await startGate({ config: cfg, policy, logger, listen: `[${PREFIX}1]:0`, backend: process.env.BENCH_BACKEND as string, resolver });
  console.log(`gate ready ${gate.port}`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

function startGateChild(env: Record<string, string>): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', SELF], { env: { ...process.env, ...env, BENCH_GMEM_ROLE: 'gate' }, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`gate exited (${code}) before it was ready`)));
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      if (l.startsWith('gate ready ')) resolve({ proc, port: Number(l.split(' ')[2]) });
    });
  });
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

// ---------------------------------------------------------------- inside: the clients

/**
 * One client: its own address, one message; what it was answered where.
 * The message is sent whole, then `sent()` is called and the final dot waits
 * for `go`: every message is in progress at once, the worst case for memory.
 */
async function client(port: number, n: number, message: Buffer, sent: () => void = () => undefined, go: Promise<void> = Promise.resolve()): Promise<string> {
  const socket = net.connect({ host: `${PREFIX}1`, port, localAddress: `${PREFIX}${(0x100 + n).toString(16)}` });
  socket.setNoDelay(true);
  let buf = '';
  let wake: (() => void) | undefined;
  let closed = false;
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    wake?.();
  });
  const end = (): void => {
    closed = true;
    wake?.();
  };
  socket.on('close', end);
  socket.on('error', end);
  const reply = async (): Promise<string> => {
    for (;;) {
      const m = /(?:^|\n)(\d{3}) [^\n]*\n/.exec(buf);
      if (m) {
        buf = buf.slice(m.index + m[0].length);
        return m[1];
      }
      if (closed) return 'closed';
      await new Promise<void>((r) => (wake = r));
    }
  };
  const say = (line: string): Promise<string> => {
    socket.write(`${line}\r\n`);
    return reply();
  };
  let signalled = false;
  const signal = (): void => {
    if (!signalled) sent();
    signalled = true;
  };
  try {
    let code = await reply();
    if (code !== '220') return `connect ${code}`;
    await say('EHLO client.bench.test');
    code = await say(`MAIL FROM:<${FROM}> SIZE=${message.length}`);
    if (code !== '250') return `MAIL ${code}`;
    code = await say('RCPT TO:<bob@dest.test>');
    if (code !== '250') return `RCPT ${code}`;
    code = await say('DATA');
    if (code !== '354') return `DATA ${code}`;
    await new Promise<void>((r) => socket.write(message, () => r()));
    signal();
    await go;
    code = await say('.');
    return `end of DATA ${code}`;
  } finally {
    signal();
    socket.end('QUIT\r\n');
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}

function messageOf(mb: number): Buffer {
  const line = `${'y'.repeat(76)}\r\n`;
  const head = `From: ${FROM}\r\nTo: bob@dest.test\r\nSubject: big\r\n\r\n`;
  const bytes = mb * 1024 * 1024;
  return Buffer.from(head + line.repeat(Math.floor((bytes - head.length) / line.length)));
}

interface RunResult {
  baseMb: number;
  peakMb: number;
  growthMb: number;
  outcomes: Map<string, number>;
  seconds: number;
}

async function oneRun(sinkPort: number, dns: string, message: Buffer): Promise<RunResult> {
  const gate = await startGateChild({ BENCH_BACKEND: `127.0.0.1:${sinkPort}`, BENCH_DNS: dns });
  try {
    // One small message first: the gate's code paths loaded and warm, as in service.
    await client(gate.port, 0, messageOf(0.01));
    await new Promise((r) => setTimeout(r, 500));
    const base = statusKb(gate.proc.pid!, 'VmRSS');
    const t0 = Date.now();
    let sent = 0;
    let release: () => void = () => undefined;
    const go = new Promise<void>((r) => (release = r));
    const allSent = (): void => {
      // Every client has sent its message (or was refused): a moment for the gate to read the last bytes, then the dots.
      if (++sent === CLIENTS) setTimeout(release, 1000);
    };
    const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(gate.port, i, message, allSent, go)));
    const seconds = (Date.now() - t0) / 1000;
    const peak = statusKb(gate.proc.pid!, 'VmHWM');
    const outcomes = new Map<string, number>();
    for (const r of results) outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
    return { baseMb: base / 1024, peakMb: peak / 1024, growthMb: (peak - base) / 1024, outcomes, seconds };
  } finally {
    gate.proc.stdin!.end();
    await new Promise((r) => gate.proc.once('exit', r));
  }
}

async function main(): Promise<void> {
  const zone = new Zone({
    'bench.test': [{ TXT: `v=spf1 ip6:${PREFIX}/64 -all` }, { MX: [10, 'mx.bench.test'] }],
    'mx.bench.test': [{ AAAA: `${PREFIX}1` }],
    'client.bench.test': [{ AAAA: `${PREFIX}100` }],
    'dest.test': [{ MX: [10, 'mx.dest.test'] }],
    'mx.dest.test': [{ A: '192.0.2.25' }],
  });
  const dns = await startFixtureDns(zone);
  const sink = await startFastSink();
  const message = messageOf(MESSAGE_MB);
  const runs: RunResult[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const r = await oneRun(sink.port, dns.address, message);
      runs.push(r);
      console.log(
        `run ${i + 1}: RSS ${r.baseMb.toFixed(0)} MB before, peak ${r.peakMb.toFixed(0)} MB, growth ${r.growthMb.toFixed(0)} MB in ${r.seconds.toFixed(1)} s; ` +
          [...r.outcomes].map(([k, v]) => `${v} × ${k}`).join(', '),
      );
    }
  } finally {
    await sink.close();
    await dns.close();
  }
  const sorted = [...runs].sort((a, b) => a.growthMb - b.growthMb);
  const median = sorted[Math.floor(sorted.length / 2)];
  const budget = MEMORY_MB ?? '256 (default)';
  console.log(`median RSS growth: ${median.growthMb.toFixed(0)} MB (target < 250 MB)`);
  if (WRITE_README) {
    const table = [
      `Command: \`npm run bench -- gate-memory\` (${CLIENTS} clients, one address each in ${PREFIX}/64, one ${MESSAGE_MB} MiB message each at once with SIZE=; gate.limits.memory_mb ${budget}; ipv6_prefix ${IPV6_PREFIX ?? '64 (default)'}; other gate limits default; ${RUNS} runs, each with a fresh gate process).`,
      '',
      '| run | RSS before | peak RSS (VmHWM) | growth | what the clients were answered |',
      '| --- | --- | --- | --- | --- |',
      ...runs.map(
        (r, i) =>
          `| ${i + 1} | ${r.baseMb.toFixed(0)} MB | ${r.peakMb.toFixed(0)} MB | ${r.growthMb.toFixed(0)} MB | ${[...r.outcomes].map(([k, v]) => `${v} × ${k}`).join(', ')} |`,
      ),
      '',
      `Median RSS growth: **${median.growthMb.toFixed(0)} MB** (target < 250 MB).`,
    ].join('\n');
    updateReadme('gate-memory', table);
  }
}

const role = process.env.BENCH_GMEM_ROLE;
if (role === 'gate') await gateRole();
else if (role === 'main') await main();
else outside();
