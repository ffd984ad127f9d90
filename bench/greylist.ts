// Greylisting decisions per second over the Postfix policy protocol, with
// the state on SQLite and on Redis (target ≥ 15,000/s; postgrey, from
// Debian, answered about 1,300/s on the same kind of machine).
//
// `frontline serve` runs as its own process with a policy of one rule —
// greylist=fail → defer — so the figure is greylisting's, as postgrey's is:
// SPF for the key (warm DNS cache), one triplet read and one write in the
// store, the decision log written to the store and to the JSON log
// (/dev/null). Auto-allow is off, so every decision takes the full triplet
// path. This process plays Postfix: 16 connections, one RCPT request at a
// time each, every request a new message. The requests cycle through
// BENCH_TRIPLETS (50,000) envelopes: half from hosts of an SPF-authorised
// pool with VERP-style senders (list-123@pool.test: keyed on the SPF domain
// and the normalised sender list-#, so they recur and pass after the 1 s
// delay), half from 4,096 other /24s with distinct senders (keyed on the
// subnet; mostly first attempts, deferred).
//
//   npm run bench -- greylist
//   node --import tsx bench/greylist.ts
//   BENCH_SECONDS=20 BENCH_BACKENDS=sqlite …   (sqlite, redis or both: sqlite,redis)
//   BENCH_WORKERS=1 …  frontline serve with `workers: 1` (default 2: one policy engine per core)
//   BENCH_RUNTIME=tsx … run the server from source (default: compiled, `npm run build`, as shipped)
//   BENCH_README=0 …   print only, leave bench/README.md alone
//   BENCH_PROFILE=1 …  also writes a CPU profile of the server (node --cpu-prof) to $TMPDIR/frontline-profiles/

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadZoneYaml, startFixtureDns } from '../test/helpers/fixture-dns.js';
import { startServe } from '../test/helpers/cli.js';
import { rcptRequest } from '../test/helpers/policy-client.js';
import { encodeAttributes, runPolicyLoad } from './lib/policy-load.js';
import { startRedis } from '../test/helpers/redis-server.js';
import { updateReadme } from './lib/readme.js';
import { RUNTIME, serverEntry } from './lib/build.js';
import { cpuSeconds, percentile, processTree, threadCpuSeconds, threadSplit, treeCpuSeconds } from './lib/process-stats.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
/** BENCH_THREADS=1: print each server process's CPU per decision by thread (main thread user/kernel, other threads). */
const THREADS = process.env.BENCH_THREADS === '1';
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const TRIPLETS = Number(process.env.BENCH_TRIPLETS ?? 50_000);
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'sqlite,redis').split(',').map((b) => b.trim()) as Array<'sqlite' | 'redis'>;
/** bench/README.md is rewritten unless BENCH_README=0, or BENCH_ENTRY measures another build (its figures are not this tree's). */
const README = process.env.BENCH_README !== '0' && !process.env.BENCH_ENTRY;
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const PROFILE = process.env.BENCH_PROFILE === '1';
const PROFILE_DIR = join(os.tmpdir(), 'frontline-profiles');
const TARGET = 15_000;
const POSTGREY = 1_300;
const WORLD = fileURLToPath(new URL('../test/fixtures/greylist-world.yaml', import.meta.url));
const COMMAND = 'npm run bench -- greylist';

/** Triplet i: its client, sender and recipient. */
function triplet(i: number): Record<string, string> {
  const t = i % TRIPLETS;
  if (t % 2 === 0) {
    // A host of pool.test's SPF pool (192.0.2.0/24, 198.51.100.0/24): keyed on spf:pool.test.
    const host = (t >> 1) % 254;
    return { client_address: `${t % 4 === 0 ? '192.0.2' : '198.51.100'}.${host + 1}`, helo_name: 'out.pool.test', sender: `list-${(t >> 2) % 500}@pool.test`, recipient: `user${t % 997}@dest.test` };
  }
  // Elsewhere, no SPF: keyed on the client's /24 (198.18.0.0/15, the benchmarking range).
  const n = (t >> 1) % 4096;
  return { client_address: `198.${18 + (n >> 11)}.${(n >> 3) & 255}.${(n & 7) + 1}`, helo_name: 'mail.small.test', sender: `info${t % 300}@small.test`, recipient: `user${t % 997}@dest.test` };
}

