// Readers of the whole ban list — the DNSBL zone's data (ZoneData.reload),
// the served ban feed (StoreFeeds.snapshot), feed consolidation's read of
// our bans, the ban census (metrics) and the report's ban summary — as they
// read it before (OFFSET pages of listBans, each with its own page size) and
// now (Store.scanBanRecords; the census Store.countBans), on a SQLite store
// and on a Redis store holding BENCH_SIZES bans (100,000 and 1,000,000). For
// each: wall-clock seconds, the CPU seconds of this process (and of
// redis-server, on Redis), and the longest the event loop was held (a
// decision waiting behind the read waits that long). The report reads at
// most MAX_BANS_READ (200,000) either way.
//
// The bans are written straight into the store's SQLite table and Redis keys
// (as the store writes them): a million store.ban() calls would take the
// bench's time, and the readers read what is there, not how it got there.
// Redis is a private redis-server (loopback, no persistence).
//
//   npm run bench -- ban-readers
//   BENCH_SIZES=100000 BENCH_BACKENDS=sqlite node --import tsx bench/ban-readers.ts
//   BENCH_OLD=0 …           the readers as they are now only (the OFFSET walks of a million take minutes)
//   BENCH_OLD=zone …        the old walk of those readers only
//   BENCH_READERS=zone …    the readers whose name holds this

import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { systemClock } from '../src/core/types.js';
import { openStore, type Ban, type Store } from '../src/store/index.js';
import type { SqliteStore } from '../src/store/sqlite/store.js';
import { RedisStore } from '../src/store/redis/store.js';
import { ZoneData } from '../src/enforce/zone/data.js';
import { FeedJournal, StoreFeeds } from '../src/enforce/feed/index.js';
import { BanCensus } from '../src/report/metrics/index.js';
import { banSourceKind, MAX_BANS_READ, ReportQueries } from '../src/report/queries.js';
import { startRedis, type PrivateRedis } from '../test/helpers/redis-server.js';
import { cpuSeconds } from './lib/process-stats.js';

const SIZES = (process.env.BENCH_SIZES ?? '100000,1000000').split(',').map(Number);
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'sqlite,redis').split(',');
/** The old walks too: all (unset), none (`0`), or those whose reader's name holds this. */
const OLD = process.env.BENCH_OLD ?? '';
/** Only the readers whose name contains this (e.g. `zone`). */
const ONLY = process.env.BENCH_READERS ?? '';
const CATEGORIES = ['brute-force', 'probe', 'spamtrap', 'manual', 'address-guessing'];
const SOURCES = ['log:/var/log/mail.log', 'spamtrap', 'cli:root', 'feed:peer', 'rule:too-many'];

