// The Redis greylist's batches (src/store/redis/grey-batch.ts): which
// attempts leave together and when, that each gets its own answer and a
// failed call fails them all; and — on a private redis-server — that one
// script call decides a whole batch, in order.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { requireBinary } from '../helpers/binaries.js';
import { startRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { RedisGreyBatch, type SendAttempts } from '../../src/store/redis/grey-batch.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import type { GreyTiming } from '../../src/store/types.js';

const TIMING: GreyTiming = { delaySeconds: 60, retryWindowSeconds: 600, passedTtlSeconds: 3600 };
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A send that answers every attempt 'first' and records what it was given. */
function recorder(): { calls: Array<{ keys: string[]; args: Array<string | number> }>; send: SendAttempts } {
  const calls: Array<{ keys: string[]; args: Array<string | number> }> = [];
  return {
    calls,
    send: async (keys, args) => {
      calls.push({ keys, args });
      return keys.flatMap(() => ['first', 60]);
    },
  };
}

describe('RedisGreyBatch', () => {
  it('sends the attempts of one loop turn in one call: timing once, then now and IP of each, in order', async () => {
    const r = recorder();
    const b = new RedisGreyBatch(r.send);
    const answers = await Promise.all([b.attempt('k1', '192.0.2.1', 1000, TIMING), b.attempt('k2', '192.0.2.2', 1001, TIMING), b.attempt('k1', '192.0.2.3', 1002, TIMING), b.attempt('k3', '::1', 1003, TIMING)]);
    assert.equal(r.calls.length, 1);
    assert.deepEqual(r.calls[0], { keys: ['k1', 'k2', 'k1', 'k3'], args: [60, 600, 3600, 1000, '192.0.2.1', 1001, '192.0.2.2', 1002, '192.0.2.3', 1003, '::1'] });
    assert.deepEqual(answers, Array(4).fill({ outcome: 'first', seconds: 60 }));
  });

  it('holds a small batch for up to two more turns, gathering what arrives meanwhile', async () => {
    const r = recorder();
    const b = new RedisGreyBatch(r.send);
    const ps = [b.attempt('a', '192.0.2.1', 1, TIMING)];
    await turn();
    assert.equal(r.calls.length, 0, 'one attempt waits');
    ps.push(b.attempt('b', '192.0.2.1', 2, TIMING));
    await turn();
    await turn();
    await Promise.all(ps);
    assert.equal(r.calls.length, 1);
    assert.deepEqual(r.calls[0].keys, ['a', 'b']);
  });

  it('sends a full batch at once, and attempts with another timing in a batch of their own', async () => {
    const r = recorder();
    const b = new RedisGreyBatch(r.send, 3);
    const other = { ...TIMING, delaySeconds: 300 };
    const ps = [b.attempt('a', '192.0.2.1', 1, TIMING), b.attempt('b', '192.0.2.1', 1, TIMING), b.attempt('c', '192.0.2.1', 1, TIMING)];
    assert.equal(r.calls.length, 1, 'full: sent without waiting for the turn to end');
    ps.push(b.attempt('d', '192.0.2.1', 1, TIMING), b.attempt('e', '192.0.2.1', 1, other));
    assert.equal(r.calls.length, 2, 'a new timing sends the batch before it');
    await b.sync();
    await Promise.all(ps);
    assert.deepEqual(
      r.calls.map((c) => [c.keys, c.args.slice(0, 3)]),
      [
        [['a', 'b', 'c'], [60, 600, 3600]],
        [['d'], [60, 600, 3600]],
        [['e'], [300, 600, 3600]],
      ],
    );
  });

  it('a failed call rejects every attempt of its batch; a reply without an answer for one rejects that one as a store fault', async () => {
    let reply: () => Promise<Array<string | number>> = () => Promise.reject(new StoreUnavailableError('redis: down'));
    const b = new RedisGreyBatch(() => reply());
    const failed = [b.attempt('a', '192.0.2.1', 1, TIMING), b.attempt('b', '192.0.2.1', 1, TIMING)];
    for (const p of failed) await assert.rejects(p, /down/);
    reply = async () => ['early', 5, 'bogus', 1];
    const [ok, bad] = await Promise.allSettled([b.attempt('a', '192.0.2.1', 1, TIMING), b.attempt('b', '192.0.2.1', 1, TIMING)]);
    assert.deepEqual(ok, { status: 'fulfilled', value: { outcome: 'early', seconds: 5 } });
    assert.equal(bad.status, 'rejected');
    assert.ok(bad.status === 'rejected' && bad.reason instanceof StoreUnavailableError);
  });
});

const missing = requireBinary('redis-server') ? undefined : 'redis-server not installed';

describe('Redis greylist batches, on redis-server', { skip: missing }, () => {
  let redis: PrivateRedis;
  before(async () => {
    redis = (await startRedis()) as PrivateRedis;
  });
  after(async () => {
    await redis?.close();
  });

  it('one script call decides a turn of attempts, each in order: a triplet twice in a batch is first, then early', async () => {
    const store = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'gb1:' });
    const c = new Redis(redis.url);
    try {
      await c.config('RESETSTAT');
      const now = 1_800_000_000_000;
      const answers = await Promise.all([
        store.greyAttempt('t1', '192.0.2.1', now, TIMING),
        store.greyAttempt('t2', '192.0.2.2', now, TIMING),
        store.greyAttempt('t1', '192.0.2.3', now + 10_000, TIMING),
        store.greyAttempt('t3', '2001:DB8::1', now, TIMING),
      ]);
      assert.deepEqual(answers, [
        { outcome: 'first', seconds: 60 },
        { outcome: 'first', seconds: 60 },
        { outcome: 'early', seconds: 50 },
        { outcome: 'first', seconds: 60 },
      ]);
      const stats = await c.info('commandstats');
      assert.match(stats, /cmdstat_evalsha:calls=1,|cmdstat_eval:calls=1,/);
      const t1 = await store.greyGet('t1');
      assert.equal(t1?.attempts, 2);
      assert.equal(t1?.clientIp, '192.0.2.3');
      assert.equal((await store.greyGet('t3'))?.clientIp, '2001:db8::1');
    } finally {
      c.disconnect();
      await store.close();
    }
  });

  it('close() sends the batch being filled; a closed store refuses new attempts', async () => {
    const store = await RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'gb2:' });
    const pending = store.greyAttempt('last', '192.0.2.1', Date.now(), TIMING);
    await store.close();
    assert.equal((await pending).outcome, 'first');
    await assert.rejects(store.greyAttempt('late', '192.0.2.1', Date.now(), TIMING), /closed/);
  });
});
