// A size-bounded map that forgets the least recently used entry first: the
// memo behind the hot-path caches (parsed SPF records, parsed IPs, evidence,
// the DNS cache).
//
// A Map from key to node, and the nodes in a doubly linked list by use.
// Not a Map whose insertion order is the use order (re-insert on use, drop
// `keys().next()`), as before: V8's Map leaves a deleted entry in its table
// until the next rehash, so (1) a hot key deleted and re-inserted on every
// hit grew a chain of its own dead copies in its hash bucket, walked by
// every later lookup of that bucket, and (2) `keys().next()` skipped every
// dead entry left at the front by earlier evictions. Both grew with the
// traffic between rehashes: on the cold workload (every client new, a few
// sender domains hit by most decisions) they were a tenth of a decision's
// CPU, and a scratch loop of inserts with one hot key took 277 µs per
// insert at 200,000 entries. Here the Map only gains an entry for a new
// key and loses one when an entry goes (evicted, deleted): a hit touches
// only list pointers.

interface Node<K, V> {
  key: K;
  value: V;
  /** Towards the most recently used end; the head sentinel for the newest. */
  newer: Node<K, V>;
  /** Towards the least recently used end; the head sentinel for the oldest. */
  older: Node<K, V>;
}

export class Lru<K, V> {
  private readonly map = new Map<K, Node<K, V>>();
  /** Sentinel: `head.older` is the most recently used node, `head.newer` the least. */
  private readonly head: Node<K, V>;

  constructor(readonly maxEntries: number) {
    if (!(maxEntries >= 1)) throw new Error(`Lru: maxEntries must be at least 1, got ${maxEntries}`);
    const head = { key: undefined, value: undefined } as unknown as Node<K, V>;
    head.newer = head.older = head;
    this.head = head;
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, now the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const node = this.map.get(key);
    if (node === undefined) return undefined;
    if (this.head.older !== node) {
      this.unlink(node);
      this.linkNewest(node);
    }
    return node.value;
  }

  /** The value without touching its place in the order. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  /** Store as the most recently used; drops the least recently used beyond maxEntries. Returns how many were dropped. */
  set(key: K, value: V): number {
    const found = this.map.get(key);
    if (found !== undefined) {
      found.value = value;
      if (this.head.older !== found) {
        this.unlink(found);
        this.linkNewest(found);
      }
      return 0;
    }
    const node = { key, value } as Node<K, V>;
    this.linkNewest(node);
    this.map.set(key, node);
    let dropped = 0;
    while (this.map.size > this.maxEntries) {
      const oldest = this.head.newer;
      this.map.delete(oldest.key);
      this.unlink(oldest);
      dropped++;
    }
    return dropped;
  }

  delete(key: K): boolean {
    const node = this.map.get(key);
    if (node === undefined) return false;
    this.map.delete(key);
    this.unlink(node);
    return true;
  }

  clear(): void {
    this.map.clear();
    this.head.newer = this.head.older = this.head;
  }

  private linkNewest(node: Node<K, V>): void {
    const head = this.head;
    const newest = head.older;
    node.older = newest;
    node.newer = head;
    newest.newer = node;
    head.older = node;
  }

  /** Out of the list, its own links cleared: a dropped node (old, dead) must not keep its newer neighbours alive through young-generation collections. */
  private unlink(node: Node<K, V>): void {
    node.older.newer = node.newer;
    node.newer.older = node.older;
    node.newer = node.older = undefined as unknown as Node<K, V>;
  }
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
