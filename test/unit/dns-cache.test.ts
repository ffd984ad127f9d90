// The cached resolver: TTL bounds, negative caching, in-flight sharing, LRU
// and fault handling. Network questions are counted in the fixture DNS
// server's query log; time moves by a fake clock, never by sleeping.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createResolver } from '../../src/dns/index.js';
import { CachedResolver } from '../../src/dns/cached-resolver.js';
import { DnsError } from '../../src/dns/types.js';
import { Zone } from '../../src/dns/zone.js';
import type { DnsAnswer, QType, Querier } from '../../src/dns/answer.js';
import { startFixtureDns, type FixtureDns } from '../helpers/fixture-dns.js';

class FakeClock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  advance(seconds: number): void {
    this.t += seconds * 1000;
  }
}

const world = {
  'short.test': [{ TTL: 1 }, { A: '192.0.2.1' }],
  'mid.test': [{ TTL: 30 }, { A: '192.0.2.2' }],
  'long.test': [{ TTL: 86400 }, { A: '192.0.2.3' }],
  'exists.test': [{ A: '192.0.2.4' }],
  'a.test': [{ A: '192.0.2.5' }],
  'b.test': [{ A: '192.0.2.6' }],
  'c.test': [{ A: '192.0.2.7' }],
  'hang.test': ['TIMEOUT'],
  'broken.test': ['SERVFAIL'],
};

