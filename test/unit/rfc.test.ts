import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { checkNullSender, checkRcptFqdn, checkSenderDomain } from '../../src/checks/rfc.js';
import { envelope, makeContext } from '../helpers/check-context.js';

const zone = new Zone({
  'mx.example': [{ MX: [10, 'mail.mx.example'] }],
  'a.example': [{ A: '192.0.2.1' }],
  'aaaa.example': [{ AAAA: '2001:db8::1' }],
  'nullmx.example': [{ MX: [0, '.'] }],
  'nullmx-a.example': [{ MX: [0, '.'] }, { A: '192.0.2.2' }],
  'txtonly.example': [{ TXT: 'v=spf1 -all' }],
  'slow.example': ['TIMEOUT'],
  'servfail.example': ['SERVFAIL'],
  'partial.example': [{ A: '192.0.2.3' }, 'TIMEOUT'],
});

function sender(from: string | undefined, clientIp = '192.0.2.200') {
  return checkSenderDomain(envelope({ clientIp, from }), makeContext(new ZoneResolver(zone)));
}

describe('sender_domain', () => {
  test('domain with MX, A or AAAA → pass (IPv4 and IPv6 clients alike)', async () => {
    for (const d of ['mx.example', 'a.example', 'aaaa.example']) {
      const ev = await sender(`u@${d}`);
      assert.equal(ev.check, 'sender_domain');
      assert.equal(ev.result, 'pass', d);
    }
    assert.equal((await sender('u@aaaa.example', '2001:db8::99')).result, 'pass');
  });

  test('null sender / none yet → none', async () => {
    assert.equal((await sender('')).result, 'none');
    assert.equal((await sender(undefined)).result, 'none');
  });

  test('non-FQDN sender → fail non-fqdn', async () => {
    for (const f of ['user', 'user@localhost', 'user@bad..example', '@a.example', 'user@host.123']) {
      const ev = await sender(f);
      assert.equal(ev.result, 'fail', f);
      assert.equal(ev.data?.reason, 'non-fqdn', f);
    }
  });

  test('unknown domain → fail unknown-domain; null MX without A too', async () => {
    const nx = await sender('u@nowhere.example');
    assert.equal(nx.result, 'fail');
    assert.equal(nx.data?.reason, 'unknown-domain');
    assert.equal((await sender('u@txtonly.example')).data?.reason, 'unknown-domain');
    const nm = await sender('u@nullmx.example');
    assert.equal(nm.result, 'fail');
    assert.equal(nm.data?.reason, 'unknown-domain');
    assert.equal(nm.data?.nullMx, true);
    const nma = await sender('u@nullmx-a.example');
    assert.equal(nma.result, 'pass');
    assert.equal(nma.data?.nullMx, true);
  });

  test('DNS faults → temperror, unless another record type answered', async () => {
    assert.equal((await sender('u@slow.example')).result, 'temperror');
    assert.equal((await sender('u@servfail.example', '2001:db8::5')).result, 'temperror');
    assert.equal((await sender('u@partial.example')).result, 'pass');
  });

  test('address literal sender → none', async () => {
    assert.equal((await sender('u@[192.0.2.1]')).result, 'none');
  });
});

describe('rcpt_fqdn', () => {
  const rcpt = (...rcpts: string[]) => checkRcptFqdn(envelope({ clientIp: '192.0.2.1', rcpts }));
  test('current (last) recipient checked', async () => {
    assert.equal((await rcpt('a@example.com')).result, 'pass');
    assert.equal((await rcpt('a@example.com', 'b@localhost')).result, 'fail');
    assert.equal((await rcpt('b@localhost', 'a@example.com')).result, 'pass');
    assert.equal((await rcpt('nodomain')).result, 'fail');
    assert.equal((await rcpt('Postmaster')).result, 'pass');
    assert.equal((await rcpt()).result, 'none');
    assert.equal((await rcpt('a@example.com')).check, 'rcpt_fqdn');
  });
});

describe('null_sender', () => {
  const ns = (from: string | undefined, ...rcpts: string[]) => checkNullSender(envelope({ clientIp: '192.0.2.1', from, rcpts }));
  test('bounce to one recipient → match; to several → fail', async () => {
    assert.equal((await ns('', 'a@example.com')).result, 'match');
    const multi = await ns('', 'a@example.com', 'b@example.com');
    assert.equal(multi.result, 'fail');
    assert.equal(multi.data?.rcpts, 2);
    assert.equal((await ns('x@example.com', 'a@example.com', 'b@example.com')).result, 'nomatch');
    assert.equal((await ns(undefined)).result, 'none');
    assert.equal((await ns('')).check, 'null_sender');
  });
});
