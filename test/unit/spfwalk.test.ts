// The SPF walker against a real DNS server on loopback (the fixture) through
// the production resolver: every mechanism, qualifiers, unwalkable terms,
// loops, failures, limits and bounded parallel queries.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createResolver, type CachedResolver } from '../../src/dns/index.js';
import type { Resolver } from '../../src/dns/types.js';
import { walkSpf, type WalkResult } from '../../src/intel/spfwalk/walk.js';
import { mergeCidrs } from '../../src/intel/spfwalk/merge.js';
import { startFixtureDns, zoneFromYaml, type FixtureDns } from '../helpers/fixture-dns.js';

const WORLD = `
example.com:
  - TXT: "v=spf1 ip4:192.0.2.0/25 ip4:192.0.2.128/25 ip6:2001:DB8:1:0::/48 include:_spf.example.com a mx a:host.example.net/24 mx:mail.example.org//64 a:www.%{d} -ip4:198.51.100.1 ~include:soft.example.com ?a:neutral.example.com ptr exists:%{i}.e.example.com include:%{l}.x.example.com -all"
  - A: 198.51.100.10
  - AAAA: 2001:db8:3::10
  - MX: [10, mx1.example.com]
  - MX: [20, mx2.example.com]
_spf.example.com:
  - TXT: "v=spf1 ip4:203.0.113.7 redirect=_redir.example.com"
_redir.example.com:
  - TXT: "v=spf1 ip6:2001:db8:2::1"
mx1.example.com:
  - A: 198.51.100.20
mx2.example.com:
  - AAAA: 2001:db8:4::20
host.example.net:
  - A: 198.51.100.77
  - AAAA: 2001:db8:6::1
mail.example.org:
  - MX: [10, mx.mail.example.org]
mx.mail.example.org:
  - A: 203.0.113.99
  - AAAA: 2001:db8:5::1:2
www.example.com:
  - A: 198.51.100.200
soft.example.com:
  - TXT: "v=spf1 ip4:10.9.9.9"
neutral.example.com:
  - A: 10.8.8.8
loop.example:
  - TXT: "v=spf1 include:loop2.example ip4:192.0.2.1"
loop2.example:
  - TXT: "v=spf1 redirect=loop.example"
broken.example:
  - SERVFAIL
nospf.example:
  - TXT: "google-site-verification=abc"
twospf.example:
  - TXT: "v=spf1 -all"
  - TXT: "v=spf1 ip4:192.0.2.9"
badsyntax.example:
  - TXT: "v=spf1 ip4:192.0.2.300"
plusall.example:
  - TXT: "v=spf1 ip4:192.0.2.44 +all"
wide.example:
  - TXT: "v=spf1 ip4:0.0.0.0/1 ip6:2000::/3 a/4"
  - A: 192.0.2.3
partial.example:
  - TXT: "v=spf1 ip4:192.0.2.50 include:broken.example a:gone.example"
redirect-ignored.example:
  - TXT: "v=spf1 ip4:192.0.2.60 ?all redirect=_spf.example.com"
nullmx.example:
  - TXT: "v=spf1 mx a"
  - MX: [0, "."]
`;

function chainWorld(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const next = i + 1 < n ? ` include:c${i + 1}.chain.example` : '';
    lines.push(`c${i}.chain.example:`, `  - TXT: "v=spf1 ip4:10.0.${i}.0/24${next}"`);
  }
  return lines.join('\n');
}

let fx: FixtureDns;
let resolver: CachedResolver;

before(async () => {
  fx = await startFixtureDns(zoneFromYaml(`${WORLD}\n${chainWorld(15)}`));
  resolver = createResolver({ servers: [fx.server], timeoutMs: 500, retries: 0 });
});

after(async () => {
  resolver.close();
  await fx.close();
});

const cidrsOf = (r: WalkResult, domain?: string) => r.networks.filter((n) => !domain || n.domain === domain).map((n) => n.cidr);
const viaOf = (r: WalkResult, cidr: string) => r.networks.find((n) => n.cidr === cidr)?.via;

