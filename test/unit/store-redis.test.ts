// The Store conformance suite on Redis: a private redis-server (free loopback
// port, no persistence, temp dir) for this file, a fresh key prefix per test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { requireBinary } from '../helpers/binaries.js';
import { startRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { storeConformance } from '../helpers/store-conformance.js';
import { RedisStore } from '../../src/store/redis/store.js';

const missing = requireBinary('redis-server') ? undefined : 'redis-server not installed';
let n = 0;

storeConformance(
  'redis',
  async () => {
    const redis = (await startRedis()) as PrivateRedis;
    return {
      async fresh() {
        const prefix = `t${++n}:`;
        return { open: (deps) => RedisStore.open({ backend: 'redis', url: redis.url, prefix }, deps) };
      },
      close: () => redis.close(),
    };
  },
  { skip: missing },
);

test('redis: scanBans walks the expiry index with ZSCAN past one round trip, the expired members left out', { skip: missing }, async () => {
  const redis = (await startRedis()) as PrivateRedis;
  const store = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'scan:' }, { purgeIntervalSeconds: 0 });
  const raw = new Redis(redis.url);
  try {
    const now = Date.now();
    // 30,000 members (ZSCAN's COUNT is 10,000), every tenth one expired; the scan reads scores only.
    const want = new Map<string, number>();
    const args: Array<string | number> = [];
    for (let i = 0; i < 30_000; i++) {
      const cidr = `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`;
      const expiresAt = i % 10 === 0 ? now - 1 : now + 3_600_000 + i;
      args.push(expiresAt, cidr);
      if (expiresAt > now) want.set(cidr, expiresAt);
    }
    await raw.zadd('scan:bans:exp', ...args);
    const got = new Map<string, number>();
    let pages = 0;
    await store.scanBans((cidrs, expiresAt) => {
      pages++;
      cidrs.forEach((c, i) => got.set(c, expiresAt[i]));
    });
    assert.ok(pages > 1, `${pages} pages`);
    assert.deepEqual(got, want);
  } finally {
    raw.disconnect();
    await store.close();
    await redis.close();
  }
});

test('redis: listBans of 100,000 answers past 70,000 bans (one HMGET of them all overflowed the stack and crashed the process)', { skip: missing }, async () => {
  const redis = (await startRedis()) as PrivateRedis;
  const store = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'big:' }, { purgeIntervalSeconds: 0 });
  const raw = new Redis(redis.url);
  try {
    const now = Date.now();
    const n = 80_000;
    for (let at = 0; at < n; at += 10_000) {
      const p = raw.pipeline();
      for (let i = at; i < at + 10_000; i++) {
        const cidr = `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`;
        const expiresAt = now + 3_600_000 + i;
        p.hset('big:bans', cidr, JSON.stringify({ cidr, reason: 'r', category: 'probe', source: 't', firstSeen: now, createdAt: now, expiresAt, offences: 1 }));
        p.zadd('big:bans:exp', expiresAt, cidr);
      }
      await p.exec();
    }
    const bans = await store.listBans({ limit: 100_000 });
    assert.equal(bans.length, n);
    assert.equal(bans[0].cidr, '10.1.56.127/32', 'latest expiry first');
    assert.equal(bans[n - 1].cidr, '10.0.0.0/32');
  } finally {
    raw.disconnect();
    await store.close();
    await redis.close();
  }
});

test('redis: a store opened over more bans than one ZSCAN round trip holds every unexpired one in its index, the expired left out', { skip: missing }, async () => {
  const redis = (await startRedis()) as PrivateRedis;
  const raw = new Redis(redis.url);
  let store: RedisStore | undefined;
  try {
    const now = Date.now();
    const args: Array<string | number> = [];
    const ips: Array<[string, boolean]> = [];
    for (let i = 0; i < 30_000; i++) {
      const ip = `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`;
      const expired = i % 10 === 0;
      args.push(expired ? now - 1 : now + 3_600_000 + i, `${ip}/32`);
      ips.push([ip, !expired]);
    }
    await raw.zadd('load:bans:exp', ...args);
    store = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'load:' }, { purgeIntervalSeconds: 0 });
    const wrong = ips.filter(([ip, banned]) => (store!.lookup.bannedBy(ip) !== undefined) !== banned).map(([ip]) => ip);
    assert.deepEqual(wrong.slice(0, 5), []);
  } finally {
    raw.disconnect();
    await store?.close();
    await redis.close();
  }
});
