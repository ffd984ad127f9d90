import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { reverseName } from '../../src/dns/reverse.js';
import { checkFcrdns } from '../../src/checks/fcrdns.js';
import { buildLists, checkList, DomainList, IpList, loadListFile, parseListText } from '../../src/checks/lists.js';
import type { Envelope } from '../../src/core/types.js';
import { envelope, makeContext } from '../helpers/check-context.js';

describe('IpList', () => {
  test('IPv4 and IPv6 addresses and CIDRs', () => {
    const l = IpList.from(['192.0.2.1', '10.0.0.0/8', '198.51.100.7/24', '2001:db8::/32', '2001:db9::1', '::ffff:203.0.113.0/120']);
    assert.ok(l.has('192.0.2.1'));
    assert.ok(!l.has('192.0.2.2'));
    assert.ok(l.has('10.255.255.255'));
    assert.ok(l.has('198.51.100.200'), 'host bits of a CIDR ignored');
    assert.ok(l.has('2001:db8:ffff::1'));
    assert.ok(l.has('2001:DB9::1'));
    assert.ok(!l.has('2001:db9::2'));
    assert.ok(l.has('::ffff:10.1.2.3'), 'mapped client → IPv4');
    assert.ok(l.has('203.0.113.9'), 'mapped CIDR → IPv4');
    assert.ok(!l.has('11.0.0.0'));
    assert.ok(!l.has('garbage'));
    assert.equal(l.size, 6);
  });

  test('overlapping and adjacent ranges merge; bisection finds them', () => {
    const l = new IpList();
    for (let i = 0; i < 200; i += 2) l.add(`192.0.2.${i}`);
    l.add('192.0.2.128/25');
    l.add('192.0.2.0/26');
    assert.ok(l.has('192.0.2.63'));
    assert.ok(!l.has('192.0.2.65'));
    assert.ok(l.has('192.0.2.66'));
    assert.ok(l.has('192.0.2.255'));
    l.add('0.0.0.0/0');
    assert.ok(l.has('8.8.8.8'));
    assert.ok(!l.has('2001:db8::1'));
  });

  test('bad entries throw', () => {
    const l = new IpList();
    for (const bad of ['1.2.3', '1.2.3.4/33', 'example.com', '2001:db8::/129', '0x7f.1']) assert.throws(() => l.add(bad), bad);
  });
});

describe('DomainList', () => {
  test('exact and .suffix entries, case-insensitive', () => {
    const l = DomainList.from(['Example.com', '.example.net']);
    assert.ok(l.has('example.com'));
    assert.ok(l.has('EXAMPLE.COM.'));
    assert.ok(!l.has('mail.example.com'));
    assert.ok(!l.has('example.net'));
    assert.ok(l.has('a.b.example.net'));
    assert.equal(l.match('a.b.example.net'), '.example.net');
    assert.ok(!l.has('badexample.net'));
    assert.throws(() => l.add('bad domain'));
  });
});

