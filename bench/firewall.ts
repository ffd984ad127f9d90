// Firewall sets: how fast the store's bans get into nftables with the real
// `nft`, inside a network namespace of the bench's own. Each figure is the
// median of BENCH_RUNS (default 3), with the load average of each run:
//
// - a full reconcile of 100,000 and of 1,000,000 bans (95% IPv4 hosts, 4%
//   IPv6 /64s, 1% IPv4 /24s) held in a SQLite store, as the reconciler does
//   it: the store read and the desired state (storeSource + readDesired),
//   the script (nftFullScript), then one `nft -f` transaction into an empty
//   table and one replacing a table that already holds them (the steady state
//   every reconcile_s). frontline's part and nft's are timed apart, each in
//   wall-clock and CPU seconds: the machine is shared, and CPU time is what
//   the load does not inflate. Targets: 100,000 ≤ 2 s, 1,000,000 ≤ 20 s.
// - the same bans through `ipset restore` (ipsetFullScript, sets swapped in),
//   for comparison; BENCH_IPSET=0 leaves it out.
// - a new ban to the kernel: from store.ban() to the exit of the `nft -f`
//   that holds it (the kernel has committed it), for a ban made in the same
//   process and one made by another process on the same SQLite file
//   (`frontline ban add`: the feed polls every 500 ms). Target ≤ 1 s.
//
// The store's rows are written straight into its SQLite table (the schema the
// store made): a million store.ban() calls would take the bench's time, and
// the reconcile reads the table, not how rows got there.
//
//   npm run bench -- firewall            (as root; needs nft and ip; ipset optional)
//   BENCH_SIZES=100000 BENCH_README=0 …  smaller, print only

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/core/types.js';
import { followChanges } from '../src/enforce/firewall/follower.js';
import { ipsetFullScript } from '../src/enforce/firewall/ipset.js';
import { nftBackend, nftFullScript } from '../src/enforce/firewall/nft.js';
import { FirewallReconciler } from '../src/enforce/firewall/reconciler.js';
import { spawnRunner, type CommandRunner } from '../src/enforce/firewall/run.js';
import { readDesired, storeSource, type FirewallSource } from '../src/enforce/firewall/source.js';
import { banCount } from '../src/enforce/firewall/desired.js';
import { openStore } from '../src/store/index.js';
import type { SqliteStore } from '../src/store/sqlite/store.js';
import { silentLogger } from '../src/store/types.js';
import { updateReadme } from './lib/readme.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_SIZES ?? '100000,1000000').split(',').map(Number);
const TARGET_S: Record<number, number> = { 100_000: 2, 1_000_000: 20 };
const INCREMENTS = 15;
const MIN = { v4: 16, v6: 32 };
const ALLOW = ['127.0.0.0/8', '::1', '10.0.0.0/8'];
const WITH_IPSET = process.env.BENCH_IPSET !== '0' && spawnSync('ipset', ['version']).status === 0;

if (process.getuid?.() !== 0 || spawnSync('nft', ['--version']).status !== 0) {
  console.error('bench firewall: needs root and nft (apt-get install nftables)');
  process.exit(1);
}

let seed = 20261207;
function rand(n: number): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) % n;
}

