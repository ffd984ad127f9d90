import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { DnsError } from '../../src/dns/types.js';
import { checkDkim, checkDkimDomain, spkiFromPkcs1 } from '../../src/checks/dkim.js';
import { ipOfReverseName, mailauthResolver } from '../../src/checks/mailauth-resolver.js';
import type { Envelope } from '../../src/core/types.js';
import { envelope, makeContext } from '../helpers/check-context.js';
import { tamperBody } from '../helpers/dkim-vectors.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const rsaPub = rsa.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
const rsaPkcs1 = rsa.publicKey.export({ format: 'der', type: 'pkcs1' }).toString('base64');
const edPub = ed.publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64');
const rsaPem = rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const edPem = ed.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

const body = 'From: A <a@example.com>\r\nTo: b@example.net\r\nSubject: hello\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello there.\r\n';

async function sign(opts: { domain: string; selector: string; key: string; algorithm?: string }[], message = body): Promise<Buffer> {
  const { signatures } = await dkimSign(message, {
    // One time for the whole signature: without it mailauth's signer takes t= from the clock twice (the
    // header it hashes and the one it writes), rounded; when a half second passes in between, the two
    // differ and the signature is bad (1 in ~250 runs, a bad signature for dkimpy too).
    signTime: new Date(),
    signingDomain: opts[0].domain,
    selector: opts[0].selector,
    privateKey: opts[0].key,
    signatureData: opts.map((o) => ({ signingDomain: o.domain, selector: o.selector, privateKey: o.key, algorithm: o.algorithm })),
  });
  return Buffer.from(signatures + message);
}

const zone = new Zone({
  'rsa._domainkey.mail.example.com': [{ TXT: `v=DKIM1; k=rsa; p=${rsaPub}` }],
  'ed._domainkey.example.com': [{ TXT: `v=DKIM1; k=ed25519; p=${edPub}` }],
  'pkcs1._domainkey.example.org': [{ TXT: `v=DKIM1; p=${rsaPkcs1}` }],
  'rsa._domainkey.other.example': [{ TXT: `v=DKIM1; k=rsa; p=${rsaPub}` }],
  'slow._domainkey.example.com': ['TIMEOUT'],
  'sf._domainkey.example.com': ['SERVFAIL'],
});

function run(env: Envelope) {
  return checkDkim(env, makeContext(new ZoneResolver(zone)));
}

describe('dkim', () => {
  test('no message → none', async () => {
    const ev = await run(envelope({ clientIp: '192.0.2.1' }));
    assert.equal(ev.check, 'dkim');
    assert.equal(ev.result, 'none');
    assert.equal(ev.detail, 'message not seen at this stage');
  });

  test('unsigned message → none', async () => {
    const ev = await run(envelope({ clientIp: '192.0.2.1', message: Buffer.from(body) }));
    assert.equal(ev.result, 'none');
  });

  test('RSA and Ed25519 signatures pass; data lists them', async () => {
    const msg = await sign([
      { domain: 'mail.example.com', selector: 'rsa', key: rsaPem },
      { domain: 'example.com', selector: 'ed', key: edPem, algorithm: 'ed25519-sha256' },
    ]);
    const ev = await run(envelope({ clientIp: '2001:db8::1', message: msg }));
    assert.equal(ev.result, 'pass');
    const sigs = ev.data?.signatures as Array<{ domain: string; selector: string; algo: string; result: string; info: string }>;
    assert.deepEqual(
      sigs.map((s) => [s.domain, s.selector, s.algo, s.result]),
      [
        ['mail.example.com', 'rsa', 'rsa-sha256', 'pass'],
        ['example.com', 'ed', 'ed25519-sha256', 'pass'],
      ],
    );
    assert.match(sigs[0].info, /^dkim=pass header\.d=mail\.example\.com header\.s=rsa/);
    assert.deepEqual(ev.data?.passingDomains, ['mail.example.com', 'example.com']);
  });

  test('a bare PKCS#1 key (RFC 6376 §3.6.1 wording) verifies', async () => {
    const msg = await sign([{ domain: 'example.org', selector: 'pkcs1', key: rsaPem }]);
    assert.equal((await run(envelope({ clientIp: '192.0.2.1', message: msg }))).result, 'pass');
    assert.equal(spkiFromPkcs1(`v=DKIM1; p=${rsaPkcs1}`), `v=DKIM1; p=${rsaPub}`);
    assert.equal(spkiFromPkcs1(`v=DKIM1; p=${rsaPub}`), `v=DKIM1; p=${rsaPub}`);
    assert.equal(spkiFromPkcs1('v=DKIM1; p=garbage'), 'v=DKIM1; p=garbage');
  });

  test('modified body → fail', async () => {
    const msg = tamperBody(await sign([{ domain: 'mail.example.com', selector: 'rsa', key: rsaPem }]));
    const ev = await run(envelope({ clientIp: '192.0.2.1', message: msg }));
    assert.equal(ev.result, 'fail');
    assert.match(ev.detail, /body hash did not verify/);
  });

  test('missing key → permerror', async () => {
    const msg = await sign([{ domain: 'example.com', selector: 'nokey', key: rsaPem }]);
    assert.equal((await run(envelope({ clientIp: '192.0.2.1', message: msg }))).result, 'permerror');
  });

  test('key lookup TIMEOUT / SERVFAIL → temperror; a passing sibling still passes', async () => {
    for (const selector of ['slow', 'sf']) {
      const msg = await sign([{ domain: 'example.com', selector, key: rsaPem }]);
      const ev = await run(envelope({ clientIp: '192.0.2.1', message: msg }));
      assert.equal(ev.result, 'temperror', selector);
    }
    const both = await sign([
      { domain: 'example.com', selector: 'slow', key: rsaPem },
      { domain: 'mail.example.com', selector: 'rsa', key: rsaPem },
    ]);
    assert.equal((await run(envelope({ clientIp: '192.0.2.1', message: both }))).result, 'pass');
  });

  test('key lookups are capped', async () => {
    const many = await sign(Array.from({ length: 4 }, () => ({ domain: 'example.com', selector: 'nokey', key: rsaPem })).concat([{ domain: 'mail.example.com', selector: 'rsa', key: rsaPem }]));
    const resolver = new ZoneResolver(zone);
    const ev = await checkDkim(envelope({ clientIp: '192.0.2.1', message: many }), makeContext(resolver), { maxSignatures: 2 });
    assert.equal(resolver.queries.length, 2);
    assert.equal(ev.result, 'permerror');
    assert.match(ev.detail, /signature limit/);
  });
});

