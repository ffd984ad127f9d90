// Longest-prefix-match over IPv4 and IPv6 CIDRs, sized for millions of
// entries and millions of lookups a second.
//
// Two structures, both in typed arrays (no JS object per entry, so a million
// entries cost tens of MB and give the garbage collector nothing to walk):
//
// - Host entries (/32, /128) — the bulk of a ban list — sit in an
//   open-addressing hash table: one or two cache misses per lookup. A host
//   entry is always the longest possible match, so it is checked first.
// - Shorter prefixes sit in a path-compressed binary trie (a node carries its
//   whole prefix, so there are ~2 nodes per entry, not one per bit). Each node
//   is one contiguous record (key words, two children, length+flag), so a
//   step down the trie touches one cache line.
//
// Every entry carries a number ≥ 0. Lookups take `above` and only match
// entries whose value is greater, so a caller can store an expiry time as the
// value and ask "what contains this IP and is still valid now".

import { formatNetwork, formatV4, formatV6, isMappedV4, maskV4, parseNetwork, parseV6, type Network } from './ip.js';

const NO_VALUE = -1;
const HAS_VALUE = 256;
const LEN_MASK = 255;
const JUMP_BITS = 16;
/** find4() codes: no match, the 0.0.0.0 host, not IPv4 text (host slots are ≤ -3, trie nodes ≥ 0). */
const MISS = -1;
const HOST_ZERO = -2;
const NOT_V4 = -0x40000000;
/** Host tables this big get a /24 bitmap in front (see HostTable.filter). */
const FILTER_FROM = 16_384;

/**
 * Path-compressed binary trie over W-word keys (W = 1 for IPv4, 4 for IPv6).
 * Node n is the record nodes[n*S .. n*S+S) = [key words…, child0, child1,
 * length | HAS_VALUE]; its value is vals[n]. Node 0 is the root (length 0);
 * child index 0 means "none" (the root is never a child).
 */
class PrefixTrie {
  readonly S: number;
  nodes: Int32Array;
  vals: Float64Array;
  used = 1;
  free: number[] = [];
  entries = 0;
  /**
   * IPv4 only: for each value of the top 16 bits, at [2·slot] the deepest
   * node of length ≤ 16 on that path (where a lookup can start) and at
   * [2·slot+1] the deepest such node holding a value (-1: none) — side by
   * side, so one cache line serves both. Saves the ~16 steps every lookup
   * would take through the top of the trie.
   */
  readonly jump?: Int32Array;
  /** Shortest node of length ≤ 16 changed by the current operation (its range of slots needs refilling). */
  private dirtyLen = 99;
  private dirtyKey = 0;

  constructor(
    readonly W: number,
    capacity = 256,
  ) {
    this.S = W + 3;
    this.nodes = new Int32Array(capacity * this.S);
    this.vals = new Float64Array(capacity).fill(NO_VALUE);
    if (W === 1) {
      this.jump = new Int32Array(2 << JUMP_BITS);
      for (let i = 1; i < this.jump.length; i += 2) this.jump[i] = -1;
    }
  }

  get capacity(): number {
    return this.vals.length;
  }

  reserve(count: number): void {
    if (count <= this.capacity) return;
    const nodes = new Int32Array(count * this.S);
    nodes.set(this.nodes);
    const vals = new Float64Array(count).fill(NO_VALUE);
    vals.set(this.vals);
    this.nodes = nodes;
    this.vals = vals;
  }

  bytes(): number {
    return this.nodes.byteLength + this.vals.byteLength;
  }

  len(n: number): number {
    return this.nodes[n * this.S + this.W + 2] & LEN_MASK;
  }

  hasValue(n: number): boolean {
    return (this.nodes[n * this.S + this.W + 2] & HAS_VALUE) !== 0;
  }

  child(n: number, b: number): number {
    return this.nodes[n * this.S + this.W + b];
  }

  setChild(n: number, b: number, c: number): void {
    this.nodes[n * this.S + this.W + b] = c;
  }

  /** Note a change to node n; nodes of length ≤ 16 invalidate their slots of the jump table. */
  private touch(n: number): void {
    if (!this.jump) return;
    const l = this.len(n);
    if (l <= JUMP_BITS && l < this.dirtyLen) {
      this.dirtyLen = l;
      this.dirtyKey = this.nodes[n * this.S];
    }
  }

