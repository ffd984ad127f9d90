// What RFC 6376 requires and mailauth lets through (issue 17, item 3). Each
// case is a message signed here (test/helpers/signed-mail.ts), verifiable
// by mailauth, with its own key in the fixture DNS server, read through the
// production resolver. Before our layer checked them, each of these
// verified as `pass`, became `fail` on a DNS fault, or vanished (`none`).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone } from '../../src/dns/zone.js';
import { createResolver, type CachedResolver } from '../../src/dns/index.js';
import { checkDkim, type DkimSignature } from '../../src/checks/dkim.js';
import { startFixtureDns, type FixtureDns } from '../helpers/fixture-dns.js';
import { envelope, makeContext } from '../helpers/check-context.js';
import { generateKey, headersOnly, plainMessage, signWithTags, type TestKey } from '../helpers/signed-mail.js';
import type { Evidence } from '../../src/core/types.js';

const key = generateKey();
const ed = generateKey('ed25519');
const D = 'example.com';
const msg = plainMessage({ from: `A <a@${D}>` });

/** The key record of `key` with extra tags before p=. */
function record(extra: string, k: TestKey = key): string[] {
  const txt = k.txt.join('');
  return [txt.replace('p=', `${extra}p=`)];
}

// One selector per case.
const keys: Record<string, string[]> = {
  plain: key.txt,
  ed: ed.txt,
  strict: record('t=s; '),
  teststrict: record('t=y:s; '),
  sha1only: record('h=sha1; '),
  bothhashes: record('h=sha1:sha256; '),
  notemail: record('s=im; '),
  anyservice: record('s=*; '),
  revoked: ['v=DKIM1; k=rsa; p='],
  badkey: ['v=DKIM1; k=rsa; k=rsa; p=abc'],
};

const world: Record<string, unknown> = {
  ...Object.fromEntries(Object.entries(keys).map(([s, txt]) => [`${s}._domainkey.${D}`, [{ TXT: txt }]])),
  [`slow._domainkey.${D}`]: ['TIMEOUT'],
  [`broken._domainkey.${D}`]: ['SERVFAIL'],
};

let dns: FixtureDns;
let resolver: CachedResolver;

before(async () => {
  dns = await startFixtureDns(new Zone(world));
  // Long enough for a loaded machine; the TIMEOUT and SERVFAIL cases cost one timeout each.
  resolver = createResolver({ servers: [dns.server], timeoutMs: 2000, retries: 0 });
});

after(async () => {
  await dns.close();
});

async function verify(message: Buffer): Promise<{ ev: Evidence; sigs: DkimSignature[] }> {
  const ev = await checkDkim(envelope({ clientIp: '192.0.2.1', message }), makeContext(resolver));
  return { ev, sigs: (ev.data?.signatures ?? []) as DkimSignature[] };
}

const sign = (selector: string, tags?: Record<string, string>, m = msg, k = key) => signWithTags(m, { domain: D, selector, key: k, tags });

/** Replace the body after signing: the body hash no longer matches. */
function tamper(m: Buffer): Buffer {
  return Buffer.from(m.toString('latin1').replace('Hello.', 'Hullo.'), 'latin1');
}

describe('dkim: the test signer itself', () => {
  test('RSA and Ed25519 signatures written by signWithTags verify', async () => {
    assert.equal((await verify(sign('plain'))).ev.result, 'pass');
    assert.equal((await verify(sign('ed', undefined, msg, ed))).ev.result, 'pass');
    assert.equal((await verify(sign('plain', { i: `user@mail.${D}` }))).ev.result, 'pass', 'i= in a subdomain of d=');
    assert.equal((await verify(sign('plain', { q: 'dns/txt' }))).ev.result, 'pass');
  });
});

describe('dkim: RFC 6376 rules mailauth does not enforce → permerror', () => {
  test('i= outside d= (§3.5, §6.1.1)', async () => {
    for (const i of ['@evil.example', 'ceo@notexample.com', `@${D}.evil.example`]) {
      const { ev, sigs } = await verify(sign('plain', { i }));
      assert.equal(ev.result, 'permerror', i);
      assert.match(sigs[0].comment ?? '', /domain mismatch/);
    }
  });

  test("key with t=s and an i= domain other than d= (§3.6.1)", async () => {
    assert.equal((await verify(sign('strict', { i: `user@mail.${D}` }))).ev.result, 'permerror');
    assert.equal((await verify(sign('teststrict', { i: `@mail.${D}` }))).ev.result, 'permerror');
    assert.equal((await verify(sign('strict', { i: `user@${D}` }))).ev.result, 'pass', 'i= in d= itself');
    assert.equal((await verify(sign('strict'))).ev.result, 'pass', 'no i=: it defaults to @d');
  });

  test("key whose h= does not list the signature's hash (§6.1.2)", async () => {
    const { ev, sigs } = await verify(sign('sha1only'));
    assert.equal(ev.result, 'permerror');
    assert.match(sigs[0].comment ?? '', /inappropriate hash algorithm/);
    assert.equal((await verify(sign('bothhashes'))).ev.result, 'pass');
  });

  test('q= other than dns/txt (§3.5)', async () => {
    for (const q of ['dns/foo', 'http/well-known', 'dns']) {
      const { ev, sigs } = await verify(sign('plain', { q }));
      assert.equal(ev.result, 'permerror', q);
      assert.match(sigs[0].comment ?? '', /not dns\/txt/);
    }
  });

  test('From not signed (§6.1.1)', async () => {
    const m = signWithTags(msg, { domain: D, selector: 'plain', key, signed: ['to', 'subject', 'date'] });
    const { ev, sigs } = await verify(m);
    assert.equal(ev.result, 'permerror');
    assert.equal(sigs[0].comment, 'From field not signed');
  });

  test('key not for email (s=), revoked key (empty p=), key record with a duplicated tag', async () => {
    assert.equal((await verify(sign('notemail'))).ev.result, 'permerror');
    assert.equal((await verify(sign('anyservice'))).ev.result, 'pass');
    assert.match((await verify(sign('revoked'))).sigs[0].comment ?? '', /key revoked/);
    assert.match((await verify(sign('badkey'))).sigs[0].comment ?? '', /key syntax error/);
  });
});

