// A size-bounded map that forgets the least recently used entry first: the
// memo behind the hot-path caches (parsed SPF records, parsed IPs, evidence).
// A Map keeps insertion order, so re-inserting on use is all the bookkeeping.

export class Lru<K, V> {
  private readonly map = new Map<K, Node<V>>();
  /** Counts insertions and moves: a node's `at` says how long ago it was last put at the end. */
  private tick = 0;
  /** A hit moves its entry to the end only when it has drifted this far from it (see get). */
  private readonly slack: number;

  constructor(readonly maxEntries: number) {
    if (!(maxEntries >= 1)) throw new Error(`Lru: maxEntries must be at least 1, got ${maxEntries}`);
    this.slack = Math.floor(maxEntries / 4);
  }

  get size(): number {
    return this.map.size;
  }

  /**
   * The value, now counted as recently used; undefined when absent. An entry
   * is moved to the most-recent end only once more than a quarter of the
   * capacity has been stored after it (re-inserting on every hit cost more
   * than the hit itself), so the order is least recently used to within a
   * quarter of the capacity; exact for capacities under 4.
   */
  get(key: K): V | undefined {
    const node = this.map.get(key);
    if (node === undefined) return undefined;
    if (this.tick - node.at > this.slack) {
      this.map.delete(key);
      this.map.set(key, node);
      node.at = ++this.tick;
    }
    return node.value;
  }

  /** The value without touching its place in the order. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  /** Store as the most recently used; drops the least recently used beyond maxEntries. Returns how many were dropped. */
  set(key: K, value: V): number {
    this.map.delete(key);
    this.map.set(key, { value, at: ++this.tick });
    let dropped = 0;
    while (this.map.size > this.maxEntries) {
      this.map.delete(this.map.keys().next().value as K);
      dropped++;
    }
    return dropped;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}

interface Node<V> {
  value: V;
  at: number;
}

/** Memoise a pure one-argument function of a string, keeping at most `maxEntries` results (thrown errors are not kept). */
export function memoiseString<V>(fn: (s: string) => V, maxEntries: number): (s: string) => V {
  const cache = new Lru<string, V>(maxEntries);
  return (s: string): V => {
    let v = cache.get(s);
    if (v === undefined) {
      v = fn(s);
      cache.set(s, v);
    }
    return v;
  };
}