  /** Rebuild the jump-table slots of the shortest node touched since the last call. */
  private settle(): void {
    if (!this.jump || this.dirtyLen > JUMP_BITS) return;
    const key = this.dirtyKey >>> 0;
    const len = this.dirtyLen;
    this.dirtyLen = 99;
    // Descend to the deepest node of length ≤ len containing key/len, noting the deepest valued one.
    let n = 0;
    let best = this.hasValue(0) ? 0 : -1;
    for (;;) {
      const l = this.len(n);
      if (l >= len) break;
      const c = this.child(n, (key >>> (31 - l)) & 1);
      if (c === 0) break;
      const cl = this.len(c);
      if (cl > len || maskV4(key ^ this.nodes[c * this.S], cl) !== 0) break;
      n = c;
      if (this.hasValue(c)) best = c;
    }
    const lo = key >>> (32 - JUMP_BITS);
    this.fill(n, best, lo, lo + (1 << (JUMP_BITS - len)));
  }

  private fill(n: number, best: number, lo: number, hi: number): void {
    const jump = this.jump as Int32Array;
    for (let i = lo; i < hi; i++) {
      jump[2 * i] = n;
      jump[2 * i + 1] = best;
    }
    for (let b = 0; b < 2; b++) {
      const c = this.child(n, b);
      if (c === 0) continue;
      const cl = this.len(c);
      if (cl > JUMP_BITS) continue;
      const clo = (this.nodes[c * this.S] >>> 0) >>> (32 - JUMP_BITS);
      const chi = clo + (1 << (JUMP_BITS - cl));
      const a = Math.max(lo, clo);
      const z = Math.min(hi, chi);
      if (a < z) this.fill(c, this.hasValue(c) ? c : best, a, z);
    }
  }

  setValue(n: number, value: number): void {
    this.touch(n);
    const m = n * this.S + this.W + 2;
    if (value < 0) this.nodes[m] &= LEN_MASK;
    else this.nodes[m] |= HAS_VALUE;
    this.vals[n] = value;
  }

  alloc(q: Uint32Array, len: number, value: number): number {
    let n = this.free.pop();
    if (n === undefined) {
      if (this.used === this.capacity) this.reserve(this.capacity * 2);
      n = this.used++;
    }
    const o = n * this.S;
    for (let k = 0; k < this.W; k++) this.nodes[o + k] = maskV4(q[k], Math.min(32, Math.max(0, len - 32 * k)));
    this.nodes[o + this.W] = 0;
    this.nodes[o + this.W + 1] = 0;
    this.nodes[o + this.W + 2] = len;
    this.setValue(n, value);
    return n;
  }

  release(n: number): void {
    this.setValue(n, NO_VALUE);
    this.nodes[n * this.S + this.W] = 0;
    this.nodes[n * this.S + this.W + 1] = 0;
    this.free.push(n);
  }

  /** Bit i (0 = most significant) of the query words. */
  static qbit(q: Uint32Array, i: number): number {
    return (q[i >>> 5] >>> (31 - (i & 31))) & 1;
  }

  nbit(n: number, i: number): number {
    return (this.nodes[n * this.S + (i >>> 5)] >>> (31 - (i & 31))) & 1;
  }

  /** Length of the common prefix of the query and node n's key, at most `lim`. */
  cpl(q: Uint32Array, n: number, lim: number): number {
    const o = n * this.S;
    for (let k = 0; k < this.W; k++) {
      if (32 * k >= lim) return lim;
      const x = (q[k] ^ this.nodes[o + k]) >>> 0;
      if (x !== 0) {
        const r = 32 * k + Math.clz32(x);
        return r < lim ? r : lim;
      }
    }
    return lim;
  }

  /** Set the value of prefix q/len; true when the prefix was not stored before. */
  insert(q: Uint32Array, len: number, value: number): boolean {
    const fresh = this.insertNode(q, len, value);
    this.settle();
    return fresh;
  }

