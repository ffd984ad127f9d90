// Decisions per second over the Postfix policy protocol, on three workloads,
// and Debian's postgrey on the same load beside it.
//
// `frontline serve` runs as its own process(es) with the shipped default
// policy and decision logging on (to /dev/null), resolving against the
// fixture DNS server in a process of its own (test/fixtures/world.yaml, plus
// a zone for 131,072 generated clients: bench/lib/traffic.ts,
// bench/lib/dns-process.ts). This process plays Postfix: 16
// connections, each sending one RCPT request and waiting for the answer
// before the next, every request a new message (a new `instance`).
//
//   repeated  five envelopes repeated (bench/lib/policy-cases.ts): the best
//             case for every cache (DNS and evidence).
//   cold      every request a new client address, its PTR, forward A and
//             sender domain answered by the fixture DNS server: what a mail
//             server mostly sees. Greylisting on (delay 1 s), as an admin
//             replacing postgrey runs it.
//   warm      1,000 clients repeating, greylisting on; their triplets passed
//             during the warm-up.
// postgrey runs cold and warm (its whitelists Debian's, --delay=1, a fresh
// database each run). The cold rate must at least match postgrey's.
//
//   npm run bench -- policy-server
//   BENCH_RUNS=3 …           measure each workload N times (a fresh server each) and report the median run (default 3)
//   BENCH_WORKLOADS=cold,warm …  a subset of repeated,cold,warm
//   BENCH_WORKERS=2 …        frontline serve --workers 2 (default 2; 1 = no cluster)
//   BENCH_RUNTIME=tsx …      run the server from source through tsx (default: compiled, `npm run build`, as shipped)
//   BENCH_EVIDENCE_CACHE=0 … policy.evidence_cache off: every message computes its evidence (from the DNS cache)
//   BENCH_SECONDS=20 BENCH_WARMUP=3 BENCH_CONNECTIONS=16 …
//   BENCH_THREADS=1 …        print the server's CPU per decision by thread
//   BENCH_PROFILE=1 …        also writes CPU profiles of the server processes (node --cpu-prof) to $TMPDIR/frontline-profiles/
//   BENCH_NODE_ARGS='…' …    extra node flags for the server processes
//   BENCH_TRANSPORT=unix …   Postfix's `check_policy_service unix:…`: the load (and the ceiling's, and postgrey's) over a unix socket
//   BENCH_ENTRY=<tree>/dist/cli/main.js …  measure another build (A/B); bench/README.md is then left alone, as with BENCH_README=0
//   BENCH_BASELINE_ENTRY=<tree>/dist/cli/main.js …  also run that build on each workload in the same run: both servers up,
//                            the load going to each in turns (BENCH_SLICES=8 turns of BENCH_SLICE=2 s each, per round),
//                            and print this build's CPU per decision and rate against the baseline's, round by round
//   BENCH_POSTGREY_TURNS=1 … cold and warm: frontline and postgrey both up, the load going to each in turns (as above),
//                            each round's rates side by side; on a machine shared with other work, the same-run comparison
//   BENCH_BASELINE_WORKERS=1 BENCH_BASELINE_NODE_ARGS='…' …  the baseline's worker count and node flags (default: this
//                            build's), to compare arrangements: BENCH_BASELINE_ENTRY=dist/cli/main.js with another one

