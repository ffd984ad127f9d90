// One parser of IP addresses and networks (src/core/cidr.ts) for every room:
// the odd inputs that the config, the store, the static lists and the intel
// room used to read four different ways, each read once, the same everywhere.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import { firstContaining, formatNetwork, networkContains, parseNetwork, readExactNetwork, readNetwork, type Network } from '../../src/core/cidr.js';
import { networkSchema, networksContain, parseNetwork as configNetwork } from '../../src/config/address.js';
import { canonicalCidr, canonicalIp } from '../../src/store/ip.js';
import { IpTrie } from '../../src/store/ip-trie.js';
import { parseCidr, formatNet } from '../../src/intel/cidr.js';
import { IpList } from '../../src/checks/lists.js';
import { strictIp } from '../../src/intel/logwatch/ip.js';

/** Text → its canonical network, or null: refused. */
const CASES: Array<[string, string | null, string?]> = [
  ['192.0.2.1', '192.0.2.1/32'],
  ['0.0.0.0', '0.0.0.0/32'],
  ['255.255.255.255/32', '255.255.255.255/32'],
  ['010.0.0.1', null, 'leading zero: octal to inet_aton, decimal to others'],
  ['10.0.0.01', null],
  ['00.0.0.0', null],
  ['10.1', null, 'short form'],
  ['10.1.2', null],
  ['167772161', null, 'one number'],
  ['0x0a.0.0.1', null, 'hexadecimal part'],
  ['0xa000001', null],
  ['1.2.3.4.5', null],
  ['256.0.0.1', null],
  [' 192.0.2.1', null, 'white space'],
  ['192.0.2.1/', null],
  ['192.0.2.0/033', null, 'leading zero in the length'],
  ['192.0.2.0/33', null],
  ['192.0.2.0/-1', null],
  ['192.0.2.9/24', '192.0.2.0/24', 'host bits set: cleared by readNetwork, refused by readExactNetwork'],
  ['2001:db8::1', '2001:db8::1/128'],
  ['2001:DB8:0:0:0:0:0:1', '2001:db8::1/128'],
  ['2001:0db8::0001', '2001:db8::1/128', 'RFC 4291 allows up to four hex digits per group'],
  ['2001:db8::/32', '2001:db8::/32'],
  ['2001:db8::/129', null],
  ['2001:db8:::1', null],
  ['1::2::3', null],
  ['12345::', null],
  ['[2001:db8::1]', null, 'brackets'],
  ['fe80::1%eth0', null, 'zone id'],
  ['::ffff:192.0.2.1', '192.0.2.1/32', 'IPv4-mapped IS the IPv4 address'],
  ['::FFFF:c000:0201', '192.0.2.1/32', 'mapped, in hex'],
  ['::ffff:192.0.2.0/120', '192.0.2.0/24', 'mapped network, length ≥ 96'],
  ['::ffff:0.0.0.0/96', '0.0.0.0/0', 'the whole mapped space is IPv4 /0 (bans check the length after this)'],
  ['::ffff:0:0/80', '::/80', 'mapped with a length < 96 stays IPv6'],
  ['::ffff:010.0.0.1', null, 'leading zero inside IPv6 too'],
  ['::1.2.3.4', '::102:304/128', 'IPv4-compatible (deprecated): the IPv6 address, never 1.2.3.4'],
  ['64:ff9b::192.0.2.33', '64:ff9b::c000:221/128', 'NAT64: a dotted tail in the last 32 bits'],
  ['1.2.3.4::', null, 'a dotted quad only at the end'],
  ['::', '::/128'],
  ['::/0', '::/0'],
  ['', null],
  ['example.com', null],
];