  private insertNode(q: Uint32Array, len: number, value: number): boolean {
    let n = 0;
    for (;;) {
      const nl = this.len(n);
      if (nl === len) {
        const fresh = !this.hasValue(n);
        this.setValue(n, value);
        if (fresh) this.entries++;
        return fresh;
      }
      const b = PrefixTrie.qbit(q, nl);
      const c = this.child(n, b);
      if (c === 0) {
        const m = this.alloc(q, len, value);
        this.setChild(n, b, m);
        this.entries++;
        return true;
      }
      const cl = this.len(c);
      const cp = this.cpl(q, c, Math.min(len, cl));
      if (cp === cl) {
        n = c;
        continue;
      }
      if (cp === len) {
        const m = this.alloc(q, len, value);
        this.setChild(m, this.nbit(c, len), c);
        this.setChild(n, b, m);
        this.entries++;
        return true;
      }
      const g = this.alloc(q, cp, NO_VALUE);
      const m = this.alloc(q, len, value);
      this.setChild(g, this.nbit(c, cp), c);
      this.setChild(g, PrefixTrie.qbit(q, cp), m);
      this.setChild(n, b, g);
      this.entries++;
      return true;
    }
  }

  /** The node holding exactly q/len (value or glue), or -1; `path` receives its ancestors. */
  find(q: Uint32Array, len: number, path?: number[]): number {
    let n = 0;
    for (;;) {
      const nl = this.len(n);
      if (nl === len) return n;
      const c = this.child(n, PrefixTrie.qbit(q, nl));
      if (c === 0) return -1;
      const cl = this.len(c);
      if (cl > len || this.cpl(q, c, cl) < cl) return -1;
      path?.push(n);
      n = c;
    }
  }

  get(q: Uint32Array, len: number): number {
    const n = this.find(q, len);
    return n >= 0 && this.hasValue(n) ? this.vals[n] : NO_VALUE;
  }

  remove(q: Uint32Array, len: number): boolean {
    const path: number[] = [];
    const n = this.find(q, len, path);
    if (n < 0 || !this.hasValue(n)) return false;
    this.setValue(n, NO_VALUE);
    this.entries--;
    if (n !== 0) this.prune(n, path);
    this.settle();
    return true;
  }

  /** Drop a valueless node with fewer than two children, then its parent if that became redundant. */
  private prune(n: number, path: number[]): void {
    const parent = path[path.length - 1];
    const a = this.child(n, 0);
    const b = this.child(n, 1);
    if (a !== 0 && b !== 0) return;
    this.setChild(parent, this.child(parent, 1) === n ? 1 : 0, a || b);
    this.release(n);
    if (parent === 0 || this.hasValue(parent)) return;
    if (this.child(parent, 0) !== 0 && this.child(parent, 1) !== 0) return;
    this.prune(parent, path.slice(0, -1));
  }

  /** The deepest node containing the full-length key q whose value is > above, or -1. */
  lookup(q: Uint32Array, bits: number, above: number): number {
    const vals = this.vals;
    let best = this.hasValue(0) && vals[0] > above ? 0 : -1;
    let n = 0;
    for (;;) {
      const l = this.len(n);
      if (l === bits) return best;
      const c = this.child(n, PrefixTrie.qbit(q, l));
      if (c === 0) return best;
      const cl = this.len(c);
      if (this.cpl(q, c, cl) < cl) return best;
      if (this.hasValue(c) && vals[c] > above) best = c;
      n = c;
    }
  }

  /** True when q/len lies inside some stored entry (length ≤ len) with value > above. */
  contains(q: Uint32Array, len: number, above: number): boolean {
    if (this.hasValue(0) && this.vals[0] > above) return true;
    let n = 0;
    for (;;) {
      const l = this.len(n);
      if (l >= len) return false;
      const c = this.child(n, PrefixTrie.qbit(q, l));
      if (c === 0) return false;
      const cl = this.len(c);
      if (cl > len || this.cpl(q, c, cl) < cl) return false;
      if (this.hasValue(c) && this.vals[c] > above) return true;
      n = c;
    }
  }

