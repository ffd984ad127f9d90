// Faults the store must survive: the process killed mid-write (SQLite), Redis
// going away and coming back, and the cross-host change feed.

import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import type { Store, StoreChange } from '../../src/store/types.js';
import { requireBinary } from '../helpers/binaries.js';
import { startRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { eventually } from '../helpers/store-conformance.js';

const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => unhandled.push(e));

describe('SQLite: SIGKILL during a load of writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-kill-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every acknowledged ban and list entry is there after the kill, and the database opens cleanly', { timeout: 60_000 }, async () => {
    const path = join(dir, 'killed.db');
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/sqlite-ban-writer.ts', path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const acked = () => out.split('\n').filter((l) => l.startsWith('ban ') || l.startsWith('list '));
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    await eventually(() => acked().length >= 400, 30_000, 'the writer acknowledged 400 writes');
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    await new Promise((r) => setImmediate(r));
    const lines = acked();
    assert.ok(lines.length >= 400);

    const db = new Database(path);
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    const bans = new Set((db.prepare('SELECT cidr FROM bans').all() as Array<{ cidr: string }>).map((r) => r.cidr));
    const listed = new Set((db.prepare("SELECT entry FROM list_entries WHERE list = 'learned'").all() as Array<{ entry: string }>).map((r) => r.entry));
    db.close();
    const missing = lines.filter((l) => {
      const [kind, cidr] = l.split(' ');
      return kind === 'ban' ? !bans.has(cidr) : !listed.has(cidr);
    });
    assert.deepEqual(missing, [], 'acknowledged writes lost');

    const store = await SqliteStore.open({ backend: 'sqlite', path, pollMs: 0 }, { purgeIntervalSeconds: 0 });
    const lastBan = lines.filter((l) => l.startsWith('ban ')).pop()?.split(' ')[1].replace('/32', '') as string;
    assert.equal((await store.getBan(lastBan))?.source, 'writer');
    assert.equal(store.lookup.listHas('learned', '198.18.0.3'), true);
    await store.close();
  });
});

const redisMissing = requireBinary('redis-server') ? undefined : 'redis-server not installed';