describe('walkSpf over a real DNS server', () => {
  let r: WalkResult;
  before(async () => {
    r = await walkSpf(['Example.COM.'], resolver);
  });

  test('every authorising mechanism is followed, networks normalised and sorted', () => {
    assert.deepEqual(cidrsOf(r), [
      '192.0.2.0/25', // ip4
      '192.0.2.128/25', // ip4
      '198.51.100.0/24', // a:host.example.net/24 (198.51.100.77)
      '198.51.100.10/32', // a
      '198.51.100.20/32', // mx → mx1
      '198.51.100.200/32', // a:www.%{d}
      '203.0.113.7/32', // include → ip4
      '203.0.113.99/32', // mx:mail.example.org//64 → A keeps /32
      '2001:db8:1::/48', // ip6 (written upper case, with a zero group)
      '2001:db8:2::1/128', // include → redirect → ip6
      '2001:db8:3::10/128', // a (AAAA)
      '2001:db8:4::20/128', // mx → mx2 (AAAA)
      '2001:db8:5::/64', // mx:…//64 → AAAA as /64
      '2001:db8:6::1/128', // a:host/24 → AAAA keeps /128
    ]);
    assert.ok(r.networks.every((n) => n.domain === 'example.com'));
  });

  test('via names the path of terms', () => {
    assert.equal(viaOf(r, '192.0.2.0/25'), 'ip4:192.0.2.0/25');
    assert.equal(viaOf(r, '203.0.113.7/32'), 'include:_spf.example.com → ip4:203.0.113.7');
    assert.equal(viaOf(r, '2001:db8:2::1/128'), 'include:_spf.example.com → redirect=_redir.example.com → ip6:2001:db8:2::1');
    assert.equal(viaOf(r, '198.51.100.20/32'), 'mx → mx1.example.com');
    assert.equal(viaOf(r, '2001:db8:5::/64'), 'mx:mail.example.org//64 → mx.mail.example.org');
    assert.equal(viaOf(r, '198.51.100.0/24'), 'a:host.example.net/24');
    assert.equal(viaOf(r, '198.51.100.200/32'), 'a:www.%{d}');
  });

  test('-, ~ and ? terms are noted, not followed; -all is silent', () => {
    assert.deepEqual(
      r.skipped.map((s) => s.term),
      ['-ip4:198.51.100.1', '?a:neutral.example.com', '~include:soft.example.com'],
    );
    assert.match(r.skipped[0].reason, /fail/);
    assert.ok(!fx.queries.includes('TXT soft.example.com'), 'a ~include target is not looked up');
    assert.ok(!fx.queries.includes('A neutral.example.com'));
    assert.ok(!cidrsOf(r).includes('10.9.9.9/32'));
  });

  test('ptr, exists and client/sender macros are reported as unwalkable', () => {
    const terms = r.unwalkable.map((u) => u.term);
    assert.deepEqual(terms, ['exists:%{i}.e.example.com', 'include:%{l}.x.example.com', 'ptr']);
    assert.match(r.unwalkable.find((u) => u.term === 'exists:%{i}.e.example.com')!.reason, /per client/);
    assert.match(r.unwalkable.find((u) => u.term === 'include:%{l}.x.example.com')!.reason, /%\{l\}/);
    assert.ok(r.unwalkable.every((u) => u.domain === 'example.com' && u.root === 'example.com'));
  });

  test('a clean walk has no errors and counts its lookups', () => {
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.loops, []);
    // include, redirect, a, mx, a:host, mx:mail, a:www.%{d}
    assert.deepEqual(r.domains, [{ domain: 'example.com', lookups: 7, networks: 14, status: 'ok' }]);
  });

  test('merged, the walk gives the fewest networks', () => {
    assert.deepEqual(mergeCidrs(cidrsOf(r)), [
      '192.0.2.0/24',
      '198.51.100.0/24',
      '203.0.113.7/32',
      '203.0.113.99/32',
      '2001:db8:1::/48',
      '2001:db8:2::1/128',
      '2001:db8:3::10/128',
      '2001:db8:4::20/128',
      '2001:db8:5::/64',
      '2001:db8:6::1/128',
    ]);
  });
});