describe('one strict CIDR parser (src/core/cidr.ts)', () => {
  test('each odd input has one reading', () => {
    for (const [text, want] of CASES) {
      const r = readNetwork(text);
      assert.equal(r.ok ? formatNetwork(r.net) : null, want, `${text}: ${r.ok ? '' : r.why}`);
      if (!r.ok) assert.ok(r.why.length > 0);
    }
  });

  test('every room reads them the same: config, store, trie, static lists, intel, log watching', () => {
    for (const [text, want] of CASES) {
      const cfg = configNetwork(text);
      assert.equal(cfg ? formatNetwork(cfg) : null, want, `config: ${text}`);
      let store: string | null;
      try {
        store = canonicalCidr(text.trim() === text ? text : 'x');
      } catch {
        store = null;
      }
      assert.equal(store, want, `store: ${text}`);
      const intel = parseCidr(text.trim() === text ? text : 'x');
      assert.equal(intel ? formatNet(intel) : null, want, `intel: ${text}`);
      let list = true;
      try {
        new IpList().add(text.trim() === text ? text : 'x');
      } catch {
        list = false;
      }
      assert.equal(list, want !== null, `static list: ${text}`);
      const t = new IpTrie();
      let inserted = true;
      try {
        t.insert(text, 1);
      } catch {
        inserted = false;
      }
      assert.equal(inserted, want !== null, `trie: ${text}`);
      if (want && !text.includes('/')) {
        assert.equal(strictIp(text), want.replace(/\/(32|128)$/, ''), `logwatch: ${text}`);
        assert.equal(canonicalIp(text), want.replace(/\/(32|128)$/, ''));
      }
    }
  });

  test('lookups of an address with a leading zero match nothing (the trie, the static lists, my_networks)', () => {
    const t = new IpTrie();
    t.insert('10.0.0.0/8', 1);
    t.insert('8.0.0.1', 1);
    assert.equal(t.has('10.0.0.1'), true);
    assert.equal(t.has('010.0.0.1'), false);
    assert.equal(t.has('08.0.0.1'), false);
    const l = IpList.from(['10.0.0.0/8']);
    assert.equal(l.has('010.0.0.1'), false);
    assert.equal(networksContain([configNetwork('10.0.0.0/8')!], '010.0.0.1'), undefined);
    assert.equal(networksContain([configNetwork('10.0.0.0/8')!], '::ffff:10.1.2.3'), '10.0.0.0/8');
    assert.equal(networksContain([configNetwork('1.2.3.4')!], '::1.2.3.4'), undefined, '::1.2.3.4 is not 1.2.3.4');
  });

  test('what a person types is exact: host bits set are refused, naming the network meant', () => {
    const r = readExactNetwork('10.0.0.0/1');
    assert.deepEqual(r, { ok: false, why: 'host bits set: the network is 0.0.0.0/1' });
    assert.equal(readExactNetwork('2001:db8::1/64').ok, false);
    assert.equal(readExactNetwork('192.0.2.0/24').ok, true);
    assert.equal(readExactNetwork('192.0.2.9').ok, true);
    const bad = networkSchema.safeParse('192.168.1.1/24');
    assert.equal(bad.success, false);
    assert.match(bad.error!.issues[0].message, /host bits set: the network is 192\.168\.1\.0\/24/);
    assert.match(networkSchema.safeParse('010.0.0.0/8').error!.issues[0].message, /leading zero in "010"/);
  });

  test('why ipaddr.js is not the parser: its lax entry points accept what we refuse', () => {
    // ipaddr.parse reads these as IPv4 (inet_aton style); they would ban or allow an address nobody wrote.
    assert.equal(ipaddr.parse('010.0.0.1').toString(), '8.0.0.1');
    assert.equal(ipaddr.parse('10.1').toString(), '10.0.0.1');
    assert.equal(ipaddr.parseCIDR('010.0.0.0/8')[0].toString(), '8.0.0.0');
    assert.equal(ipaddr.process('::1.2.3.4').toString(), '1.2.3.4');
    for (const t of ['010.0.0.1', '10.1', '010.0.0.0/8']) assert.equal(readNetwork(t).ok, false, t);
    assert.equal(readNetwork('::1.2.3.4').ok && formatNetwork((readNetwork('::1.2.3.4') as { net: Parameters<typeof formatNetwork>[0] }).net), '::102:304/128');
  });
});

test('firstContaining (my_networks, allow lists) answers as parsing the address and testing each network does', () => {
  const nets = ['127.0.0.0/8', '192.0.2.0/24', '10.1.2.3/32', '::1/128', '2001:db8::/32', '::ffff:198.51.100.0/120', '0.0.0.0/0', '::/0']
    .map((n) => parseNetwork(n))
    .filter((n): n is Network => n !== undefined);
  const addresses = [
    '127.0.0.1', '192.0.2.77', '10.1.2.3', '10.1.2.4', '198.51.100.9', '::1', '::2', '2001:db8::25', '2001:db9::1', '::ffff:192.0.2.1', '::ffff:198.51.100.200',
    '::192.0.2.1', '010.0.0.1', '10.1', '192.0.2.1/32', 'fe80::1%eth0', '[::1]', 'example.com', '', '1.2.3.4.5', '::ffff:1.2.3', 'gggg::1',
  ];
  // Each network list alone and all together: the first match, or none, must be the same.
  for (const list of [...nets.map((n) => [n]), nets.slice(0, 6), nets]) {
    for (const ip of addresses) {
      const parsed = ip.includes('/') ? undefined : parseNetwork(ip);
      const want = parsed && list.find((n) => networkContains(n, parsed));
      assert.equal(firstContaining(list, ip), want, `${ip} in ${list.map(formatNetwork).join(', ')}`);
    }
  }
});
