// Decisions per second over the Postfix policy protocol.
//
// `frontline serve` runs as its own process(es) with the shipped default
// policy and decision logging on (to /dev/null), resolving against the
// fixture DNS world of the end-to-end test. This process plays Postfix: 16
// connections, each sending one RCPT request and waiting for the answer
// before the next, every request a new message (a new `instance`); the DNS
// cache is warm after the warm-up, and so is the evidence cache (the five
// envelopes repeat), unless BENCH_EVIDENCE_CACHE=0.
//
//   npm run bench -- policy-server
//   BENCH_WORKERS=2 …        frontline serve --workers 2 (default 2; 1 = no cluster)
//   BENCH_RUNTIME=tsx …      run the server from source through tsx (default: compiled, `npm run build`, as shipped)
//   BENCH_RUNS=3 …           measure 3 times (a fresh server each) and report the median run
//   BENCH_EVIDENCE_CACHE=0 … policy.evidence_cache off: every message computes its evidence (from the DNS cache)
//   BENCH_SECONDS=20 BENCH_CONNECTIONS=16 …
//   BENCH_PROFILE=1 …        also writes CPU profiles of the server processes (node --cpu-prof) to $TMPDIR/frontline-profiles/
//   BENCH_TRANSPORT=unix …   Postfix's `check_policy_service unix:…`: the load (and the ceiling's) over a unix socket instead of TCP on 127.0.0.1

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadZoneYaml, startFixtureDns } from '../test/helpers/fixture-dns.js';
import { startServe } from '../test/helpers/cli.js';
import { rcptRequest } from '../test/helpers/policy-client.js';
import { encodeAttributes, runPolicyLoad, type LoadRequest } from './lib/policy-load.js';
import { updateReadme } from './lib/readme.js';
import { CASES } from './lib/policy-cases.js';
import { RUNTIME, serverEntry } from './lib/build.js';
import { percentile, processTree, threadCpuSeconds, threadSplit, treeCpuSeconds } from './lib/process-stats.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
/** BENCH_THREADS=1: print each server process's CPU per decision by thread (main thread user/kernel, other threads). */
const THREADS = process.env.BENCH_THREADS === '1';
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PROFILE = process.env.BENCH_PROFILE === '1';
/** BENCH_NODE_ARGS='--flag …': extra node flags for the server processes (its workers inherit them), to try V8 settings. */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const WORKERS = process.env.BENCH_WORKERS ?? '2';
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 1));
const EVIDENCE_CACHE = process.env.BENCH_EVIDENCE_CACHE !== '0';
/** tcp (default): 127.0.0.1; unix: a unix socket in the run's temporary directory. */
const TRANSPORT = process.env.BENCH_TRANSPORT === 'unix' ? 'unix' : 'tcp';
const WORLD = fileURLToPath(new URL('../test/fixtures/world.yaml', import.meta.url));
const COMMAND = [
  process.env.BENCH_WORKERS !== undefined ? `BENCH_WORKERS=${WORKERS}` : '',
  RUNTIME === 'tsx' ? 'BENCH_RUNTIME=tsx' : '',
  RUNS > 1 ? `BENCH_RUNS=${RUNS}` : '',
  EVIDENCE_CACHE ? '' : 'BENCH_EVIDENCE_CACHE=0',
  TRANSPORT === 'unix' ? 'BENCH_TRANSPORT=unix' : '',
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
  /** This process (the 16 Postfix stand-ins), in cores. */
  clientCpu: number;
  byKind: Map<string, number>;
  wrong: number;
  wrongExamples: string[];
  load: number;
}

// Each case's attributes, encoded once; instance, recipient and client_port change per request.
const FIXED = CASES.map((k) => {
  const { instance: _i, recipient: _r, client_port: _p, ...rest } = rcptRequest(k.attrs);
  return encodeAttributes(rest as Record<string, string>);
});