import { createInterface } from 'node:readline';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe } from '../test/helpers/cli.js';
import { rcptRequest } from '../test/helpers/policy-client.js';
import { encodeAttributes, runPolicyLoad, type LoadRequest } from './lib/policy-load.js';
import { updateReadme } from './lib/readme.js';
import { CASES } from './lib/policy-cases.js';
import { RUNTIME, serverEntry } from './lib/build.js';
import { cpuSeconds, percentile, processTree, threadCpuSeconds, threadSplit, treeCpuSeconds } from './lib/process-stats.js';
import { CLIENT_POOL, FRONTLINE_JUDGE, POSTGREY_JUDGE, trafficRequests, WARM_CLIENTS, type Workload } from './lib/traffic.js';
import { startDnsProcess } from './lib/dns-process.js';
import { postgreyBinary, postgreyVersion, startPostgrey } from './lib/postgrey.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const THREADS = process.env.BENCH_THREADS === '1';
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PROFILE = process.env.BENCH_PROFILE === '1';
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const WORKERS = process.env.BENCH_WORKERS ?? '2';
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const EVIDENCE_CACHE = process.env.BENCH_EVIDENCE_CACHE !== '0';
const TRANSPORT = process.env.BENCH_TRANSPORT === 'unix' ? 'unix' : 'tcp';
const BASELINE_ENTRY = process.env.BENCH_BASELINE_ENTRY;
const SLICES = Math.max(1, Number(process.env.BENCH_SLICES ?? 8));
const SLICE_SECONDS = Number(process.env.BENCH_SLICE ?? 2);
const POSTGREY_TURNS = process.env.BENCH_POSTGREY_TURNS === '1';
type Load = 'repeated' | Workload;
const WORKLOADS = (process.env.BENCH_WORKLOADS ?? 'repeated,cold,warm').split(',').map((w) => w.trim()) as Load[];
/** Greylisting's delay in the cold and warm workloads, for both servers: short enough that warm triplets pass in the warm-up. */
const GREYLIST_DELAY_S = 1;
const WORLD = fileURLToPath(new URL('../test/fixtures/world.yaml', import.meta.url));
const COMMAND = [
  process.env.BENCH_WORKERS !== undefined ? `BENCH_WORKERS=${WORKERS}` : '',
  RUNTIME === 'tsx' ? 'BENCH_RUNTIME=tsx' : '',
  process.env.BENCH_RUNS !== undefined ? `BENCH_RUNS=${RUNS}` : '',
  process.env.BENCH_WORKLOADS !== undefined ? `BENCH_WORKLOADS=${WORKLOADS.join(',')}` : '',
  EVIDENCE_CACHE ? '' : 'BENCH_EVIDENCE_CACHE=0',
  TRANSPORT === 'unix' ? 'BENCH_TRANSPORT=unix' : '',
  process.env.BENCH_POSTGREY_TURNS === '1' ? 'BENCH_POSTGREY_TURNS=1' : '',
  'npm run bench -- policy-server',
]
  .filter(Boolean)
  .join(' ');

interface Run {
  decisions: number;
  elapsed: number;
  rate: number;
  sorted: Float64Array;
  /** Server processes' CPU, in cores (1 = one core busy). */
  serverCpu: number;
  processes: number;
  /** This process (the Postfix stand-ins), in cores. */
  clientCpu: number;
  byKind: Map<string, number>;
  wrong: number;
  wrongExamples: string[];
  load: number;
  /** Questions the fixture DNS server received per decision in the window. */
  dnsPerDecision: number;
  /** The fixture DNS server's process, in cores over the window (the bench's machinery, not the server's). */
  dnsCpu: number;
}

/** Questions asked of the fixture DNS server so far (frontline's; postgrey asks none). */
let dnsQuestions: () => Promise<number> = async () => 0;
/** The fixture DNS server's process (its CPU is the bench's, on the same two vCPUs). */
let dnsPid = 0;

// Each case's attributes, encoded once; instance, recipient and client_port change per request.
const FIXED = CASES.map((k) => {
  const { instance: _i, recipient: _r, client_port: _p, ...rest } = rcptRequest(k.attrs);
  return encodeAttributes(rest as Record<string, string>);
});

function repeatedRequest(n: number, id: number): LoadRequest {
  const c = n % CASES.length;
  return {
    wire: `${FIXED[c]}recipient=user${n % 1000}@dest.example\ninstance=${id}.${n}.bench\nclient_port=${10000 + (n % 50000)}\n\n`,
    ok: (action) => CASES[c].expect.test(action),
  };
}