function cidrOf(i: number): string {
  const a = (11 << 24) + i;
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/32`;
}

function banOf(i: number, now: number): Ban {
  return {
    cidr: cidrOf(i),
    reason: `${CATEGORIES[i % 5]} seen from this address, ${i % 97} attempts`,
    category: CATEGORIES[i % 5],
    source: SOURCES[(i >> 3) % 5],
    firstSeen: now - 86_400_000,
    createdAt: now - (i % 86_400) * 1000,
    expiresAt: now + 3_600_000 + (i % 2_592_000) * 1000,
    offences: 1 + (i % 7 === 0 ? 1 : 0),
  };
}

async function fillSqlite(store: SqliteStore, n: number, now: number): Promise<void> {
  const put = store.database.prepare('INSERT INTO bans (cidr, reason, category, source, first_seen, created_at, expires_at, offences) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  store.database.transaction(() => {
    for (let i = 0; i < n; i++) {
      const b = banOf(i, now);
      put.run(b.cidr, b.reason, b.category, b.source, b.firstSeen, b.createdAt, b.expiresAt, b.offences);
    }
  })();
}

async function fillRedis(raw: Redis, prefix: string, n: number, now: number): Promise<void> {
  for (let at = 0; at < n; at += 10_000) {
    const p = raw.pipeline();
    for (let i = at; i < Math.min(n, at + 10_000); i++) {
      const b = banOf(i, now);
      p.hset(`${prefix}bans`, b.cidr, JSON.stringify(b));
      p.zadd(`${prefix}bans:exp`, b.expiresAt, b.cidr);
    }
    await p.exec();
  }
}

/** The walk every reader did before: listBans pages of `page` by OFFSET (the report stopped at MAX_BANS_READ). */
async function offsetWalk(store: Store, page: number, each: (b: Ban) => void, max = Infinity): Promise<void> {
  for (let offset = 0; ; offset += page) {
    const rows = await store.listBans({ limit: page, offset });
    for (const b of rows) each(b);
    if (rows.length < page || offset + page >= max) return;
  }
}

interface Reader {
  name: string;
  old: (store: Store) => Promise<unknown>;
  now: (store: Store) => Promise<unknown>;
}

const readers: Reader[] = [
  {
    name: 'zone data',
    old: async (store) => {
      const m = new Map<string, { category: string; reason: string; expiresAt: number }>();
      await offsetWalk(store, 100_000, (b) => m.set(b.cidr, { category: b.category, reason: b.reason, expiresAt: b.expiresAt }));
      return m.size;
    },
    now: (store) => new ZoneData({ store, clock: systemClock, blLists: [], wlLists: [], refreshMs: 0 }).reload(),
  },
  {
    name: 'served feed',
    old: async (store) => {
      const out: unknown[] = [];
      await offsetWalk(store, 50_000, (b) => {
        if (!b.source.startsWith('feed:')) out.push({ cidr: b.cidr, expiresAt: b.expiresAt, category: b.category, reason: b.reason });
      });
      return out.length;
    },
    now: (store) => new StoreFeeds(store, [], new FeedJournal(), systemClock).snapshot('bans'),
  },
  {
    name: 'feed consolidation (our bans)',
    old: async (store) => {
      const m = new Map<string, Ban>();
      await offsetWalk(store, 50_000, (b) => m.set(b.cidr, b));
      return m.size;
    },
    now: async (store) => {
      // FeedPuller.consolidate's read, without peers to compare with.
      const m = new Map<string, Ban>();
      await store.scanBanRecords((page) => {
        for (const b of page) m.set(b.cidr, b);
      });
      return m.size;
    },
  },
  {
    name: 'ban census',
    // The old census built a Ban per row; now the store counts (SQLite: in SQL, a page of keys at a time).
    old: async (store) => {
      const m = new Map<string, number>();
      await offsetWalk(store, 5_000, (b) => m.set(b.category, (m.get(b.category) ?? 0) + 1));
      return m;
    },
    now: (store) => new BanCensus(store).refresh(),
  },
  {
    name: 'report ban summary',
    old: async (store) => {
      const m = new Map<string, number>();
      await offsetWalk(store, 10_000, (b) => m.set(banSourceKind(b), (m.get(banSourceKind(b)) ?? 0) + 1), MAX_BANS_READ);
      return m;
    },
    now: (store) => new ReportQueries({ store }).bans(),
  },
];

interface Figure {
  wall: number;
  cpu: number;
  serverCpu: number;
  stallMs: number;
}

/** The longest the event loop went without running a timer, from now until the returned function is called. */
function stallMeter(): () => number {
  let last = performance.now();
  let max = 0;
  let timer = setTimeout(function tick() {
    const t = performance.now();
    max = Math.max(max, t - last);
    last = t;
    timer = setTimeout(tick, 1);
  }, 1);
  return () => {
    clearTimeout(timer);
    return Math.max(max, performance.now() - last);
  };
}

async function timed(run: () => Promise<unknown>, serverPid?: number): Promise<Figure> {
  const c0 = process.cpuUsage();
  const s0 = serverPid ? cpuSeconds(serverPid) : 0;
  const t0 = performance.now();
  const stall = stallMeter();
  await run();
  const stallMs = stall();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6, serverCpu: serverPid ? cpuSeconds(serverPid) - s0 : 0, stallMs };
}

const f = (x: number) => x.toFixed(2);
const show = (x: Figure | undefined, redis: boolean) =>
  x ? `${f(x.wall)} s wall, ${f(x.cpu)} s CPU${redis ? ` (+${f(x.serverCpu)} s redis)` : ''}, loop held ≤ ${Math.round(x.stallMs)} ms` : '—';

console.log(`ban readers; ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)} at the start`);
console.log('| backend | bans | reader | before (OFFSET pages of listBans) | now (scanBanRecords) |');
console.log('|---|---:|---|---|---|');
for (const backend of BACKENDS) {
  for (const n of SIZES) {
    const now = Date.now();
    let store: Store;
    let done: () => Promise<void>;
    let serverPid: number | undefined;
    if (backend === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'fl-bench-readers-'));
      const s = (await openStore({ backend: 'sqlite', path: join(dir, 's.db'), pollMs: 0 }, { purgeIntervalSeconds: 0 })) as SqliteStore;
      await fillSqlite(s, n, now);
      store = s;
      done = async () => {
        await s.close();
        rmSync(dir, { recursive: true, force: true });
      };
    } else {
      const redis = (await startRedis()) as PrivateRedis | undefined;
      if (!redis) throw new Error('redis-server not installed');
      const raw = new Redis(redis.url);
      serverPid = Number(/process_id:(\d+)/.exec(await raw.info('server'))?.[1]);
      await fillRedis(raw, 'b:', n, now);
      // The old walks' replies (an HMGET of 100,000 bans) outlast the default 1 s command timeout here.
      const s = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'b:', commandTimeoutMs: 60_000 }, { purgeIntervalSeconds: 0 });
      store = s;
      done = async () => {
        raw.disconnect();
        await s.close();
        await redis.close();
      };
    }
    try {
      for (const r of readers.filter((x) => x.name.includes(ONLY))) {
        const old = OLD !== '0' && r.name.includes(OLD) ? await timed(() => r.old(store), serverPid) : undefined;
        const fresh = await timed(() => r.now(store), serverPid);
        console.log(`| ${backend} | ${n.toLocaleString('en')} | ${r.name} | ${show(old, backend === 'redis')} | ${show(fresh, backend === 'redis')} |`);
      }
    } finally {
      await done();
    }
  }
}
console.log(`load ${os.loadavg()[0].toFixed(1)} at the end`);