describe('dkim_domain', () => {
  async function domainCheck(from: string | undefined, message?: Buffer) {
    const env = envelope({ clientIp: '192.0.2.1', from, message });
    return checkDkimDomain(env, makeContext(new ZoneResolver(zone), { env, checks: { dkim: checkDkim } }));
  }

  test('passing signature in the sender organisational domain → match', async () => {
    const msg = await sign([{ domain: 'mail.example.com', selector: 'rsa', key: rsaPem }]);
    const ev = await domainCheck('bounce@example.com', msg);
    assert.equal(ev.check, 'dkim_domain');
    assert.equal(ev.result, 'match');
    assert.deepEqual(ev.data, { domain: 'example.com', signer: 'mail.example.com' });
  });

  test('signature of another domain → nomatch; failing one → nomatch', async () => {
    const other = await sign([{ domain: 'other.example', selector: 'rsa', key: rsaPem }]);
    assert.equal((await domainCheck('a@example.com', other)).result, 'nomatch');
    const bad = tamperBody(await sign([{ domain: 'mail.example.com', selector: 'rsa', key: rsaPem }]));
    assert.equal((await domainCheck('a@example.com', bad)).result, 'nomatch');
  });

  test('no message, null sender → none; temperror passes through', async () => {
    assert.equal((await domainCheck('a@example.com')).result, 'none');
    assert.equal((await domainCheck('', Buffer.from(body))).result, 'none');
    const slow = await sign([{ domain: 'example.com', selector: 'slow', key: rsaPem }]);
    assert.equal((await domainCheck('a@example.com', slow)).result, 'temperror');
  });
});

describe('mailauth resolver adapter', () => {
  const r = mailauthResolver(
    new ZoneResolver(
      new Zone({
        'txt.example': [{ TXT: ['v=DKIM1; ', 'p=abc'] }],
        'mx.example': [{ MX: [10, 'mail.mx.example'] }],
        'a.example': [{ A: '192.0.2.1' }, { AAAA: '2001:db8::1' }],
        [`1.2.0.192.in-addr.arpa`]: [{ PTR: 'a.example' }],
        [`1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.ip6.arpa`]: [{ PTR: 'a.example' }],
        'slow.example': ['TIMEOUT'],
        'sf.example': ['SERVFAIL'],
      }),
    ),
  );

  test('answers in dns.promises.resolve shapes', async () => {
    assert.deepEqual(await r('txt.example', 'TXT'), [['v=DKIM1; p=abc']]);
    assert.deepEqual(await r('mx.example.', 'MX'), [{ exchange: 'mail.mx.example', priority: 10 }]);
    assert.deepEqual(await r('a.example', 'A'), ['192.0.2.1']);
    assert.deepEqual(await r('a.example', 'AAAA'), ['2001:db8::1']);
    assert.deepEqual(await r('1.2.0.192.in-addr.arpa', 'PTR'), ['a.example']);
    assert.deepEqual(await r(`1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.ip6.arpa`, 'PTR'), ['a.example']);
  });

  test('DnsError codes become errno codes', async () => {
    const code = async (name: string, type: string) => ((await r(name, type).then(() => undefined, (e: { code: string }) => e)) as { code: string }).code;
    assert.equal(await code('nowhere.example', 'TXT'), 'ENOTFOUND');
    assert.equal(await code('a.example', 'TXT'), 'ENODATA');
    assert.equal(await code('slow.example', 'TXT'), 'ETIMEOUT');
    assert.equal(await code('sf.example', 'A'), 'ESERVFAIL');
    assert.ok(new DnsError('REFUSED', 'x', 'A').isTemporary);
  });

  test('ipOfReverseName', () => {
    assert.equal(ipOfReverseName('4.3.2.1.in-addr.arpa'), '1.2.3.4');
    assert.equal(ipOfReverseName('4.3.2.999.in-addr.arpa'), undefined);
    assert.equal(ipOfReverseName('example.com'), undefined);
    assert.equal(ipOfReverseName(`1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.ip6.arpa`), '2001:0db8:0000:0000:0000:0000:0000:0001');
  });
});