function rejectsWith(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof DnsError, `expected a DnsError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

describe('CachedResolver over the fixture DNS server', () => {
  let fx: FixtureDns;
  before(async () => {
    fx = await startFixtureDns(new Zone(world), { soaMinimum: 60 });
  });
  after(() => fx.close());

  /** A fresh cache (and client) per test, so counts do not leak between tests. */
  function resolver(clock: FakeClock, cache: Parameters<typeof createResolver>[0]['cache'] = {}, timeoutMs = 2000): CachedResolver {
    return createResolver({ servers: [fx.server], timeoutMs, retries: 0, cache, clock });
  }
  /** How many times the server was asked this question. */
  const asked = (q: string): number => fx.queries.filter((x) => x === q).length;

  test('answers are reused for their TTL, raised to minTtl and cut to maxTtl', async (t) => {
    const clock = new FakeClock();
    const r = resolver(clock, { minTtl: 5, maxTtl: 3600 });
    t.after(() => r.close());
    const n0 = { short: asked('A short.test'), mid: asked('A mid.test'), long: asked('A long.test') };
    await r.a('short.test');
    await r.a('mid.test');
    await r.a('long.test');

    clock.advance(4.9); // short.test: TTL 1 raised to 5
    await r.a('short.test');
    assert.equal(asked('A short.test') - n0.short, 1);
    clock.advance(0.1);
    await r.a('short.test');
    assert.equal(asked('A short.test') - n0.short, 2);

    clock.advance(24.9); // mid.test: 29.9 s after it was fetched, TTL 30 as given
    await r.a('mid.test');
    assert.equal(asked('A mid.test') - n0.mid, 1);
    clock.advance(0.1);
    await r.a('mid.test');
    assert.equal(asked('A mid.test') - n0.mid, 2);

    clock.advance(3600 - 30 - 0.1); // long.test: TTL 86400 cut to 3600
    await r.a('long.test');
    assert.equal(asked('A long.test') - n0.long, 1);
    clock.advance(0.1);
    await r.a('long.test');
    assert.equal(asked('A long.test') - n0.long, 2);
    assert.ok(r.stats.hits >= 3);
  });

  test('names are cached case-insensitively and without the trailing dot', async (t) => {
    const r = resolver(new FakeClock());
    t.after(() => r.close());
    const n0 = asked('A exists.test');
    assert.deepEqual(await r.a('exists.test'), ['192.0.2.4']);
    assert.deepEqual(await r.a('EXISTS.Test.'), ['192.0.2.4']);
    assert.equal(asked('A exists.test') - n0, 1);
    assert.deepEqual(r.stats, { hits: 1, misses: 1, inflightShared: 0, evictions: 0 });
  });

  test('NXDOMAIN and NODATA are cached for the SOA minimum', async (t) => {
    const clock = new FakeClock();
    const r = resolver(clock);
    t.after(() => r.close());
    const nx0 = asked('A nothing.test');
    const nd0 = asked('TXT exists.test');
    for (let i = 0; i < 3; i++) {
      await assert.rejects(r.a('nothing.test'), rejectsWith('NXDOMAIN'));
      await assert.rejects(r.txt('exists.test'), rejectsWith('NODATA'));
    }
    assert.equal(asked('A nothing.test') - nx0, 1);
    assert.equal(asked('TXT exists.test') - nd0, 1);
    clock.advance(59.9);
    await assert.rejects(r.a('nothing.test'), rejectsWith('NXDOMAIN'));
    assert.equal(asked('A nothing.test') - nx0, 1);
    clock.advance(0.1);
    await assert.rejects(r.a('nothing.test'), rejectsWith('NXDOMAIN'));
    assert.equal(asked('A nothing.test') - nx0, 2);
  });

  test('concurrent identical questions share one network query', async (t) => {
    const r = resolver(new FakeClock());
    t.after(() => r.close());
    const n0 = asked('A a.test');
    const results = await Promise.all([r.a('a.test'), r.a('a.test'), r.a('A.TEST'), r.a('a.test.'), r.a('a.test')]);
    assert.ok(results.every((x) => x.length === 1 && x[0] === '192.0.2.5'));
    assert.equal(asked('A a.test') - n0, 1);
    assert.equal(r.stats.misses, 1);
    assert.equal(r.stats.inflightShared, 4);
    // Different types are different questions.
    await assert.rejects(r.aaaa('a.test'), rejectsWith('NODATA'));
    assert.equal(r.stats.misses, 2);
  });

  test('concurrent questions share a fault too', async (t) => {
    const r = resolver(new FakeClock());
    t.after(() => r.close());
    const n0 = asked('A broken.test');
    const all = await Promise.allSettled([r.a('broken.test'), r.a('broken.test'), r.a('broken.test')]);
    assert.ok(all.every((x) => x.status === 'rejected' && (x.reason as DnsError).code === 'SERVFAIL'));
    assert.equal(asked('A broken.test') - n0, 1);
    assert.equal(r.stats.inflightShared, 2);
  });

  test('the least recently used entry goes when maxEntries is reached', async (t) => {
    const r = resolver(new FakeClock(), { maxEntries: 2 });
    t.after(() => r.close());
    const n = (): number[] => ['A a.test', 'A b.test', 'A c.test'].map(asked);
    const n0 = n();
    await r.a('a.test');
    await r.a('b.test');
    await r.a('a.test'); // a is now the most recently used
    await r.a('c.test'); // evicts b
    assert.equal(r.size, 2);
    assert.equal(r.stats.evictions, 1);
    await r.a('a.test');
    await r.a('c.test');
    assert.deepEqual(n().map((x, i) => x - n0[i]), [1, 1, 1]);
    await r.a('b.test'); // gone: asked again
    assert.deepEqual(n().map((x, i) => x - n0[i]), [1, 2, 1]);
  });

  test('TIMEOUT and SERVFAIL are not cached by default', async (t) => {
    const r = resolver(new FakeClock(), {}, 100);
    t.after(() => r.close());
    const h0 = asked('A hang.test');
    const b0 = asked('A broken.test');
    await assert.rejects(r.a('hang.test'), rejectsWith('TIMEOUT'));
    await assert.rejects(r.a('hang.test'), rejectsWith('TIMEOUT'));
    await assert.rejects(r.a('broken.test'), rejectsWith('SERVFAIL'));
    await assert.rejects(r.a('broken.test'), rejectsWith('SERVFAIL'));
    assert.equal(asked('A hang.test') - h0, 2);
    assert.equal(asked('A broken.test') - b0, 2);
    assert.equal(r.size, 0);
  });

  test('with failTtl, faults are cached for that long and no longer', async (t) => {
    const clock = new FakeClock();
    const r = resolver(clock, { failTtl: 2, minTtl: 30 });
    t.after(() => r.close());
    const b0 = asked('A broken.test');
    await assert.rejects(r.a('broken.test'), rejectsWith('SERVFAIL'));
    clock.advance(1.9);
    await assert.rejects(r.a('broken.test'), rejectsWith('SERVFAIL'));
    assert.equal(asked('A broken.test') - b0, 1);
    clock.advance(0.1); // failTtl is not raised to minTtl
    await assert.rejects(r.a('broken.test'), rejectsWith('SERVFAIL'));
    assert.equal(asked('A broken.test') - b0, 2);
  });

  test('BADNAME is refused before the cache and the network', async (t) => {
    const r = resolver(new FakeClock());
    t.after(() => r.close());
    const before = fx.queries.length;
    await assert.rejects(r.a(`${'x'.repeat(64)}.test`), rejectsWith('BADNAME'));
    await assert.rejects(r.ptr('300.1.1.1'), rejectsWith('BADNAME'));
    assert.equal(fx.queries.length, before);
    assert.equal(r.stats.misses, 0);
  });
});

describe('CachedResolver negative TTL without an SOA', () => {
  /** A Querier double: NXDOMAIN with no SOA, or NODATA with a huge SOA TTL. */
  class Scripted implements Querier {
    calls = 0;
    async query<T extends QType>(name: string, type: T): Promise<DnsAnswer<T>> {
      this.calls++;
      return { qname: name, qtype: type, status: name.startsWith('nx') ? 'NXDOMAIN' : 'NODATA', records: [], chain: [], ttl: name.startsWith('nx') ? undefined : 999_999 };
    }
  }

  test('negativeTtl applies when the server sent no SOA; SOA TTLs are clamped to maxTtl', async () => {
    const clock = new FakeClock();
    const q = new Scripted();
    const r = new CachedResolver(q, { clock, negativeTtl: 20, maxTtl: 100 });
    await assert.rejects(r.a('nx.test'), rejectsWith('NXDOMAIN'));
    await assert.rejects(r.a('nodata.test'), rejectsWith('NODATA'));
    clock.advance(19.9);
    await assert.rejects(r.a('nx.test'), rejectsWith('NXDOMAIN'));
    assert.equal(q.calls, 2);
    clock.advance(0.1);
    await assert.rejects(r.a('nx.test'), rejectsWith('NXDOMAIN'));
    assert.equal(q.calls, 3);
    clock.advance(79.9);
    await assert.rejects(r.a('nodata.test'), rejectsWith('NODATA'));
    assert.equal(q.calls, 3);
    clock.advance(0.1);
    await assert.rejects(r.a('nodata.test'), rejectsWith('NODATA'));
    assert.equal(q.calls, 4);
  });

  test('bad cache bounds are refused', () => {
    assert.throws(() => new CachedResolver(new Scripted(), { minTtl: 10, maxTtl: 5 }), /minTtl/);
    assert.throws(() => new CachedResolver(new Scripted(), { maxEntries: 0 }), /maxEntries/);
  });
});

describe('CachedResolver hits: shared void errors, copies, expiry reports', () => {
  class Fixed implements Querier {
    calls = 0;
    async query<T extends QType>(name: string, type: T): Promise<DnsAnswer<T>> {
      this.calls++;
      if (name.startsWith('nx')) return { qname: name, qtype: type, status: 'NXDOMAIN', records: [], chain: [], ttl: 30 };
      const data = (type === 'MX' ? { preference: 10, exchange: 'mx.test' } : '192.0.2.1') as DnsAnswer<T>['records'][number]['data'];
      return { qname: name, qtype: type, status: 'NOERROR', records: [{ name, ttl: 120, data }], chain: [], ttl: 120 };
    }
  }

  test('a cached void answer rejects with one frozen DnsError per entry, code and instanceof intact', async () => {
    const r = new CachedResolver(new Fixed(), { clock: new FakeClock() });
    const errors: unknown[] = [];
    for (let i = 0; i < 3; i++) await r.a('nx.test').catch((e: unknown) => errors.push(e));
    assert.equal(errors.length, 3);
    for (const e of errors) {
      assert.ok(e instanceof DnsError);
      assert.equal(e.code, 'NXDOMAIN');
      assert.equal(e.isVoid, true);
      assert.equal(e.message, 'A nx.test: NXDOMAIN');
    }
    assert.equal(errors[1], errors[2], 'hits share the error');
    assert.ok(Object.isFrozen(errors[1]));
  });

  test('each caller gets its own list, so changing it changes nothing cached', async () => {
    const r = new CachedResolver(new Fixed(), { clock: new FakeClock() });
    const a = await r.a('host.test');
    a.push('203.0.113.9');
    assert.deepEqual(await r.a('host.test'), ['192.0.2.1']);
    const mx = await r.mx('host.test');
    mx[0].exchange = 'evil.test';
    assert.deepEqual(await r.mx('host.test'), [{ preference: 10, exchange: 'mx.test' }]);
  });

  test('the expiry sink hears when each answer served stops being fresh (void answers too, faults not)', async () => {
    const clock = new FakeClock();
    const r = new CachedResolver(new Fixed(), { clock, minTtl: 5, maxTtl: 3600 });
    const seen: number[] = [];
    await r.a('host.test', (t) => seen.push(t));
    clock.advance(20);
    await r.a('host.test', (t) => seen.push(t));
    await r.a('nx.test', (t) => seen.push(t)).catch(() => undefined);
    assert.deepEqual(seen, [1_000_000 + 120_000, 1_000_000 + 120_000, 1_000_000 + 20_000 + 30_000]);
    await r.ptr('not an ip', (t) => seen.push(t)).catch(() => undefined);
    assert.equal(seen.length, 3);
  });
});
