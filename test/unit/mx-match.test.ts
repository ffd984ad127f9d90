import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { checkMxMatch } from '../../src/checks/mx-match.js';
import { envelope, makeContext } from '../helpers/check-context.js';

function world(data: Record<string, unknown>) {
  const resolver = new ZoneResolver(new Zone(data));
  return { resolver, ctx: makeContext(resolver) };
}

const base = {
  'example.com': [{ MX: [10, 'mx1.example.com'] }, { MX: [20, 'mx2.example.com'] }],
  'mx1.example.com': [{ A: '192.0.2.10' }, { AAAA: '2001:db8::10' }],
  'mx2.example.com': [{ A: '192.0.2.20' }, { AAAA: '2001:db8::20' }],
  'implicit.example': [{ A: '192.0.2.30' }, { AAAA: '2001:db8::30' }],
  'nullmx.example': [{ MX: [0, '.'] }, { A: '192.0.2.40' }],
  'slow.example': ['TIMEOUT'],
  'servfail.example': ['SERVFAIL'],
  'halfbroken.example': [{ MX: [10, 'mx1.halfbroken.example'] }, { MX: [20, 'mx2.halfbroken.example'] }],
  'mx1.halfbroken.example': ['SERVFAIL'],
  'mx2.halfbroken.example': [{ A: '192.0.2.50' }],
};

describe('mx match', () => {
  test('IPv4 client that is an MX host matches', async () => {
    const { ctx } = world(base);
    const ev = await checkMxMatch(envelope({ clientIp: '192.0.2.20', from: 'a@example.com' }), ctx);
    assert.equal(ev.check, 'mx');
    assert.equal(ev.result, 'match');
    assert.equal(ev.data?.host, 'mx2.example.com');
    assert.equal(ev.data?.domain, 'example.com');
  });

  test('IPv6 client matches through AAAA, and queries only AAAA', async () => {
    const { ctx, resolver } = world(base);
    const ev = await checkMxMatch(envelope({ clientIp: '2001:DB8:0::10', from: 'a@Example.COM' }), ctx);
    assert.equal(ev.result, 'match');
    assert.equal(ev.data?.host, 'mx1.example.com');
    assert.ok(!resolver.queries.some((q) => q.startsWith('A ')), resolver.queries.join(','));
  });

  test('IPv4-mapped IPv6 client is treated as IPv4', async () => {
    const { ctx } = world(base);
    const ev = await checkMxMatch(envelope({ clientIp: '::ffff:192.0.2.10', from: 'a@example.com' }), ctx);
    assert.equal(ev.result, 'match');
  });

  test('other client: nomatch naming the MX hosts', async () => {
    const { ctx } = world(base);
    const ev = await checkMxMatch(envelope({ clientIp: '198.51.100.1', from: 'a@example.com' }), ctx);
    assert.equal(ev.result, 'nomatch');
    assert.match(ev.detail, /mx1\.example\.com, mx2\.example\.com/);
  });

  test('implicit MX: no MX records, the domain own A/AAAA (IPv4 and IPv6)', async () => {
    const { ctx } = world(base);
    const v4 = await checkMxMatch(envelope({ clientIp: '192.0.2.30', from: 'a@implicit.example' }), ctx);
    assert.equal(v4.result, 'match');
    assert.equal(v4.data?.implicit, true);
    const v6 = await checkMxMatch(envelope({ clientIp: '2001:db8::30', from: 'a@implicit.example' }), ctx);
    assert.equal(v6.result, 'match');
    const no = await checkMxMatch(envelope({ clientIp: '2001:db8::31', from: 'a@implicit.example' }), ctx);
    assert.equal(no.result, 'nomatch');
  });

  test('null MX (RFC 7505) → none', async () => {
    const { ctx } = world(base);
    const ev = await checkMxMatch(envelope({ clientIp: '192.0.2.40', from: 'a@nullmx.example' }), ctx);
    assert.equal(ev.result, 'none');
    assert.equal(ev.data?.nullMx, true);
    assert.match(ev.detail, /domain accepts no mail \(null MX\)/);
  });

  test('null sender, no sender, no domain → none', async () => {
    const { ctx } = world(base);
    assert.equal((await checkMxMatch(envelope({ clientIp: '192.0.2.10', from: '' }), ctx)).result, 'none');
    assert.equal((await checkMxMatch(envelope({ clientIp: '192.0.2.10' }), ctx)).result, 'none');
    assert.equal((await checkMxMatch(envelope({ clientIp: '192.0.2.10', from: 'postmaster' }), ctx)).result, 'none');
  });

  test('non-existent domain → nomatch', async () => {
    const { ctx } = world(base);
    const ev = await checkMxMatch(envelope({ clientIp: '192.0.2.10', from: 'a@nowhere.example' }), ctx);
    assert.equal(ev.result, 'nomatch');
    assert.match(ev.detail, /NXDOMAIN/);
  });

  test('MX lookup timeout / SERVFAIL → temperror', async () => {
    const { ctx } = world(base);
    assert.equal((await checkMxMatch(envelope({ clientIp: '192.0.2.10', from: 'a@slow.example' }), ctx)).result, 'temperror');
    assert.equal((await checkMxMatch(envelope({ clientIp: '2001:db8::1', from: 'a@servfail.example' }), ctx)).result, 'temperror');
  });

  test('a failing MX host lookup: temperror unless another host matches', async () => {
    const { ctx } = world(base);
    const miss = await checkMxMatch(envelope({ clientIp: '192.0.2.99', from: 'a@halfbroken.example' }), ctx);
    assert.equal(miss.result, 'temperror');
    assert.match(miss.detail, /mx1\.halfbroken\.example: SERVFAIL/);
    const hit = await checkMxMatch(envelope({ clientIp: '192.0.2.50', from: 'a@halfbroken.example' }), ctx);
    assert.equal(hit.result, 'match');
  });

  test('the number of MX names resolved is capped', async () => {
    const data: Record<string, unknown> = { 'many.example': [] as unknown[] };
    for (let i = 1; i <= 12; i++) {
      (data['many.example'] as unknown[]).push({ MX: [i, `mx${i}.many.example`] });
      data[`mx${i}.many.example`] = [{ A: `192.0.2.${100 + i}` }];
    }
    const { ctx, resolver } = world(data);
    const ev = await checkMxMatch(envelope({ clientIp: '192.0.2.112', from: 'a@many.example' }), ctx);
    assert.equal(ev.result, 'nomatch');
    assert.equal(ev.data?.truncated, 12);
    assert.equal(resolver.queries.filter((q) => q.startsWith('A ')).length, 10);
    const three = await checkMxMatch(envelope({ clientIp: '192.0.2.103', from: 'a@many.example' }), makeContext(resolver), { maxNames: 2 });
    assert.equal(three.result, 'nomatch');
    const first = await checkMxMatch(envelope({ clientIp: '192.0.2.101', from: 'a@many.example' }), makeContext(resolver), { maxNames: 2 });
    assert.equal(first.result, 'match');
  });
});