describe('walkSpf problems', () => {
  test('an include/redirect loop is detected and the networks found are kept', async () => {
    const r = await walkSpf(['loop.example'], resolver);
    assert.deepEqual(r.loops, [{ domain: 'loop.example', root: 'loop.example', chain: ['loop.example', 'loop2.example', 'loop.example'] }]);
    assert.deepEqual(cidrsOf(r), ['192.0.2.1/32']);
    assert.equal(r.domains[0].status, 'ok');
  });

  test('SERVFAIL is a temporary error; no record, two records and bad syntax are permanent', async () => {
    const r = await walkSpf(['broken.example', 'nospf.example', 'twospf.example', 'badsyntax.example', 'missing.example'], resolver);
    const byDomain = Object.fromEntries(r.errors.map((e) => [e.domain, e]));
    assert.equal(byDomain['broken.example'].temporary, true);
    assert.match(byDomain['broken.example'].reason, /SERVFAIL/);
    assert.equal(byDomain['nospf.example'].temporary, false);
    assert.match(byDomain['nospf.example'].reason, /no SPF record/);
    assert.match(byDomain['twospf.example'].reason, /2 SPF records/);
    assert.match(byDomain['badsyntax.example'].reason, /bad SPF record/);
    assert.match(byDomain['missing.example'].reason, /NXDOMAIN/);
    assert.deepEqual(r.networks, []);
    assert.ok(r.domains.every((d) => d.status === 'failed'));
  });

  test('a failing include makes the walk partial; a void a: host is no error', async () => {
    const r = await walkSpf(['partial.example'], resolver);
    assert.deepEqual(cidrsOf(r), ['192.0.2.50/32']);
    assert.deepEqual(
      r.errors.map((e) => [e.domain, e.root, e.temporary]),
      [['broken.example', 'partial.example', true]],
    );
    assert.equal(r.domains[0].status, 'partial');
  });

  test('+all and networks wider than the limits are reported, not listed', async () => {
    const r = await walkSpf(['plusall.example', 'wide.example'], resolver);
    assert.deepEqual(cidrsOf(r), ['192.0.2.44/32']);
    assert.deepEqual(
      r.unwalkable.map((u) => u.term),
      ['+all', 'a/4', 'ip4:0.0.0.0/1', 'ip6:2000::/3'],
    );
    assert.match(r.unwalkable.find((u) => u.term === 'a/4')!.reason, /192\.0\.0\.0\/4 is wider than \/8/);
  });

  test('redirect= is ignored when the record has an all mechanism; a null MX names no host', async () => {
    const r = await walkSpf(['redirect-ignored.example', 'nullmx.example'], resolver);
    assert.deepEqual(cidrsOf(r), ['192.0.2.60/32']);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.skipped, []);
  });

  test('lookups per domain are bounded (and reported)', async () => {
    const r = await walkSpf(['c0.chain.example'], resolver, { maxLookupsPerDomain: 5 });
    assert.deepEqual(cidrsOf(r), ['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24', '10.0.3.0/24', '10.0.4.0/24', '10.0.5.0/24']);
    assert.equal(r.domains[0].lookups, 5);
    assert.equal(r.domains[0].status, 'partial');
    assert.match(r.errors[0].reason, /lookup limit of 5 reached: 1 term\(s\) not followed \(first: include:c6.chain.example in c5.chain.example\)/);
  });

  test('include depth is bounded', async () => {
    const r = await walkSpf(['c0.chain.example'], resolver, { maxDepth: 3 });
    assert.equal(cidrsOf(r).length, 4);
    assert.match(r.errors[0].reason, /nesting deeper than 3/);
  });

  test('the default limits walk a chain of 15 includes', async () => {
    const r = await walkSpf(['c0.chain.example'], resolver, { maxDepth: 20 });
    assert.equal(cidrsOf(r).length, 15);
    assert.deepEqual(r.errors, []);
  });
});

describe('walkSpf parallelism', () => {
  test('queries run in parallel, never more than the concurrency at once', async () => {
    let inFlight = 0;
    let peak = 0;
    const wrap =
      <A extends unknown[], T>(f: (...a: A) => Promise<T>) =>
      async (...a: A): Promise<T> => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        try {
          await new Promise((r) => setTimeout(r, 2));
          return await f(...a);
        } finally {
          inFlight--;
        }
      };
    const fresh = createResolver({ servers: [fx.server], timeoutMs: 500, retries: 0 });
    const counted: Resolver = {
      a: wrap((n: string) => fresh.a(n)),
      aaaa: wrap((n: string) => fresh.aaaa(n)),
      txt: wrap((n: string) => fresh.txt(n)),
      mx: wrap((n: string) => fresh.mx(n)),
      ptr: wrap((n: string) => fresh.ptr(n)),
    };
    try {
      const r = await walkSpf(['example.com', 'loop.example', 'partial.example', 'wide.example', 'c0.chain.example'], counted, { concurrency: 3 });
      assert.ok(r.networks.length > 20);
      assert.equal(peak, 3);
    } finally {
      fresh.close();
    }
  });

  test('several domains sharing an include fetch it once', async () => {
    const fresh = createResolver({ servers: [fx.server], timeoutMs: 500, retries: 0, cache: { maxEntries: 1 } });
    const before = fx.queries.length;
    try {
      const r = await walkSpf(['loop.example', 'loop2.example'], fresh);
      assert.equal(fx.queries.slice(before).filter((q) => q === 'TXT loop2.example').length, 1);
      assert.equal(r.loops.length, 2);
    } finally {
      fresh.close();
    }
  });
});