/** n distinct bans, as a busy server's store holds them. */
function bans(n: number, now: number): Array<{ cidr: string; expiresAt: number }> {
  const out: Array<{ cidr: string; expiresAt: number }> = [];
  const seen = new Set<string>();
  while (out.length < n) {
    const k = rand(100);
    // Hosts from 11.0.0.0 up, /24s from 100.x (apart, so none lies inside another).
    const cidr =
      k < 95
        ? `${11 + rand(80)}.${rand(256)}.${rand(256)}.${1 + rand(254)}/32`
        : k < 99
          ? `2001:db8:${rand(65536).toString(16)}:${rand(65536).toString(16)}::/64`
          : `${100 + rand(20)}.${rand(256)}.${rand(256)}.0/24`;
    if (seen.has(cidr)) continue;
    seen.add(cidr);
    out.push({ cidr, expiresAt: now + (3600 + rand(30 * 86400)) * 1000 });
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cpuS = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};
const load1 = () => os.loadavg()[0];

const ns = `fl-bench-${process.pid}`;
spawnSync('ip', ['netns', 'add', ns]);
const inNs: CommandRunner = (argv, stdin) => spawnRunner(['ip', 'netns', 'exec', ns, ...argv], stdin);
/** One tool run in the namespace, its script on stdin: wall-clock seconds, and the CPU seconds the tool itself used (bash's `time`). */
let lastCpu = 0;
const inNsTimed = async (argv: string[], script: string): Promise<number> => {
  const t0 = performance.now();
  const r = await spawnRunner(['bash', '-c', `TIMEFORMAT='cpu %U %S'; time ip netns exec ${ns} ${argv.join(' ')}`], script);
  if (r.code !== 0) throw new Error(`${argv[0]}: ${r.stderr.slice(0, 300)}`);
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  lastCpu = m ? Number(m[1]) + Number(m[2]) : NaN;
  return (performance.now() - t0) / 1000;
};
const nft = (script: string) => inNsTimed(['nft', '-f', '-'], script);
const flush = () => nft('add table inet frontline\ndelete table inet frontline\n');
const ipsetFlush = () => inNsTimed(['bash', '-c', "'for s in ban4 ban6 allow4 allow6; do ipset -q destroy frontline-$s; done; true'"], '');

/** A SQLite store holding `input`, rows written as the store writes them. */
async function storeWith(dir: string, input: Array<{ cidr: string; expiresAt: number }>) {
  const store = (await openStore({ backend: 'sqlite', path: join(dir, `bans-${input.length}.db`), pollMs: 0 }, { purgeIntervalSeconds: 0, ownAddresses: [] })) as SqliteStore;
  const put = store.database.prepare('INSERT INTO bans (cidr, reason, category, source, first_seen, created_at, expires_at, offences) VALUES (?, ?, ?, ?, ?, ?, ?, 1)');
  const now = Date.now();
  store.database.transaction(() => {
    for (const b of input) put.run(b.cidr, 'smtp auth brute force: 12 failures in 10 min', 'brute-force', 'logwatch:postfix', now, now, b.expiresAt);
  })();
  return store;
}

interface Timed {
  wall: number;
  cpu: number;
}
interface FullRow {
  n: number;
  elements: number;
  scriptMB: number;
  read: Timed;
  script: Timed;
  empty: Timed;
  replace: Timed;
  load: string;
}
interface IpsetRow {
  n: number;
  scriptMB: number;
  prep: Timed;
  empty: Timed;
  replace: Timed;
  load: string;
}
const fullRows: FullRow[] = [];
const ipsetRows: IpsetRow[] = [];
const incRows: Array<{ how: string; medianMs: number; maxMs: number }> = [];
const medianTimed = (xs: Timed[]): Timed => ({ wall: median(xs.map((x) => x.wall)), cpu: median(xs.map((x) => x.cpu)) });
const loadRange = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
const f2 = (t: Timed) => `${t.wall.toFixed(2)} (${t.cpu.toFixed(2)})`;

const dataDir = mkdtempSync(join(tmpdir(), 'fl-bench-fw-'));
try {
  for (const n of SIZES) {
    const input = bans(n, Date.now());
    const store = await storeWith(dataDir, input);
    const source = storeSource(store, { staticAllow: ALLOW, allowLists: [], minPrefix: MIN });
    const read: Timed[] = [];
    const scriptT: Timed[] = [];
    const empty: Timed[] = [];
    const replace: Timed[] = [];
    const loads: number[] = [];
    let script = '';
    let elements = 0;
    for (let run = 0; run < RUNS; run++) {
      loads.push(load1());
      script = '';
      let t0 = performance.now();
      let c0 = cpuS();
      const state = await readDesired(source, Date.now(), true);
      read.push({ wall: (performance.now() - t0) / 1000, cpu: cpuS() - c0 });
      t0 = performance.now();
      c0 = cpuS();
      script = nftFullScript(state, { ports: [], action: 'drop' }, Date.now());
      scriptT.push({ wall: (performance.now() - t0) / 1000, cpu: cpuS() - c0 });
      elements = banCount(state);
      await flush();
      empty.push({ wall: await nft(script), cpu: lastCpu });
      replace.push({ wall: await nft(script), cpu: lastCpu });
      const ours = read.at(-1)!.cpu + scriptT.at(-1)!.cpu;
      console.log(
        `${n.toLocaleString('en')} bans, run ${run + 1} (load ${loads.at(-1)!.toFixed(1)}): store read + desired ${f2(read.at(-1)!)} s, script ${f2(scriptT.at(-1)!)} s [frontline CPU ${ours.toFixed(2)} s]; nft -f into an empty table ${f2(empty.at(-1)!)} s, replacing a full one ${f2(replace.at(-1)!)} s (wall (CPU))`,
      );
    }
    const listed = await inNs(['nft', 'list', 'set', 'inet', 'frontline', 'ban4']);
    if (!listed.stdout.includes(input.find((b) => b.cidr.endsWith('/32'))!.cidr.replace('/32', ''))) throw new Error('a ban is missing from the kernel');
    fullRows.push({ n, elements, scriptMB: script.length / 1e6, read: medianTimed(read), script: medianTimed(scriptT), empty: medianTimed(empty), replace: medianTimed(replace), load: loadRange(loads) });
    script = '';
    await flush();

    if (WITH_IPSET) {
      const prep: Timed[] = [];
      const iEmpty: Timed[] = [];
      const iReplace: Timed[] = [];
      const iLoads: number[] = [];
      let text = '';
      for (let run = 0; run < RUNS; run++) {
        iLoads.push(load1());
        text = '';
        const t0 = performance.now();
        const c0 = cpuS();
        const state = await readDesired(source, Date.now(), false);
        text = ipsetFullScript(state, Date.now());
        prep.push({ wall: (performance.now() - t0) / 1000, cpu: cpuS() - c0 });
        await ipsetFlush();
        iEmpty.push({ wall: await inNsTimed(['ipset', '-exist', 'restore'], text), cpu: lastCpu });
        iReplace.push({ wall: await inNsTimed(['ipset', '-exist', 'restore'], text), cpu: lastCpu });
        console.log(`${n.toLocaleString('en')} bans, ipset run ${run + 1} (load ${iLoads.at(-1)!.toFixed(1)}): prepare ${f2(prep.at(-1)!)} s; ipset restore into empty sets ${f2(iEmpty.at(-1)!)} s, replacing full ones ${f2(iReplace.at(-1)!)} s`);
      }
      ipsetRows.push({ n, scriptMB: text.length / 1e6, prep: medianTimed(prep), empty: medianTimed(iEmpty), replace: medianTimed(iReplace), load: loadRange(iLoads) });
      await ipsetFlush();
    }
    await store.close();
  }

  // A new ban to the kernel, with 100,000 bans already in the table.
  const dir = mkdtempSync(join(tmpdir(), 'fl-bench-fw-'));
  const path = join(dir, 'state.db');
  const store = await openStore({ backend: 'sqlite', path }, { purgeIntervalSeconds: 0, ownAddresses: [] });
  const other = await openStore({ backend: 'sqlite', path, pollMs: 0 }, { purgeIntervalSeconds: 0, ownAddresses: [] });
  const base = bans(100_000, Date.now());
  const source: FirewallSource = {
    minPrefix: MIN,
    allowLists: [],
    allow: async () => ['127.0.0.0/8', '::1'],
    async bans(onPage) {
      onPage(
        base.map((b) => b.cidr),
        base.map((b) => b.expiresAt),
      );
      await store.scanBans(onPage);
    },
  };
  const committed = new Map<string, number>();
  const run: CommandRunner = async (argv, stdin) => {
    const r = await inNs(argv, stdin);
    const at = performance.now();
    for (const m of (stdin ?? '').matchAll(/ban4 \{ (\d+\.\d+\.\d+\.\d+) timeout/g)) if (!committed.has(m[1])) committed.set(m[1], at);
    return r;
  };
  const rec = new FirewallReconciler({ backend: nftBackend(), rules: { ports: [], action: 'drop' }, source, reconcileS: 3600, run, clock: systemClock, logger: silentLogger });
  const unfollow = followChanges(store, rec);
  await rec.start();
  for (const [how, s] of [
    ['same process (store.ban)', store],
    ['another process on the SQLite file (frontline ban add; feed polled every 500 ms)', other],
  ] as const) {
    const lat: number[] = [];
    for (let i = 0; i < INCREMENTS; i++) {
      const ip = `198.18.${how.startsWith('same') ? 1 : 2}.${i + 1}`;
      const t0 = performance.now();
      await s.ban({ cidr: ip, reason: 'bench', category: 'manual', source: 'bench', durationSeconds: 3600 });
      while (!committed.has(ip)) {
        if (performance.now() - t0 > 10_000) throw new Error(`${ip} not in the kernel after 10 s`);
        await new Promise((r) => setTimeout(r, 2));
      }
      lat.push(committed.get(ip)! - t0);
      await new Promise((r) => setTimeout(r, 100 + rand(400)));
    }
    incRows.push({ how, medianMs: median(lat), maxMs: Math.max(...lat) });
    console.log(`new ban to kernel, ${how}: median ${median(lat).toFixed(0)} ms, max ${Math.max(...lat).toFixed(0)} ms (${INCREMENTS} bans)`);
  }
  unfollow();
  await rec.stop();
  await other.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
} finally {
  spawnSync('ip', ['netns', 'del', ns]);
  rmSync(dataDir, { recursive: true, force: true });
}

const nftVersion = spawnSync('nft', ['--version'], { encoding: 'utf8' }).stdout.trim();
const ipsetVersion = WITH_IPSET ? spawnSync('ipset', ['version'], { encoding: 'utf8' }).stdout.trim().split('\n')[0] : '';
const table = [
  `Command: \`npm run bench -- firewall\` (root; ${nftVersion}${ipsetVersion ? `, ${ipsetVersion}` : ''}, kernel ${os.release()}, in a network namespace of the bench's own; ${RUNS} runs each, medians).`,
  `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}; load average (1 min) at the start of each run in the last column.`,
  'Each time is wall clock, then CPU seconds in brackets: frontline\'s own (the Node process: reading the SQLite store, the desired state, the script) and nft\'s (its user + system time, which includes the kernel\'s work on the transaction).',
  '',
  '| bans | elements | script MB | store read + desired s | script s | nft -f, empty table s | nft -f, replacing a full table s | target: frontline + nft | load |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ...fullRows.map((r) => {
    const target = TARGET_S[r.n];
    const wall = r.read.wall + r.script.wall + Math.max(r.empty.wall, r.replace.wall);
    const cpu = r.read.cpu + r.script.cpu + Math.max(r.empty.cpu, r.replace.cpu);
    const verdict = target ? `≤ ${target} s: wall ${wall.toFixed(1)} s ${wall <= target ? 'met' : 'NOT met'}; CPU ${cpu.toFixed(1)} s ${cpu <= target ? 'met' : 'NOT met'}` : '';
    return `| ${r.n.toLocaleString('en')} | ${r.elements.toLocaleString('en')} | ${r.scriptMB.toFixed(1)} | ${f2(r.read)} | ${f2(r.script)} | ${f2(r.empty)} | ${f2(r.replace)} | ${verdict} | ${r.load} |`;
  }),
  ...(ipsetRows.length === 0
    ? []
    : [
        '',
        'The same stores through `ipset restore` (no target; hash:net sets refilled through temporary sets and swapped in):',
        '',
        '| bans | script MB | store read + desired + script s | ipset restore, empty sets s | ipset restore, replacing full sets s | load |',
        '| ---: | ---: | ---: | ---: | ---: | --- |',
        ...ipsetRows.map((r) => `| ${r.n.toLocaleString('en')} | ${r.scriptMB.toFixed(1)} | ${f2(r.prep)} | ${f2(r.empty)} | ${f2(r.replace)} | ${r.load} |`),
      ]),
  '',
  `| a new ban to the kernel (100,000 in the table; load ${os.loadavg()[0].toFixed(1)} at the end) | median ms | max ms | target |`,
  '| --- | ---: | ---: | --- |',
  ...incRows.map((r) => `| ${r.how} | ${r.medianMs.toFixed(0)} | ${r.maxMs.toFixed(0)} | ≤ 1,000 ms: ${r.maxMs <= 1000 ? 'met' : 'NOT met'} |`),
].join('\n');
console.log(`\n${table}`);
if (process.env.BENCH_README !== '0' && SIZES.join() === '100000,1000000') updateReadme('firewall', table);