/** Drive one server with a workload; CPU is read from `pids` (and this process) over the measured window. */
async function drive(
  target: { port: number; path?: string },
  pids: number[],
  next: (n: number, id: number) => LoadRequest,
  window: { warmupS: number; seconds: number } = { warmupS: WARMUP_SECONDS, seconds: SECONDS },
): Promise<Run> {
  let cpu0 = 0;
  let cpu1 = 0;
  let threads0 = new Map() as ReturnType<typeof threadCpuSeconds>;
  let threads1 = threads0;
  let client0 = process.cpuUsage();
  let client = client0;
  let dns0: Promise<number> = Promise.resolve(0);
  let dns1: Promise<number> = Promise.resolve(0);
  let dnsCpu0 = 0;
  let dnsCpu1 = 0;
  const load = await runPolicyLoad({
    host: '127.0.0.1',
    ...target,
    connections: CONNECTIONS,
    ...window,
    next,
    onWindow: (edge) => {
      if (edge === 'start') {
        cpu0 = treeCpuSeconds(pids);
        if (THREADS) threads0 = threadCpuSeconds(pids);
        client0 = process.cpuUsage();
        dnsCpu0 = dnsPid ? cpuSeconds(dnsPid) : 0;
        dns0 = dnsQuestions();
      } else {
        dns1 = dnsQuestions();
        dnsCpu1 = dnsPid ? cpuSeconds(dnsPid) : 0;
        cpu1 = treeCpuSeconds(pids);
        if (THREADS) threads1 = threadCpuSeconds(pids);
        client = process.cpuUsage(client0);
      }
    },
  });
  if (THREADS) for (const line of threadSplit(threads0, threads1, load.sorted.length)) console.log(`  ${line}`);
  return {
    decisions: load.sorted.length,
    elapsed: load.elapsed,
    rate: load.sorted.length / load.elapsed,
    sorted: load.sorted,
    serverCpu: (cpu1 - cpu0) / load.elapsed,
    processes: pids.length,
    clientCpu: (client.user + client.system) / 1e6 / load.elapsed,
    byKind: load.byKind,
    wrong: load.wrong,
    wrongExamples: load.wrongExamples.map((a) => `answer ${a}`),
    load: os.loadavg()[0],
    dnsPerDecision: ((await dns1) - (await dns0)) / Math.max(1, load.sorted.length),
    dnsCpu: (dnsCpu1 - dnsCpu0) / load.elapsed,
  };
}

