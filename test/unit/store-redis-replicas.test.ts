// store.redis.min_replicas and store.redis.sentinel: a ban or list change is
// acknowledged only once enough replicas hold it (WAIT), and the config
// refuses sentinel addresses it cannot use. The fail-over itself is tested
// end to end with real redis-sentinel (test/e2e/store-sentinel.test.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireBinary } from '../helpers/binaries.js';
import { startRedis } from '../helpers/redis-server.js';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/store/redis/store.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { storeConfigOf } from '../../src/cli/store.js';

test('min_replicas: with no replica, a ban is written but not acknowledged; with one, it is', { timeout: 60_000 }, async (t) => {
  if (!requireBinary('redis-server', t)) return;
  const primary = await startRedis();
  assert.ok(primary);
  t.after(() => primary.close());
  const lonely = await RedisStore.open({ backend: 'redis', url: primary.url, prefix: 'r1:', minReplicas: 1, replicaWaitMs: 200 });
  t.after(() => lonely.close());
  await assert.rejects(
    lonely.ban({ cidr: '203.0.113.1', reason: 'x', category: 'manual', source: 'test', durationSeconds: 60 }),
    (e: unknown) => e instanceof StoreUnavailableError && /reached 0 of 1 replicas within 200 ms \(store\.redis\.min_replicas\): not acknowledged/.test((e as Error).message),
  );
  await assert.rejects(lonely.listAdd('allow', '203.0.113.9', { kind: 'ip', source: 'test' }), /not acknowledged/);

  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  assert.ok(replica);
  t.after(() => replica.close());
  // Until the replica's first sync is done (the primary lists it online), WAIT counts 0.
  const admin = new Redis({ port: primary.port, host: '127.0.0.1' });
  t.after(() => admin.disconnect());
  const deadline = Date.now() + 30_000;
  while (!/slave0:.*state=online/.test(await admin.info('replication'))) {
    assert.ok(Date.now() < deadline, 'the replica came online within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const replicated = await RedisStore.open({ backend: 'redis', url: primary.url, prefix: 'r1:', minReplicas: 1, replicaWaitMs: 5000 });
  t.after(() => replicated.close());
  const made = await replicated.ban({ cidr: '203.0.113.2', reason: 'x', category: 'manual', source: 'test', durationSeconds: 60 });
  assert.ok('ban' in made, 'acknowledged once the replica holds it');
  assert.equal(await replicated.unban('203.0.113.2'), true);
  const plain = await RedisStore.open({ backend: 'redis', url: primary.url, prefix: 'r2:' });
  t.after(() => plain.close());
  const r = await plain.ban({ cidr: '203.0.113.3', reason: 'x', category: 'manual', source: 'test', durationSeconds: 60 });
  assert.ok('ban' in r && r.ban.cidr === '203.0.113.3/32', 'min_replicas 0 (the default) acknowledges what the primary holds');
});

test('store.redis.sentinel: host:port entries, mapped to the store config', () => {
  const cfg = parseConfig(
    'store:\n  backend: redis\n  redis:\n    url: "redis://:secret@x:6379/2"\n    sentinel: { hosts: ["10.0.0.1:26379", "[2001:db8::1]:26379"], name: mx }\n    min_replicas: 1\n',
    'f.yaml',
  );
  const store = storeConfigOf(cfg);
  assert.deepEqual(store, {
    backend: 'redis',
    url: 'redis://:secret@x:6379/2',
    prefix: 'fl:',
    minReplicas: 1,
    replicaWaitMs: 1000,
    sentinel: { hosts: [{ host: '10.0.0.1', port: 26379 }, { host: '2001:db8::1', port: 26379 }], name: 'mx' },
  });
  for (const bad of ['"10.0.0.1"', '"10.0.0.1:0"', '"host name:1"', '"[zz]:1"']) {
    assert.throws(
      () => parseConfig(`store:\n  redis:\n    sentinel: { hosts: [${bad}] }\n`, 'f.yaml'),
      (e: unknown) => e instanceof ConfigError && /f\.yaml:3:\d+: store\.redis\.sentinel\.hosts\[0\]: expected host:port/.test((e as Error).message),
      bad,
    );
  }
});
