// Merging networks: exact (same addresses covered), minimal (fewest aligned
// blocks), IPv4 and IPv6 apart.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeCidrs, sortCidrs } from '../../src/intel/spfwalk/merge.js';
import { canonicalCidr, parseCidr, rangeToNets, formatNet } from '../../src/intel/cidr.js';

describe('mergeCidrs', () => {
  const cases: Array<[string, string[], string[]]> = [
    ['aligned adjacent /24s become a /23', ['192.0.2.0/24', '192.0.3.0/24'], ['192.0.2.0/23']],
    ['unaligned adjacent /24s stay apart', ['192.0.3.0/24', '192.0.4.0/24'], ['192.0.3.0/24', '192.0.4.0/24']],
    ['four aligned /24s become a /22', ['10.0.3.0/24', '10.0.1.0/24', '10.0.0.0/24', '10.0.2.0/24'], ['10.0.0.0/22']],
    ['three /24s become a /23 and a /24', ['192.0.2.0/24', '192.0.3.0/24', '192.0.4.0/24'], ['192.0.2.0/23', '192.0.4.0/24']],
    ['contained networks are dropped', ['10.1.2.0/24', '10.0.0.0/8', '10.200.0.7'], ['10.0.0.0/8']],
    ['duplicates collapse', ['192.0.2.1', '192.0.2.1/32', '192.0.2.1'], ['192.0.2.1/32']],
    ['overlaps join', ['10.0.0.0/25', '10.0.0.64/26', '10.0.0.128/25'], ['10.0.0.0/24']],
    ['host bits are cleared first', ['192.0.2.77/24', '192.0.3.200/24'], ['192.0.2.0/23']],
    ['two /1s make the whole IPv4 space', ['0.0.0.0/1', '128.0.0.0/1'], ['0.0.0.0/0']],
    ['the top of the space', ['255.255.255.255', '255.255.255.254'], ['255.255.255.254/31']],
    ['single addresses join into blocks', ['192.0.2.4', '192.0.2.5', '192.0.2.6', '192.0.2.7', '192.0.2.8'], ['192.0.2.4/30', '192.0.2.8/32']],
    ['IPv6 halves join', ['2001:db8:8000::/33', '2001:DB8::/33'], ['2001:db8::/32']],
    ['IPv6 contained', ['2001:db8::/32', '2001:db8:5::/64', '2001:db8::1'], ['2001:db8::/32']],
    ['families never join, IPv4 sorts first', ['::/128', '255.255.255.255', '::1'], ['255.255.255.255/32', '::/127']],
    ['IPv4-mapped IPv6 is IPv4', ['::ffff:192.0.2.1', '192.0.2.0/32'], ['192.0.2.0/31']],
    ['empty', [], []],
  ];
  for (const [name, input, want] of cases) {
    test(name, () => assert.deepEqual(mergeCidrs(input), want));
  }

  test('rejects garbage', () => {
    assert.throws(() => mergeCidrs(['192.0.2.0/33']), /not an IP address or CIDR/);
    assert.throws(() => mergeCidrs(['192.0.2.01']), /not an IP address or CIDR/);
  });

  test('random sets: same addresses covered, and no two outputs could be joined', () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const input: string[] = [];
      for (let i = 0, n = 1 + rand(12); i < n; i++) {
        const len = 24 + rand(9);
        input.push(`10.0.0.${rand(256)}/${len}`);
      }
      const out = mergeCidrs(input);
      const covered = (cidrs: string[]) => {
        const set = new Set<number>();
        for (const c of cidrs) {
          const n = parseCidr(c)!;
          const size = 2 ** (32 - n.len);
          for (let k = 0; k < size; k++) set.add(Number(n.first) + k);
        }
        return [...set].sort((a, b) => a - b);
      };
      assert.deepEqual(covered(out), covered(input), `round ${round}: ${input.join(' ')}`);
      const nets = out.map((c) => parseCidr(c)!);
      for (let i = 1; i < nets.length; i++) {
        const a = nets[i - 1];
        const b = nets[i];
        const aLast = a.first + 2n ** BigInt(32 - a.len) - 1n;
        assert.ok(aLast < b.first, `sorted and disjoint: ${out.join(' ')}`);
        const siblings = a.len === b.len && aLast + 1n === b.first && a.first % 2n ** BigInt(33 - a.len) === 0n;
        assert.ok(!siblings, `mergeable siblings left: ${formatNet(a)} ${formatNet(b)}`);
      }
    }
  });
});

describe('sortCidrs (--no-merge)', () => {
  test('canonical, de-duplicated, sorted, nothing joined', () => {
    assert.deepEqual(sortCidrs(['2001:DB8::1', '192.0.3.0/24', '192.0.2.0/24', '192.0.2.0/24', '10.0.0.0/8', '10.1.0.0/16']), [
      '10.0.0.0/8',
      '10.1.0.0/16',
      '192.0.2.0/24',
      '192.0.3.0/24',
      '2001:db8::1/128',
    ]);
  });
});

describe('cidr helpers', () => {
  test('canonical text follows RFC 5952', () => {
    assert.equal(canonicalCidr('2001:0DB8:0000:0000:0001:0000:0000:0001'), '2001:db8::1:0:0:1/128');
    assert.equal(canonicalCidr('2001:db8:0:1:1:1:1:1/64'), '2001:db8:0:1::/64');
    assert.equal(canonicalCidr('::'), '::/128');
    assert.equal(canonicalCidr('192.0.2.9/0'), '0.0.0.0/0');
    assert.equal(canonicalCidr('1.2.3'), undefined);
    assert.equal(canonicalCidr('192.0.2.0/024'), undefined);
  });

  test('rangeToNets covers a range exactly with aligned blocks', () => {
    const first = parseCidr('192.0.2.1')!.first;
    const last = parseCidr('192.0.2.14')!.first;
    assert.deepEqual(rangeToNets(4, first, last).map(formatNet), [
      '192.0.2.1/32',
      '192.0.2.2/31',
      '192.0.2.4/30',
      '192.0.2.8/30',
      '192.0.2.12/31',
      '192.0.2.14/32',
    ]);
  });
});
