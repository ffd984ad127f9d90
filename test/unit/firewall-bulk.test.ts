// The full reconcile's bulk path (a million bans): IPv4 hosts kept as numbers
// (hosts4.ts), scripts written into one buffer (script-writer.ts). Checked
// against the plain way of doing the same — one BanFilter.check and one
// element object per ban, one template string per element — on random
// stores with repeats, never-ban overlaps and bad entries mixed in.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatV4 } from '../../src/core/ip.js';
import { banElements, BanFilter, desiredState, disjointNetworks, isHost } from '../../src/enforce/firewall/desired.js';
import { radixSort } from '../../src/enforce/firewall/hosts4.js';
import { ipsetFullScript } from '../../src/enforce/firewall/ipset.js';
import { NFT_CHUNK, NFT_MAX_TIMEOUT_S, nftFullScript } from '../../src/enforce/firewall/nft.js';
import { ScriptWriter } from '../../src/enforce/firewall/script-writer.js';
import { secondsLeft, type BanElement } from '../../src/enforce/firewall/types.js';
import { IpTrie } from '../../src/store/ip-trie.js';

const NOW = 1_800_000_000_000;
const MIN = { v4: 16, v6: 32 };
const ALLOW = ['0.0.0.0/8', '127.0.0.0/8', '::1', '198.51.100.0/24', '203.0.113.77', '255.255.255.255', '2001:db8:ffff::/48', 'not an address'];

