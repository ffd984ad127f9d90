import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { checkHelo } from '../../src/checks/helo.js';
import { envelope, makeContext } from '../helpers/check-context.js';

const zone = new Zone({
  'mail.example.com': [{ A: '192.0.2.1' }, { AAAA: '2001:db8::1' }],
  'v4only.example.com': [{ A: '192.0.2.2' }],
  'elsewhere.example.com': [{ A: '203.0.113.9' }],
  'slow.example.com': ['TIMEOUT'],
  'half.example.com': [{ A: '192.0.2.3' }, 'SERVFAIL'],
});

async function helo(name: string | undefined, clientIp = '192.0.2.1') {
  return checkHelo(envelope({ clientIp, helo: name }), makeContext(new ZoneResolver(zone)));
}

describe('helo', () => {
  test('FQDN resolving to the client → pass (IPv4 and IPv6)', async () => {
    const v4 = await helo('mail.example.com');
    assert.equal(v4.check, 'helo');
    assert.equal(v4.result, 'pass');
    assert.deepEqual(
      { ...v4.data, name: undefined },
      { name: undefined, syntax: true, fqdn: true, bareIp: false, literal: false, literalMatches: false, resolves: true, matchesClient: true },
    );
    assert.equal((await helo('MAIL.example.com.', '2001:db8::1')).result, 'pass');
    assert.equal((await helo('mail.example.com', '::ffff:192.0.2.1')).result, 'pass');
  });

  test('valid FQDN not resolving to the client → neutral, with facts', async () => {
    const ev = await helo('elsewhere.example.com');
    assert.equal(ev.result, 'neutral');
    assert.equal(ev.data?.resolves, true);
    assert.equal(ev.data?.matchesClient, false);
    const v6 = await helo('v4only.example.com', '2001:db8::2');
    assert.equal(v6.result, 'neutral');
    assert.equal(v6.data?.resolves, true);
    const unknown = await helo('nowhere.example.com');
    assert.equal(unknown.result, 'neutral');
    assert.equal(unknown.data?.resolves, false);
    assert.match(unknown.detail, /no A\/AAAA/);
  });

  test('non-FQDN → neutral without DNS', async () => {
    const ev = await helo('mypc');
    assert.equal(ev.result, 'neutral');
    assert.equal(ev.data?.syntax, true);
    assert.equal(ev.data?.fqdn, false);
    assert.equal((await helo('host.123')).data?.fqdn, false);
  });

  test('invalid syntax → fail', async () => {
    for (const bad of ['', 'bad..name.com', '-x.example.com', 'a b.example.com', 'x'.repeat(64) + '.example.com', 'host!.example.com']) {
      const ev = await helo(bad);
      assert.equal(ev.result, 'fail', bad);
      assert.equal(ev.data?.syntax, false, bad);
    }
  });

  test('address literals: equal to client → pass, other → fail, malformed → fail', async () => {
    const ok4 = await helo('[192.0.2.1]');
    assert.equal(ok4.result, 'pass');
    assert.equal(ok4.data?.literal, true);
    assert.equal(ok4.data?.literalMatches, true);
    assert.equal((await helo('[IPv6:2001:db8::1]', '2001:db8:0::1')).result, 'pass');
    assert.equal((await helo('[ipv6:2001:db8::2]', '2001:db8::1')).result, 'fail');
    assert.equal((await helo('[198.51.100.1]')).result, 'fail');
    assert.equal((await helo('[2001:db8::1]', '2001:db8::1')).result, 'fail', 'IPv6 literal needs the IPv6: tag');
    assert.equal((await helo('[999.1.1.1]')).result, 'fail');
  });

  test('bare IP: other than client → fail; the client itself → neutral', async () => {
    const other = await helo('198.51.100.1');
    assert.equal(other.result, 'fail');
    assert.equal(other.data?.bareIp, true);
    const own = await helo('192.0.2.1');
    assert.equal(own.result, 'neutral');
    assert.equal(own.data?.literalMatches, true);
    assert.equal((await helo('2001:db8::5', '2001:db8::1')).result, 'fail');
  });

  test('no HELO yet → none', async () => {
    assert.equal((await helo(undefined)).result, 'none');
  });

  test('DNS timeout / SERVFAIL → temperror', async () => {
    assert.equal((await helo('slow.example.com')).result, 'temperror');
    assert.equal((await helo('slow.example.com', '2001:db8::1')).result, 'temperror');
    // A answers but not the client, AAAA SERVFAILs: unknown → temperror
    assert.equal((await helo('half.example.com', '192.0.2.9')).result, 'temperror');
    // A answers with the client: the AAAA fault does not matter
    assert.equal((await helo('half.example.com', '192.0.2.3')).result, 'pass');
  });
});
