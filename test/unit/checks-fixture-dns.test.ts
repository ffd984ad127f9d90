// Every sender check once more, through a real DNS server on loopback (the
// fixture) and the production resolver (createResolver), IPv4 and IPv6, as
// the program runs them: wire format, TXT splitting, NXDOMAIN vs NODATA,
// timeouts.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone } from '../../src/dns/zone.js';
import { reverseName } from '../../src/dns/reverse.js';
import { createResolver, type CachedResolver } from '../../src/dns/index.js';
import { checkMxMatch } from '../../src/checks/mx-match.js';
import { checkFcrdns, checkFcrdnsDomain } from '../../src/checks/fcrdns.js';
import { checkHelo } from '../../src/checks/helo.js';
import { checkNullSender, checkRcptFqdn, checkSenderDomain } from '../../src/checks/rfc.js';
import { checkDnsbl, dnsblQueryName, DnsblHealth, parseZoneSpec } from '../../src/checks/dnsbl.js';
import { checkList, DomainList, IpList } from '../../src/checks/lists.js';
import { checkDkim, checkDkimDomain } from '../../src/checks/dkim.js';
import type { Envelope } from '../../src/core/types.js';
import { startFixtureDns, type FixtureDns } from '../helpers/fixture-dns.js';
import { envelope, fixedClock, makeContext } from '../helpers/check-context.js';
import { loadDkimVectors } from '../helpers/dkim-vectors.js';

const V4 = '192.0.2.25';
const V6 = '2001:db8::25';
const HOME = '198.51.100.7';

const vectors = loadDkimVectors();
const rfc8463 = vectors.find((v) => v.name.startsWith('mailauth-rfc8463'));
const stalwart002 = vectors.find((v) => v.name.endsWith('002.txt'));

const world: Record<string, unknown> = {
  'example.com': [{ MX: [10, 'mx.example.com'] }, { A: V4 }],
  'mx.example.com': [{ A: V4 }, { AAAA: V6 }],
  [reverseName(V4)]: [{ PTR: 'mx.example.com' }],
  [reverseName(V6)]: [{ PTR: 'mx.example.com' }],
  [reverseName(HOME)]: [{ PTR: 'dyn-7.cable.isp.example' }],
  'dyn-7.cable.isp.example': [{ A: HOME }],
  'bigisp.com': [{ MX: [10, 'mx.bigisp.com'] }],
  'mx.bigisp.com': [{ A: '203.0.113.1' }],
  'nullmx.example': [{ MX: [0, '.'] }],
  'slow.example': ['TIMEOUT'],
  'servfail.example': ['SERVFAIL'],
  ...Object.fromEntries([
    [dnsblQueryName('127.0.0.2', 'zen.example.org'), [{ A: '127.0.0.2' }]],
    [dnsblQueryName(HOME, 'zen.example.org'), [{ A: '127.0.0.11' }, { A: '127.0.0.4' }]],
    [dnsblQueryName('2001:db8::bad', 'zen.example.org'), [{ A: '127.0.0.3' }]],
    [dnsblQueryName('127.0.0.2', 'wl.example.net'), [{ A: '127.0.0.2' }]],
    [dnsblQueryName(V4, 'wl.example.net'), [{ A: '127.0.10.2' }]],
    [dnsblQueryName(V4, 'slow.example'), ['TIMEOUT']],
  ]),
  ...rfc8463?.zone,
  ...stalwart002?.zone,
};

let dns: FixtureDns;
let resolver: CachedResolver;

before(async () => {
  dns = await startFixtureDns(new Zone(world));
  resolver = createResolver({ servers: [dns.server], timeoutMs: 150, retries: 0 });
});
after(async () => {
  resolver?.close();
  await dns?.close();
});

function ctxFor(env: Envelope, clockMs?: number) {
  return makeContext(resolver, {
    env,
    clock: clockMs === undefined ? undefined : fixedClock(clockMs),
    checks: { fcrdns: checkFcrdns, dkim: checkDkim },
  });
}