  /** True when some entry with value > above lies inside q/len (q/len itself included). */
  anyWithin(q: Uint32Array, len: number, above: number): boolean {
    let n = 0;
    while (this.len(n) < len) {
      const c = this.child(n, PrefixTrie.qbit(q, this.len(n)));
      if (c === 0) return false;
      const lim = Math.min(len, this.len(c));
      if (this.cpl(q, c, lim) < lim) return false;
      n = c;
    }
    const stack = [n];
    while (stack.length > 0) {
      const m = stack.pop() as number;
      if (this.hasValue(m) && this.vals[m] > above) return true;
      if (this.child(m, 0)) stack.push(this.child(m, 0));
      if (this.child(m, 1)) stack.push(this.child(m, 1));
    }
    return false;
  }

  /** Nodes holding a value, depth first. */
  *walk(): Generator<number> {
    const stack = [0];
    while (stack.length > 0) {
      const m = stack.pop() as number;
      if (this.child(m, 1)) stack.push(this.child(m, 1));
      if (this.child(m, 0)) stack.push(this.child(m, 0));
      if (this.hasValue(m)) yield m;
    }
  }

  keyOf(n: number): Uint32Array {
    const q = new Uint32Array(this.W);
    for (let k = 0; k < this.W; k++) q[k] = this.nodes[n * this.S + k];
    return q;
  }

  /** Remove every entry whose value is ≤ upTo; returns how many. */
  removeWhere(upTo: number): number {
    const doomed: number[] = [];
    for (const n of this.walk()) if (this.vals[n] <= upTo) doomed.push(n);
    const keys = doomed.map((n) => [this.keyOf(n), this.len(n)] as const);
    for (const [q, len] of keys) this.remove(q, len);
    return doomed.length;
  }
}

/**
 * Host entries (full-length keys) in an open-addressing hash table with
 * linear probing. Keys sit alone in a Uint32Array (slot i = keys[i*W ..)),
 * so a probe reads 4 bytes per slot and the whole key array of a million
 * IPv4 hosts (8 MB) stays in the CPU's last-level cache; values are read
 * only on a hit. An all-zero key marks an empty slot, so the all-zero
 * address (0.0.0.0, ::) keeps its value in a field of its own. Kept at most
 * half full; deletion shifts followers back, so no tombstones accumulate.
 */
class HostTable {
  keys: Uint32Array;
  /** The same memory as `keys`, read as int32 by the IPv4 fast path. */
  keysI: Int32Array;
  vals: Float64Array;
  mask: number;
  shift: number;
  entries = 0;
  /** Value of the all-zero key, -1 when absent. */
  zero = NO_VALUE;
  /**
   * IPv4 tables past FILTER_FROM entries: one bit per /24 that holds (or
   * held) a host. Most lookups are misses, and a 2 MB bitmap answers them
   * without touching the much larger key array — fewer cache and TLB misses.
   * Bits of removed hosts stay set (harmless) until removeWhere() rebuilds.
   */
  filter?: Int32Array;

