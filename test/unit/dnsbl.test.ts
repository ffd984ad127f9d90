import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import {
  checkDnsbl,
  dnsblQueryName,
  DnsblHealth,
  isListingCode,
  matchesFilter,
  parseZoneSpec,
  type ZoneHealthState,
} from '../../src/checks/dnsbl.js';
import { envelope, makeContext } from '../helpers/check-context.js';

/** A zone resolver whose answers for names under `hangZone` never come. */
class HangingResolver extends ZoneResolver {
  constructor(
    zone: Zone,
    private readonly hangZone: string,
  ) {
    super(zone);
  }
  override a(name: string): Promise<string[]> {
    if (name.endsWith(this.hangZone)) return new Promise<string[]>(() => {});
    return super.a(name);
  }
}

function listed(ip: string, zone: string, ...codes: string[]): Record<string, unknown> {
  return { [dnsblQueryName(ip, zone)]: codes.map((c) => ({ A: c })) };
}

/** RFC 5782 test points for a healthy zone (IPv4 and IPv6). */
function healthy(zone: string): Record<string, unknown> {
  return { ...listed('127.0.0.2', zone, '127.0.0.2'), [`2.0.0.0.0.0.f.7.f.f.f.f.${'0.'.repeat(20)}${zone}`]: [{ A: '127.0.0.2' }] };
}

const world = {
  ...healthy('zen.example.org'),
  ...listed('192.0.2.1', 'zen.example.org', '127.0.0.2', '127.0.0.4'),
  ...listed('192.0.2.2', 'zen.example.org', '127.0.0.10'), // PBL-like code outside a [2..4] filter
  ...listed('2001:db8::1', 'zen.example.org', '127.0.0.3'),
  ...listed('192.0.2.1', 'bl.example.net', '127.0.0.2'),
  ...listed('192.0.2.3', 'bl.example.net', '127.255.255.254'), // error code: query refused
  ...listed('192.0.2.4', 'bl.example.net', '10.0.0.1', '127.0.0.2'), // stray answer beside a real one
  ...listed('192.0.2.5', 'wl.example.com', '127.0.10.1'),
};

function ctxFor(data: Record<string, unknown> = world, hang?: string) {
  const zone = new Zone(data);
  const resolver = hang ? new HangingResolver(zone, hang) : new ZoneResolver(zone);
  return makeContext(resolver);
}

describe('parseZoneSpec', () => {
  test('postscreen syntax', () => {
    const s = parseZoneSpec('zen.example.org=127.0.0.[2..11]*3');
    assert.equal(s.zone, 'zen.example.org');
    assert.equal(s.weight, 3);
    assert.deepEqual(s.filter, [[[127, 127]], [[0, 0]], [[0, 0]], [[2, 11]]]);
    assert.deepEqual(parseZoneSpec('list.example=127.0.0.2'), {
      zone: 'list.example',
      weight: 1,
      filter: [[[127, 127]], [[0, 0]], [[0, 0]], [[2, 2]]],
      text: 'list.example=127.0.0.2',
    });
    const w = parseZoneSpec('WL.Example.*-2');
    assert.equal(w.zone, 'wl.example');
    assert.equal(w.weight, -2);
    assert.equal(w.filter, undefined);
    assert.deepEqual(parseZoneSpec('x.example=127.0.[0;1].[2;4;10..12]').filter?.[3], [[2, 2], [4, 4], [10, 12]]);
  });

  test('bad text gives a clear error', () => {
    for (const [bad, why] of [
      ['zen', /not a zone name/],
      ['zen.example=127.0.0', /4 octets/],
      ['zen.example=127.0.0.256', /0\.\.255/],
      ['zen.example=127.0.0.[11..2]', /backwards/],
      ['zen.example=127.0.0.[2', /unclosed/],
      ['zen.example*x', /weight/],
      ['zen.example=127.0.0.[]', /empty/],
      ['', /not a zone name/],
    ] as const) {
      assert.throws(() => parseZoneSpec(bad), (e: Error) => e.message.includes(`"${bad}"`) && why.test(e.message), bad);
    }
  });

  test('filters, listing codes, query names', () => {
    const s = parseZoneSpec('z.example=127.0.0.[2..4;9]');
    assert.ok(matchesFilter(s, '127.0.0.3'));
    assert.ok(matchesFilter(s, '127.0.0.9'));
    assert.ok(!matchesFilter(s, '127.0.0.10'));
    assert.ok(isListingCode('127.0.0.2'));
    assert.ok(!isListingCode('127.255.255.254'));
    assert.ok(!isListingCode('10.0.0.2'));
    assert.equal(dnsblQueryName('192.0.2.1', 'z.example'), '1.2.0.192.z.example');
    assert.equal(dnsblQueryName('::ffff:192.0.2.1', 'z.example'), '1.2.0.192.z.example');
    assert.equal(dnsblQueryName('2001:db8::1', 'z.example'), `1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.z.example`);
  });
});