function nextRequest(n: number, id: number): LoadRequest {
  const c = n % CASES.length;
  return {
    wire: `${FIXED[c]}recipient=user${n % 1000}@dest.example\ninstance=${id}.${n}.bench\nclient_port=${10000 + (n % 50000)}\n\n`,
    ok: (action) => CASES[c].expect.test(action),
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
    const pids = processTree(child.pid!);
    let cpu0 = 0;
    let cpu1 = 0;
    const load = await runPolicyLoad({
      host: '127.0.0.1',
      port,
      path,
      connections: CONNECTIONS,
      warmupS: WARMUP_SECONDS,
      seconds: SECONDS,
      next: (n, id) => ({ wire: nextRequest(n, id).wire, ok: (a) => a === 'DUNNO' }),
      onWindow: (edge) => {
        if (edge === 'start') cpu0 = treeCpuSeconds(pids);
        else cpu1 = treeCpuSeconds(pids);
      },
    });
    const rate = load.sorted.length / load.elapsed;
    return { rate, p99: percentile(load.sorted, 99), serverUs: ((cpu1 - cpu0) / load.elapsed / rate) * 1e6 };
  } finally {
    child.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function measure(dnsServer: string, entry: string[] | undefined, profDir: string): Promise<Run> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'frontline-bench-'));
  const config = join(tmp, 'bench.yaml');
  const lines = ['log:', `  level: ${process.env.LVL ?? 'info'}`, '  file: /dev/null', 'headers:', '  authserv_id: mx.bench.test', `workers: ${WORKERS}`];
  if (!EVIDENCE_CACHE) lines.push('policy:', '  evidence_cache:', '    ttl_s: 0');
  writeFileSync(config, `${lines.join('\n')}\n`);
  const socket = TRANSPORT === 'unix' ? join(tmp, 'policy.sock') : undefined;
  const server = await startServe(['--config', config, '--dns', dnsServer, '--policy-listen', '127.0.0.1:0', ...(socket ? ['--policy-socket', socket] : []), '--data-dir', join(tmp, 'data')], {
    nodeArgs: [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...NODE_ARGS],
    entry,
  });
  const target = { host: '127.0.0.1', port: server.port, path: socket };

  const pids = processTree(server.child.pid!);
  let cpu0 = 0;
  let cpu1 = 0;
  let threads0 = new Map() as ReturnType<typeof threadCpuSeconds>;
  let threads1 = threads0;
  let client0 = process.cpuUsage();
  let client = client0;
  const load = await runPolicyLoad({
    ...target,
    connections: CONNECTIONS,
    warmupS: WARMUP_SECONDS,
    seconds: SECONDS,
    next: nextRequest,
    onWindow: (edge) => {
      if (edge === 'start') {
        cpu0 = treeCpuSeconds(pids);
        if (THREADS) threads0 = threadCpuSeconds(pids);
        client0 = process.cpuUsage();
      } else {
        cpu1 = treeCpuSeconds(pids);
        if (THREADS) threads1 = threadCpuSeconds(pids);
        client = process.cpuUsage(client0);
      }
    },
  });
  const elapsed = load.elapsed;
  if (THREADS) for (const line of threadSplit(threads0, threads1, load.sorted.length)) console.log(`  ${line}`);
  const osLoad = os.loadavg()[0];
  writeFileSync("/tmp/serve-stdout.txt", server.stdout());
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
  return {
    decisions: load.sorted.length,
    elapsed,
    rate: load.sorted.length / elapsed,
    sorted: load.sorted,
    serverCpu: (cpu1 - cpu0) / elapsed,
    processes: pids.length,
    clientCpu: (client.user + client.system) / 1e6 / elapsed,
    byKind: load.byKind,
    wrong: load.wrong,
    wrongExamples: load.wrongExamples.map((a) => `answer ${a}`),
    load: osLoad,
  };
}

