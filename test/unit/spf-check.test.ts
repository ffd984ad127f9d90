// checkHost() details the conformance suite does not pin down, and the
// checkSpf() policy check's Evidence.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { checkHost } from '../../src/checks/spf/evaluate.js';
import { checkSpf, spfIdentity } from '../../src/checks/spf.js';
import { envelope, fixedClock, makeContext } from '../helpers/check-context.js';

function world(data: Record<string, unknown>): ZoneResolver {
  return new ZoneResolver(new Zone(data));
}

const base = {
  'example.com': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all exp=why.example.com' }],
  'why.example.com': [{ TXT: '%{l} may not use %{c} at %{t}' }],
  '_spf.example.net': [{ TXT: 'v=spf1 ip6:2001:db8::/32 -all exp=nope.example.net' }],
  'nope.example.net': [{ TXT: 'never shown' }],
  'mail.example.org': [{ TXT: 'v=spf1 a -all' }, { A: '198.51.100.7' }],
  'slow.example.com': ['TIMEOUT'],
};

describe('checkHost', () => {
  test('pass names the mechanism and counts lookups', async () => {
    const r = await checkHost({ ip: '2001:db8::1', domain: 'example.com', sender: 'a@example.com', helo: 'h.example.org' }, world(base));
    assert.equal(r.result, 'pass');
    assert.equal(r.mechanism, 'include:_spf.example.net');
    assert.equal(r.mechanismDomain, 'example.com');
    assert.equal(r.lookups, 1);
    assert.equal(r.voidLookups, 0);
    assert.equal(r.explanation, undefined);
  });

  test('fail: exp= of the failing record, macros expanded, looked up once; include targets exp= never read', async () => {
    const resolver = world(base);
    const r = await checkHost(
      { ip: '203.0.113.9', domain: 'example.com', sender: 'joe@example.com', helo: 'h.example.org' },
      resolver,
      { clock: fixedClock(1_700_000_000_000) },
    );
    assert.equal(r.result, 'fail');
    assert.equal(r.mechanism, '-all');
    assert.equal(r.explanation, 'joe may not use 203.0.113.9 at 1700000000');
    assert.equal(resolver.queries.filter((q) => q === 'TXT why.example.com').length, 1);
    assert.ok(!resolver.queries.includes('TXT nope.example.net'));
  });

  test('no exp= lookup unless the result is fail', async () => {
    const resolver = world(base);
    await checkHost({ ip: '192.0.2.1', domain: 'example.com', sender: 'joe@example.com', helo: 'h' }, resolver);
    assert.ok(!resolver.queries.includes('TXT why.example.com'));
  });

  test('default explanation (with macros) when there is no exp=', async () => {
    const r = await checkHost({ ip: '192.0.2.1', domain: 'mail.example.org', sender: 'x@mail.example.org', helo: 'h' }, world(base));
    assert.equal(r.result, 'fail');
    assert.equal(r.explanation, 'The SPF record of mail.example.org does not authorise 192.0.2.1 to send mail for mail.example.org');
    const own = await checkHost({ ip: '192.0.2.1', domain: 'mail.example.org', sender: 'x@mail.example.org', helo: 'h' }, world(base), {
      defaultExplanation: 'see https://%{d}/spf',
    });
    assert.equal(own.explanation, 'see https://mail.example.org/spf');
  });

  test('explanations are kept to printable ASCII', async () => {
    const r = await checkHost({ ip: '203.0.113.9', domain: 'example.com', sender: 'jo\te@example.com', helo: 'h' }, world(base), {
      clock: fixedClock(0),
    });
    assert.equal(r.explanation, 'jo?e may not use 203.0.113.9 at 0');
  });

  test('mechanismDomain follows redirect=', async () => {
    const r = await checkHost(
      { ip: '192.0.2.1', domain: 'alias.example.com', sender: 'a@alias.example.com', helo: 'h' },
      world({ 'alias.example.com': [{ TXT: 'v=spf1 redirect=example.com' }], ...base }),
    );
    assert.equal(r.result, 'pass');
    assert.equal(r.domain, 'alias.example.com');
    assert.equal(r.mechanismDomain, 'example.com');
    assert.equal(r.lookups, 1);
  });

  test('%{p} in a mechanism is a PTR lookup and counts toward the limit', async () => {
    const r = await checkHost(
      { ip: '192.0.2.1', domain: 'p.example.com', sender: 'a@p.example.com', helo: 'h' },
      world({
        'p.example.com': [{ TXT: 'v=spf1 exists:%{p}.ok.example.com -all' }],
        '1.2.0.192.in-addr.arpa': [{ PTR: 'host.p.example.com' }],
        'host.p.example.com': [{ A: '192.0.2.1' }],
        'host.p.example.com.ok.example.com': [{ A: '127.0.0.2' }],
      }),
    );
    assert.equal(r.result, 'pass');
    assert.equal(r.lookups, 2);
    const capped = await checkHost(
      { ip: '192.0.2.1', domain: 'p.example.com', sender: 'a@p.example.com', helo: 'h' },
      world({ 'p.example.com': [{ TXT: 'v=spf1 exists:%{p}.ok.example.com -all' }] }),
      { maxLookups: 1 },
    );
    assert.equal(capped.result, 'permerror');
    assert.match(capped.problem ?? '', /more than 1 DNS-querying terms/);
  });

  test('the void limit is configurable', async () => {
    const r = await checkHost(
      { ip: '192.0.2.1', domain: 'v.example.com', sender: 'a@v.example.com', helo: 'h' },
      world({ 'v.example.com': [{ TXT: 'v=spf1 a:gone.example.com ?all' }] }),
      { maxVoidLookups: 0 },
    );
    assert.equal(r.result, 'permerror');
    assert.equal(r.voidLookups, 1);
  });

  test('DNS timeout → temperror with the failing question as problem', async () => {
    const r = await checkHost({ ip: '192.0.2.1', domain: 'slow.example.com', sender: 'a@slow.example.com', helo: 'h' }, world(base));
    assert.equal(r.result, 'temperror');
    assert.match(r.problem ?? '', /TXT slow\.example\.com: TIMEOUT/);
  });

  test('a client address that is not an IP gives none, not an exception', async () => {
    const r = await checkHost({ ip: 'nonsense', domain: 'example.com', sender: 'a@example.com', helo: 'h' }, world(base));
    assert.equal(r.result, 'none');
    assert.match(r.problem ?? '', /not an IP address/);
  });

  test('mx: a null MX names no host; the address family follows the client', async () => {
    const data = {
      'm.example.com': [{ TXT: 'v=spf1 mx//48 -all' }, { MX: [10, 'mx1.example.com'] }, { MX: [20, ''] }],
      'mx1.example.com': [{ A: '192.0.2.10' }, { AAAA: '2001:db8:1:2::1' }],
    };
    const v6 = await checkHost({ ip: '2001:db8:1:99::5', domain: 'm.example.com', sender: 'a@m.example.com', helo: 'h' }, world(data));
    assert.equal(v6.result, 'pass');
    const v4 = await checkHost({ ip: '192.0.2.11', domain: 'm.example.com', sender: 'a@m.example.com', helo: 'h' }, world(data));
    assert.equal(v4.result, 'fail');
  });
});