describe('checkDnsbl', () => {
  const zen = parseZoneSpec('zen.example.org=127.0.0.[2..4]*3');
  const bl = parseZoneSpec('bl.example.net');

  test('listed: detail names the zones, data has score and hits', async () => {
    const ev = await checkDnsbl(envelope({ clientIp: '192.0.2.1' }), ctxFor(), { zones: [zen, bl] });
    assert.equal(ev.check, 'dnsbl');
    assert.equal(ev.result, 'listed');
    assert.match(ev.detail, /listed by zen\.example\.org/);
    assert.match(ev.detail, /bl\.example\.net/);
    assert.equal(ev.data?.score, 4);
    assert.deepEqual(ev.data?.hits, [
      { zone: 'zen.example.org', codes: ['127.0.0.2', '127.0.0.4'], weight: 3 },
      { zone: 'bl.example.net', codes: ['127.0.0.2'], weight: 1 },
    ]);
  });

  test('IPv6 (nibbles) and ::ffff:-mapped clients', async () => {
    const v6 = await checkDnsbl(envelope({ clientIp: '2001:db8::1' }), ctxFor(), { zones: [zen] });
    assert.equal(v6.result, 'listed');
    const mapped = await checkDnsbl(envelope({ clientIp: '::ffff:192.0.2.1' }), ctxFor(), { zones: [bl] });
    assert.equal(mapped.result, 'listed');
  });

  test('a code outside the filter does not count', async () => {
    const ev = await checkDnsbl(envelope({ clientIp: '192.0.2.2' }), ctxFor(), { zones: [zen] });
    assert.equal(ev.result, 'unlisted');
    assert.equal(ev.data?.score, 0);
  });

  test('threshold and weights', async () => {
    const ev = await checkDnsbl(envelope({ clientIp: '192.0.2.1' }), ctxFor(), { zones: [bl], threshold: 2 });
    assert.equal(ev.result, 'unlisted');
    assert.equal(ev.data?.score, 1);
    const wl = parseZoneSpec('wl.example.com*-5');
    const both = await checkDnsbl(envelope({ clientIp: '192.0.2.5' }), ctxFor(), { zones: [bl, wl] });
    assert.equal(both.result, 'unlisted');
    assert.equal(both.data?.score, -5);
  });

  test('error codes never count and are recorded', async () => {
    const refused = await checkDnsbl(envelope({ clientIp: '192.0.2.3' }), ctxFor(), { zones: [bl] });
    assert.equal(refused.result, 'unlisted', 'the only zone answered with an error code: it does not count');
    assert.equal(refused.data?.incomplete, true);
    const stray = await checkDnsbl(envelope({ clientIp: '192.0.2.4' }), ctxFor(), { zones: [bl] });
    assert.equal(stray.result, 'listed');
    assert.deepEqual(stray.data?.errors, [{ zone: 'bl.example.net', codes: ['10.0.0.1'] }]);
    assert.deepEqual((stray.data?.hits as Array<{ codes: string[] }>)[0].codes, ['127.0.0.2']);
    const mixed = await checkDnsbl(envelope({ clientIp: '192.0.2.3' }), ctxFor(), { zones: [bl, zen] });
    assert.equal(mixed.result, 'unlisted');
    assert.equal(mixed.data?.incomplete, true);
  });

  test('per-zone timeout: a hanging zone counts as not listed, marks incomplete', async () => {
    const hang = parseZoneSpec('hang.example');
    const t0 = Date.now();
    const ev = await checkDnsbl(envelope({ clientIp: '192.0.2.1' }), ctxFor(world, 'hang.example'), { zones: [bl, hang], timeoutMs: 30 });
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(ev.result, 'listed');
    assert.equal(ev.data?.incomplete, true);
    assert.deepEqual(ev.data?.skipped, [{ zone: 'hang.example', reason: 'timeout after 30 ms' }]);
  });

  test('issue 17: all zones failing, a single zone too → unlisted, incomplete (timeout, SERVFAIL, IPv4 and IPv6)', async () => {
    const hang = parseZoneSpec('hang.example');
    const ev = await checkDnsbl(envelope({ clientIp: '2001:db8::77' }), ctxFor(world, 'hang.example'), { zones: [hang], timeoutMs: 20 });
    assert.equal(ev.result, 'unlisted');
    assert.equal(ev.data?.incomplete, true);
    assert.match(ev.detail, /no list answered; not consulted: hang\.example \(timeout after 20 ms\)/);
    const slow = await checkDnsbl(envelope({ clientIp: '192.0.2.9' }), ctxFor({ [dnsblQueryName('192.0.2.9', 'slow.example')]: ['TIMEOUT'] }), {
      zones: [parseZoneSpec('slow.example')],
    });
    assert.equal(slow.result, 'unlisted');
    const servfail = await checkDnsbl(
      envelope({ clientIp: '192.0.2.9' }),
      ctxFor({ [dnsblQueryName('192.0.2.9', 'sf.example')]: ['SERVFAIL'] }),
      { zones: [parseZoneSpec('sf.example')] },
    );
    assert.equal(servfail.result, 'unlisted');
    assert.equal(servfail.data?.incomplete, true);
  });

  test('listed, but a failed allow zone could have lowered the score → temperror', async () => {
    const wl = parseZoneSpec('hang.example*-5');
    const ev = await checkDnsbl(envelope({ clientIp: '192.0.2.1' }), ctxFor(world, 'hang.example'), { zones: [bl, wl], timeoutMs: 20 });
    assert.equal(ev.result, 'temperror');
  });

  test('dnswl: own check name', async () => {
    const wl = parseZoneSpec('wl.example.com=127.0.[0..255].[1..3]');
    const ev = await checkDnsbl(envelope({ clientIp: '192.0.2.5' }), ctxFor(), { zones: [wl], name: 'dnswl' });
    assert.equal(ev.check, 'dnswl');
    assert.equal(ev.result, 'listed');
  });

  test('zones out of use are skipped with the reason', async () => {
    const ctx = ctxFor();
    const dead = parseZoneSpec('dead.example');
    const health = new DnsblHealth([zen, dead]);
    await health.probe(ctx.resolver);
    const ev = await checkDnsbl(envelope({ clientIp: '192.0.2.1' }), ctx, { zones: [zen, dead], health });
    assert.equal(ev.result, 'listed');
    const skipped = ev.data?.skipped as Array<{ zone: string; reason: string }>;
    assert.equal(skipped.length, 1);
    assert.equal(skipped[0].zone, 'dead.example');
    assert.match(skipped[0].reason, /out of use: does not list test point 127\.0\.0\.2/);
  });
});