interface Result {
  backend: string;
  decisions: number;
  rate: number;
  p50: number;
  p99: number;
  serverCpu: number;
  redisCpu?: number;
  /** This process (the 16 Postfix stand-ins). */
  clientCpu: number;
  deferred: number;
  passed: number;
  wrong: number;
  examples: string[];
}

async function run(backend: 'sqlite' | 'redis', dnsServer: string, entry: string[] | undefined): Promise<Result> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'frontline-bench-grey-'));
  const redis = backend === 'redis' ? await startRedis() : undefined;
  if (backend === 'redis' && !redis) throw new Error('redis-server not found: install it (apt-get install redis-server) or set BENCH_BACKENDS=sqlite');
  const store = redis ? `store: { backend: redis, redis: { url: "${redis.url}" } }` : 'store: { backend: sqlite }';
  const config = join(tmp, 'bench.yaml');
  writeFileSync(
    config,
    [
      'log: { level: info, file: /dev/null }',
      `workers: ${WORKERS}`,
      'headers: { authserv_id: mx.bench.test, authentication_results: false, checks: {} }',
      store,
      'greylist: { enabled: true, delay_s: 1, auto_allow_after: 0 }',
      'policy:',
      '  rules:',
      '    - { name: greylist, if: greylist=fail, action: defer, text: "Greylisted, try again in {evidence.greylist.secondsLeft} seconds" }',
      '',
    ].join('\n'),
  );
  if (PROFILE) mkdirSync(PROFILE_DIR, { recursive: true });
  const server = await startServe(['--config', config, '--dns', dnsServer, '--policy-listen', '127.0.0.1:0', '--data-dir', join(tmp, 'data')], {
    nodeArgs: PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [],
    entry,
  });
  const pid = server.child.pid!;
  const redisPid = redis ? findRedisPid(redis.port) : undefined;
  const fixed = encodeAttributes(
    (({ instance: _i, recipient: _r, client_port: _p, client_address: _a, helo_name: _h, sender: _s, ...rest }) => rest)(rcptRequest()) as Record<string, string>,
  );
  const GREY = /^450 4\.7\.1 Greylisted, try again in \d+ seconds$/;
  const tree = processTree(pid);
  let cpu0 = 0;
  let cpu1 = 0;
  let threads0 = new Map() as ReturnType<typeof threadCpuSeconds>;
  let threads1 = threads0;
  let rcpu0 = NaN;
  let rcpu1 = NaN;
  let selfCpu0 = process.cpuUsage();
  let selfCpu = selfCpu0;
  const load = await runPolicyLoad({
    host: '127.0.0.1',
    port: server.port,
    connections: CONNECTIONS,
    warmupS: WARMUP_SECONDS,
    seconds: SECONDS,
    next: (n, id) => {
      const t = triplet(n);
      return {
        wire: `${fixed}client_address=${t.client_address}\nhelo_name=${t.helo_name}\nsender=${t.sender}\nrecipient=${t.recipient}\ninstance=${id}.${n}.grey\nclient_port=${10000 + (n % 50000)}\n\n`,
        ok: (action) => action === 'DUNNO' || GREY.test(action),
      };
    },
    onWindow: (edge) => {
      if (edge === 'start') {
        cpu0 = treeCpuSeconds(tree);
        if (THREADS) threads0 = threadCpuSeconds(tree);
        selfCpu0 = process.cpuUsage();
        rcpu0 = redisPid ? cpuSeconds(redisPid) : NaN;
      } else {
        cpu1 = treeCpuSeconds(tree);
        if (THREADS) threads1 = threadCpuSeconds(tree);
        selfCpu = process.cpuUsage(selfCpu0);
        rcpu1 = redisPid ? cpuSeconds(redisPid) : NaN;
      }
    },
  });
  const elapsed = load.elapsed;
  if (THREADS) for (const line of threadSplit(threads0, threads1, load.sorted.length)) console.log(`  ${backend}: ${line}`);
  let deferred = 0;
  let passed = 0;
  for (const [action, n] of load.answers) {
    if (action === 'DUNNO') passed += n;
    else if (GREY.test(action)) deferred += n;
  }
  await server.stop();
  await redis?.close();
  rmSync(tmp, { recursive: true, force: true });

  const sorted = load.sorted;
  return {
    backend,
    decisions: sorted.length,
    rate: sorted.length / elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    serverCpu: (cpu1 - cpu0) / elapsed,
    redisCpu: redisPid ? (rcpu1 - rcpu0) / elapsed : undefined,
    clientCpu: (selfCpu.user + selfCpu.system) / 1e6 / elapsed,
    deferred,
    passed,
    wrong: load.wrong,
    examples: load.wrongExamples,
  };
}