  constructor(
    readonly W: number,
    capacity = 1024,
  ) {
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, capacity)));
    this.keys = new Uint32Array(cap * W);
    this.keysI = new Int32Array(this.keys.buffer);
    this.vals = new Float64Array(cap);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
  }

  bytes(): number {
    return this.keys.byteLength + this.vals.byteLength;
  }

  /** Make room for `count` entries without regrowing. */
  reserve(count: number): void {
    if (count * 2 <= this.mask + 1) return;
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const cap = 1 << Math.ceil(Math.log2(count * 2));
    this.keys = new Uint32Array(cap * this.W);
    this.keysI = new Int32Array(this.keys.buffer);
    this.vals = new Float64Array(cap);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
    const zero = this.zero;
    this.entries = 0;
    const q = new Uint32Array(this.W);
    for (let i = 0; i < oldVals.length; i++) {
      if (this.emptyAt(oldKeys, i)) continue;
      for (let k = 0; k < this.W; k++) q[k] = oldKeys[i * this.W + k];
      this.set(q, oldVals[i]);
    }
    if (zero >= 0) {
      this.zero = zero;
      this.entries++;
    }
  }

  private emptyAt(keys: Uint32Array, i: number): boolean {
    for (let k = 0; k < this.W; k++) if (keys[i * this.W + k] !== 0) return false;
    return true;
  }

  private isZero(q: Uint32Array): boolean {
    for (let k = 0; k < this.W; k++) if (q[k] !== 0) return false;
    return true;
  }

  hash(q: Uint32Array): number {
    let h = q[0];
    for (let k = 1; k < this.W; k++) h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) ^ q[k];
    return Math.imul(h, 0x9e3779b1) >>> this.shift;
  }

  /** Slot of non-zero key q, or -(free slot)-1 when absent. */
  slot(q: Uint32Array): number {
    const keys = this.keys;
    const W = this.W;
    let i = this.hash(q);
    for (;;) {
      if (this.emptyAt(keys, i)) return -i - 1;
      let eq = true;
      for (let k = 0; k < W && eq; k++) if (keys[i * W + k] !== q[k]) eq = false;
      if (eq) return i;
      i = (i + 1) & this.mask;
    }
  }

  get(q: Uint32Array): number {
    if (this.isZero(q)) return this.zero;
    const i = this.slot(q);
    return i < 0 ? NO_VALUE : this.vals[i];
  }

  set(q: Uint32Array, value: number): boolean {
    if (this.isZero(q)) {
      const fresh = this.zero < 0;
      this.zero = value;
      if (fresh) this.entries++;
      return fresh;
    }
    let i = this.slot(q);
    if (i >= 0) {
      this.vals[i] = value;
      return false;
    }
    if ((this.entries + 1) * 2 > this.mask + 1) {
      this.reserve(this.entries + 1);
      i = this.slot(q);
    }
    i = -i - 1;
    for (let k = 0; k < this.W; k++) this.keys[i * this.W + k] = q[k];
    this.vals[i] = value;
    this.entries++;
    if (this.filter) this.filter[q[0] >>> 13] |= 1 << ((q[0] >>> 8) & 31);
    else if (this.W === 1 && this.entries >= FILTER_FROM) this.rebuildFilter();
    return true;
  }

  private rebuildFilter(): void {
    const f = this.filter ?? new Int32Array(1 << 19);
    f.fill(0);
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      const a = keys[i];
      if (a !== 0) f[a >>> 13] |= 1 << ((a >>> 8) & 31);
    }
    this.filter = f;
  }

  remove(q: Uint32Array): boolean {
    if (this.isZero(q)) {
      if (this.zero < 0) return false;
      this.zero = NO_VALUE;
      this.entries--;
      return true;
    }
    let i = this.slot(q);
    if (i < 0) return false;
    const keys = this.keys;
    const W = this.W;
    const home = new Uint32Array(W);
    // Backward-shift deletion: move later members of the probe run into the hole when their home allows it.
    let j = i;
    for (;;) {
      j = (j + 1) & this.mask;
      if (this.emptyAt(keys, j)) break;
      for (let k = 0; k < W; k++) home[k] = keys[j * W + k];
      const h = this.hash(home);
      const stays = i <= j ? i < h && h <= j : i < h || h <= j;
      if (stays) continue;
      keys.copyWithin(i * W, j * W, j * W + W);
      this.vals[i] = this.vals[j];
      i = j;
    }
    keys.fill(0, i * W, i * W + W);
    this.vals[i] = 0;
    this.entries--;
    return true;
  }

  /** Occupied slots; -1 stands for the all-zero key. */
  *walk(): Generator<number> {
    if (this.zero >= 0) yield -1;
    for (let i = 0; i <= this.mask; i++) if (!this.emptyAt(this.keys, i)) yield i;
  }

  keyOf(i: number): Uint32Array {
    const q = new Uint32Array(this.W);
    if (i >= 0) for (let k = 0; k < this.W; k++) q[k] = this.keys[i * this.W + k];
    return q;
  }

  valueOf(i: number): number {
    return i < 0 ? this.zero : this.vals[i];
  }

  /**
   * True when some host with value > above lies inside q/len: a scan of every
   * slot (for rare checks, and small tables such as an allow set), as one
   * tight loop — no generator, no key copied — since the firewall's full
   * reconcile asks once per network ban.
   */
  anyWithin(q: Uint32Array, len: number, above: number): boolean {
    if (this.entries === 0) return false;
    const W = this.W;
    const want = new Uint32Array(W);
    const masks = new Uint32Array(W);
    let zeroInside = true;
    for (let k = 0; k < W; k++) {
      masks[k] = maskV4(0xffffffff, Math.min(32, Math.max(0, len - 32 * k)));
      want[k] = (q[k] & masks[k]) >>> 0;
      if (want[k] !== 0) zeroInside = false;
    }
    if (this.zero >= 0 && this.zero > above && zeroInside) return true;
    const keys = this.keys;
    for (let i = 0, base = 0; i <= this.mask; i++, base += W) {
      let empty = true;
      let inside = true;
      for (let k = 0; k < W; k++) {
        const key = keys[base + k];
        if (key !== 0) empty = false;
        if (((key & masks[k]) >>> 0) !== want[k]) inside = false;
      }
      if (!empty && inside && this.vals[i] > above) return true;
    }
    return false;
  }

  removeWhere(upTo: number): number {
    const doomed: Uint32Array[] = [];
    for (const i of this.walk()) if (this.valueOf(i) <= upTo) doomed.push(this.keyOf(i));
    for (const q of doomed) this.remove(q);
    if (this.filter && doomed.length > 0) {
      if (this.entries < FILTER_FROM / 2) this.filter = undefined;
      else this.rebuildFilter();
    }
    return doomed.length;
  }
}

