// Firewall sets: how fast the store's bans get into nftables with the real
// `nft`, inside a network namespace of the bench's own. Three figures, each
// the median of BENCH_RUNS (default 3):
//
// - a full reconcile of 100,000 and of 1,000,000 bans (95% IPv4 hosts, 4%
//   IPv6 /64s, 1% IPv4 /24s) into an empty table and into a table already
//   holding them (the steady state every reconcile_s): one `nft -f`
//   transaction each; the reconcile's own work (desired state, script) is
//   shown apart. Targets: 100,000 ≤ 2 s, 1,000,000 ≤ 20 s.
// - a new ban to the kernel: from store.ban() to the exit of the `nft -f`
//   that holds it (the kernel has committed it), for a ban made in the same
//   process and one made by another process on the same SQLite file
//   (`frontline ban add`: the feed polls every 500 ms). Target ≤ 1 s.
//
//   npm run bench -- firewall            (as root; needs nft and ip)
//   BENCH_SIZES=100000 BENCH_README=0 …  smaller, print only

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/core/types.js';
import { desiredState } from '../src/enforce/firewall/desired.js';
import { followChanges } from '../src/enforce/firewall/follower.js';
import { nftBackend, nftFullScript } from '../src/enforce/firewall/nft.js';
import { FirewallReconciler } from '../src/enforce/firewall/reconciler.js';
import { spawnRunner, type CommandRunner } from '../src/enforce/firewall/run.js';
import type { FirewallSource } from '../src/enforce/firewall/source.js';
import { openStore } from '../src/store/index.js';
import { silentLogger } from '../src/store/types.js';
import { updateReadme } from './lib/readme.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_SIZES ?? '100000,1000000').split(',').map(Number);
const TARGET_S: Record<number, number> = { 100_000: 2, 1_000_000: 20 };
const INCREMENTS = 15;
const MIN = { v4: 16, v6: 32 };

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

const ns = `fl-bench-${process.pid}`;
spawnSync('ip', ['netns', 'add', ns]);
const inNs: CommandRunner = (argv, stdin) => spawnRunner(['ip', 'netns', 'exec', ns, ...argv], stdin);
/** One `nft -f`: wall-clock seconds, and the CPU seconds nft itself used (bash's `time`; the machine is shared). */
let lastCpu = 0;
const nft = async (script: string): Promise<number> => {
  const t0 = performance.now();
  const r = await spawnRunner(['bash', '-c', `TIMEFORMAT='cpu %U %S'; time ip netns exec ${ns} nft -f -`], script);
  if (r.code !== 0) throw new Error(`nft: ${r.stderr.slice(0, 300)}`);
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  lastCpu = m ? Number(m[1]) + Number(m[2]) : NaN;
  return (performance.now() - t0) / 1000;
};
const flush = () => nft('add table inet frontline\ndelete table inet frontline\n');

interface FullRow {
  n: number;
  prepS: number;
  emptyS: number;
  replaceS: number;
  emptyCpuS: number;
  replaceCpuS: number;
  scriptMB: number;
  elements: number;
}
const fullRows: FullRow[] = [];
const incRows: Array<{ how: string; medianMs: number; maxMs: number }> = [];
try {
  for (const n of SIZES) {
    const now = Date.now();
    const input = bans(n, now);
    const prep: number[] = [];
    const empty: number[] = [];
    const replace: number[] = [];
    const emptyCpu: number[] = [];
    const replaceCpu: number[] = [];
    let script = '';
    let elements = 0;
    for (let run = 0; run < RUNS; run++) {
      const t0 = performance.now();
      const state = desiredState({ bans: input, allow: ['127.0.0.0/8', '::1', '10.0.0.0/8'], minPrefix: MIN, now: Date.now(), disjointNets: true });
      script = nftFullScript(state, { ports: [], action: 'drop' }, Date.now());
      prep.push((performance.now() - t0) / 1000);
      elements = state.bans.length;
      await flush();
      empty.push(await nft(script));
      emptyCpu.push(lastCpu);
      replace.push(await nft(script));
      replaceCpu.push(lastCpu);
      console.log(
        `${n.toLocaleString('en')} bans, run ${run + 1}: prepare ${prep.at(-1)!.toFixed(2)} s, into an empty table ${empty.at(-1)!.toFixed(2)} s (nft CPU ${emptyCpu.at(-1)!.toFixed(2)} s), replacing a full one ${replace.at(-1)!.toFixed(2)} s (nft CPU ${replaceCpu.at(-1)!.toFixed(2)} s), load ${os.loadavg()[0].toFixed(1)}`,
      );
    }
    const listed = await inNs(['nft', 'list', 'set', 'inet', 'frontline', 'ban4']);
    if (!listed.stdout.includes(input.find((b) => b.cidr.endsWith('/32'))!.cidr.replace('/32', ''))) throw new Error('a ban is missing from the kernel');
    fullRows.push({ n, prepS: median(prep), emptyS: median(empty), replaceS: median(replace), emptyCpuS: median(emptyCpu), replaceCpuS: median(replaceCpu), scriptMB: script.length / 1e6, elements });
    await flush();
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
    load: async () => ({ bans: [...base, ...(await store.listBans({ limit: 100_000 }))], allow: ['127.0.0.0/8', '::1'] }),
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
}

const load = os.loadavg()[0].toFixed(2);
const nftVersion = spawnSync('nft', ['--version'], { encoding: 'utf8' }).stdout.trim();
const table = [
  `Command: \`npm run bench -- firewall\` (root; ${nftVersion}, kernel ${os.release()}, in a network namespace of the bench's own; ${RUNS} runs, medians; load average ${load}).`,
  `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}.`,
  '',
  '| bans | elements | script MB | prepare s | nft -f, empty table s (nft CPU) | nft -f, replacing a full table s (nft CPU) | target |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ...fullRows.map((r) => {
    const target = TARGET_S[r.n];
    const worst = Math.max(r.prepS + r.emptyS, r.prepS + r.replaceS);
    return `| ${r.n.toLocaleString('en')} | ${r.elements.toLocaleString('en')} | ${r.scriptMB.toFixed(1)} | ${r.prepS.toFixed(2)} | ${r.emptyS.toFixed(2)} (${r.emptyCpuS.toFixed(2)}) | ${r.replaceS.toFixed(2)} (${r.replaceCpuS.toFixed(2)}) | ${target ? `≤ ${target} s: ${worst <= target ? 'met' : 'NOT met'} (prepare + nft ${worst.toFixed(2)} s)` : ''} |`;
  }),
  '',
  '| a new ban to the kernel | median ms | max ms | target |',
  '| --- | ---: | ---: | --- |',
  ...incRows.map((r) => `| ${r.how} | ${r.medianMs.toFixed(0)} | ${r.maxMs.toFixed(0)} | ≤ 1,000 ms: ${r.maxMs <= 1000 ? 'met' : 'NOT met'} |`),
].join('\n');
console.log(`\n${table}`);
if (process.env.BENCH_README !== '0' && SIZES.join() === '100000,1000000') updateReadme('firewall', table);
