// IPv4 host bans, the bulk of a store (a million in the bench), kept as two
// typed arrays rather than an object each: the full reconcile reads them from
// the store page by page, sorts them by address and merges repeats, and the
// scripts are written from the numbers. No string, no object per ban.

/** IPv4 hosts by ascending address, each once: `addr[i]` (unsigned 32-bit) is banned until `expiresAt[i]` (ms). */
export interface Hosts4 {
  addr: Uint32Array;
  expiresAt: Float64Array;
}

/** Hosts as they come, in any order and possibly repeated (paging while bans change). */
export class Hosts4Collector {
  private addr = new Uint32Array(1024);
  private expiresAt = new Float64Array(1024);
  private n = 0;

  get size(): number {
    return this.n;
  }

  push(addr: number, expiresAt: number): void {
    if (this.n === this.addr.length) {
      const a = new Uint32Array(this.n * 2);
      a.set(this.addr);
      this.addr = a;
      const e = new Float64Array(this.n * 2);
      e.set(this.expiresAt);
      this.expiresAt = e;
    }
    this.addr[this.n] = addr;
    this.expiresAt[this.n] = expiresAt;
    this.n++;
  }

  /**
   * Sorted by address, a repeated address kept once with its latest expiry,
   * and hosts inside `allow` (sorted disjoint ranges, inclusive) left out and
   * passed to `allowed`. The collector is spent.
   */
  finish(allow: { lo: Uint32Array; hi: Uint32Array }, allowed: (addr: number) => void): Hosts4 {
    const n = this.n;
    const addr = this.addr.subarray(0, n);
    const expiresAt = this.expiresAt.subarray(0, n);
    radixSort(addr, expiresAt);
    let out = 0;
    let j = 0;
    for (let i = 0; i < n; ) {
      const a = addr[i];
      let e = expiresAt[i];
      for (i++; i < n && addr[i] === a; i++) if (expiresAt[i] > e) e = expiresAt[i];
      while (j < allow.hi.length && allow.hi[j] < a) j++;
      if (j < allow.hi.length && allow.lo[j] <= a) {
        allowed(a);
        continue;
      }
      addr[out] = a;
      expiresAt[out] = e;
      out++;
    }
    this.addr = new Uint32Array(0);
    this.expiresAt = new Float64Array(0);
    this.n = 0;
    // Copies, so the spare capacity is given back.
    return { addr: addr.slice(0, out), expiresAt: expiresAt.slice(0, out) };
  }
}

/** Sorts `addr` ascending in place, `expiresAt` moved alongside: two stable counting passes of 16 bits. */
export function radixSort(addr: Uint32Array, expiresAt: Float64Array): void {
  const n = addr.length;
  if (n < 2) return;
  const tmpA = new Uint32Array(n);
  const tmpE = new Float64Array(n);
  const pos = new Uint32Array(65536);
  const pass = (fromA: Uint32Array, fromE: Float64Array, toA: Uint32Array, toE: Float64Array, shift: number) => {
    pos.fill(0);
    for (let i = 0; i < n; i++) pos[(fromA[i] >>> shift) & 0xffff]++;
    let sum = 0;
    for (let k = 0; k < 65536; k++) {
      const c = pos[k];
      pos[k] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const p = pos[(fromA[i] >>> shift) & 0xffff]++;
      toA[p] = fromA[i];
      toE[p] = fromE[i];
    }
  };
  pass(addr, expiresAt, tmpA, tmpE, 0);
  pass(tmpA, tmpE, addr, expiresAt, 16);
}