describe('list files', () => {
  test('comments, blank lines, bad lines reported with file and line and skipped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'frontline-lists-'));
    try {
      const file = join(dir, 'deny.txt');
      await writeFile(file, '# spammers\n192.0.2.1\n\n10.0.0.0/8   # office\n1.2.3\nexample.com\n.example.net\nbad domain\n2001:db8::/32\r\n');
      const { entries, errors } = await loadListFile(file);
      assert.deepEqual(entries, ['192.0.2.1', '10.0.0.0/8', 'example.com', '.example.net', '2001:db8::/32']);
      assert.deepEqual(
        errors.map((e) => [e.file, e.line, e.text]),
        [
          [file, 5, '1.2.3'],
          [file, 8, 'bad domain'],
        ],
      );
      const ipOnly = await loadListFile(file, 'ip');
      assert.equal(ipOnly.errors.length, 4);
      const { ips, domains } = buildLists(entries);
      assert.ok(ips.has('10.1.1.1') && domains.has('x.example.net'));
      await assert.rejects(loadListFile(join(dir, 'missing.txt')));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('parseListText keeps good lines when all others are bad', () => {
    const r = parseListText('x y\n192.0.2.1\n!!\n', 'inline', 'ip');
    assert.deepEqual(r.entries, ['192.0.2.1']);
    assert.equal(r.errors.length, 2);
    assert.equal(r.errors[0].reason, 'one entry per line expected');
  });
});

describe('checkList', () => {
  const ips = IpList.from(['192.0.2.0/24', '2001:db8::/32']);
  const domains = DomainList.from(['spam.example', '.bad.example', 'mail.good.example']);
  const zone = new Zone({
    [reverseName('198.51.100.1')]: [{ PTR: 'mail.good.example' }],
    'mail.good.example': [{ A: '198.51.100.1' }],
    [reverseName('198.51.100.2')]: [{ PTR: 'mail.good.example' }],
    [reverseName('198.51.100.3')]: ['TIMEOUT'],
  });
  const run = (env: Envelope, field: 'client' | 'sender' | 'helo' | 'rcpt') =>
    checkList(env, makeContext(new ZoneResolver(zone), { env, checks: { fcrdns: checkFcrdns } }), { name: 'deny', ips, domains, field });

  test('client IP (IPv4, IPv6, mapped)', async () => {
    const ev = await run(envelope({ clientIp: '192.0.2.9' }), 'client');
    assert.equal(ev.check, 'deny');
    assert.equal(ev.result, 'listed');
    assert.equal((await run(envelope({ clientIp: '2001:db8::9' }), 'client')).result, 'listed');
    assert.equal((await run(envelope({ clientIp: '::ffff:192.0.2.9' }), 'client')).result, 'listed');
    assert.equal((await run(envelope({ clientIp: '2001:db9::9' }), 'client')).result, 'unlisted');
  });

  test('client name: only forward-confirmed names count', async () => {
    const ok = await run(envelope({ clientIp: '198.51.100.1' }), 'client');
    assert.equal(ok.result, 'listed');
    assert.equal(ok.data?.matched, 'domain');
    const spoofed = await run(envelope({ clientIp: '198.51.100.2', clientPtr: 'mail.good.example' }), 'client');
    assert.equal(spoofed.result, 'unlisted');
    assert.equal((await run(envelope({ clientIp: '198.51.100.3' }), 'client')).result, 'temperror');
  });

  test('sender, rcpt and helo fields', async () => {
    assert.equal((await run(envelope({ clientIp: '203.0.113.1', from: 'x@spam.example' }), 'sender')).result, 'listed');
    assert.equal((await run(envelope({ clientIp: '203.0.113.1', from: 'x@a.bad.example' }), 'sender')).result, 'listed');
    assert.equal((await run(envelope({ clientIp: '203.0.113.1', from: 'x@bad.example' }), 'sender')).result, 'unlisted');
    assert.equal((await run(envelope({ clientIp: '203.0.113.1', from: '' }), 'sender')).result, 'unlisted');
    assert.equal((await run(envelope({ clientIp: '203.0.113.1', from: 'x@[192.0.2.1]' }), 'sender')).result, 'listed');
    assert.equal((await run(envelope({ clientIp: '203.0.113.1', rcpts: ['a@ok.example', 'b@SPAM.example'] }), 'rcpt')).result, 'listed');
    assert.equal((await run(envelope({ clientIp: '203.0.113.1', helo: 'x.bad.example' }), 'helo')).result, 'listed');
    assert.equal((await run(envelope({ clientIp: '203.0.113.1', helo: '[192.0.2.5]' }), 'helo')).result, 'listed');
    assert.equal((await run(envelope({ clientIp: '203.0.113.1', helo: 'good.example' }), 'helo')).result, 'unlisted');
    assert.equal((await run(envelope({ clientIp: '203.0.113.1' }), 'helo')).result, 'unlisted');
  });
});
