// The Redis decision log's batches (src/store/redis/event-batch.ts): when a
// batch leaves, that every event of it shares its fate, and — on a private
// redis-server — that one script call stores a whole batch in order, under
// each event's own time, including one older than the stream's last, and
// a batch older than the stream with a single refused append.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { requireBinary } from '../helpers/binaries.js';
import { startRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { RedisEventBatch } from '../../src/store/redis/event-batch.js';
import { RedisStore } from '../../src/store/redis/store.js';
import type { DecisionEvent } from '../../src/store/types.js';

describe('RedisEventBatch', () => {
  it('sends a batch when it is full, with every event of it, in order', async () => {
    const sent: Array<Array<number | string>> = [];
    const b = new RedisEventBatch(async (pairs) => void sent.push(pairs), 10_000, 3);
    const ps = [b.push(1, 'a'), b.push(2, 'b'), b.push(3, 'c'), b.push(4, 'd')];
    assert.deepEqual(sent, [[1, 'a', 2, 'b', 3, 'c']]);
    await Promise.all(ps.slice(0, 3));
    await b.sync();
    assert.deepEqual(sent[1], [4, 'd']);
    await ps[3];
  });

  it('sends a batch that is not full after the flush interval', async () => {
    const sent: Array<Array<number | string>> = [];
    const b = new RedisEventBatch(async (pairs) => void sent.push(pairs), 20, 100);
    const p = b.push(1, 'a');
    assert.equal(sent.length, 0);
    await p;
    assert.deepEqual(sent, [[1, 'a']]);
  });

  it('a failed send rejects every event of its batch, and the next batch goes on', async () => {
    let fail = true;
    const b = new RedisEventBatch(async () => {
      if (fail) throw new Error('down');
    }, 10_000, 2);
    const first = [b.push(1, 'a'), b.push(2, 'b')];
    for (const p of first) await assert.rejects(p, /down/);
    fail = false;
    const next = b.push(3, 'c');
    await b.sync();
    await next;
  });

  it('sync() waits for batches already sent', async () => {
    let release = (): void => {};
    const b = new RedisEventBatch(() => new Promise<void>((r) => (release = r)), 10_000, 1);
    let done = false;
    void b.push(1, 'a').then(() => (done = true));
    const synced = b.sync();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(done, false);
    release();
    await synced;
    assert.equal(done, true);
  });
});

const missing = requireBinary('redis-server') ? undefined : 'redis-server not installed';

describe('Redis decision log batches, on redis-server', { skip: missing }, () => {
  let redis: PrivateRedis;
  before(async () => {
    redis = (await startRedis()) as PrivateRedis;
  });
  after(async () => {
    await redis?.close();
  });

  const event = (ts: number, rule: string): DecisionEvent => ({
    ts,
    clientIp: '192.0.2.1',
    rcpts: ['a@example.test'],
    stage: 'rcpt',
    action: 'reject',
    rule,
    evidence: [{ check: 'spf', result: 'fail', detail: 'not authorised', ms: 1 }],
  });

  it('stores a batch under each event time, in order; an event older than the stream goes under the last time', async () => {
    const store = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'ev1:' });
    const t = 1_800_000_000_000;
    const writes = [store.logEvent(event(t, 'r1')), store.logEvent(event(t + 5, 'r2')), store.logEvent(event(t + 2, 'r3'))];
    await Promise.all(writes);
    const c = new Redis(redis.url);
    try {
      const rows = await c.xrange('ev1:events', '-', '+');
      assert.deepEqual(
        rows.map(([id]) => id.split('-')[0]),
        [String(t), String(t + 5), String(t + 5)],
      );
      const stored = rows.map(([, f]) => JSON.parse(f[1]) as DecisionEvent);
      assert.deepEqual(
        stored.map((e) => e.rule),
        ['r1', 'r2', 'r3'],
      );
      assert.deepEqual(stored[0].evidence, [{ check: 'spf', result: 'fail', detail: 'not authorised', ms: 1 }]);
    } finally {
      c.disconnect();
    }
    const found = await store.queryEvents({ rule: 'r3' });
    assert.equal(found.length, 1);
    assert.equal(found[0].clientIp, '192.0.2.1');
    await store.close();
  });

  it('a batch older than the stream goes under its last time, in order, with one refused append (the later ones are raised, not refused)', async () => {
    const store = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'ev3:' });
    const t = 1_800_000_000_000;
    await store.logEvent(event(t + 100, 'newest'));
    const c = new Redis(redis.url);
    try {
      await c.config('RESETSTAT');
      await Promise.all([1, 2, 3, 4].map((i) => store.logEvent(event(t + i, `old${i}`))));
      const rows = await c.xrange('ev3:events', '-', '+');
      assert.deepEqual(
        rows.map(([id]) => id.split('-')[0]),
        Array(5).fill(String(t + 100)),
      );
      assert.deepEqual(
        rows.map(([, f]) => (JSON.parse(f[1]) as DecisionEvent).rule),
        ['newest', 'old1', 'old2', 'old3', 'old4'],
      );
      const stats = await c.info('commandstats');
      assert.match(stats, /cmdstat_xinfo\|stream:calls=1,/);
      assert.match(stats, /cmdstat_xadd:calls=5,.*failed_calls=1\b/);
    } finally {
      c.disconnect();
      await store.close();
    }
  });

  it('close() sends the batch being filled; a closed store refuses new events', async () => {
    const store = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'ev2:' });
    const pending = store.logEvent(event(Date.now(), 'last'));
    await store.close();
    await pending;
    await assert.rejects(store.logEvent(event(Date.now(), 'late')), /closed/);
    const c = new Redis(redis.url);
    try {
      assert.equal(await c.xlen('ev2:events'), 1);
    } finally {
      c.disconnect();
    }
  });
});
