// The readers of the whole ban list — the DNSBL zone's data, the served ban
// feed, feed consolidation, the ban census (metrics) and the report's ban
// summary — walk it with Store.scanBanRecords instead of OFFSET pages of
// listBans. On each backend, with more bans than one page of the scan
// (SQLite 10,000 rows, Redis an HSCAN hint of 5,000), each gives what it
// made from listBans before; a ban made or lifted while a scan runs changes
// only itself.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Ban, type BanRecordReader, type Store } from '../../src/store/index.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { ZoneData } from '../../src/enforce/zone/data.js';
import { buildFeedApp, FeedJournal, FeedPuller, StoreFeeds, type FeedPullConfig } from '../../src/enforce/feed/index.js';
import { feedSchema } from '../../src/enforce/feed/config.js';
import { BanCensus } from '../../src/report/metrics/index.js';
import { banSourceKind, ReportQueries, type BanSummary } from '../../src/report/queries.js';
import { requireBinary } from '../helpers/binaries.js';
import { startRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { ManualClock } from '../helpers/fake-clock.js';

/** More than one page on both backends. */
const N = 12_500;
/** Bans in category `meddle`, lifted one at a time by the scans that meddle. */
const POOL = 40;
const TOKEN = 'a-long-enough-test-token-0123456789';
const silent = { info() {}, warn() {}, error() {} };

const host = (i: number) => `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;
const CATEGORIES = ['spamtrap', 'probe', 'brute-force', 'manual', 'policy'];
const SOURCES = ['log:/var/log/auth.log', 'cli:root', 'spamtrap', 'web:admin', 'rule:too-many'];

interface Opened {
  store: Store;
  close(): Promise<void>;
}

async function openSqlite(clock: ManualClock): Promise<Opened> {
  const dir = mkdtempSync(join(tmpdir(), 'fl-readers-'));
  const store = await openStore({ backend: 'sqlite', path: join(dir, 's.db'), pollMs: 0 }, { clock, ownAddresses: [], purgeIntervalSeconds: 0 });
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function openRedis(clock: ManualClock): Promise<Opened> {
  const redis = (await startRedis()) as PrivateRedis;
  const store = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'readers:' }, { clock, ownAddresses: [], purgeIntervalSeconds: 0 });
  return {
    store,
    close: async () => {
      await store.close();
      await redis.close();
    },
  };
}

/** N bans of five categories and sources (every 10th a feed ban, every 50th a second offence), POOL more to meddle with. */
async function fill(store: Store): Promise<void> {
  const one = async (i: number) => {
    const feed = i % 10 === 9;
    const input = {
      cidr: i % 100 === 7 ? `2001:db8:ff${(i % 0xff).toString(16).padStart(2, '0')}:${i.toString(16)}::/64` : host(i),
      reason: `reason ${i}`,
      category: feed ? 'feed' : CATEGORIES[i % CATEGORIES.length],
      source: feed ? 'feed:a' : SOURCES[i % SOURCES.length],
      durationSeconds: 3600 + (i % 977) * 60,
    };
    if (i % 50 === 3) {
      await store.ban(input);
      await store.unban(input.cidr);
    }
    const r = await store.ban(input);
    assert.ok(!r.refused, input.cidr);
  };
  for (let at = 0; at < N; at += 250) await Promise.all(Array.from({ length: Math.min(250, N - at) }, (_, k) => one(at + k)));
  for (let i = 0; i < POOL; i++) await store.ban({ cidr: host(100_000 + i), reason: 'pool', category: 'meddle', source: 'meddle', durationSeconds: 7200 });
}

/** What the readers read before: the whole list in one listBans answer (it allows 100,000). */
async function listed(store: Store): Promise<Ban[]> {
  const all = await store.listBans({ limit: 100_000 });
  assert.ok(all.length < 100_000);
  return all;
}

/**
 * The store, except that its scanBanRecords lifts one `meddle` ban that
 * the first page did not bring and makes a new one, in the middle of the
 * scan. `changed()` names both (after the scan).
 */
function meddling(store: Store, added: string): { store: Store; changed(): Promise<string[]> } {
  const writes: Array<Promise<unknown>> = [];
  let gone = '';
  const scan = (onPage: BanRecordReader) => {
    let first = true;
    return store.scanBanRecords((page) => {
      if (first) {
        first = false;
        const seen = new Set(page.map((b) => b.cidr));
        for (let i = 0; i < POOL && !gone; i++) {
          const c = `${host(100_000 + i)}/128`;
          if (!seen.has(c) && store.lookup.bannedBy(host(100_000 + i))) gone = c;
        }
        assert.ok(gone, 'a pool ban not on the first page');
        writes.push(store.unban(gone), store.ban({ cidr: added, reason: 'added', category: 'meddle', source: 'meddle', durationSeconds: 7200 }));
      }
      return onPage(page);
    });
  };
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === 'scanBanRecords') return scan;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    store: proxy,
    changed: async () => {
      await Promise.all(writes);
      assert.equal(await store.showBan(gone), undefined, 'lifted during the scan');
      assert.ok(await store.showBan(added), 'made during the scan');
      return [gone, `${added}/128`];
    },
  };
}

function byCidr<T extends { cidr: string }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => (a.cidr < b.cidr ? -1 : a.cidr > b.cidr ? 1 : 0));
}

function zoneData(store: Store, clock: ManualClock): ZoneData {
  return new ZoneData({ store, clock, blLists: [], wlLists: [], refreshMs: 0 });
}

/** The zone as the change feed would build it from these bans. */
function zoneOf(bans: Ban[], store: Store, clock: ManualClock) {
  const z = zoneData(store, clock);
  for (const ban of bans) z.apply({ kind: 'ban', ban });
  return byCidr(z.entries('bl'));
}

function snapshotOf(bans: Ban[]) {
  return byCidr(bans.filter((b) => !b.source.startsWith('feed:')).map((b) => ({ cidr: b.cidr, expiresAt: b.expiresAt, category: b.category, reason: b.reason })));
}

function countOf(bans: Ban[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const b of bans) m.set(b.category, (m.get(b.category) ?? 0) + 1);
  return m;
}

function summaryOf(bans: Ban[], w: { since: number; until: number }): BanSummary {
  const sorted = (m: Map<string, number>) => [...m].map(([key, n]) => ({ key, n })).sort((a, b) => b.n - a.n || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const srcs = new Map<string, number>();
  for (const b of bans) srcs.set(banSourceKind(b), (srcs.get(banSourceKind(b)) ?? 0) + 1);
  return {
    active: bans.length,
    byCategory: sorted(countOf(bans)),
    bySource: sorted(srcs),
    newInWindow: bans.filter((b) => b.createdAt >= w.since && b.createdAt <= w.until).length,
    repeatOffenders: bans.filter((b) => b.offences > 1).length,
  };
}

async function census(store: Store): Promise<Map<string, number>> {
  const c = new BanCensus(store, (err) => assert.fail(String(err)));
  await c.refresh();
  return new Map(c.byCategory());
}

const backends: Array<{ name: string; open: (clock: ManualClock) => Promise<Opened>; skip?: string }> = [
  { name: 'sqlite', open: openSqlite },
  { name: 'redis', open: openRedis, skip: requireBinary('redis-server') ? undefined : 'redis-server not installed' },
];

for (const backend of backends) {
  describe(`readers of every ban: ${backend.name}`, { skip: backend.skip }, () => {
    const clock = new ManualClock();
    let opened: Opened;
    let store: Store;
    let serial = 0;
    const fresh = () => host(200_000 + ++serial);

    before(async () => {
      opened = await backend.open(clock);
      store = opened.store;
      await fill(store);
      // A ban that has expired (not purged) and one made later than the rest (the report's window) are part of the picture too.
      clock.advance(60);
      await store.ban({ cidr: host(300_000), reason: 'short', category: 'probe', source: 'cli:root', durationSeconds: 30 });
      clock.advance(31);
      await store.ban({ cidr: host(300_001), reason: 'new', category: 'probe', source: 'cli:root', durationSeconds: 3600 });
    });
    after(() => opened?.close());

    test('the scan passes more than one page, each ban in full, the expired one left out', async () => {
      const want = await listed(store);
      assert.equal(want.length, N + POOL + 1);
      const got = new Map<string, Ban>();
      let pages = 0;
      await store.scanBanRecords((page) => {
        pages++;
        for (const b of page) got.set(b.cidr, b);
      });
      assert.ok(pages > 1, `${pages} pages`);
      assert.deepEqual(byCidr([...got.values()]), byCidr(want));
    });

    test('zone data: the same listings', async () => {
      const z = zoneData(store, clock);
      await z.reload();
      assert.deepEqual(byCidr(z.entries('bl')), zoneOf(await listed(store), store, clock));
    });

    test('served feed: the same snapshot of bans (feed bans left out)', async () => {
      const feeds = new StoreFeeds(store, [], new FeedJournal(), clock);
      const got = await feeds.snapshot('bans');
      assert.equal(got.length, new Set(got.map((e) => e.cidr)).size, 'each CIDR once');
      assert.deepEqual(byCidr(got), snapshotOf(await listed(store)));
    });

    test('ban census: the same counts by category', async () => {
      assert.deepEqual(await census(store), countOf(await listed(store)));
    });

    test('report: the same ban summary', async () => {
      const w = { since: clock.now() - 45_000, until: clock.now() };
      const got = await new ReportQueries({ store, clock }).bans(w);
      assert.deepEqual(got, summaryOf(await listed(store), w));
      assert.ok(got.repeatOffenders > 0 && got.newInWindow > 0 && got.newInWindow < got.active, JSON.stringify(got));
    });

    test('a ban made and a ban lifted during the scan change only themselves', async () => {
      const stable = (bans: Ban[], changed: string[]) => bans.filter((b) => !changed.includes(b.cidr));
      const only = <T extends { cidr: string }>(rows: T[], changed: string[]) => byCidr(rows.filter((r) => !changed.includes(r.cidr)));

      let before = await listed(store);
      let m = meddling(store, fresh());
      const z = zoneData(m.store, clock);
      await z.reload();
      let changed = await m.changed();
      assert.deepEqual(only(z.entries('bl'), changed), zoneOf(stable(before, changed), store, clock), 'zone data');

      before = await listed(store);
      m = meddling(store, fresh());
      const snap = await new StoreFeeds(m.store, [], new FeedJournal(), clock).snapshot('bans');
      changed = await m.changed();
      assert.deepEqual(only(snap, changed), snapshotOf(stable(before, changed)), 'served feed');

      // The census counts without scanBanRecords: bans made and lifted while it runs, between its pages.
      before = await listed(store);
      let counting = true;
      let writes = 0;
      const writer = (async () => {
        for (let i = 0; counting; i++) {
          const cidr = fresh();
          await store.ban({ cidr, reason: 'during', category: 'meddle', source: 'meddle', durationSeconds: 7200 });
          if (i % 2 === 0) await store.unban(cidr);
          if (i === 0) await store.unban(`${host(100_000 + POOL - 1)}/128`);
          writes++;
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const counts = await census(store);
      counting = false;
      await writer;
      assert.ok(writes > 0, 'written while counting');
      counts.delete('meddle');
      const want = countOf(before);
      want.delete('meddle');
      assert.deepEqual(counts, want, 'ban census');

      before = await listed(store);
      m = meddling(store, fresh());
      const summary = await new ReportQueries({ store: m.store, clock }).bans();
      changed = await m.changed();
      assert.ok(Math.abs(summary.active - before.length) <= 1, `${summary.active} of ${before.length}`);
      const others = (s: BanSummary) => s.byCategory.filter((r) => r.key !== 'meddle');
      assert.deepEqual(others(summary), others(summaryOf(before, { since: 0, until: 0 })), 'report');
    });

    // Last: consolidation lifts bans.
    test('feed consolidation: kept, renewed and lifted as from the whole list', async () => {
      const peerStore = await openStore({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { clock, ownAddresses: [] });
      const journal = new FeedJournal();
      const feeds = new StoreFeeds(peerStore, [], journal, clock);
      feeds.start();
      const app = buildFeedApp({ token: TOKEN, feeds, journal, clock, logger: silent });
      try {
        const fetch = (async (input: string | URL, init?: RequestInit) => {
          const url = new URL(String(input));
          const res = await app.inject({ method: 'GET', url: url.pathname + url.search, headers: (init?.headers ?? {}) as Record<string, string>, remoteAddress: '203.0.113.200' });
          return new Response(res.body, { status: res.statusCode, headers: { 'content-type': String(res.headers['content-type'] ?? '') } });
        }) as typeof globalThis.fetch;
        const ours = await listed(store);
        const feedBans = ours.filter((b) => b.source === 'feed:a');
        const local = ours.filter((b) => !b.source.startsWith('feed:'));
        // The peer lists three of our own bans (kept) and two of our feed bans for less long (left as they are).
        const peerLists = [...local.slice(-3), ...feedBans.slice(-2)];
        for (const b of peerLists) {
          assert.ok(!(await peerStore.ban({ cidr: b.cidr, reason: 'peer', category: 'probe', source: 'log:x', durationSeconds: 600 })).refused);
        }
        const cfg: FeedPullConfig = feedSchema.parse({ pull: [{ name: 'a', url: 'http://a.test:8026', token_file: '/token' }] }).pull[0];
        const puller = new FeedPuller([cfg], { store, clock, logger: silent, fetch, readFile: () => TOKEN });
        const [r] = await puller.pull('a');
        assert.equal(r.status, 'updated');
        assert.deepEqual(await puller.consolidate(), { banned: 0, lifted: feedBans.length - 2, kept: 3 });
        const after = await listed(store);
        assert.deepEqual(
          byCidr(after.filter((b) => b.source.startsWith('feed:'))).map((b) => b.cidr),
          byCidr(feedBans.slice(-2)).map((b) => b.cidr),
        );
        assert.equal(after.length, ours.length - (feedBans.length - 2));
      } finally {
        feeds.stop();
        await app.close();
        await peerStore.close();
      }
    });
  });
}

test('ban census past 50 categories: the 50 largest, the rest as other', async () => {
  const clock2 = new ManualClock();
  const own = await openStore({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { clock: clock2, ownAddresses: [] });
  try {
    for (let c = 0; c < 55; c++) {
      for (let k = 0; k <= c; k++) await own.ban({ cidr: host(c * 100 + k), reason: 'r', category: `c${c}`, source: 't', durationSeconds: 3600 });
    }
    const want = new Map<string, number>();
    for (let c = 54; c >= 5; c--) want.set(`c${c}`, c + 1);
    want.set('other', 1 + 2 + 3 + 4 + 5);
    assert.deepEqual(await census(own), want);
  } finally {
    await own.close();
  }
});