/** The pid of the redis-server listening on `port` (for its CPU figure), from /proc. */
function findRedisPid(port: number): number | undefined {
  for (const d of readdirSafe('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes('redis-server') && (cmd.includes(`:${port}`) || cmd.split('\0').includes(String(port)))) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  const dns = await startFixtureDns(loadZoneYaml(WORLD));
  const results: Result[] = [];
  try {
    const entry = serverEntry();
    for (const b of BACKENDS) results.push(await run(b, dns.server, entry));
  } finally {
    await dns.close();
  }
  console.log(`\ngreylist: ${CONNECTIONS} connections, ${SECONDS} s after ${WARMUP_SECONDS} s warm-up, ${TRIPLETS.toLocaleString('en-US')} triplets, delay 1 s, ${WORKERS} worker(s), ${RUNTIME === 'dist' ? 'compiled' : 'from source (tsx)'}`);
  const rows = results.map((r) => [
    r.backend,
    Math.round(r.rate).toLocaleString('en-US'),
    `${r.p50.toFixed(2)} ms`,
    `${r.p99.toFixed(2)} ms`,
    `${(r.serverCpu * 100).toFixed(0)}%${r.redisCpu !== undefined ? ` + redis ${(r.redisCpu * 100).toFixed(0)}%` : ''}`,
    `${(r.clientCpu * 100).toFixed(0)}%`,
    `${((r.serverCpu / r.rate) * 1e6).toFixed(0)} µs`,
    `${r.deferred.toLocaleString('en-US')} / ${r.passed.toLocaleString('en-US')}`,
    String(r.wrong),
  ]);
  const head = ['store', 'decisions/s', 'p50', 'p99', 'server CPU', 'client CPU', 'server CPU/decision', 'deferred / passed', 'wrong'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) console.log(`  ${r.map((c, i) => c.padEnd(w[i])).join('  ')}`);
  for (const r of results) for (const e of r.examples) console.log(`  wrong (${r.backend}): ${e}`);
  const met = results.every((r) => r.rate >= TARGET && r.wrong === 0);
  console.log(`  target (>= ${TARGET.toLocaleString('en-US')}/s on each store, no wrong answers; postgrey ~${POSTGREY.toLocaleString('en-US')}/s): ${met ? 'met' : 'NOT met'}`);

  if (README) {
    const table = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
    updateReadme(
      'greylist',
      [
        `Command: \`${COMMAND}\` (${CONNECTIONS} connections, ${SECONDS} s measured after ${WARMUP_SECONDS} s warm-up, ${TRIPLETS.toLocaleString('en-US')} triplets cycling, delay 1 s, auto-allow off, ${WORKERS} worker process${WORKERS === 1 ? '' : 'es'}, ${RUNTIME === 'dist' ? 'compiled (npm run build)' : 'from source (tsx)'}).`,
        `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; target (≥ ${TARGET.toLocaleString('en-US')}/s; postgrey ~${POSTGREY.toLocaleString('en-US')}/s) ${met ? 'met' : 'NOT met'}.`,
        '',
        table,
      ].join('\n'),
    );
  }
  if (results.some((r) => r.wrong > 0)) process.exitCode = 1;
}

await main();