/** One address family: host table + prefix trie. */
class Family {
  readonly hosts: HostTable;
  readonly trie: PrefixTrie;

  constructor(
    readonly W: number,
    readonly bits: number,
  ) {
    this.hosts = new HostTable(W);
    this.trie = new PrefixTrie(W);
  }

  get entries(): number {
    return this.hosts.entries + this.trie.entries;
  }

  insert(q: Uint32Array, len: number, value: number): boolean {
    return len === this.bits ? this.hosts.set(q, value) : this.trie.insert(q, len, value);
  }

  remove(q: Uint32Array, len: number): boolean {
    return len === this.bits ? this.hosts.remove(q) : this.trie.remove(q, len);
  }

  get(q: Uint32Array, len: number): number {
    return len === this.bits ? this.hosts.get(q) : this.trie.get(q, len);
  }

  /** [length, value] of the longest match with value > above; length -1 when none. */
  lookup(q: Uint32Array, above: number): [number, number] {
    const hv = this.hosts.get(q);
    if (hv > above) return [this.bits, hv];
    const n = this.trie.lookup(q, this.bits, above);
    return n < 0 ? [-1, NO_VALUE] : [this.trie.len(n), this.trie.vals[n]];
  }

  overlaps(q: Uint32Array, len: number, above: number): boolean {
    if (this.trie.contains(q, len, above) || this.trie.anyWithin(q, len, above)) return true;
    if (len === this.bits) return this.hosts.get(q) > above;
    return this.hosts.anyWithin(q, len, above);
  }

  bytes(): number {
    return this.hosts.bytes() + this.trie.bytes();
  }

  removeWhere(upTo: number): number {
    return this.hosts.removeWhere(upTo) + this.trie.removeWhere(upTo);
  }
}

export interface TrieMatch {
  /** The matching entry, canonical "addr/len". */
  cidr: string;
  value: number;
}

/**
 * IPv4 + IPv6 longest-prefix-match table. Keys are IPs or CIDRs (host bits
 * are cleared; `::ffff:a.b.c.d` counts as IPv4); values are numbers ≥ 0
 * (Infinity allowed). Invalid text is refused on insert and never matches.
 */
export class IpTrie {
  private v4 = new Family(1, 32);
  private v6 = new Family(4, 128);
  private readonly q4 = new Uint32Array(1);
  private readonly q6 = new Uint32Array(4);

  /** Number of stored prefixes. */
  get size(): number {
    return this.v4.entries + this.v6.entries;
  }

  /** Pre-size for this many host entries and shorter prefixes, so loading does not regrow. */
  reserve(hosts: number, prefixes = 0): void {
    this.v4.hosts.reserve(hosts);
    this.v4.trie.reserve(Math.ceil(prefixes * 2.1) + 16);
  }