describe('checks through the fixture DNS server', () => {
  test('mx: IPv4 and IPv6 match, home PC nomatch, null MX, timeout', async () => {
    const e4 = envelope({ clientIp: V4, from: 'a@example.com' });
    assert.equal((await checkMxMatch(e4, ctxFor(e4))).result, 'match');
    const e6 = envelope({ clientIp: V6, from: 'a@example.com' });
    assert.equal((await checkMxMatch(e6, ctxFor(e6))).result, 'match');
    const home = envelope({ clientIp: HOME, from: 'a@bigisp.com' });
    assert.equal((await checkMxMatch(home, ctxFor(home))).result, 'nomatch');
    const nm = envelope({ clientIp: V4, from: 'a@nullmx.example' });
    assert.equal((await checkMxMatch(nm, ctxFor(nm))).data?.nullMx, true);
    const slow = envelope({ clientIp: V4, from: 'a@slow.example' });
    assert.equal((await checkMxMatch(slow, ctxFor(slow))).result, 'temperror');
  });

  test('fcrdns and fcrdns_domain: IPv4 and IPv6', async () => {
    for (const ip of [V4, V6]) {
      const env = envelope({ clientIp: ip, from: 'a@example.com' });
      const ctx = ctxFor(env);
      const fc = await checkFcrdns(env, ctx);
      assert.equal(fc.result, 'pass', ip);
      assert.deepEqual(fc.data?.names, ['mx.example.com']);
      assert.equal((await checkFcrdnsDomain(env, ctx)).result, 'match', ip);
    }
    const home = envelope({ clientIp: HOME, from: 'a@bigisp.com' });
    assert.equal((await checkFcrdnsDomain(home, ctxFor(home))).result, 'nomatch');
    const none = envelope({ clientIp: '2001:db8::dead' });
    assert.equal((await checkFcrdns(none, ctxFor(none))).result, 'none');
  });

  test('helo: resolves to client (IPv4, IPv6), literal, timeout', async () => {
    for (const ip of [V4, V6]) {
      const env = envelope({ clientIp: ip, helo: 'mx.example.com' });
      assert.equal((await checkHelo(env, ctxFor(env))).result, 'pass', ip);
    }
    const other = envelope({ clientIp: HOME, helo: 'mx.example.com' });
    assert.equal((await checkHelo(other, ctxFor(other))).result, 'neutral');
    const lit = envelope({ clientIp: V6, helo: `[IPv6:${V6}]` });
    assert.equal((await checkHelo(lit, ctxFor(lit))).result, 'pass');
    const slow = envelope({ clientIp: V4, helo: 'slow.example' });
    assert.equal((await checkHelo(slow, ctxFor(slow))).result, 'temperror');
  });

  test('sender_domain, rcpt_fqdn, null_sender', async () => {
    const ok = envelope({ clientIp: V6, from: 'a@bigisp.com', rcpts: ['b@example.com'] });
    assert.equal((await checkSenderDomain(ok, ctxFor(ok))).result, 'pass');
    assert.equal((await checkRcptFqdn(ok)).result, 'pass');
    assert.equal((await checkNullSender(ok)).result, 'nomatch');
    const unknown = envelope({ clientIp: V4, from: 'a@nowhere.example' });
    const ev = await checkSenderDomain(unknown, ctxFor(unknown));
    assert.equal(ev.result, 'fail');
    assert.equal(ev.data?.reason, 'unknown-domain');
    const sf = envelope({ clientIp: V4, from: 'a@servfail.example' });
    assert.equal((await checkSenderDomain(sf, ctxFor(sf))).result, 'temperror');
  });

  test('dnsbl and dnswl: IPv4 and IPv6, health probe, listing zone named', async () => {
    const zones = [parseZoneSpec('zen.example.org=127.0.0.[2..11]'), parseZoneSpec('dead.example.org')];
    const health = new DnsblHealth(zones, { timeoutMs: 300 });
    await health.probe(resolver);
    assert.ok(health.isUsable('zen.example.org'));
    assert.ok(!health.isUsable('dead.example.org'));
    const home = envelope({ clientIp: HOME });
    const ev = await checkDnsbl(home, ctxFor(home), { zones, health, timeoutMs: 300 });
    assert.equal(ev.result, 'listed');
    assert.match(ev.detail, /listed by zen\.example\.org/);
    assert.equal(ev.data?.score, 1, 'one zone with two codes adds its weight once');
    assert.deepEqual((ev.data?.hits as Array<{ codes: string[] }>)[0].codes.sort(), ['127.0.0.11', '127.0.0.4']);
    const v6 = envelope({ clientIp: '2001:db8::bad' });
    assert.equal((await checkDnsbl(v6, ctxFor(v6), { zones, health })).result, 'listed');
    const clean = envelope({ clientIp: V6 });
    assert.equal((await checkDnsbl(clean, ctxFor(clean), { zones, health })).result, 'unlisted');
    const wl = envelope({ clientIp: V4 });
    const w = await checkDnsbl(wl, ctxFor(wl), { zones: [parseZoneSpec('wl.example.net=127.0.[0..255].[2..3]')], name: 'dnswl' });
    assert.equal(w.check, 'dnswl');
    assert.equal(w.result, 'listed');
    const slow = await checkDnsbl(wl, ctxFor(wl), { zones: [parseZoneSpec('slow.example')], timeoutMs: 300 });
    // The only zone not answering does not count (issue 17): unlisted, marked incomplete.
    assert.equal(slow.result, 'unlisted');
    assert.equal(slow.data?.incomplete, true);
  });

  test('lists: client by IP and by confirmed name', async () => {
    const ips = IpList.from(['2001:db8::/64']);
    const domains = DomainList.from(['.example.com']);
    const env = envelope({ clientIp: V4 });
    const byName = await checkList(env, ctxFor(env), { name: 'allow', ips, domains, field: 'client' });
    assert.equal(byName.result, 'listed');
    assert.equal(byName.data?.matched, 'domain');
    const env6 = envelope({ clientIp: V6 });
    assert.equal((await checkList(env6, ctxFor(env6), { name: 'allow', ips, field: 'client' })).result, 'listed');
  });

  test('dkim and dkim_domain: conformance messages through real DNS (long TXT split)', async () => {
    assert.ok(rfc8463 && stalwart002);
    const env = envelope({ clientIp: V4, from: 'joe@football.example.com', message: rfc8463.message });
    const ctx = ctxFor(env);
    const ev = await checkDkim(env, ctx);
    assert.equal(ev.result, 'pass', ev.detail);
    assert.equal((ev.data?.signatures as unknown[]).length, 2);
    assert.equal((await checkDkimDomain(env, ctx)).result, 'match');
    const e2 = envelope({ clientIp: V6, from: 'joe@example.com', message: stalwart002.message });
    assert.equal((await checkDkim(e2, ctxFor(e2, stalwart002.clockMs))).result, 'pass');
  });
});
