// Ban feeds between servers that share no Redis (src/enforce/feed/): the
// served feed (text, JSON, incremental cursors, bearer tokens off loopback),
// the reading of a peer's copy (malformed entries skipped and counted, a copy
// that lists 0.0.0.0/0 or our own networks refused), and the puller that
// keeps each peer's last good copy and makes and lifts bans from them.
// Peers are real fastify apps over real stores (SQLite in memory); the
// e2e test runs two `frontline serve` processes over HTTP.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, type Store } from '../../src/store/index.js';
import { buildFeedApp, FeedJournal, FeedPuller, StoreFeeds, peerListName, type FeedPullConfig } from '../../src/enforce/feed/index.js';
import { readPeerCopy } from '../../src/enforce/feed/peer-copy.js';
import { feedSchema } from '../../src/enforce/feed/config.js';
import { ManualClock } from '../helpers/fake-clock.js';

const TOKEN = 'a-long-enough-test-token-0123456789';

async function memoryStore(clock: ManualClock, extra: { neverBan?: string[]; neverBanLists?: string[] } = {}): Promise<Store> {
  return openStore({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { clock, ownAddresses: [], ...extra });
}

/** A peer: a store and its feed app; `fetch` answers the puller's requests through fastify's inject (remote address loopback unless told). */
async function peer(clock: ManualClock, lists: string[] = []) {
  const store = await memoryStore(clock);
  const journal = new FeedJournal();
  const feeds = new StoreFeeds(store, lists, journal, clock);
  feeds.start();
  const app = buildFeedApp({ token: TOKEN, feeds, journal, clock, logger: { warn() {}, error() {} } });
  let down = false;
  let override: string | undefined;
  const fetch = (async (input: string | URL, init?: RequestInit) => {
    if (down) throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    const url = new URL(String(input));
    const headers = Object.fromEntries(Object.entries((init?.headers ?? {}) as Record<string, string>));
    const res = await app.inject({ method: 'GET', url: url.pathname + url.search, headers, remoteAddress: '203.0.113.200' });
    return new Response(override ?? res.body, { status: res.statusCode, headers: { 'content-type': String(res.headers['content-type'] ?? '') } });
  }) as typeof globalThis.fetch;
  return {
    store,
    app,
    fetch,
    setDown: (d: boolean) => (down = d),
    serveInstead: (body: string | undefined) => (override = body),
    close: async () => {
      feeds.stop();
      await app.close();
      await store.close();
    },
  };
}

function pullCfg(name: string, over: Partial<FeedPullConfig> = {}): FeedPullConfig {
  return feedSchema.parse({ pull: [{ name, url: `http://${name}.test:8026`, token_file: '/token', ...over }] }).pull[0];
}

const silent = { info() {}, warn() {}, error() {} };

describe('the served feed', () => {
  test('text, full JSON, incremental JSON; feed bans are not served again; unknown feeds 404', async (t) => {
    const clock = new ManualClock();
    const a = await peer(clock, ['deny']);
    t.after(() => a.close());
    await a.store.ban({ cidr: '203.0.113.5', reason: 'brute force on sshd', category: 'brute-force', source: 'log:auth.log', durationSeconds: 3600 });
    await a.store.ban({ cidr: '203.0.113.6', reason: 'from a peer', category: 'feed', source: 'feed:other', durationSeconds: 3600 });
    await a.store.listAdd('deny', '198.51.100.0/24', { kind: 'ip', source: 'cli' });

    const txt = await a.app.inject({ url: '/feed/v1/bans.txt' });
    assert.equal(txt.statusCode, 200);
    assert.match(txt.body, /^# frontline feed bans: 1 entries, /);
    assert.deepEqual(txt.body.trim().split('\n').slice(1), ['203.0.113.5/32']);

    const full = JSON.parse((await a.app.inject({ url: '/feed/v1/bans.json' })).body);
    assert.equal(full.full, true);
    assert.deepEqual(full.entries, [{ cidr: '203.0.113.5/32', expiresAt: clock.now() + 3600_000, category: 'brute-force', reason: 'brute force on sshd' }]);
    const deny = JSON.parse((await a.app.inject({ url: '/feed/v1/deny.json' })).body);
    assert.deepEqual(deny.entries, [{ cidr: '198.51.100.0/24' }]);

    await a.store.ban({ cidr: '203.0.113.7', reason: 'spamtrap', category: 'spamtrap', source: 'rule', durationSeconds: 60 });
    await a.store.unban('203.0.113.5');
    const inc = JSON.parse((await a.app.inject({ url: `/feed/v1/bans.json?since=${full.cursor}` })).body);
    assert.equal(inc.full, false);
    assert.deepEqual(inc.entries.map((e: { cidr: string }) => e.cidr), ['203.0.113.7/32']);
    assert.deepEqual(inc.removed, ['203.0.113.5/32']);
    const none = JSON.parse((await a.app.inject({ url: `/feed/v1/bans.json?since=${inc.cursor}` })).body);
    assert.deepEqual([none.full, none.entries, none.removed], [false, [], []]);

    const stale = JSON.parse((await a.app.inject({ url: '/feed/v1/bans.json?since=0123abcd.5' })).body);
    assert.equal(stale.full, true, 'a cursor of another epoch gets a whole copy');
    for (const url of ['/feed/v1/nope.json', '/feed/v1/bans.xml', '/feed/v1/../etc/passwd', '/anything']) {
      assert.equal((await a.app.inject({ url })).statusCode, 404, url);
    }
  });

  test('off loopback a bearer token is required; on loopback it is not', async (t) => {
    const clock = new ManualClock();
    const a = await peer(clock);
    t.after(() => a.close());
    const from = (remoteAddress: string, authorization?: string) =>
      a.app.inject({ url: '/feed/v1/bans.txt', remoteAddress, headers: authorization ? { authorization } : {} });
    assert.equal((await from('127.0.0.1')).statusCode, 200);
    assert.equal((await from('::1')).statusCode, 200);
    const refused = await from('203.0.113.9');
    assert.equal(refused.statusCode, 401);
    assert.equal(refused.headers['www-authenticate'], 'Bearer realm="frontline feed"');
    assert.equal((await from('203.0.113.9', `Bearer ${TOKEN}x`)).statusCode, 401);
    assert.equal((await from('203.0.113.9', `Basic ${TOKEN}`)).statusCode, 401);
    assert.equal((await from('203.0.113.9', `Bearer ${TOKEN}`)).statusCode, 200);
    assert.equal((await from('::ffff:203.0.113.9', `Bearer ${TOKEN}`)).statusCode, 200);
  });

  test('the journal: a cursor older than the changes kept gets a whole copy', () => {
    const j = new FeedJournal(10, 'abc');
    const c0 = j.cursor();
    for (let i = 0; i < 5; i++) j.add('bans', { cidr: `203.0.113.${i}/32` });
    assert.equal(j.since('bans', c0)?.length, 5);
    for (let i = 0; i < 1100; i++) j.del('bans', `203.0.113.${i % 250}/32`);
    assert.equal(j.since('bans', c0), undefined);
    assert.equal(j.since('bans', j.cursor())?.length, 0);
    assert.equal(j.since('bans', 'abc.999999'), undefined, 'a cursor from the future');
    assert.equal(j.since('bans', 'nonsense'), undefined);
  });
});

describe("reading a peer's copy", () => {
  const doc = (entries: unknown[], removed: unknown[] = []) => JSON.stringify({ version: 1, feed: 'bans', cursor: 'x.1', full: true, entries, removed });
  const never = (cidr: string) =>
    cidr === '0.0.0.0/0' ? ({ by: 'prefix', why: 'too wide' } as const) : cidr.startsWith('10.') ? ({ by: 'network', why: 'overlaps never-ban network 10.0.0.0/8' } as const) : undefined;

  test('malformed entries are skipped and counted, expired ones dropped, text cleaned', () => {
    const r = readPeerCopy(
      doc([{ cidr: '203.0.113.1' }, { cidr: '203.0.113.300' }, { cidr: '203.0.113.9/24' }, 'x', { cidr: '2001:db8::/48', expiresAt: 1 }, { cidr: '198.51.100.7', reason: 'a\u0000b\nc', category: 'x'.repeat(500) }]),
      'bans',
      1000,
      never,
    );
    assert.ok(r.ok);
    assert.deepEqual(r.copy.entries.map((e) => e.cidr), ['203.0.113.1/32', '198.51.100.7/32']);
    assert.equal(r.copy.entries[1].reason, 'a b c');
    assert.equal(r.copy.entries[1].category?.length, 200);
    assert.equal(r.copy.skipped, 3);
    assert.equal(r.copy.expired, 1);
  });

  test('a copy that lists 0.0.0.0/0 or our own networks is refused whole', () => {
    for (const bad of ['0.0.0.0/0', '10.1.2.3']) {
      const r = readPeerCopy(doc([{ cidr: '203.0.113.1' }, { cidr: bad }]), 'bans', 0, never);
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.why : '', /never banned here/);
    }
    for (const body of ['<html>error</html>', '{}', JSON.stringify({ version: 2 }), doc([]).replace('"bans"', '"deny"')]) {
      assert.equal(readPeerCopy(body, 'bans', 0, never).ok, false, body);
    }
  });
});

describe('pulling peers', () => {
  test("a peer's ban is banned here, lifted when the peer lifts it, and survives the peer going down", async (t) => {
    const clock = new ManualClock();
    const a = await peer(clock);
    const b = await memoryStore(clock);
    t.after(async () => {
      await a.close();
      await b.close();
    });
    const puller = new FeedPuller([pullCfg('a')], { store: b, clock, logger: silent, fetch: a.fetch, readFile: () => TOKEN });
    await a.store.ban({ cidr: '203.0.113.5', reason: 'brute force on sshd', category: 'brute-force', source: 'log', durationSeconds: 3600 });
    const [r1] = await puller.pull('a');
    assert.equal(r1.status, 'updated');
    assert.equal(r1.full, true);
    assert.deepEqual(await puller.consolidate(), { banned: 1, lifted: 0, kept: 0 });
    const ban = await b.getBan('203.0.113.5');
    assert.equal(ban?.category, 'feed');
    assert.equal(ban?.source, 'feed:a');
    assert.equal(ban?.reason, 'listed by feed a: brute force on sshd');
    assert.equal(ban?.expiresAt, clock.now() + 3600_000);
    assert.deepEqual((await b.listShow(peerListName('a'))).map((e) => e.entry), ['203.0.113.5/32']);

    a.setDown(true);
    const [down] = await puller.pull('a');
    assert.equal(down.status, 'failed');
    await puller.consolidate();
    assert.ok(await b.getBan('203.0.113.5'), 'the last good copy stays in force');

    a.setDown(false);
    await a.store.unban('203.0.113.5');
    const [r2] = await puller.pull('a');
    assert.deepEqual([r2.status, r2.full, r2.removed], ['updated', false, 1]);
    assert.deepEqual(await puller.consolidate(), { banned: 0, lifted: 1, kept: 0 });
    assert.equal(await b.getBan('203.0.113.5'), undefined);
    assert.deepEqual(await b.listShow(peerListName('a')), []);
  });

  test('a hostile copy is refused and the last good one kept; malformed lines are counted', async (t) => {
    const clock = new ManualClock();
    const a = await peer(clock);
    const b = await memoryStore(clock, { neverBan: ['192.168.0.0/16'] });
    t.after(async () => {
      await a.close();
      await b.close();
    });
    const puller = new FeedPuller([pullCfg('a')], { store: b, clock, logger: silent, fetch: a.fetch, readFile: () => TOKEN });
    await a.store.ban({ cidr: '203.0.113.5', reason: 'x', category: 'manual', source: 'cli', durationSeconds: 3600 });
    await puller.pull('a');
    await puller.consolidate();
    for (const cidr of ['0.0.0.0/0', '192.168.1.1']) {
      a.serveInstead(JSON.stringify({ version: 1, feed: 'bans', cursor: 'zz.1', full: true, entries: [{ cidr }], removed: [] }));
      const [r] = await puller.pull('a');
      assert.equal(r.status, 'refused', cidr);
      assert.match(r.reason ?? '', new RegExp(`lists ${cidr.replace(/\./g, '\\.')}`));
      await puller.consolidate();
      assert.ok(await b.getBan('203.0.113.5'), 'the last good copy stays');
    }
    a.serveInstead(JSON.stringify({ version: 1, feed: 'bans', cursor: 'zz.2', full: true, entries: [{ cidr: '203.0.113.5' }, { cidr: 'not-an-ip' }, { cidr: '198.51.100.1' }], removed: [] }));
    const [ok] = await puller.pull('a');
    assert.deepEqual([ok.status, ok.skipped], ['updated', 1]);
    await puller.consolidate();
    assert.ok(await b.getBan('198.51.100.1'));
  });

  test('min_sources: an address bans only when enough peers list it; a local allow list wins', async (t) => {
    const clock = new ManualClock();
    const a = await peer(clock);
    const c = await peer(clock);
    const b = await memoryStore(clock, { neverBanLists: ['allow'] });
    t.after(async () => {
      await a.close();
      await c.close();
      await b.close();
    });
    const fetch = (async (input: string | URL, init?: RequestInit) => (String(input).includes('//a.test') ? a.fetch : c.fetch)(input, init)) as typeof globalThis.fetch;
    const puller = new FeedPuller([pullCfg('a', { min_sources: 2 }), pullCfg('c', { min_sources: 2 })], { store: b, clock, logger: silent, fetch, readFile: () => TOKEN });
    await b.listAdd('allow', '198.51.100.9', { kind: 'ip', source: 'cli' });
    for (const s of [a.store, c.store]) await s.ban({ cidr: '198.51.100.9', reason: 'x', category: 'manual', source: 'cli', durationSeconds: 600 });
    await a.store.ban({ cidr: '203.0.113.5', reason: 'x', category: 'manual', source: 'cli', durationSeconds: 600 });
    await puller.pull('a');
    await puller.pull('c');
    assert.deepEqual(await puller.consolidate(), { banned: 0, lifted: 0, kept: 1 }, 'one source is not enough; the allow-listed address is kept out');
    assert.equal(await b.getBan('203.0.113.5'), undefined);
    assert.equal(await b.getBan('198.51.100.9'), undefined);
    await c.store.ban({ cidr: '203.0.113.5', reason: 'y', category: 'manual', source: 'cli', durationSeconds: 600 });
    await puller.pull('c');
    assert.equal((await puller.consolidate()).banned, 1);
    assert.equal((await b.getBan('203.0.113.5'))?.source, 'feed:a+c');
  });

  test("after a restart the peer's last copy is read back from the store and stays in force", async (t) => {
    const clock = new ManualClock();
    const a = await peer(clock);
    const b = await memoryStore(clock);
    t.after(async () => {
      await a.close();
      await b.close();
    });
    const first = new FeedPuller([pullCfg('a')], { store: b, clock, logger: silent, fetch: a.fetch, readFile: () => TOKEN });
    await a.store.ban({ cidr: '203.0.113.5', reason: 'x', category: 'manual', source: 'cli', durationSeconds: 3600 });
    await first.pull('a');
    await first.consolidate();
    a.setDown(true);
    const second = new FeedPuller([pullCfg('a')], { store: b, clock, logger: silent, fetch: a.fetch, readFile: () => TOKEN });
    await second.load();
    await second.pull('a');
    assert.deepEqual(await second.consolidate(), { banned: 0, lifted: 0, kept: 0 });
    assert.ok(await b.getBan('203.0.113.5'));
  });
});

describe('config', () => {
  test('enforce.feed: peers named once, URLs without a query, "bans" is not a list', () => {
    assert.throws(() => feedSchema.parse({ pull: [{ name: 'a', url: 'http://x' }, { name: 'a', url: 'http://y' }] }), /named twice/);
    assert.throws(() => feedSchema.parse({ pull: [{ name: 'a', url: 'ftp://x' }] }), /http/);
    assert.throws(() => feedSchema.parse({ pull: [{ name: 'a b', url: 'http://x' }] }), /peer name/);
    assert.throws(() => feedSchema.parse({ lists: ['bans'] }), /always served/);
    assert.deepEqual(feedSchema.parse({}), { listen: null, token_file: null, lists: [], pull: [] });
  });
});