describe('Redis: stops in the middle of traffic, comes back', { skip: redisMissing }, () => {
  let redis: PrivateRedis;
  const stores: Store[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    await redis?.close();
  });

  async function open(prefix: string): Promise<Store> {
    const s = await RedisStore.open({ backend: 'redis', url: redis.url, prefix, commandTimeoutMs: 500 }, { purgeIntervalSeconds: 0 });
    stores.push(s);
    return s;
  }

  /** Time a call; it must settle within 2 s. */
  async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
    const t0 = Date.now();
    try {
      const value = await p;
      return { ms: Date.now() - t0, value };
    } catch (error) {
      return { ms: Date.now() - t0, error };
    }
  }

  test('calls reject fast with StoreUnavailableError, nothing crashes, and the same store works again after a restart', { timeout: 60_000 }, async () => {
    redis = (await startRedis()) as PrivateRedis;
    const store = await open('fault:');
    const other = await open('fault:');
    await store.ban({ cidr: '192.0.2.1', reason: 'before', category: 'manual', source: 't' });
    await store.greyPut('k', { firstSeen: 1, lastSeen: 1, attempts: 1, passes: 0, clientIp: '192.0.2.1', expiresAt: Date.now() + 60_000 });

    // Traffic in flight when Redis dies.
    let stop = false;
    const traffic = (async () => {
      const errors: unknown[] = [];
      let ok = 0;
      for (let i = 0; !stop; i++) {
        const r = await timed(store.rateTake(`ip:${i % 50}`, { capacity: 100, refillPerSecond: 10 }));
        assert.ok(r.ms < 2000, `a call took ${r.ms} ms`);
        if (r.error) errors.push(r.error);
        else ok++;
        if (r.error) await new Promise((res) => setTimeout(res, 5));
      }
      return { errors, ok };
    })();
    await new Promise((r) => setTimeout(r, 200));
    await redis.kill();
    await new Promise((r) => setTimeout(r, 300));

    const calls = [
      store.ban({ cidr: '198.51.100.2', reason: 'during', category: 'manual', source: 't' }),
      store.unban('192.0.2.1'),
      store.showBan('192.0.2.1'),
      store.listBans(),
      store.listAdd('l', '192.0.2.0/24', { source: 't' }),
      store.listShow('l'),
      store.greyGet('k'),
      store.greyPut('k2', { firstSeen: 1, lastSeen: 1, attempts: 1, passes: 0, clientIp: '192.0.2.1', expiresAt: Date.now() + 60_000 }),
      store.greyClientPass('net:x', Date.now() + 60_000),
      store.rateTake('ip:x', { capacity: 1, refillPerSecond: 1 }),
      store.logEvent({ ts: Date.now(), clientIp: '192.0.2.1', rcpts: [], stage: 'rcpt', action: 'defer', rule: 'r', evidence: [] }),
      store.queryEvents({}),
      store.pruneEvents({ maxRows: 10 }),
      store.purge(),
    ];
    const results = await Promise.all(calls.map((c) => timed(c as Promise<unknown>)));
    results.forEach((r, i) => {
      assert.ok(r.error instanceof StoreUnavailableError, `call ${i} should reject with StoreUnavailableError, got ${String(r.error ?? r.value)}`);
      assert.ok(r.ms < 2000, `call ${i} took ${r.ms} ms`);
    });
    assert.equal((await store.health()).ok, false);
    // Ban lookups keep answering from memory.
    assert.equal(store.lookup.bannedBy('192.0.2.1')?.cidr, '192.0.2.1/32');
    const degraded = await store.getBan('192.0.2.1');
    assert.equal(degraded?.cidr, '192.0.2.1/32');
    assert.match(degraded?.reason ?? '', /unavailable/);
    assert.equal(await store.getBan('192.0.2.99'), undefined, 'a miss needs no Redis');

    await redis.start();
    await eventually(async () => (await store.health()).ok, 10_000, 'store reconnects by itself');
    stop = true;
    const t = await traffic;
    assert.ok(t.errors.length > 0 && t.errors.every((e) => e instanceof StoreUnavailableError));
    assert.ok(t.ok > 0);

    // Same store objects, no re-creation: writes, reads and the change feed work again.
    const heard: StoreChange[] = [];
    store.onChange((c) => heard.push(c));
    await eventually(
      async () => !(await timed(store.rateTake('after', { capacity: 5, refillPerSecond: 1 }))).error,
      10_000,
      'operations succeed again',
    );
    // The restarted server kept nothing (no persistence): the index was reloaded to match.
    await eventually(() => store.lookup.bannedBy('192.0.2.1') === undefined, 5_000, 'index reloaded after reconnect');
    await eventually(
      async () => {
        const r = await timed(other.ban({ cidr: '198.51.100.1', reason: 'after', category: 'manual', source: 'other' }));
        return !r.error;
      },
      10_000,
      'the other store bans again',
    );
    await eventually(() => heard.some((c) => c.kind === 'ban' && c.ban.cidr === '198.51.100.1/32'), 2_000, 'change feed resubscribed');
    assert.equal((await store.getBan('198.51.100.1'))?.source, 'other');
    assert.deepEqual(unhandled, []);
  });

  test('a store cannot be opened while Redis is down: StoreUnavailableError, promptly', { timeout: 20_000 }, async () => {
    await redis.kill();
    const t0 = Date.now();
    await assert.rejects(
      RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'x:', connectTimeoutMs: 500 }, { purgeIntervalSeconds: 0 }),
      StoreUnavailableError,
    );
    assert.ok(Date.now() - t0 < 2000);
    await redis.start();
  });
});

describe('Redis: change feed between hosts', { skip: redisMissing }, () => {
  let redis: PrivateRedis;
  const stores: Store[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    await redis?.close();
  });

  test('a ban on one store is seen by the other\'s onChange within a second', { timeout: 20_000 }, async () => {
    redis = (await startRedis()) as PrivateRedis;
    const a = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'feed:' }, { purgeIntervalSeconds: 0 });
    const b = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'feed:' }, { purgeIntervalSeconds: 0 });
    const elsewhere = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'other-install:' }, { purgeIntervalSeconds: 0 });
    stores.push(a, b, elsewhere);
    const seen: Array<{ change: StoreChange; at: number }> = [];
    const foreign: StoreChange[] = [];
    b.onChange((change) => seen.push({ change, at: Date.now() }));
    elsewhere.onChange((c) => foreign.push(c));
    const t0 = Date.now();
    await a.ban({ cidr: '203.0.113.9', reason: 'spamtrap', category: 'spamtrap', source: 'host-a' });
    await eventually(() => seen.length > 0, 1000, 'b hears the ban');
    const first = seen[0];
    assert.equal(first.change.kind, 'ban');
    assert.ok(first.at - t0 < 1000, `took ${first.at - t0} ms`);
    assert.equal(b.lookup.bannedBy('203.0.113.9')?.cidr, '203.0.113.9/32');
    assert.deepEqual(foreign, [], 'another prefix is another installation');
  });
});