describe('DnsblHealth', () => {
  const everything = {
    ...listed('127.0.0.2', 'all.example', '127.0.0.2'),
    ...listed('127.0.0.1', 'all.example', '127.0.0.2'),
  };
  const v6everything: Record<string, unknown> = {
    ...healthy('all6.example'),
    [`1.0.0.0.0.0.f.7.f.f.f.f.${'0.'.repeat(20)}all6.example`]: [{ A: '127.0.0.2' }],
  };
  const data: Record<string, unknown> = {
    ...healthy('good.example'),
    ...listed('127.0.0.2', 'v4only.example', '127.0.0.2'),
    ...everything,
    ...v6everything,
    ...listed('127.0.0.2', 'refused.example', '127.255.255.254'),
    'slowzone.example': ['TIMEOUT'],
    [dnsblQueryName('127.0.0.2', 'slowzone.example')]: ['TIMEOUT'],
  };

  test('RFC 5782 probes decide usability, with reasons', async () => {
    const changes: ZoneHealthState[] = [];
    const h = new DnsblHealth(['good.example', 'v4only.example', 'all.example', 'all6.example', 'dead.example', 'refused.example', 'slowzone.example'], {
      clock: { now: () => 1000 },
      onChange: (s) => changes.push(s),
    });
    assert.ok(h.isUsable('dead.example'), 'unprobed zones are usable');
    await h.probe(new ZoneResolver(new Zone(data)));
    assert.ok(h.isUsable('good.example') && h.isUsable('good.example', 6));
    assert.equal(h.state('good.example')?.ipv6TestPoint, true);
    assert.ok(h.isUsable('v4only.example') && h.isUsable('v4only.example', 6));
    assert.equal(h.state('v4only.example')?.ipv6TestPoint, false);
    assert.ok(!h.isUsable('all.example'));
    assert.match(h.reason('all.example') ?? '', /lists 127\.0\.0\.1.*lists everything/);
    assert.ok(h.isUsable('all6.example') && !h.isUsable('all6.example', 6));
    assert.match(h.reason('all6.example', 6) ?? '', /::FFFF:7F00:1/);
    assert.ok(!h.isUsable('dead.example'));
    assert.match(h.reason('dead.example') ?? '', /does not list test point/);
    assert.ok(!h.isUsable('refused.example'));
    assert.match(h.reason('refused.example') ?? '', /127\.255\.255\.254/);
    assert.ok(!h.isUsable('slowzone.example'));
    assert.match(h.reason('slowzone.example') ?? '', /TIMEOUT|timeout/);
    assert.equal(h.state('good.example')?.checkedAt, 1000);
    assert.deepEqual(changes.map((c) => c.zone).sort(), ['all.example', 'all6.example', 'dead.example', 'refused.example', 'slowzone.example']);
  });

  test('a zone that recovers comes back into use', async () => {
    const changes: ZoneHealthState[] = [];
    const h = new DnsblHealth([parseZoneSpec('flaky.example')], { onChange: (s) => changes.push(s) });
    await h.probe(new ZoneResolver(new Zone({})));
    assert.ok(!h.isUsable('flaky.example'));
    await h.probe(new ZoneResolver(new Zone(healthy('flaky.example'))));
    assert.ok(h.isUsable('flaky.example'));
    assert.equal(h.reason('flaky.example'), undefined);
    assert.deepEqual(changes.map((c) => c.usable), [false, true]);
  });
});