function rng(seed: number) {
  return (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
}

/** A store's worth of bans: mostly IPv4 hosts over a few /16s (so repeats happen), some in the allow set, and every other kind. */
function randomBans(n: number, seed: number): Array<{ cidr: string; expiresAt: number }> {
  const r = rng(seed);
  const out: Array<{ cidr: string; expiresAt: number }> = [];
  const nets = [0, 127, 198, 203, 255, 11, 12, 13, 14];
  for (let i = 0; i < n; i++) {
    const k = r(100);
    const first = nets[r(nets.length)];
    const cidr =
      k < 80
        ? `${first}.${first === 198 ? 51 : first === 203 ? 0 : r(3)}.${first === 198 ? 100 : first === 203 ? 113 : r(256)}.${r(256)}/32`
        : k < 85
          ? `${first}.${r(3)}.${r(256)}.${r(256)}` // a host without its length (the slow path)
          : k < 90
            ? `2001:db8:${r(2) ? 'ffff' : r(4).toString(16)}:${r(4).toString(16)}::/64`
            : k < 93
              ? `2001:db8::${r(50).toString(16)}/128`
              : k < 97
                ? r(2) === 0
                  ? `11.${r(3)}.${r(16)}.0/24`
                  : `11.${r(3)}.${r(4) * 4}.0/22` // some hold a /24 above
                : ['garbage', '10.0.0.0/8', '1.2.3.4/24', '010.0.0.1/32', '0.0.0.0/0'][r(5)];
    const expiresAt = r(10) === 0 ? NOW - r(1000) : NOW + (1 + r(40 * 86400)) * 1000 + r(1000);
    out.push({ cidr, expiresAt });
  }
  return out;
}

/**
 * The plain way: each row through BanFilter.check (with no allow set: it only
 * reads, canonicalises and counts bad rows), the allow set checked with an
 * IpTrie (as before the range search), kept once with its latest expiry,
 * networks made disjoint. An allowed IPv4 host written "a.b.c.d/32" (the
 * store's form) on several rows is counted once on the bulk path, so once here.
 */
function reference(bans: Array<{ cidr: string; expiresAt: number }>, disjoint: boolean) {
  const f = new BanFilter([], MIN);
  const allow = new IpTrie();
  for (const c of new BanFilter(ALLOW, MIN).allow) allow.insert(c, 1);
  const kept = new Map<string, BanElement>();
  const allowedHosts = new Set<string>();
  let neverBan = 0;
  for (const { cidr, expiresAt } of bans) {
    const e = f.check(cidr, expiresAt, NOW);
    if (!e) continue;
    if (allow.overlaps(e.cidr)) {
      if (!(/^\d+\.\d+\.\d+\.\d+\/32$/.test(cidr) && allowedHosts.has(cidr))) neverBan++;
      allowedHosts.add(cidr);
      continue;
    }
    const had = kept.get(e.cidr);
    if (!had || had.expiresAt < e.expiresAt) kept.set(e.cidr, e);
  }
  let els = [...kept.values()];
  if (disjoint) els = disjointNetworks(els).bans;
  return { els, skipped: { ...f.skipped, neverBan, allowMalformed: 1 } };
}

const key = (els: BanElement[]) => els.map((b) => `${b.cidr} ${b.text} ${b.expiresAt}`).sort();

test('the bulk path keeps what the plain one keeps: same elements, same expiries, same counts', () => {
  for (const seed of [1, 2, 3]) {
    const bans = randomBans(20_000, seed);
    for (const disjoint of [true, false]) {
      const s = desiredState({ bans, allow: ALLOW, minPrefix: MIN, now: NOW, disjointNets: disjoint });
      const ref = reference(bans, disjoint);
      assert.deepEqual(key(banElements(s)), key(ref.els), `seed ${seed}`);
      assert.ok(ref.skipped.neverBan > 100 && ref.skipped.malformed > 0 && ref.skipped.tooWide > 0, 'the sample has never-ban, bad and too wide rows');
      assert.deepEqual(s.skipped, ref.skipped);
      const a = s.hosts4.addr;
      for (let i = 1; i < a.length; i++) assert.ok(a[i - 1] < a[i], 'hosts sorted, each once');
      for (const b of s.others) assert.ok(b.net.v6 || !isHost(b.net), 'only IPv6 and networks outside hosts4');
    }
  }
});

test('never-ban wins on the bulk path: hosts inside allowed networks, at the ends of the address space, and repeated', () => {
  const bans = ['0.0.0.1/32', '0.255.255.255/32', '1.0.0.0/32', '127.0.0.1/32', '198.51.100.0/32', '198.51.100.255/32', '198.51.101.0/32', '203.0.113.77/32', '203.0.113.77/32', '203.0.113.78/32', '255.255.255.254/32', '255.255.255.255/32'].map((cidr, i) => ({ cidr, expiresAt: NOW + 1000 * (i + 1) }));
  const s = desiredState({ bans, allow: ALLOW, minPrefix: MIN, now: NOW, disjointNets: true });
  assert.deepEqual(
    banElements(s).map((b) => b.cidr),
    ['1.0.0.0/32', '198.51.101.0/32', '203.0.113.78/32', '255.255.255.254/32'],
  );
  assert.equal(s.skipped.neverBan, 7);
  assert.ok(s.examples.includes('ban 127.0.0.1/32: overlaps the allow set'), s.examples.join('; '));
});

test('a host listed twice keeps its latest expiry; an expired row never hides a live one', () => {
  const s = desiredState({
    bans: [
      { cidr: '192.0.2.1/32', expiresAt: NOW + 5000 },
      { cidr: '192.0.2.1/32', expiresAt: NOW + 9000 },
      { cidr: '192.0.2.1', expiresAt: NOW + 7000 },
      { cidr: '192.0.2.2/32', expiresAt: NOW + 3000 },
      { cidr: '192.0.2.2/32', expiresAt: NOW - 1 },
      { cidr: '192.0.2.3/32', expiresAt: NaN },
    ],
    allow: [],
    minPrefix: MIN,
    now: NOW,
    disjointNets: true,
  });
  assert.deepEqual([...s.hosts4.addr].map(formatV4), ['192.0.2.1', '192.0.2.2']);
  assert.deepEqual([...s.hosts4.expiresAt], [NOW + 9000, NOW + 3000]);
});

test('radix sort: ascending addresses over the whole 32-bit range, the expiries moved with them', () => {
  const r = rng(7);
  const n = 100_000;
  const addr = new Uint32Array(n);
  const exp = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    addr[i] = (r(65536) * 65536 + r(65536)) >>> 0;
    exp[i] = addr[i] * 3 + 1;
  }
  addr[0] = 0xffffffff;
  exp[0] = 0xffffffff * 3 + 1;
  const want = [...addr].sort((a, b) => a - b);
  radixSort(addr, exp);
  assert.deepEqual([...addr], want);
  for (let i = 0; i < n; i++) assert.equal(exp[i], addr[i] * 3 + 1);
});