describe('spfIdentity', () => {
  test('MAIL FROM, null sender, HELO', () => {
    assert.deepEqual(spfIdentity('mailfrom', 'joe@Example.COM', 'h.example.org'), { sender: 'joe@Example.COM', domain: 'Example.COM' });
    assert.deepEqual(spfIdentity('mailfrom', '', 'h.example.org'), { sender: 'postmaster@h.example.org', domain: 'h.example.org' });
    assert.deepEqual(spfIdentity('helo', 'joe@example.com', 'h.example.org'), { sender: 'postmaster@h.example.org', domain: 'h.example.org' });
    assert.equal(spfIdentity('mailfrom', undefined, 'h.example.org'), undefined);
    assert.equal(spfIdentity('helo', 'joe@example.com', undefined), undefined);
  });
});

describe('checkSpf evidence', () => {
  test('pass for MAIL FROM', async () => {
    const ctx = makeContext(world(base));
    const ev = await checkSpf(envelope({ clientIp: '192.0.2.1', helo: 'h.example.org', from: 'joe@example.com' }), ctx, { identity: 'mailfrom' });
    assert.equal(ev.check, 'spf');
    assert.equal(ev.result, 'pass');
    assert.equal(ev.detail, 'client 192.0.2.1 is authorised by example.com (ip4:192.0.2.0/24)');
    assert.deepEqual(ev.data, { domain: 'example.com', identity: 'mailfrom', lookups: 0, mechanism: 'ip4:192.0.2.0/24' });
    assert.equal(typeof ev.ms, 'number');
  });

  test('fail carries the explanation; the clock comes from the context', async () => {
    const ctx = makeContext(world(base), { clock: fixedClock(5_000) });
    const ev = await checkSpf(envelope({ clientIp: '203.0.113.9', helo: 'h', from: 'joe@example.com' }), ctx, { identity: 'mailfrom' });
    assert.equal(ev.result, 'fail');
    assert.equal(ev.data?.explanation, 'joe may not use 203.0.113.9 at 5');
    assert.match(ev.detail, /^client 203\.0\.113\.9 is not authorised by example\.com \(-all\): joe may not use/);
  });

  test('the null sender is checked as postmaster@HELO', async () => {
    const ctx = makeContext(world(base));
    const ev = await checkSpf(envelope({ clientIp: '198.51.100.7', helo: 'mail.example.org', from: '' }), ctx, { identity: 'mailfrom' });
    assert.equal(ev.check, 'spf');
    assert.equal(ev.result, 'pass');
    assert.equal(ev.data?.domain, 'mail.example.org');
  });

  test('HELO identity is evidence spf_helo', async () => {
    const ctx = makeContext(world(base));
    const ev = await checkSpf(envelope({ clientIp: '198.51.100.8', helo: 'mail.example.org', from: 'joe@example.com' }), ctx, { identity: 'helo' });
    assert.equal(ev.check, 'spf_helo');
    assert.equal(ev.result, 'fail');
    assert.equal(ev.data?.identity, 'helo');
    assert.equal(ev.data?.domain, 'mail.example.org');
  });

  test('before MAIL FROM: none', async () => {
    const ev = await checkSpf(envelope({ clientIp: '192.0.2.1', helo: 'h' }), makeContext(world(base)), { identity: 'mailfrom' });
    assert.equal(ev.result, 'none');
    assert.equal(ev.detail, 'no MAIL FROM yet');
  });

  test('temperror and permerror say why', async () => {
    const ctx = makeContext(world({ ...base, 'broken.example.com': [{ TXT: 'v=spf1 a:foo -all' }] }));
    const t = await checkSpf(envelope({ clientIp: '192.0.2.1', helo: 'h', from: 'a@slow.example.com' }), ctx, { identity: 'mailfrom' });
    assert.equal(t.result, 'temperror');
    assert.match(t.detail, /TIMEOUT/);
    const p = await checkSpf(envelope({ clientIp: '192.0.2.1', helo: 'h', from: 'a@broken.example.com' }), ctx, { identity: 'mailfrom' });
    assert.equal(p.result, 'permerror');
    assert.match(p.detail, /a:foo/);
    assert.match(String(p.data?.problem), /top-level label/);
  });
});