  /** Bytes held by the typed arrays (the whole cost, apart from small free lists). */
  memoryBytes(): number {
    return this.v4.bytes() + this.v6.bytes();
  }

  clear(): void {
    this.v4 = new Family(1, 32);
    this.v6 = new Family(4, 128);
  }

  /** Store `value` (≥ 0) for an IP or CIDR; true when the prefix is new. Throws TypeError on invalid text. */
  insert(cidr: string, value: number): boolean {
    const n = parseNetwork(cidr);
    if (!n) throw new TypeError(`not an IP address or CIDR: ${JSON.stringify(cidr)}`);
    return this.insertNetwork(n, value);
  }

  insertNetwork(n: Network, value: number): boolean {
    if (!(value >= 0)) throw new RangeError(`trie values must be ≥ 0, got ${value}`);
    return n.v6 ? this.v6.insert(n.words, n.len, value) : this.v4.insert(this.word(n.addr), n.len, value);
  }

  /** Remove an exact prefix; true when it was stored. */
  remove(cidr: string): boolean {
    const n = parseNetwork(cidr);
    if (!n) return false;
    return n.v6 ? this.v6.remove(n.words, n.len) : this.v4.remove(this.word(n.addr), n.len);
  }

  /** Value stored for exactly this prefix, or undefined. */
  get(cidr: string): number | undefined {
    const n = parseNetwork(cidr);
    if (!n) return undefined;
    const v = n.v6 ? this.v6.get(n.words, n.len) : this.v4.get(this.word(n.addr), n.len);
    return v >= 0 ? v : undefined;
  }

  /** Value of the longest prefix containing `ip` whose value is > above; -1 when none or `ip` is not an IP. */
  lookup(ip: string, above = -1): number {
    const r = this.find4Text(ip, above);
    if (r !== NOT_V4) return this.value4(r);
    const q = this.q6;
    if (!parseV6(ip, q)) return NO_VALUE;
    if (isMappedV4(q)) return this.lookupV4(q[3], above);
    return this.v6.lookup(q, above)[1];
  }

  /** lookup() for an IPv4 address already held as an unsigned 32-bit number. */
  lookupV4(a: number, above = -1): number {
    return this.value4(this.find4(a >>> 16, a & 0xffff, above));
  }

  has(ip: string, above = -1): boolean {
    const r = this.find4Text(ip, above);
    if (r !== NOT_V4) return r !== MISS;
    return this.lookup(ip, above) >= 0;
  }

  // The IPv4 hot path. V8 stores integers beyond 31 bits as heap objects
  // when they cross a function call, and an address ≥ 64.0.0.0 is such an
  // integer: passing it around costs an allocation per lookup. So the
  // address travels as two 16-bit halves, the parse is done in place, and
  // the result is a small integer code (see value4()).