test('the script writer: digits, dotted quads and text as String() and formatV4 write them, past its first buffer', () => {
  const w = new ScriptWriter();
  const want: string[] = [];
  const r = rng(9);
  for (const n of [0, 1, 9, 10, 99, 100, 3600, 31_536_000, 2_147_483, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
    w.uint(n).text(' ');
    want.push(`${n} `);
  }
  for (const a of [0, 1, 0x0a000001, 0x7f000001, 0xc0000207, 0xffffffff, 0x64646464]) {
    w.v4(a).text('\n');
    want.push(`${formatV4(a)}\n`);
  }
  for (let i = 0; i < 20_000; i++) {
    const a = (r(65536) * 65536 + r(65536)) >>> 0;
    const s = r(100_000_000);
    w.v4(a).text(' timeout ').uint(s).text('s, ');
    want.push(`${formatV4(a)} timeout ${s}s, `);
  }
  assert.equal(w.toString(), want.join(''));
});

test('nft and ipset scripts from the bulk path equal the one-string-per-element ones', () => {
  const bans = randomBans(50_000, 4);
  const s = desiredState({ bans, allow: ALLOW, minPrefix: MIN, now: NOW, disjointNets: true });
  assert.ok(s.hosts4.addr.length > NFT_CHUNK, 'more than one add element statement');
  const els = banElements(s);
  const bySet = new Map<string, string[]>();
  for (const set of ['ban4', 'ban6', 'ban4_nets', 'ban6_nets']) bySet.set(set, []);
  for (const b of els) bySet.get(isHost(b.net) ? (b.net.v6 ? 'ban6' : 'ban4') : b.net.v6 ? 'ban6_nets' : 'ban4_nets')!.push(`${b.text} timeout ${secondsLeft(b.expiresAt, NOW, NFT_MAX_TIMEOUT_S)}s`);
  const statements: string[] = [];
  const allow4 = s.allow.filter((c) => !c.includes(':'));
  const allow6 = s.allow.filter((c) => c.includes(':'));
  for (const [set, list] of [['allow4', allow4], ['allow6', allow6], ...bySet] as Array<[string, string[]]>) {
    for (let i = 0; i < list.length; i += NFT_CHUNK) statements.push(`add element inet frontline ${set} { ${list.slice(i, i + NFT_CHUNK).join(', ')} }\n`);
  }
  const script = nftFullScript(s, { ports: [], action: 'drop' }, NOW);
  assert.ok(script.endsWith(statements.join('')));
  assert.equal(script.split('\n').filter((l) => l.startsWith('add element')).length, statements.length);

  const ipset = desiredState({ bans, allow: ALLOW, minPrefix: MIN, now: NOW, disjointNets: false });
  const lines = ipsetFullScript(ipset, NOW).split('\n');
  const adds = new Set(lines.filter((l) => /^add frontline-ban[46]-new /.test(l)));
  const want = banElements(ipset).map((b) => `add frontline-ban${b.net.v6 ? 6 : 4}-new ${b.text} timeout ${secondsLeft(b.expiresAt, NOW, 2_147_483)}`);
  assert.equal(adds.size, want.length);
  for (const l of want) assert.ok(adds.has(l), l);
});
