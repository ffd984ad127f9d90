// A decision log like a real week's: N decisions (default 1,000,000) spread
// over the last `days` days, written through store.logEvent (the writer
// thread and its rollups, as `serve` writes them). Shared by the report and
// dashboard benches (and usable by tests with a small N).
//
// Traffic: three decisions in five from 30,000 returning clients (a few very
// busy: the index is squared), two in five from a new address each time;
// 5,000 sender domains plus new ones; the default policy's rules in the
// shares a small MX sees (about half accepted, a third refused, the rest
// deferred, most of those greylisted); six evidence entries per decision, shared objects
// as the evidence cache hands them out; one decision in twenty with a
// test-mode finding. Deterministic (seeded).

import { existsSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import type { DecisionEvent, EventEvidence, Store } from '../../src/store/types.js';

export interface SeedOptions {
  count?: number;
  days?: number;
  /** The newest decision's time (default now). */
  now?: number;
  seed?: number;
  /** Told every 100,000 decisions. */
  progress?: (done: number) => void;
}

/** Small, fast, seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ev = (check: string, result: string, detail?: string): EventEvidence => Object.freeze(detail === undefined ? { check, result } : { check, result, detail });
const COMMON = [ev('auth', 'none'), ev('my_networks', 'fail'), ev('banned', 'unlisted', 'not banned'), ev('list:allow', 'unlisted')];
const SPF_PASS = ev('spf', 'pass', 'sender SPF authorized');
const SPF_FAIL = ev('spf', 'fail', 'not authorised by the SPF record');
const DNSBL_UNLISTED = ev('dnsbl', 'unlisted', 'not listed by zen.example, bl.example');
const DNSBL_LISTED = [
  ev('dnsbl', 'listed', '198.51.100.1 listed by zen.example (127.0.0.2); score 1 ≥ 1'),
  ev('dnsbl', 'listed', '198.51.100.1 listed by zen.example (127.0.0.4), bl.example (127.0.0.2); score 2 ≥ 1'),
  ev('dnsbl', 'listed', '198.51.100.1 listed by bl.example (127.0.0.2); score 1 ≥ 1; not consulted: dead.example (out of use: lists 127.0.0.1)'),
];

interface RuleShare {
  rule: string;
  action: string;
  code?: number;
  share: number;
  evidence: EventEvidence[];
  stage?: string;
}

const RULES: RuleShare[] = [
  { rule: 'default', action: 'continue', share: 0.42, evidence: [...COMMON, SPF_PASS, DNSBL_UNLISTED] },
  { rule: 'dnswl', action: 'accept', share: 0.06, evidence: [...COMMON, ev('dnswl', 'listed')] },
  { rule: 'authenticated', action: 'accept', share: 0.04, evidence: [ev('auth', 'pass')] },
  { rule: 'dnsbl', action: 'reject', code: 554, share: 0.16, evidence: [...COMMON, DNSBL_LISTED[0]] },
  { rule: 'sender-authorised', action: 'reject', code: 554, share: 0.06, evidence: [...COMMON, SPF_FAIL, DNSBL_UNLISTED] },
  { rule: 'banned', action: 'reject', code: 554, share: 0.05, evidence: [ev('auth', 'none'), ev('banned', 'listed', 'banned (spamtrap)')] },
  { rule: 'spamtrap', action: 'reject', code: 550, share: 0.01, evidence: [ev('spamtrap', 'listed')] },
  { rule: 'gate:pregreet', action: 'reject', code: 554, share: 0.03, evidence: [], stage: 'connect' },
  { rule: 'greylist', action: 'defer', code: 450, share: 0.12, evidence: [...COMMON, SPF_PASS, ev('greylist', 'fail', 'first attempt')] },
  { rule: 'unknown-sender-domain', action: 'defer', code: 450, share: 0.03, evidence: [...COMMON, ev('sender_domain', 'fail')] },
  { rule: 'ratelimit', action: 'defer', code: 450, share: 0.02, evidence: [ev('ratelimit', 'listed')] },
];

const CUMULATIVE = (() => {
  let s = 0;
  return RULES.map((r) => (s += r.share));
})();

function pickRule(r: number): RuleShare {
  const x = r * CUMULATIVE[CUMULATIVE.length - 1];
  for (let i = 0; i < RULES.length; i++) if (x < CUMULATIVE[i]) return RULES[i];
  return RULES[RULES.length - 1];
}

const ipOf = (n: number) => `${10 + ((n >>> 24) & 0x7f)}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff || 1}`;

/** One decision of the seeded week (i-th of `count`, times in order). */
export function seededDecision(i: number, count: number, rand: () => number, start: number, spanMs: number): DecisionEvent {
  const ts = start + Math.floor((i / count) * spanMs);
  const returning = rand() < 0.6;
  const clientIp = returning ? ipOf(Math.floor(rand() ** 2 * 30_000) * 7919 + 1) : ipOf(Math.floor(rand() * 0x7fffffff));
  const r = pickRule(rand());
  const dom = rand() < 0.8 ? `d${Math.floor(rand() ** 2 * 5_000)}.example` : `n${Math.floor(rand() * 1e9)}.example`;
  const evidence = r.rule === 'dnsbl' ? [...COMMON, DNSBL_LISTED[Math.floor(rand() * 3)]] : r.evidence;
  const e: DecisionEvent = {
    ts,
    sessionId: `s${i}`,
    clientIp,
    helo: `host${i % 1000}.example`,
    from: r.stage === 'connect' ? undefined : rand() < 0.05 ? '' : `user${Math.floor(rand() * 100)}@${dom}`,
    rcpts: r.stage === 'connect' ? [] : [`u${Math.floor(rand() * 50)}@mx.local.example`],
    stage: r.stage ?? 'rcpt',
    action: r.action,
    rule: r.rule,
    evidence,
  };
  if (r.code !== undefined) e.code = r.code;
  if (rand() < 0.05) e.wouldHave = [{ rule: 'no-ptr', action: 'reject', code: 550 }];
  return e;
}

/** Log `count` decisions into the store; resolves when all are committed. */
export async function seedDecisions(store: Store, opts: SeedOptions = {}): Promise<{ count: number; since: number; until: number }> {
  const count = opts.count ?? 1_000_000;
  const spanMs = (opts.days ?? 7) * 86_400_000;
  const until = opts.now ?? Date.now();
  const start = until - spanMs;
  const rand = prng(opts.seed ?? 18);
  const CHUNK = 5_000;
  for (let i = 0; i < count; ) {
    const waits: Array<Promise<void>> = [];
    for (const end = Math.min(count, i + CHUNK); i < end; i++) waits.push(store.logEvent(seededDecision(i, count, rand, start, spanMs)));
    await Promise.all(waits);
    if (opts.progress && i % 100_000 < CHUNK) opts.progress(i);
  }
  return { count, since: start, until };
}

/** A seeded store a bench reuses only while its week is the last week: older, a week's window would miss its first days. */
const STALE_MS = 3_600_000;

/**
 * The report and dashboard benches' store: `dir`/frontline.db with `count`
 * decisions over the last 7 days and 5,000 bans from the sources the
 * Overview tells apart, seeded unless `dir` already holds a seeding less
 * than an hour old (BENCH_REPORT_DIR reuses one between runs).
 */
export async function openSeededStore(dbPath: string, count: number): Promise<SqliteStore> {
  const open = () => SqliteStore.open({ backend: 'sqlite', path: dbPath }, { purgeIntervalSeconds: 0 });
  if (existsSync(dbPath)) {
    const store = await open();
    const newest = (store.eventsDatabase.prepare('SELECT max(ts) AS ts FROM events').get() as { ts: number | null }).ts;
    if (newest !== null && Date.now() - newest < STALE_MS) return store;
    await store.close();
    console.log(`${dbPath}: seeded ${newest === null ? 'nothing' : `${((Date.now() - newest) / 3_600_000).toFixed(1)} h ago`}; seeding again`);
    for (const f of [dbPath, `${dbPath.replace(/\.db$/, '')}.events.db`]) for (const x of ['', '-wal', '-shm']) rmSync(`${f}${x}`, { force: true });
  }
  let store = await open();
  const t0 = performance.now();
  await seedDecisions(store, { count, progress: (n) => console.log(`seeded ${n}`) });
  console.log(`seeded ${count} decisions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (let i = 0; i < 5000; i++) {
    const source = ['spamtrap', 'log:sshd', 'cli:root', 'feed:peer', 'dnsbl-rule'][i % 5];
    await store.ban({ cidr: `10.${200 + (i >> 16)}.${(i >> 8) & 255}.${i & 255 || 1}`, reason: 'bench', category: source === 'spamtrap' ? 'spamtrap' : 'policy', source });
  }
  await store.close();
  store = await open();
  return store;
}