describe('dkim: the key is fetched before the body hash is compared (§6.1.2)', () => {
  test('modified body and a key lookup that times out or fails → temperror, not fail', async () => {
    for (const selector of ['slow', 'broken']) {
      const { ev, sigs } = await verify(tamper(sign(selector)));
      assert.equal(ev.result, 'temperror', selector);
      assert.match(sigs[0].comment ?? '', /DNS failure/);
    }
  });

  test('modified body and no key → permerror; modified body and a key → fail', async () => {
    assert.equal((await verify(tamper(sign('nokey')))).ev.result, 'permerror');
    const { ev, sigs } = await verify(tamper(sign('plain')));
    assert.equal(ev.result, 'fail');
    assert.equal(sigs[0].comment, 'body hash did not verify');
  });
});

describe('dkim: every signature keeps its place', () => {
  const good = sign('plain');

  function prepend(field: string, m: Buffer): Buffer {
    return Buffer.concat([Buffer.from(`${field}\r\n`), m]);
  }

  test('unsupported algorithm (rsa-md5) and unknown canonicalisation → neutral, beside a passing signature', async () => {
    const md5 = sign('plain', { a: 'rsa-md5' });
    const m = prepend(md5.toString('latin1').split('\r\n')[0], prepend(sign('plain', { c: 'relaxed/foo' }).toString('latin1').split('\r\n')[0], good));
    const { ev, sigs } = await verify(m);
    assert.equal(ev.result, 'pass');
    assert.deepEqual(
      sigs.map((s) => [s.result, s.domain, s.selector]),
      [
        ['neutral', D, 'plain'],
        ['neutral', D, 'plain'],
        ['pass', D, 'plain'],
      ],
    );
    assert.match(sigs[0].info, /^dkim=neutral \(unsupported algorithm a=rsa-md5\) header\.d=example\.com header\.s=plain header\.a=rsa-md5/);
    assert.match(sigs[1].comment ?? '', /unknown canonicalization/);
  });

  test('alone, an unsupported algorithm is neutral, not none', async () => {
    const { ev, sigs } = await verify(sign('plain', { a: 'rsa-md5' }));
    assert.equal(ev.result, 'neutral');
    assert.equal(sigs.length, 1);
  });

  test('unparseable signatures → permerror, in their place', async () => {
    const m = prepend('DKIM-Signature: this is not a tag list', prepend(`DKIM-Signature: v=1; a=rsa-sha256; s=plain; h=from; bh=AA==; b=AA==`, good));
    const { ev, sigs } = await verify(m);
    assert.equal(ev.result, 'pass');
    assert.deepEqual(
      sigs.map((s) => s.result),
      ['permerror', 'permerror', 'pass'],
    );
    assert.match(sigs[0].comment ?? '', /signature syntax error/);
    assert.equal(sigs[1].comment, 'signature missing required tag d=');
    assert.equal(sigs[0].info, 'dkim=permerror (signature syntax error: "this is not a tag list" is not tag=value)');
  });

  test('duplicated tags, upper-case tag names (tags are case-sensitive), version other than 1', async () => {
    assert.match((await verify(sign('plain', { s: 'plain; s=other' }))).sigs[0].comment ?? '', /appears twice/);
    const upper = Buffer.from(sign('plain').toString('latin1').replace(`d=${D};`, `D=${D};`), 'latin1');
    assert.equal((await verify(upper)).sigs[0].comment, 'signature missing required tag d=');
    const { ev, sigs } = await verify(sign('plain', { v: '2' }));
    assert.equal(ev.result, 'neutral');
    assert.match(sigs[0].comment ?? '', /incompatible version/);
  });
});

describe('dkim: a message with headers only', () => {
  test('no empty line, no body: its signatures are verified (RFC 5322 §3.5)', async () => {
    const bare = headersOnly(msg);
    assert.ok(!bare.toString('latin1').includes('\r\n\r\n'));
    assert.equal((await verify(sign('plain', undefined, bare))).ev.result, 'pass');
    assert.equal((await verify(sign('ed', undefined, bare, ed))).ev.result, 'pass');
    const noFinalCrlf = sign('plain', undefined, bare).subarray(0, -2);
    assert.equal((await verify(noFinalCrlf)).ev.result, 'pass');
  });
});
