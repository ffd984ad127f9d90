// List and ban lookups per second, and their memory, with 1,000,000 banned
// hosts and 100,000 listed CIDRs (targets: ≥ 2,000,000 lookups/s, < 250 MB).
//
//   npm run bench -- store-lookup
//   node --import tsx bench/store-lookup.ts
//   BENCH_HOSTS=1000000 BENCH_CIDRS=100000 BENCH_SQLITE=0 …   (BENCH_SQLITE=0 skips the load-from-SQLite part)
//   BENCH_README=0 …   print only, leave bench/README.md alone
//
// Lookups take IP text, as the policy gets it from Postfix, so parsing is
// part of the cost. "cold" inputs are 1,000,000 distinct strings (every
// lookup misses the CPU caches for its string); "warm" inputs cycle through
// 4,096 (a busy server sees the same clients again and again).

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { IpTrie } from '../src/store/ip-trie.js';
import { formatV4, maskV4 as maskTo } from '../src/store/ip.js';
import { MemoryIndex } from '../src/store/memory-index.js';
import { SqliteStore } from '../src/store/sqlite/store.js';
import { updateReadme } from './lib/readme.js';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 1_000_000);
const CIDRS = Number(process.env.BENCH_CIDRS ?? 100_000);
const LOOKUPS = Number(process.env.BENCH_LOOKUPS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SQLITE = process.env.BENCH_SQLITE !== '0';
const README = process.env.BENCH_README !== '0';
const COMMAND = 'npm run bench -- store-lookup';
const TARGET_RATE = 2_000_000;
const TARGET_MB = 250;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function settle(): NodeJS.MemoryUsage {
  gc();
  gc();
  return process.memoryUsage();
}

/**
 * Best of ROUNDS passes over `inputs`: lookups per wall-clock second and per
 * second of this process's CPU time (the fairer figure when other work
 * shares the machine), and how many matched.
 */
function measure(inputs: string[], count: number, fn: (ip: string) => boolean): { rate: number; cpuRate: number; hits: number } {
  let best = 0;
  let bestCpu = 0;
  let hits = 0;
  const mask = inputs.length - 1;
  const pow2 = (inputs.length & mask) === 0;
  for (let r = 0; r < ROUNDS; r++) {
    let h = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    if (pow2) for (let i = 0; i < count; i++) h += fn(inputs[i & mask]) ? 1 : 0;
    else for (let i = 0; i < count; i++) h += fn(inputs[i % inputs.length]) ? 1 : 0;
    const rate = count / ((performance.now() - t0) / 1000);
    const cpu = process.cpuUsage(c0);
    const cpuRate = count / ((cpu.user + cpu.system) / 1e6);
    if (rate > best) best = rate;
    if (cpuRate > bestCpu) bestCpu = cpuRate;
    hits = h;
  }
  return { rate: best, cpuRate: bestCpu, hits };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const rows: Array<[string, string]> = [];
const rand = prng(20261122);

// ---- build
const base = settle();
const now = Date.now();
const expiry = now + 86_400_000;
const bannedSample: string[] = [];
const index = new MemoryIndex({ now: () => now });
index.bans.reserve(HOSTS, 0);
const t0 = performance.now();
for (let i = 0; i < HOSTS; i++) {
  const ip = formatV4(rand());
  index.setBan(ip, expiry);
  if (i % 10 === 0) bannedSample.push(ip);
}
for (let i = 0; i < CIDRS; i++) {
  const len = 16 + (rand() % 13);
  index.listAdd('blocklist', 'ip', `${formatV4(maskTo(rand(), len))}/${len}`);
}
const buildMs = performance.now() - t0;
const built = settle();
const stats = index.stats();
rows.push(['entries', `${fmt(stats.bans)} banned hosts (/32) + ${fmt(stats.lists.blocklist)} listed CIDRs (/16–/28)`]);
rows.push(['build time', `${(buildMs / 1000).toFixed(2)} s (${fmt((HOSTS + CIDRS) / (buildMs / 1000))} inserts/s)`]);
rows.push(['typed arrays', mb(stats.trieBytes)]);
rows.push(['memory added by the index', `RSS +${mb(built.rss - base.rss)}, heap +${mb(built.heapUsed - base.heapUsed)}, external +${mb(built.arrayBuffers - base.arrayBuffers)}`]);
rows.push(['process RSS with the index', mb(built.rss)]);

// ---- lookups
const cold: string[] = [];
for (let i = 0; i < LOOKUPS; i++) cold.push(i % 10 === 0 ? bannedSample[(i / 10) % bannedSample.length] : formatV4(rand()));
const warm = cold.slice(0, 4096);
// One trie with everything, the structure on its own.
const all = new IpTrie();
all.reserve(HOSTS, CIDRS);
for (const e of index.bans.entries()) all.insert(e.cidr, 1);
for (let i = 0; i < CIDRS; i++) all.insert(`${formatV4(rand())}/${16 + (rand() % 13)}`, 1);

const results: Array<[string, { rate: number; cpuRate: number; hits: number }, number]> = [];
const run = (name: string, inputs: string[], fn: (ip: string) => boolean) => {
  const r = measure(inputs, LOOKUPS, fn);
  results.push([name, r, inputs.length]);
  console.log(`  ${name.padEnd(52)} ${fmt(r.rate).padStart(11)} /s wall ${fmt(r.cpuRate).padStart(11)} /s CPU  (${((r.hits / LOOKUPS) * 100).toFixed(1)}% matched)`);
};
const load = os.loadavg()[0].toFixed(2);
console.log(`store lookups: ${fmt(HOSTS)} hosts + ${fmt(CIDRS)} CIDRs, ${fmt(LOOKUPS)} lookups × best of ${ROUNDS} (load average ${load} on ${os.cpus().length} CPUs)`);
run('IpTrie.has (all 1.1M prefixes in one trie), cold', cold, (ip) => all.has(ip));
run('IpTrie.has, warm', warm, (ip) => all.has(ip));
run('ban check (index.isBanned, expiry-aware), cold', cold, (ip) => index.isBanned(ip));
run('ban check, warm', warm, (ip) => index.isBanned(ip));
run('list check (index.listHas blocklist), cold', cold, (ip) => index.listHas('blocklist', ip));
run('ban + list check (both, as a policy does), cold', cold, (ip) => index.isBanned(ip) || index.listHas('blocklist', ip));
run('ban + list check, warm', warm, (ip) => index.isBanned(ip) || index.listHas('blocklist', ip));
for (const [name, r] of results) {
  rows.push([name, `${fmt(r.rate)} lookups/s wall, ${fmt(r.cpuRate)} per CPU-second (${((r.hits / LOOKUPS) * 100).toFixed(1)}% matched)`]);
}

// ---- the same from SQLite: bulk-load the tables, then time opening a store (index load)
if (SQLITE) {
  const dir = mkdtempSync(join(os.tmpdir(), 'fl-bench-'));
  try {
    const path = join(dir, 'bench.db');
    const seed = await SqliteStore.open({ backend: 'sqlite', path, pollMs: 0 }, { purgeIntervalSeconds: 0 });
    const db = seed.database;
    const t1 = performance.now();
    db.transaction(() => {
      const ban = db.prepare(
        "INSERT OR REPLACE INTO bans (cidr, reason, category, source, first_seen, created_at, expires_at, offences) VALUES (?, 'bench', 'probe', 'bench', ?, ?, ?, 1)",
      );
      for (const e of index.bans.entries()) ban.run(e.cidr, now, now, expiry);
      db.prepare("INSERT INTO lists (name, kind) VALUES ('blocklist', 'ip')").run();
      const entry = db.prepare("INSERT OR REPLACE INTO list_entries (list, entry, source, added_at, expires_at) VALUES ('blocklist', ?, 'bench', ?, NULL)");
      for (let i = 0; i < CIDRS; i++) entry.run(`${formatV4(maskTo(rand(), 16))}/16`, now);
    })();
    const fillMs = performance.now() - t1;
    await seed.close();
    const before = settle();
    const t2 = performance.now();
    const store = await SqliteStore.open({ backend: 'sqlite', path, pollMs: 0 }, { purgeIntervalSeconds: 0 });
    const openMs = performance.now() - t2;
    const after = settle();
    const r = measure(cold, LOOKUPS, (ip) => store.lookup.bannedBy(ip) !== undefined);
    const t3 = performance.now();
    let found = 0;
    for (let i = 0; i < 20_000; i++) if (await store.getBan(cold[i])) found++;
    const getBanRate = 20_000 / ((performance.now() - t3) / 1000);
    await store.close();
    console.log(`  sqlite: filled in ${(fillMs / 1000).toFixed(1)} s; open + index load ${(openMs / 1000).toFixed(2)} s, RSS +${mb(after.rss - before.rss)}`);
    console.log(`  sqlite store: lookup.bannedBy ${fmt(r.rate)}/s; await getBan ${fmt(getBanRate)}/s (${found} hits of 20,000: hits read the row)`);
    rows.push(['SQLite store opened on these bans', `index loaded in ${(openMs / 1000).toFixed(2)} s, RSS +${mb(after.rss - before.rss)}`]);
    rows.push(['SQLite store: lookup.bannedBy, cold', `${fmt(r.rate)} lookups/s wall, ${fmt(r.cpuRate)} per CPU-second`]);
    rows.push(['SQLite store: await getBan (10% hits read the row)', `${fmt(getBanRate)} lookups/s`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The target is for a lookup in the loaded structure (1M hosts + 100k CIDRs), judged on CPU time.
const trieRate = results[0][1].cpuRate;
const rateMet = trieRate >= TARGET_RATE;
const memMet = built.rss < TARGET_MB * 1024 * 1024;
console.log('');
console.log('| measure | value |');
console.log('| --- | --- |');
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
console.log(`\n  lookup target (≥ ${fmt(TARGET_RATE)}/s): ${rateMet ? 'met' : 'NOT met'}; memory target (RSS < ${TARGET_MB} MB): ${memMet ? 'met' : 'NOT met'}`);

if (README) {
  const table = ['| measure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
  updateReadme(
    'store-lookup',
    [
      `Command: \`${COMMAND}\` (${fmt(LOOKUPS)} lookups of IP text per measurement, best of ${ROUNDS}; 10% of inputs are banned hosts; load average ${load} while measuring).`,
      `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}; lookup target ${rateMet ? 'met' : 'NOT met'}, memory target ${memMet ? 'met' : 'NOT met'}.`,
      '',
      table,
    ].join('\n'),
  );
}