  /** find4() on dotted-quad text; NOT_V4 when `s` is not one. */
  private find4Text(s: string, above: number): number {
    const n = s.length;
    if (n < 7 || n > 15) return NOT_V4;
    let hi = 0;
    let part = 0;
    let digits = 0;
    let dots = 0;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i) - 48;
      if (c >= 0 && c <= 9) {
        // A leading zero (010): refused, as src/core/cidr.ts does.
        if (digits === 1 && part === 0) return NOT_V4;
        part = part * 10 + c;
        if (++digits > 3 || part > 255) return NOT_V4;
      } else if (c === -2) {
        if (digits === 0 || dots === 3) return NOT_V4;
        hi = (hi << 8) | part;
        part = 0;
        digits = 0;
        dots++;
      } else return NOT_V4;
    }
    if (digits === 0 || dots !== 3) return NOT_V4;
    // hi = o1<<16 | o2<<8 | o3 here; split into two 16-bit halves.
    return this.find4(hi >>> 8, ((hi & 0xff) << 8) | part, above);
  }

  /**
   * Longest match for the IPv4 address hi<<16|lo with value > above, as a
   * code: MISS, a trie node (≥ 0), or a host slot (≤ -2, see value4()).
   */
  private find4(hi: number, lo: number, above: number): number {
    const a = (hi << 16) | lo;
    // Host entries first: a /32 is always the longest match.
    const hosts = this.v4.hosts;
    if (a === 0) {
      if (hosts.zero > above) return HOST_ZERO;
    } else if (hosts.filter === undefined || (hosts.filter[a >>> 13] >>> ((a >>> 8) & 31)) & 1) {
      const keys = hosts.keysI;
      const mask = hosts.mask;
      let i = Math.imul(a, 0x9e3779b1) >>> hosts.shift;
      for (;;) {
        const k = keys[i];
        if (k === a) {
          if (hosts.vals[i] > above) return -3 - i;
          break;
        }
        if (k === 0) break;
        i = (i + 1) & mask;
      }
    }
    // Then the prefixes, starting where the jump table says (a trie of hosts only has none).
    const trie = this.v4.trie;
    if (trie.entries === 0) return MISS;
    const nodes = trie.nodes;
    const vals = trie.vals;
    const jump = trie.jump as Int32Array;
    let best = MISS;
    let o = jump[2 * hi] << 2;
    for (;;) {
      const l = nodes[o + 3] & LEN_MASK;
      if (l === 32) break;
      const c = nodes[o + 1 + ((a >>> (31 - l)) & 1)];
      if (c === 0) break;
      o = c << 2;
      const m = nodes[o + 3];
      if ((a ^ nodes[o]) >>> (32 - (m & LEN_MASK)) !== 0) break;
      if (m & HAS_VALUE && vals[c] > above) best = c;
    }
    if (best !== MISS) return best;
    const up = jump[2 * hi + 1];
    if (up < 0 || vals[up] > above) return up;
    // The nearest short prefix is filtered out (e.g. expired): look for a shorter one the slow way.
    const q = new Uint32Array(1);
    q[0] = a;
    return trie.lookup(q, 32, above);
  }

  /** The value behind a find4() code. */
  private value4(r: number): number {
    if (r === MISS) return NO_VALUE;
    if (r >= 0) return this.v4.trie.vals[r];
    if (r === HOST_ZERO) return this.v4.hosts.zero;
    return this.v4.hosts.vals[-3 - r];
  }

  /** The longest prefix containing `ip` with value > above, with its text. */
  match(ip: string, above = -1): TrieMatch | undefined {
    const n = parseNetwork(ip);
    if (!n || ip.includes('/')) return undefined;
    const q = n.v6 ? n.words : this.word(n.addr);
    const fam = n.v6 ? this.v6 : this.v4;
    const [len, value] = fam.lookup(q, above);
    if (len < 0) return undefined;
    const net: Network = n.v6
      ? { v6: true, words: q.map((w, k) => maskV4(w, Math.min(32, Math.max(0, len - 32 * k)))), len }
      : { v6: false, addr: maskV4(q[0], len), len };
    return { cidr: formatNetwork(net), value };
  }

  /** True when some entry with value > above contains `cidr` or lies inside it. */
  overlaps(cidr: string, above = -1): boolean {
    const n = parseNetwork(cidr);
    if (!n) return false;
    return n.v6 ? this.v6.overlaps(n.words, n.len, above) : this.v4.overlaps(this.word(n.addr), n.len, above);
  }

  /** Every stored prefix and its value (hosts after prefixes, per family). */
  *entries(): Generator<TrieMatch> {
    for (const [fam, v6] of [
      [this.v4, false],
      [this.v6, true],
    ] as const) {
      for (const n of fam.trie.walk()) {
        yield { cidr: describeKey(fam.trie.keyOf(n), fam.trie.len(n), v6), value: fam.trie.vals[n] };
      }
      for (const i of fam.hosts.walk()) {
        yield { cidr: describeKey(fam.hosts.keyOf(i), fam.bits, v6), value: fam.hosts.valueOf(i) };
      }
    }
  }

  /** Drop every entry whose value is ≤ upTo (e.g. expired ones); returns how many. */
  removeWhere(upTo: number): number {
    return this.v4.removeWhere(upTo) + this.v6.removeWhere(upTo);
  }

  private word(a: number): Uint32Array {
    this.q4[0] = a;
    return this.q4;
  }
}


function describeKey(q: Uint32Array, len: number, v6: boolean): string {
  return v6 ? `${formatV6(q)}/${len}` : `${formatV4(q[0])}/${len}`;
}
