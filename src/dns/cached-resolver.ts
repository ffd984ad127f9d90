// The resolver every check uses: a TTL-bounded, size-bounded cache in front
// of a Querier (the network client), with in-flight de-duplication so that
// concurrent checks asking the same question cause one network query.

import { systemClock, type Clock } from '../core/types.js';
import { DnsError, type MxRecord, type Resolver } from './types.js';
import { reverseName } from './reverse.js';
import { checkName, dataOf, type DnsAnswer, type QType, type Querier } from './answer.js';

export interface CacheOptions {
  /** Seconds; shorter answer TTLs are raised to this. Default 5. */
  minTtl?: number;
  /** Seconds; longer answer TTLs are cut to this. Default 3600. */
  maxTtl?: number;
  /** Seconds to cache NXDOMAIN/NODATA when the server sent no SOA (then clamped like any TTL). Default 60. */
  negativeTtl?: number;
  /** Seconds to cache faults (TIMEOUT, SERVFAIL, REFUSED, FORMERR). Default 0: never cached. */
  failTtl?: number;
  /** Most entries kept; the least recently used go first. Default 100000. */
  maxEntries?: number;
}

export interface CachedResolverOptions extends CacheOptions {
  clock?: Clock;
}

export interface CacheStats {
  /** Questions answered from the cache. */
  hits: number;
  /** Questions sent on to the network. */
  misses: number;
  /** Questions that joined an identical question already on the network. */
  inflightShared: number;
  /** Entries dropped to stay within maxEntries. */
  evictions: number;
}

type Entry = { expiresAt: number; answer: DnsAnswer } | { expiresAt: number; error: DnsError };

/** Something with sockets to release (the network client). */
interface Closable {
  close(): void;
}

export class CachedResolver implements Resolver, Querier {
  readonly stats: CacheStats = { hits: 0, misses: 0, inflightShared: 0, evictions: 0 };
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<DnsAnswer>>();
  private readonly clock: Clock;
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly negativeTtl: number;
  private readonly failTtl: number;
  private readonly maxEntries: number;

  constructor(
    private readonly upstream: Querier & Partial<Closable>,
    opts: CachedResolverOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.minTtl = opts.minTtl ?? 5;
    this.maxTtl = opts.maxTtl ?? 3600;
    this.negativeTtl = opts.negativeTtl ?? 60;
    this.failTtl = opts.failTtl ?? 0;
    this.maxEntries = opts.maxEntries ?? 100_000;
    if (this.minTtl < 0 || this.maxTtl < this.minTtl) throw new Error(`DNS cache: need 0 <= minTtl (${this.minTtl}) <= maxTtl (${this.maxTtl})`);
    if (this.maxEntries < 1) throw new Error(`DNS cache: maxEntries must be at least 1, got ${this.maxEntries}`);
  }

  /** Entries currently held (some may have expired but not yet been looked at). */
  get size(): number {
    return this.entries.size;
  }

  async a(name: string): Promise<string[]> {
    return dataOf(await this.query(name, 'A'));
  }
  async aaaa(name: string): Promise<string[]> {
    return dataOf(await this.query(name, 'AAAA'));
  }
  async txt(name: string): Promise<string[]> {
    return dataOf(await this.query(name, 'TXT'));
  }
  async mx(name: string): Promise<MxRecord[]> {
    // Copies, so a caller cannot change what the next caller gets.
    return dataOf(await this.query(name, 'MX')).map((m) => ({ ...m }));
  }
  async ptr(ip: string): Promise<string[]> {
    let name: string;
    try {
      name = reverseName(ip);
    } catch {
      throw new DnsError('BADNAME', ip, 'PTR');
    }
    return dataOf(await this.query(name, 'PTR'));
  }

  /** One question through the cache: the stored answer while fresh, else one shared network query. */
  async query<T extends QType>(name: string, type: T): Promise<DnsAnswer<T>> {
    const key = `${type} ${checkName(name, type).toLowerCase()}`;
    const now = this.clock.now();
    const entry = this.entries.get(key);
    if (entry) {
      if (now < entry.expiresAt) {
        this.stats.hits++;
        // Most recently used goes to the end of the Map's order.
        this.entries.delete(key);
        this.entries.set(key, entry);
        if ('error' in entry) throw entry.error;
        return entry.answer as DnsAnswer<T>;
      }
      this.entries.delete(key);
    }
    const shared = this.inflight.get(key);
    if (shared) {
      this.stats.inflightShared++;
      return shared as Promise<DnsAnswer<T>>;
    }
    this.stats.misses++;
    const p = this.fetch(key, name, type);
    this.inflight.set(key, p);
    return p;
  }

  /** Forget everything cached (not the questions on the network). */
  clear(): void {
    this.entries.clear();
  }

  close(): void {
    this.upstream.close?.();
  }

  private async fetch<T extends QType>(key: string, name: string, type: T): Promise<DnsAnswer<T>> {
    try {
      const answer = await this.upstream.query(name, type);
      const ttl = answer.status === 'NOERROR' ? (answer.ttl ?? this.minTtl) : (answer.ttl ?? this.negativeTtl);
      this.store(key, { expiresAt: this.clock.now() + this.clamp(ttl) * 1000, answer });
      return answer;
    } catch (e) {
      if (e instanceof DnsError && e.code !== 'BADNAME' && this.failTtl > 0) {
        this.store(key, { expiresAt: this.clock.now() + this.failTtl * 1000, error: e });
      }
      throw e;
    } finally {
      this.inflight.delete(key);
    }
  }

  private clamp(ttl: number): number {
    return Math.min(this.maxTtl, Math.max(this.minTtl, ttl));
  }

  private store(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.stats.evictions++;
    }
  }
}
