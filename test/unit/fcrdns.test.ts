import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { reverseName } from '../../src/dns/reverse.js';
import { checkFcrdns, checkFcrdnsDomain } from '../../src/checks/fcrdns.js';
import type { Envelope } from '../../src/core/types.js';
import { envelope, makeContext } from '../helpers/check-context.js';

const data: Record<string, unknown> = {
  [reverseName('192.0.2.1')]: [{ PTR: 'out1.mail.example.com' }],
  'out1.mail.example.com': [{ A: '192.0.2.1' }, { AAAA: '2001:db8::1' }],
  [reverseName('2001:db8::1')]: [{ PTR: 'out1.mail.example.com' }],
  // PTR that does not lead back (a home connection claiming a big name)
  [reverseName('198.51.100.7')]: [{ PTR: 'mail.bigisp.com' }, { PTR: 'dyn-7.cable.isp.example' }],
  'mail.bigisp.com': [{ A: '203.0.113.1' }],
  'dyn-7.cable.isp.example': [{ A: '198.51.100.7' }],
  // two names, one timing out
  [reverseName('192.0.2.2')]: [{ PTR: 'a.example.net' }, { PTR: 'b.example.net' }],
  'a.example.net': ['TIMEOUT'],
  'b.example.net': [{ A: '192.0.2.99' }],
  // all names fail
  [reverseName('192.0.2.3')]: [{ PTR: 'x.example.org' }, { PTR: 'y.example.org' }],
  'x.example.org': ['TIMEOUT'],
  'y.example.org': ['SERVFAIL'],
  // PTR lookup itself fails
  [reverseName('192.0.2.4')]: ['SERVFAIL'],
  [reverseName('2001:db8::4')]: ['TIMEOUT'],
};
const twelve: unknown[] = [];
for (let i = 1; i <= 12; i++) {
  twelve.push({ PTR: `h${i}.many.example` });
  data[`h${i}.many.example`] = [{ A: '192.0.2.5' }];
}
data[reverseName('192.0.2.5')] = twelve;
data['h11.many.example'] = [{ A: '192.0.2.5' }];

function run(env: Envelope) {
  const resolver = new ZoneResolver(new Zone(data));
  return { resolver, ev: checkFcrdns(env, makeContext(resolver)) };
}

describe('fcrdns', () => {
  test('IPv4: PTR name leads back → pass', async () => {
    const ev = await run(envelope({ clientIp: '192.0.2.1' })).ev;
    assert.equal(ev.check, 'fcrdns');
    assert.equal(ev.result, 'pass');
    assert.deepEqual(ev.data?.names, ['out1.mail.example.com']);
    assert.deepEqual(ev.data?.ptr, ['out1.mail.example.com']);
  });

  test('IPv6: PTR name leads back through AAAA → pass', async () => {
    const { ev, resolver } = run(envelope({ clientIp: '2001:db8:0:0::1' }));
    const e = await ev;
    assert.equal(e.result, 'pass');
    assert.ok(resolver.queries.includes('AAAA out1.mail.example.com'));
    assert.ok(!resolver.queries.includes('A out1.mail.example.com'));
  });

  test('IPv4-mapped IPv6 client → looked up as IPv4', async () => {
    assert.equal((await run(envelope({ clientIp: '::ffff:192.0.2.1' })).ev).result, 'pass');
  });

  test('only confirmed names are reported', async () => {
    const ev = await run(envelope({ clientIp: '198.51.100.7' })).ev;
    assert.equal(ev.result, 'pass');
    assert.deepEqual(ev.data?.names, ['dyn-7.cable.isp.example']);
    assert.deepEqual(ev.data?.ptr, ['mail.bigisp.com', 'dyn-7.cable.isp.example']);
  });

  test('no PTR → none', async () => {
    const ev = await run(envelope({ clientIp: '203.0.113.200' })).ev;
    assert.equal(ev.result, 'none');
    const v6 = await run(envelope({ clientIp: '2001:db8::dead' })).ev;
    assert.equal(v6.result, 'none');
  });

  test('a failing name is skipped; none confirming → fail', async () => {
    const ev = await run(envelope({ clientIp: '192.0.2.2' })).ev;
    assert.equal(ev.result, 'fail');
    assert.deepEqual(ev.data?.faulted, ['a.example.net']);
  });

  test('all names fail with TIMEOUT/SERVFAIL → temperror', async () => {
    const ev = await run(envelope({ clientIp: '192.0.2.3' })).ev;
    assert.equal(ev.result, 'temperror');
  });

  test('PTR lookup SERVFAIL (IPv4) / TIMEOUT (IPv6) → temperror', async () => {
    assert.equal((await run(envelope({ clientIp: '192.0.2.4' })).ev).result, 'temperror');
    assert.equal((await run(envelope({ clientIp: '2001:db8::4' })).ev).result, 'temperror');
  });

  test('at most 10 names are looked up', async () => {
    const { ev, resolver } = run(envelope({ clientIp: '192.0.2.5' }));
    const e = await ev;
    assert.equal(e.result, 'pass');
    assert.equal((e.data?.names as string[]).length, 10);
    assert.equal(e.data?.truncated, 12);
    assert.equal(resolver.queries.filter((q) => q.startsWith('A ')).length, 10);
  });
});