async function main(): Promise<void> {
  const dns = await startFixtureDns(loadZoneYaml(WORLD));
  const profDir = join(os.tmpdir(), 'frontline-profiles');
  if (PROFILE) mkdirSync(profDir, { recursive: true });
  const entry = serverEntry();
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await measure(dns.server, entry, profDir);
    runs.push(r);
    if (RUNS > 1) console.log(`  run ${i + 1}/${RUNS}: ${Math.round(r.rate).toLocaleString('en-US')} decisions/s, p99 ${percentile(r.sorted, 99).toFixed(2)} ms, load ${r.load.toFixed(2)}`);
  }
  await dns.close();
  const ceiling = await measureCeiling();

  // The median run by rate (the lower middle one for an even count).
  const m = [...runs].sort((a, b) => a.rate - b.rate)[Math.floor((runs.length - 1) / 2)];
  const wrong = runs.reduce((n, r) => n + r.wrong, 0);
  const µs = (cores: number): string => ((cores / m.rate) * 1e6).toFixed(0);
  const rows: Array<[string, string]> = [
    ['decisions', String(m.decisions)],
    ['seconds', m.elapsed.toFixed(1)],
    ['decisions/s', Math.round(m.rate).toLocaleString('en-US')],
    ['p50 latency', `${percentile(m.sorted, 50).toFixed(2)} ms`],
    ['p90 latency', `${percentile(m.sorted, 90).toFixed(2)} ms`],
    ['p99 latency', `${percentile(m.sorted, 99).toFixed(2)} ms`],
    ['max latency', `${m.sorted[m.sorted.length - 1]?.toFixed(2)} ms`],
    ['server CPU', `${(m.serverCpu * 100).toFixed(0)}% of one core in ${m.processes} process${m.processes === 1 ? '' : 'es'} (${µs(m.serverCpu)} µs per decision)`],
    ['client CPU', `${(m.clientCpu * 100).toFixed(0)}% of one core (${µs(m.clientCpu)} µs per decision)`],
    ['load average (1 min)', m.load.toFixed(2)],
    [
      'ceiling: a server that only answers DUNNO',
      `${Math.round(ceiling.rate).toLocaleString('en-US')}/s, p99 ${ceiling.p99.toFixed(2)} ms, ${ceiling.serverUs.toFixed(0)} µs of server CPU per request (bench/lib/null-policy-server.ts, same load and workers)`,
    ],
    ['answers', [...m.byKind].map(([k, v]) => `${k} ${v}`).join(', ')],
    ['wrong answers', String(wrong)],
  ];
  if (runs.length > 1) rows.splice(3, 0, ['decisions/s of each run', runs.map((r) => Math.round(r.rate).toLocaleString('en-US')).join(', ')]);
  const w = Math.max(...rows.map((r) => r[0].length));
  const setting = `workers ${WORKERS}, ${RUNTIME === 'dist' ? 'compiled (npm run build)' : 'from source (tsx)'}, evidence cache ${EVIDENCE_CACHE ? 'on' : 'off'}, ${TRANSPORT === 'unix' ? 'unix socket' : 'TCP on 127.0.0.1'}`;
  console.log(`\npolicy-server: ${CONNECTIONS} connections, ${SECONDS} s after ${WARMUP_SECONDS} s warm-up, default policy, warm DNS cache; ${setting}${RUNS > 1 ? `; median of ${RUNS} runs` : ''}`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  for (const e of runs.flatMap((r) => r.wrongExamples).slice(0, 5)) console.log(`  wrong: ${e}`);
  const pass = m.rate >= 20000 && percentile(m.sorted, 99) < 5 && wrong === 0;
  console.log(`  target (>= 20,000/s, p99 < 5 ms, no wrong answers): ${pass ? 'met' : 'NOT met'}`);
  if (PROFILE) console.log(`  CPU profiles of the server written to ${profDir}`);

  const table = ['| measure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
  // Not for BENCH_README=0, nor for another build (BENCH_ENTRY): its figures are not this tree's.
  // The target is the TCP one; a unix-socket run has a section of its own.
  if (process.env.BENCH_README !== '0' && !process.env.BENCH_ENTRY) updateReadme(
    TRANSPORT === 'unix' ? 'policy-server-unix' : 'policy-server',
    [
      `Command: \`${COMMAND}\` (${CONNECTIONS} connections, ${SECONDS} s measured after ${WARMUP_SECONDS} s warm-up; ${setting}${RUNS > 1 ? `; the median of ${RUNS} runs` : ''}).`,
      `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; target ${pass ? 'met' : 'NOT met'}.`,
      '',
      table,
    ].join('\n'),
  );
  if (wrong > 0) process.exitCode = 1;
}

await main();