/** The same load against bench/lib/null-policy-server.ts: the rate no policy server in Node beats here. */
async function measureCeiling(): Promise<{ rate: number; p99: number; serverUs: number }> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'frontline-null-'));
  const path = TRANSPORT === 'unix' ? join(tmp, 'policy.sock') : undefined;
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./lib/null-policy-server.ts', import.meta.url)), WORKERS, ...(path ? [path] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => {
        const m = /^ready (\d+)$/.exec(l);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`null policy server exited (${code})`)));
    });
    const r = await drive({ port, path }, processTree(child.pid!), (n, id) => ({ wire: repeatedRequest(n, id).wire, ok: (a) => a === 'DUNNO' }));
    return { rate: r.rate, p99: percentile(r.sorted, 99), serverUs: (r.serverCpu / r.rate) * 1e6 };
  } finally {
    child.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface Started {
  target: { port: number; path?: string };
  pids: number[];
  next: (n: number, id: number) => LoadRequest;
  stop: () => Promise<void>;
}

/**
 * A workload's requests numbered on from one drive to the next: each drive
 * (a turn of measureInTurns) starts its own count at 0, and a cold client
 * must not come back in a later turn (it would be known, its triplet passed).
 */
function continuing(next: (n: number, id: number) => LoadRequest): (n: number, id: number) => LoadRequest {
  let k = 0;
  return (_n, id) => next(k++, id);
}

/** How a server is run: its worker count and extra node flags (the baseline's may differ: BENCH_BASELINE_WORKERS, BENCH_BASELINE_NODE_ARGS). */
interface Arrangement {
  workers: string;
  nodeArgs: string[];
}
const THIS_ARRANGEMENT: Arrangement = { workers: WORKERS, nodeArgs: NODE_ARGS };
const BASELINE_ARRANGEMENT: Arrangement = {
  workers: process.env.BENCH_BASELINE_WORKERS ?? WORKERS,
  nodeArgs: process.env.BENCH_BASELINE_NODE_ARGS === undefined ? NODE_ARGS : process.env.BENCH_BASELINE_NODE_ARGS.split(/\s+/).filter(Boolean),
};

async function startFrontline(load: Load, dnsServer: string, entry: string[] | undefined, profDir: string, how: Arrangement = THIS_ARRANGEMENT): Promise<Started> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'frontline-bench-'));
  const config = join(tmp, 'bench.yaml');
  const lines = ['log:', `  level: ${process.env.LVL ?? 'info'}`, '  file: /dev/null', 'headers:', '  authserv_id: mx.bench.test', `workers: ${how.workers}`];
  if (!EVIDENCE_CACHE) lines.push('policy:', '  evidence_cache:', '    ttl_s: 0');
  if (load !== 'repeated') lines.push('greylist:', '  enabled: true', `  delay_s: ${GREYLIST_DELAY_S}`);
  writeFileSync(config, `${lines.join('\n')}\n`);
  const socket = TRANSPORT === 'unix' ? join(tmp, 'policy.sock') : undefined;
  const server = await startServe(['--config', config, '--dns', dnsServer, '--policy-listen', '127.0.0.1:0', ...(socket ? ['--policy-socket', socket] : []), '--data-dir', join(tmp, 'data')], {
    nodeArgs: [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...how.nodeArgs],
    entry,
    // A loaded machine can take longer than a test's 30 s to start two workers.
    timeoutMs: 180_000,
  });
  return {
    target: { port: server.port, path: socket },
    pids: processTree(server.child.pid!),
    next: load === 'repeated' ? repeatedRequest : continuing(trafficRequests(load, FRONTLINE_JUDGE[load])),
    stop: async () => {
      await server.stop();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

async function measureFrontline(load: Load, dnsServer: string, entry: string[] | undefined, profDir: string): Promise<Run> {
  const s = await startFrontline(load, dnsServer, entry, profDir);
  try {
    return await drive(s.target, s.pids, s.next);
  } finally {
    await s.stop();
  }
}

/** Runs taken in turns, as one: decisions, time and CPU summed. */
function joinRuns(parts: Run[]): Run {
  const elapsed = parts.reduce((n, r) => n + r.elapsed, 0);
  const decisions = parts.reduce((n, r) => n + r.decisions, 0);
  const sorted = new Float64Array(decisions);
  let at = 0;
  for (const r of parts) {
    sorted.set(r.sorted, at);
    at += r.sorted.length;
  }
  const byKind = new Map<string, number>();
  for (const r of parts) for (const [k, v] of r.byKind) byKind.set(k, (byKind.get(k) ?? 0) + v);
  return {
    decisions,
    elapsed,
    rate: decisions / elapsed,
    sorted: sorted.sort(),
    serverCpu: parts.reduce((n, r) => n + r.serverCpu * r.elapsed, 0) / elapsed,
    processes: parts[0].processes,
    clientCpu: parts.reduce((n, r) => n + r.clientCpu * r.elapsed, 0) / elapsed,
    byKind,
    wrong: parts.reduce((n, r) => n + r.wrong, 0),
    wrongExamples: parts.flatMap((r) => r.wrongExamples),
    load: parts[parts.length - 1].load,
    dnsPerDecision: parts.reduce((n, r) => n + r.dnsPerDecision * r.decisions, 0) / Math.max(1, decisions),
    dnsCpu: parts.reduce((n, r) => n + r.dnsCpu * r.elapsed, 0) / elapsed,
  };
}

/**
 * This build and the baseline's, both started, driven in turns of
 * BENCH_SLICE seconds (BENCH_SLICES turns each, the first one swapped every
 * turn) after a warm-up each: on a busy machine both meet the same minutes,
 * which a run after a run does not give.
 */
async function measureInTurns(load: Load, dnsServer: string, entries: Record<'this' | 'baseline', string[] | undefined>, profDir: string): Promise<Record<'this' | 'baseline', Run>> {
  const started: Partial<Record<'this' | 'baseline', Started>> = {};
  try {
    started.this = await startFrontline(load, dnsServer, entries.this, profDir);
    started.baseline = await startFrontline(load, dnsServer, entries.baseline, profDir, BASELINE_ARRANGEMENT);
    const parts: Record<'this' | 'baseline', Run[]> = { this: [], baseline: [] };
    for (const which of ['this', 'baseline'] as const) await drive(started[which]!.target, started[which]!.pids, started[which]!.next, { warmupS: WARMUP_SECONDS, seconds: 1 });
    for (let k = 0; k < SLICES; k++) {
      for (const which of k % 2 === 0 ? (['this', 'baseline'] as const) : (['baseline', 'this'] as const)) {
        const s = started[which]!;
        if (THREADS) console.log(`  ${which === 'this' ? 'this build' : 'baseline'}, turn ${k + 1}:`);
        parts[which].push(await drive(s.target, s.pids, s.next, { warmupS: 0.5, seconds: SLICE_SECONDS }));
      }
    }
    return { this: joinRuns(parts.this), baseline: joinRuns(parts.baseline) };
  } finally {
    for (const s of Object.values(started)) await s.stop();
  }
}

/**
 * BENCH_POSTGREY_TURNS=1: frontline and postgrey both started and driven in
 * turns (BENCH_SLICES turns of BENCH_SLICE seconds each, the first one
 * swapped every turn), so that on a machine shared with other work both
 * meet the same minutes; a run after a run does not give that.
 */
async function measureWithPostgreyInTurns(load: Workload, dnsServer: string, entry: string[] | undefined, binary: string, profDir: string): Promise<Record<'frontline' | 'postgrey', Run>> {
  const started: Partial<Record<'frontline' | 'postgrey', Started>> = {};
  try {
    started.frontline = await startFrontline(load, dnsServer, entry, profDir);
    const pg = await startPostgrey(binary, { delayS: GREYLIST_DELAY_S, unixSocket: TRANSPORT === 'unix' });
    started.postgrey = { target: { port: pg.port, path: pg.path }, pids: processTree(pg.child.pid!), next: continuing(trafficRequests(load, POSTGREY_JUDGE[load])), stop: () => pg.stop() };
    const parts: Record<'frontline' | 'postgrey', Run[]> = { frontline: [], postgrey: [] };
    for (const which of ['frontline', 'postgrey'] as const) await drive(started[which]!.target, started[which]!.pids, started[which]!.next, { warmupS: WARMUP_SECONDS, seconds: 1 });
    for (let k = 0; k < SLICES; k++) {
      for (const which of k % 2 === 0 ? (['frontline', 'postgrey'] as const) : (['postgrey', 'frontline'] as const)) {
        const s = started[which]!;
        if (THREADS) console.log(`  ${which}, turn ${k + 1}:`);
        parts[which].push(await drive(s.target, s.pids, s.next, { warmupS: 0.5, seconds: SLICE_SECONDS }));
      }
    }
    return { frontline: joinRuns(parts.frontline), postgrey: joinRuns(parts.postgrey) };
  } finally {
    for (const s of Object.values(started)) await s.stop();
  }
}

async function measurePostgrey(binary: string, load: Workload): Promise<Run> {
  const pg = await startPostgrey(binary, { delayS: GREYLIST_DELAY_S, unixSocket: TRANSPORT === 'unix' });
  try {
    return await drive({ port: pg.port, path: pg.path }, processTree(pg.child.pid!), trafficRequests(load, POSTGREY_JUDGE[load]));
  } finally {
    await pg.stop();
  }
}

/** The median run by rate (the lower middle one for an even count). */
function median(runs: Run[]): Run {
  return [...runs].sort((a, b) => a.rate - b.rate)[Math.floor((runs.length - 1) / 2)];
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const µs = (r: Run, cores: number): string => ((cores / r.rate) * 1e6).toFixed(0);
const answers = (r: Run): string => [...r.byKind].map(([k, v]) => `${k} ${v}`).join(', ');

async function main(): Promise<void> {
  const dns = await startDnsProcess(WORLD, { traffic: WORKLOADS.some((w) => w !== 'repeated') });
  dnsQuestions = () => dns.questions();
  dnsPid = dns.child.pid ?? 0;
  const profDir = join(os.tmpdir(), 'frontline-profiles');
  if (PROFILE) mkdirSync(profDir, { recursive: true });
  const entry = serverEntry();
  const pgBinary = postgreyBinary();
  if (!pgBinary && WORKLOADS.some((w) => w !== 'repeated')) console.log('  postgrey not installed (apt-get install postgrey): its rows are left out');
  const runs = new Map<string, Run[]>();
  const add = (key: string, r: Run): void => {
    runs.set(key, [...(runs.get(key) ?? []), r]);
    console.log(`  ${key} run ${runs.get(key)!.length}/${RUNS}: ${int(r.rate)} decisions/s, p99 ${percentile(r.sorted, 99).toFixed(2)} ms, ${µs(r, r.serverCpu)} µs server CPU per decision, ${µs(r, r.clientCpu)} µs client, ${µs(r, r.dnsCpu)} µs fixture DNS, load ${r.load.toFixed(2)}`);
  };
  // Round by round, so each server meets the machine's slow and quiet minutes alike.
  const against: string[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const w of WORKLOADS) {
      if (BASELINE_ENTRY) {
        const got = await measureInTurns(w, dns.server, { this: entry, baseline: [BASELINE_ENTRY] }, profDir);
        add(`frontline ${w}`, got.this);
        add(`baseline ${w}`, got.baseline);
        const cpu = (r: Run): number => r.serverCpu / r.rate;
        const line = `${w} round ${i + 1}: CPU per decision ${((cpu(got.this!) / cpu(got.baseline!)) * 100).toFixed(1)}% of the baseline's (${µs(got.this!, got.this!.serverCpu)} against ${µs(got.baseline!, got.baseline!.serverCpu)} µs), rate ${((got.this!.rate / got.baseline!.rate) * 100).toFixed(1)}% (${int(got.this!.rate)} against ${int(got.baseline!.rate)}/s)`;
        against.push(line);
        console.log(`  ${line}`);
      } else if (POSTGREY_TURNS && w !== 'repeated' && pgBinary) {
        const got = await measureWithPostgreyInTurns(w, dns.server, entry, pgBinary, profDir);
        add(`frontline ${w}`, got.frontline);
        add(`postgrey ${w}`, got.postgrey);
        const line = `${w} round ${i + 1}, in turns: frontline ${int(got.frontline.rate)}/s against postgrey's ${int(got.postgrey.rate)}/s (${(got.frontline.rate / got.postgrey.rate).toFixed(2)}), server CPU per decision ${µs(got.frontline, got.frontline.serverCpu)} against ${µs(got.postgrey, got.postgrey.serverCpu)} µs`;
        against.push(line);
        console.log(`  ${line}`);
        continue;
      } else {
        add(`frontline ${w}`, await measureFrontline(w, dns.server, entry, profDir));
      }
      if (w !== 'repeated' && pgBinary) add(`postgrey ${w}`, await measurePostgrey(pgBinary, w));
    }
  }
  const ceiling = await measureCeiling();
  await dns.close();
  const wrong = [...runs.values()].flat().reduce((n, r) => n + r.wrong, 0);
  const setting = `workers ${WORKERS}, ${RUNTIME === 'dist' ? 'compiled (npm run build)' : 'from source (tsx)'}, evidence cache ${EVIDENCE_CACHE ? 'on' : 'off'}, ${TRANSPORT === 'unix' ? 'unix socket' : 'TCP on 127.0.0.1'}`;
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
  const sections: string[] = [];
  const verdicts: string[] = [];

  const repeated = runs.get('frontline repeated');
  if (repeated) {
    const m = median(repeated);
    const pass = m.rate >= 20000 && percentile(m.sorted, 99) < 5 && m.wrong === 0;
    verdicts.push(`repeated: target (>= 20,000/s, p99 < 5 ms, no wrong answers) ${pass ? 'met' : 'NOT met'}`);
    const rows: Array<[string, string]> = [
      ['decisions', String(m.decisions)],
      ['seconds', m.elapsed.toFixed(1)],
      ['decisions/s', int(m.rate)],
      ...(repeated.length > 1 ? [['decisions/s of each run', repeated.map((r) => int(r.rate)).join(', ')] as [string, string]] : []),
      ['p50 latency', `${percentile(m.sorted, 50).toFixed(2)} ms`],
      ['p90 latency', `${percentile(m.sorted, 90).toFixed(2)} ms`],
      ['p99 latency', `${percentile(m.sorted, 99).toFixed(2)} ms`],
      ['max latency', `${m.sorted[m.sorted.length - 1]?.toFixed(2)} ms`],
      ['server CPU', `${(m.serverCpu * 100).toFixed(0)}% of one core in ${m.processes} process${m.processes === 1 ? '' : 'es'} (${µs(m, m.serverCpu)} µs per decision)`],
      ['client CPU', `${(m.clientCpu * 100).toFixed(0)}% of one core (${µs(m, m.clientCpu)} µs per decision)`],
      ['DNS questions per decision', m.dnsPerDecision.toFixed(2)],
      ['load average (1 min)', m.load.toFixed(2)],
      [
        'ceiling: a server that only answers DUNNO',
        `${int(ceiling.rate)}/s, p99 ${ceiling.p99.toFixed(2)} ms, ${ceiling.serverUs.toFixed(0)} µs of server CPU per request (bench/lib/null-policy-server.ts, same load and workers)`,
      ],
      ['answers', answers(m)],
      ['wrong answers', String(m.wrong)],
    ];
    sections.push(
      [
        `**repeated** (five envelopes; the shipped default policy, greylisting off): ${pass ? 'target met' : 'target NOT met'}.`,
        '',
        '| measure | value |',
        '| --- | --- |',
        ...rows.map(([k, v]) => `| ${k} | ${v} |`),
      ].join('\n'),
    );
  }

  const traffic = [...runs.keys()].filter((k) => !k.endsWith('repeated'));
  if (traffic.length > 0) {
    const order = (k: string): number => (k.endsWith('cold') ? 0 : 1) * 2 + (k.startsWith('postgrey') ? 1 : 0);
    traffic.sort((a, b) => order(a) - order(b));
    const rows = traffic.map((k) => {
      const all = runs.get(k)!;
      const m = median(all);
      const distinct = k.endsWith('cold') ? Math.min(m.decisions, CLIENT_POOL) : WARM_CLIENTS;
      return `| ${k} | ${int(m.rate)} | ${all.map((r) => int(r.rate)).join(', ')} | ${percentile(m.sorted, 50).toFixed(2)} ms | ${percentile(m.sorted, 99).toFixed(2)} ms | ${µs(m, m.serverCpu)} µs in ${m.processes} | ${µs(m, m.clientCpu)} µs | ${m.dnsPerDecision.toFixed(2)} | ${µs(m, m.dnsCpu)} µs | ${int(distinct)} | ${answers(m)} | ${m.wrong} | ${m.load.toFixed(1)} |`;
    });
    const cold = runs.get('frontline cold');
    const pgCold = runs.get('postgrey cold');
    let coldVerdict = '';
    if (cold && pgCold) {
      const met = median(cold).rate >= median(pgCold).rate;
      coldVerdict = `cold: target (frontline's rate at least postgrey's) ${met ? 'met' : 'NOT met'}: ${int(median(cold).rate)} against ${int(median(pgCold).rate)}/s`;
      verdicts.push(coldVerdict);
    }
    sections.push(
      [
        `**cold and warm, beside postgrey${pgBinary ? ` ${postgreyVersion(pgBinary)}` : ''}** (frontline: the shipped default policy with greylisting on, delay ${GREYLIST_DELAY_S} s; postgrey: Debian's defaults, --delay=${GREYLIST_DELAY_S}). ${coldVerdict ? `${coldVerdict[0].toUpperCase()}${coldVerdict.slice(1)}.` : ''}`,
        '',
        '| server, workload | decisions/s (median) | each run | p50 | p99 | server CPU per decision, processes | client CPU per decision | DNS questions per decision | fixture DNS CPU per decision | distinct clients | answers | wrong | load |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
        ...rows,
      ].join('\n'),
    );
  }

  console.log(`\npolicy-server: ${CONNECTIONS} connections, ${SECONDS} s after ${WARMUP_SECONDS} s warm-up; ${setting}; median of ${RUNS} run${RUNS > 1 ? 's' : ''}\n`);
  console.log(sections.join('\n\n'));
  for (const e of [...runs.values()].flat().flatMap((r) => r.wrongExamples).slice(0, 5)) console.log(`  wrong: ${e}`);
  for (const v of verdicts) console.log(`  ${v}`);
  if (POSTGREY_TURNS && !BASELINE_ENTRY) {
    console.log('\nfrontline against postgrey, in turns:');
    for (const l of against) console.log(`  ${l}`);
    for (const w of WORKLOADS.filter((x) => x !== 'repeated')) {
      const mine = runs.get(`frontline ${w}`) ?? [];
      const pg = runs.get(`postgrey ${w}`) ?? [];
      const rates = mine.map((r, k) => r.rate / pg[k].rate).sort((a, b) => a - b);
      if (rates.length > 0) console.log(`  ${w}: median of ${rates.length} rounds: frontline's rate ${rates[Math.floor((rates.length - 1) / 2)].toFixed(2)} of postgrey's`);
    }
  }
  if (BASELINE_ENTRY) {
    console.log(`\nagainst the baseline (${BASELINE_ENTRY}, workers ${BASELINE_ARRANGEMENT.workers}${BASELINE_ARRANGEMENT.nodeArgs.length > 0 ? `, ${BASELINE_ARRANGEMENT.nodeArgs.join(' ')}` : ''}), same run:`);
    for (const l of against) console.log(`  ${l}`);
    for (const w of WORKLOADS) {
      const mine = runs.get(`frontline ${w}`) ?? [];
      const base = runs.get(`baseline ${w}`) ?? [];
      const ratios = mine.map((r, k) => r.serverCpu / r.rate / (base[k].serverCpu / base[k].rate)).sort((a, b) => a - b);
      const rates = mine.map((r, k) => r.rate / base[k].rate).sort((a, b) => a - b);
      const mid = (xs: number[]): number => xs[Math.floor((xs.length - 1) / 2)];
      console.log(`  ${w}: median of ${ratios.length} rounds: CPU per decision ${(mid(ratios) * 100).toFixed(1)}% of the baseline's, rate ${(mid(rates) * 100).toFixed(1)}% of the baseline's`);
    }
  }
  if (PROFILE) console.log(`  CPU profiles of the server written to ${profDir}`);

  // Not for BENCH_README=0, nor for another build (BENCH_ENTRY): its figures are not this tree's.
  if (process.env.BENCH_README !== '0' && !process.env.BENCH_ENTRY && !BASELINE_ENTRY) {
    updateReadme(
      TRANSPORT === 'unix' ? 'policy-server-unix' : 'policy-server',
      [
        `Command: \`${COMMAND}\` (${CONNECTIONS} connections, ${SECONDS} s measured after ${WARMUP_SECONDS} s warm-up; ${setting}; the median of ${RUNS} run${RUNS > 1 ? 's' : ''}).`,
        `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}.`,
        '',
        sections.join('\n\n'),
      ].join('\n'),
    );
  }
  if (wrong > 0) process.exitCode = 1;
}

await main();
