import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import { IpTrie } from '../../src/store/ip-trie.js';
import { canonicalCidr, formatV4, formatV6, parseNetwork, parseV4, parseV6, networkContains, subnetOf } from '../../src/store/ip.js';

function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

describe('ip parsing', () => {
  test('IPv4 text to uint32 and back', () => {
    assert.equal(parseV4('0.0.0.0'), 0);
    assert.equal(parseV4('255.255.255.255'), 0xffffffff);
    assert.equal(parseV4('192.0.2.1'), 0xc0000201);
    for (const bad of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.4 ', 'a.b.c.d', '1.2.3.1234', '']) {
      assert.equal(parseV4(bad), -1, bad);
    }
    assert.equal(formatV4(0xc0000201), '192.0.2.1');
  });

  test('IPv6 parser agrees with ipaddr.js on random and tricky addresses', () => {
    const r = prng(1);
    const words = new Uint32Array(4);
    const samples = ['::', '::1', '1::', '2001:db8::1', 'fe80::1%eth0', '::ffff:192.0.2.1', '64:ff9b::192.0.2.33', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:1.2.3.4', '2001:DB8:0:0:1::1'];
    for (let i = 0; i < 2000; i++) {
      const w = [r(), r() & (i % 3 ? 0xffffffff : 0), 0, r()];
      samples.push(formatV6(w));
    }
    for (const s of samples) {
      assert.ok(parseV6(s, words), s);
      const bytes = ipaddr.IPv6.parse(s.replace(/%.*$/, '')).toByteArray();
      const expect = [0, 1, 2, 3].map((k) => ((bytes[4 * k] << 24) | (bytes[4 * k + 1] << 16) | (bytes[4 * k + 2] << 8) | bytes[4 * k + 3]) >>> 0);
      assert.deepEqual([...words], expect, s);
    }
    for (const bad of [':', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::', '1:2:3:4:5:6:7', '1.2.3.4', '::1:', '1:2:3:4:5:6:7:1.2.3.4']) {
      assert.equal(parseV6(bad, words), false, bad);
    }
  });

  test('RFC 5952 formatting matches ipaddr.js', () => {
    const r = prng(2);
    for (let i = 0; i < 500; i++) {
      const w = [r() & (i % 2 ? 0xffff0000 : 0xffffffff), i % 3 ? 0 : r(), 0, r() & 0xffff];
      const text = formatV6(w);
      assert.equal(text, ipaddr.IPv6.parse(text).toString());
    }
  });

  test('canonical CIDRs clear host bits and map ::ffff: to IPv4', () => {
    assert.equal(canonicalCidr('192.0.2.9/24'), '192.0.2.0/24');
    assert.equal(canonicalCidr('192.0.2.9'), '192.0.2.9/32');
    assert.equal(canonicalCidr('2001:DB8::1/32'), '2001:db8::/32');
    assert.equal(canonicalCidr('::ffff:192.0.2.9'), '192.0.2.9/32');
    assert.equal(canonicalCidr('::ffff:192.0.2.9/120'), '192.0.2.0/24');
    assert.throws(() => canonicalCidr('192.0.2.0/33'), /not an IP/);
    assert.throws(() => canonicalCidr('example.com'), /not an IP/);
    assert.equal(subnetOf('192.0.2.77', 24, 64), '192.0.2.0/24');
    assert.equal(subnetOf('2001:db8:1:2:3:4:5:6', 24, 64), '2001:db8:1:2::/64');
    const outer = parseNetwork('10.0.0.0/8');
    const inner = parseNetwork('10.1.2.3');
    assert.ok(outer && inner && networkContains(outer, inner));
  });
});

describe('IpTrie', () => {
  test('longest prefix wins, IPv4 and IPv6, mapped addresses count as IPv4', () => {
    const t = new IpTrie();
    t.insert('10.0.0.0/8', 8);
    t.insert('10.1.0.0/16', 16);
    t.insert('10.1.2.3', 32);
    t.insert('2001:db8::/32', 32);
    t.insert('2001:db8:1::/48', 48);
    assert.equal(t.lookup('10.1.2.3'), 32);
    assert.equal(t.lookup('10.1.2.4'), 16);
    assert.equal(t.lookup('10.2.0.0'), 8);
    assert.equal(t.lookup('11.0.0.0'), -1);
    assert.equal(t.lookup('::ffff:10.1.2.3'), 32);
    assert.equal(t.lookup('2001:db8:1::5'), 48);
    assert.equal(t.lookup('2001:db8:2::5'), 32);
    assert.equal(t.lookup('2001:db9::'), -1);
    assert.equal(t.lookup('not an ip'), -1);
    assert.deepEqual(t.match('10.1.9.9'), { cidr: '10.1.0.0/16', value: 16 });
    assert.deepEqual(t.match('2001:db8:1:0:0:0:0:1'), { cidr: '2001:db8:1::/48', value: 48 });
    assert.equal(t.size, 5);
  });

  test('the all-zero addresses are ordinary host entries', () => {
    const t = new IpTrie();
    t.insert('0.0.0.0', 7);
    t.insert('::', 8);
    t.insert('0.0.0.1', 9);
    assert.equal(t.lookup('0.0.0.0'), 7);
    assert.equal(t.lookup('::'), 8);
    assert.equal(t.lookup('0.0.0.1'), 9);
    assert.equal(t.size, 3);
    t.reserve(100_000);
    assert.equal(t.lookup('0.0.0.0'), 7);
    assert.equal(t.remove('0.0.0.0'), true);
    assert.equal(t.lookup('0.0.0.0'), -1);
    assert.equal(t.lookup('0.0.0.1'), 9);
    assert.deepEqual([...t.entries()].map((e) => e.cidr).sort(), ['0.0.0.1/32', '::/128']);
  });

  test('`above` skips entries whose value is too small (expired) and falls back to shorter ones', () => {
    const t = new IpTrie();
    t.insert('0.0.0.0/0', 1000);
    t.insert('192.0.0.0/8', 500);
    t.insert('192.0.2.0/24', 100);
    t.insert('192.0.2.1', 50);
    assert.equal(t.lookup('192.0.2.1', 0), 50);
    assert.equal(t.lookup('192.0.2.1', 60), 100);
    assert.equal(t.lookup('192.0.2.1', 200), 500);
    assert.equal(t.lookup('192.0.2.1', 600), 1000);
    assert.equal(t.lookup('192.0.2.1', 1000), -1);
    t.insert('192.0.2.1', Infinity);
    assert.equal(t.lookup('192.0.2.1', 1e15), Infinity);
  });

  test('remove keeps the rest intact; removeWhere drops expired entries', () => {
    const t = new IpTrie();
    for (const c of ['10.0.0.0/8', '10.0.0.0/16', '10.0.0.0/24', '10.0.0.1', '10.128.0.0/9', '::/0', '2001:db8::1']) t.insert(c, 1);
    assert.equal(t.remove('10.0.0.0/16'), true);
    assert.equal(t.remove('10.0.0.0/16'), false);
    assert.equal(t.lookup('10.0.0.9'), 1);
    assert.deepEqual(t.match('10.0.1.9')?.cidr, '10.0.0.0/8');
    assert.equal(t.remove('2001:db8::1'), true);
    assert.deepEqual(t.match('2001:db8::1')?.cidr, '::/0');
    t.insert('10.0.0.2', 5);
    assert.equal(t.removeWhere(1), 5);
    assert.deepEqual([...t.entries()], [{ cidr: '10.0.0.2/32', value: 5 }]);
  });

  test('overlaps: an entry containing the CIDR, or one inside it', () => {
    const t = new IpTrie();
    t.insert('127.0.0.0/8', 1);
    t.insert('192.0.2.7', 1);
    t.insert('2001:db8:5::/48', 1);
    assert.ok(t.overlaps('127.0.0.1'));
    assert.ok(t.overlaps('0.0.0.0/0'));
    assert.ok(t.overlaps('192.0.2.0/24'));
    assert.ok(t.overlaps('192.0.2.7/32'));
    assert.ok(!t.overlaps('192.0.2.8/32'));
    assert.ok(!t.overlaps('198.51.100.0/24'));
    assert.ok(t.overlaps('2001:db8::/32'));
    assert.ok(t.overlaps('2001:db8:5:1::1'));
    assert.ok(!t.overlaps('2001:db8:6::/48'));
    assert.ok(!t.overlaps('127.0.0.1', 5), 'value filter applies');
  });

  test('overlaps: a host entry inside the CIDR (IPv4, IPv6, the all-zero address), by value', () => {
    const t = new IpTrie();
    t.insert('::1', 1);
    t.insert('2001:db8:7::9', 3);
    t.insert('192.0.2.7', 1);
    assert.ok(t.overlaps('::/64'));
    assert.ok(t.overlaps('2001:db8:7::/64'));
    assert.ok(!t.overlaps('2001:db8:7::/64', 3), 'value filter applies');
    assert.ok(!t.overlaps('2001:db8:8::/48'));
    assert.ok(t.overlaps('192.0.0.0/16'));
    assert.ok(!t.overlaps('0.0.0.0/8'));
    t.insert('0.0.0.0', 2);
    assert.ok(t.overlaps('0.0.0.0/8'));
    assert.ok(!t.overlaps('0.0.0.0/8', 2));
    assert.ok(!t.overlaps('1.0.0.0/8'));
    t.remove('::1');
    assert.ok(!t.overlaps('::/64'));
  });

  test('agrees with a brute-force scan over random inserts, removes and filters', () => {
    const r = prng(3);
    const t = new IpTrie();
    const ref = new Map<string, number>();
    const nets: string[] = [];
    for (let i = 0; i < 6000; i++) {
      const len = i % 4 === 0 ? 32 : r() % 33;
      const base = (r() & 0xff0fffff) >>> 0; // clustered, so prefixes nest
      const cidr = canonicalCidr(`${formatV4(base)}/${len}`);
      const value = r() % 1000;
      t.insert(cidr, value);
      ref.set(cidr, value);
      nets.push(cidr);
      if (i % 5 === 0) {
        const victim = nets[r() % nets.length];
        assert.equal(t.remove(victim), ref.delete(victim));
      }
    }
    assert.equal(t.size, ref.size);
    const parsed = [...ref].map(([c, v]) => [parseNetwork(c), v, c] as const);
    for (let i = 0; i < 3000; i++) {
      const ip = formatV4((r() & 0xff0fffff) >>> 0);
      const above = i % 3 === 0 ? -1 : r() % 1000;
      const addr = parseNetwork(ip);
      let best: { len: number; v: number; c: string } | undefined;
      for (const [net, v, c] of parsed) {
        if (net && addr && v > above && networkContains(net, addr) && (!best || net.len > best.len)) best = { len: net.len, v, c };
      }
      assert.equal(t.lookup(ip, above), best ? best.v : -1, `${ip} above ${above}`);
      assert.equal(t.match(ip, above)?.cidr, best?.c);
    }
    assert.deepEqual(new Map([...t.entries()].map((e) => [e.cidr, e.value])), ref);
  });

  test('IPv6 agrees with brute force too', () => {
    const r = prng(4);
    const t = new IpTrie();
    const ref = new Map<string, number>();
    const rand6 = () => formatV6([0x20010db8, r() & 0xff, r() & 0xffff0000, r() & 0xf]);
    for (let i = 0; i < 1500; i++) {
      const len = i % 3 === 0 ? 128 : 32 + (r() % 97);
      const cidr = canonicalCidr(`${rand6()}/${len}`);
      t.insert(cidr, i);
      ref.set(cidr, i);
      if (i % 7 === 0) {
        const victim = [...ref.keys()][r() % ref.size];
        assert.equal(t.remove(victim), ref.delete(victim));
      }
    }
    const parsed = [...ref].map(([c, v]) => [parseNetwork(c), v] as const);
    for (let i = 0; i < 1500; i++) {
      const ip = rand6();
      const addr = parseNetwork(ip);
      let best: { len: number; v: number } | undefined;
      for (const [net, v] of parsed) if (net && addr && networkContains(net, addr) && (!best || net.len > best.len)) best = { len: net.len, v };
      assert.equal(t.lookup(ip), best ? best.v : -1, ip);
    }
  });

  test('many hosts (the /24 prefilter is on): found, absent, removed, expired', () => {
    const r = prng(6);
    const t = new IpTrie();
    const ref = new Map<number, number>();
    for (let i = 0; i < 40_000; i++) {
      const a = (r() & 0xfff0ffff) >>> 0;
      const v = r() % 100;
      t.insert(formatV4(a), v);
      ref.set(a, v);
    }
    t.insert('10.0.0.0/8', 50);
    let removed = 0;
    for (const a of [...ref.keys()].slice(0, 5000)) {
      assert.equal(t.remove(formatV4(a)), true);
      ref.delete(a);
      removed++;
    }
    assert.equal(t.size, ref.size + 1);
    const check = () => {
      for (const [a, v] of [...ref].slice(0, 3000)) assert.equal(t.lookupV4(a, 20), v > 20 ? v : (a >>> 24) === 10 ? 50 : -1, formatV4(a));
      for (let i = 0; i < 3000; i++) {
        const a = (r() & 0xfff0ffff) >>> 0;
        const v = ref.get(a);
        const net = (a >>> 24) === 10 ? 50 : -1;
        assert.equal(t.has(formatV4(a), 20), (v !== undefined && v > 20) || net > 20, formatV4(a));
      }
    };
    check();
    assert.equal(removed, 5000);
    const gone = t.removeWhere(20);
    assert.equal(gone, [...ref.values()].filter((v) => v <= 20).length);
    for (const [a, v] of ref) if (v <= 20) ref.delete(a);
    check();
  });

  test('a million host entries stay within memory budget and are all found', () => {
    const r = prng(5);
    const t = new IpTrie();
    t.reserve(1_000_000, 0);
    const sample: number[] = [];
    for (let i = 0; i < 1_000_000; i++) {
      const a = r();
      if (i % 1000 === 0) sample.push(a);
      t.insert(formatV4(a), 1);
    }
    assert.ok(t.size > 999_000);
    assert.ok(t.memoryBytes() < 64 * 1024 * 1024, `${t.memoryBytes()} bytes`);
    for (const a of sample) assert.equal(t.lookupV4(a), 1);
  });
});
