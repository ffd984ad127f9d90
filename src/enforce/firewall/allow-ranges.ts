// The allow set as sorted, disjoint address ranges per family: "does this ban
// overlap anything allowed?" is one binary search, for a host or a network.
// The full reconcile asks it for every ban that is not an IPv4 host (tens of
// thousands in a big store); IpTrie.overlaps answers a network by scanning
// its host table, which is slow for that many questions.

import type { Network } from '../../core/cidr.js';

const V6_BITS = 128n;

function v6Value(w: Uint32Array): bigint {
  return (BigInt(w[0]) << 96n) | (BigInt(w[1]) << 64n) | (BigInt(w[2]) << 32n) | BigInt(w[3]);
}

/** First index whose `hi` is ≥ x (hi ascending), or hi.length. */
function firstEnding<T extends number | bigint>(hi: ArrayLike<T>, x: T): number {
  let a = 0;
  let b = hi.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (hi[m] < x) a = m + 1;
    else b = m;
  }
  return a;
}

export class AllowRanges {
  /** IPv4 ranges, inclusive, ascending. */
  readonly lo4: Uint32Array;
  readonly hi4: Uint32Array;
  private readonly lo6: bigint[];
  private readonly hi6: bigint[];

  /** `nets` must not overlap one another (BanFilter keeps only the widest of nested entries). */
  constructor(nets: readonly Network[]) {
    const v4 = nets.filter((n) => !n.v6).map((n) => ({ lo: n.addr, hi: n.addr + 2 ** (32 - n.len) - 1 }));
    v4.sort((a, b) => a.lo - b.lo);
    this.lo4 = Uint32Array.from(v4, (r) => r.lo);
    this.hi4 = Uint32Array.from(v4, (r) => r.hi);
    const v6 = nets.flatMap((n) => (n.v6 ? [{ lo: v6Value(n.words), hi: v6Value(n.words) + (1n << (V6_BITS - BigInt(n.len))) - 1n }] : []));
    v6.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
    this.lo6 = v6.map((r) => r.lo);
    this.hi6 = v6.map((r) => r.hi);
  }

  /** Whether IPv4 addresses lo..hi (inclusive) meet an allowed range. */
  overlapsV4(lo: number, hi: number): boolean {
    const i = firstEnding(this.hi4, lo);
    return i < this.hi4.length && this.lo4[i] <= hi;
  }

  overlaps(net: Network): boolean {
    if (!net.v6) return this.overlapsV4(net.addr, net.addr + 2 ** (32 - net.len) - 1);
    if (this.lo6.length === 0) return false;
    const lo = v6Value(net.words);
    const hi = lo + (1n << (V6_BITS - BigInt(net.len))) - 1n;
    const i = firstEnding(this.hi6, lo);
    return i < this.hi6.length && this.lo6[i] <= hi;
  }
}