describe('fcrdns_domain', () => {
  function domainCheck(env: Envelope) {
    const resolver = new ZoneResolver(new Zone(data));
    const ctx = makeContext(resolver, { env, checks: { fcrdns: checkFcrdns } });
    return checkFcrdnsDomain(env, ctx);
  }

  test('confirmed name in the sender organisational domain → match (IPv4 and IPv6)', async () => {
    const v4 = await domainCheck(envelope({ clientIp: '192.0.2.1', from: 'news@example.com' }));
    assert.equal(v4.check, 'fcrdns_domain');
    assert.equal(v4.result, 'match');
    assert.deepEqual(v4.data, { domain: 'example.com', name: 'out1.mail.example.com' });
    const v6 = await domainCheck(envelope({ clientIp: '2001:db8::1', from: 'news@sub.example.com' }));
    assert.equal(v6.result, 'match');
  });

  test('home connection claiming an ISP domain → nomatch', async () => {
    const ev = await domainCheck(envelope({ clientIp: '198.51.100.7', from: 'someone@bigisp.com' }));
    assert.equal(ev.result, 'nomatch');
    assert.match(ev.detail, /dyn-7\.cable\.isp\.example/);
  });

  test('no PTR → nomatch; null sender → none', async () => {
    assert.equal((await domainCheck(envelope({ clientIp: '203.0.113.200', from: 'a@example.com' }))).result, 'nomatch');
    assert.equal((await domainCheck(envelope({ clientIp: '192.0.2.1', from: '' }))).result, 'none');
  });

  test('fcrdns temperror → temperror', async () => {
    assert.equal((await domainCheck(envelope({ clientIp: '192.0.2.4', from: 'a@example.com' }))).result, 'temperror');
  });

  test('a failed lookup of a name in the sender domain → temperror, not nomatch', async () => {
    const ev = await domainCheck(envelope({ clientIp: '192.0.2.2', from: 'a@example.net' }));
    assert.equal(ev.result, 'temperror');
    const other = await domainCheck(envelope({ clientIp: '192.0.2.2', from: 'a@elsewhere.example' }));
    assert.equal(other.result, 'nomatch');
  });

  test('fcrdns evidence is computed once per context', async () => {
    const env = envelope({ clientIp: '192.0.2.1', from: 'a@example.com' });
    const ctx = makeContext(new ZoneResolver(new Zone(data)), { env, checks: { fcrdns: checkFcrdns } });
    await checkFcrdnsDomain(env, ctx);
    await checkFcrdnsDomain(env, ctx);
    assert.deepEqual(ctx.ran, ['fcrdns']);
  });
});
