// The resolver every check uses: a TTL-bounded, size-bounded cache in front
// of a Querier (the network client), with in-flight de-duplication so that
// concurrent checks asking the same question cause one network query.

import { systemClock, type Clock } from '../core/types.js';
import { DnsError, type MxRecord, type Resolver } from './types.js';
import { reverseName } from './reverse.js';
import { checkName, type DnsAnswer, type QType, type Querier, type RDataByType } from './answer.js';
import { Lru } from '../core/lru.js';

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

/**
 * An answer (records or a void answer) or a cached fault. The data list and
 * the void answer's DnsError are made once per entry, not once per hit: a
 * warm cache answers most questions, and a new Error per cached NXDOMAIN
 * (with its stack trace) was a measurable share of a policy decision.
 */
interface Entry {
  expiresAt: number;
  answer?: DnsAnswer;
  /** The fault (no answer), or the void answer as an error, built on first use. */
  error?: DnsError;
  data?: readonly unknown[];
}

/** Told when each answer the cache serves stops being fresh (epoch ms): lets a caller bound what it derives from it. */
export type ExpirySink = (expiresAt: number) => void;

/** Something with sockets to release (the network client). */
interface Closable {
  close(): void;
}

export class CachedResolver implements Resolver, Querier {
  readonly stats: CacheStats = { hits: 0, misses: 0, inflightShared: 0, evictions: 0 };
  /** By `cacheKey`: an Lru, not a Map re-inserted on every hit (see core/lru.ts: the hot sender domains' entries made that quadratic). */
  private readonly entries: Lru<string, Entry>;
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly clock: Clock;
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly negativeTtl: number;
  private readonly failTtl: number;
  private readonly maxEntries: number;

  constructor(
    /** The network client (its own stats: questions, timeouts). */
    readonly upstream: Querier & Partial<Closable>,
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
    this.entries = new Lru(this.maxEntries);
  }

  /** Entries currently held (some may have expired but not yet been looked at). */
  get size(): number {
    return this.entries.size;
  }

  a(name: string, seen?: ExpirySink): Promise<string[]> {
    return this.records(name, 'A', seen);
  }
  aaaa(name: string, seen?: ExpirySink): Promise<string[]> {
    return this.records(name, 'AAAA', seen);
  }
  txt(name: string, seen?: ExpirySink): Promise<string[]> {
    return this.records(name, 'TXT', seen);
  }
  async mx(name: string, seen?: ExpirySink): Promise<MxRecord[]> {
    // Copies, so a caller cannot change what the next caller gets.
    return (await this.records(name, 'MX', seen)).map((m) => ({ ...m }));
  }
  ptr(ip: string, seen?: ExpirySink): Promise<string[]> {
    let name: string;
    try {
      name = reverseName(ip);
    } catch {
      return Promise.reject(new DnsError('BADNAME', ip, 'PTR'));
    }
    return this.records(name, 'PTR', seen);
  }

  /** One question through the cache: the stored answer while fresh, else one shared network query. */
  async query<T extends QType>(name: string, type: T, seen?: ExpirySink): Promise<DnsAnswer<T>> {
    const key = cacheKey(name, type);
    const entry = this.fresh(key) ?? (await this.miss(key, name, type));
    if (!entry.answer) throw entry.error;
    seen?.(entry.expiresAt);
    return entry.answer as DnsAnswer<T>;
  }

  /** The records of one question (what the Resolver methods return), without an extra promise on a hit. */
  private records<T extends QType>(name: string, type: T, seen?: ExpirySink): Promise<RDataByType[T][]> {
    let entry: Entry | undefined;
    try {
      const key = cacheKey(name, type);
      entry = this.fresh(key);
      if (!entry) return this.miss(key, name, type).then((e) => recordsOf<T>(e, seen));
      return Promise.resolve(recordsOf<T>(entry, seen));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The entry while fresh (now the most recently used), counted as a hit. */
  private fresh(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.clock.now() >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    this.stats.hits++;
    return entry;
  }

  /** Join the identical question already on the network, or send it. */
  private miss(key: string, name: string, type: QType): Promise<Entry> {
    const shared = this.inflight.get(key);
    if (shared) {
      this.stats.inflightShared++;
      return shared;
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

  private async fetch(key: string, name: string, type: QType): Promise<Entry> {
    try {
      const answer = await this.upstream.query(name, type);
      const ttl = answer.status === 'NOERROR' ? (answer.ttl ?? this.minTtl) : (answer.ttl ?? this.negativeTtl);
      const entry: Entry = { expiresAt: this.clock.now() + this.clamp(ttl) * 1000, answer };
      this.store(key, entry);
      return entry;
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
    this.stats.evictions += this.entries.set(key, entry);
  }
}

function cacheKey(name: string, type: QType): string {
  return `${type} ${checkName(name, type).toLowerCase()}`;
}

/** What a Resolver method returns for an entry: a copy of its records, or its void answer / fault thrown. */
function recordsOf<T extends QType>(entry: Entry, seen: ExpirySink | undefined): RDataByType[T][] {
  const answer = entry.answer;
  if (!answer) throw entry.error; // a cached fault: nothing fresh to report
  seen?.(entry.expiresAt);
  if (answer.status !== 'NOERROR') throw (entry.error ??= voidError(answer));
  entry.data ??= answer.records.map((r) => r.data);
  return entry.data.slice() as RDataByType[T][];
}

/**
 * The DnsError of a cached void answer, shared by every hit on the entry:
 * frozen so no caller can change what the next one sees, and without a stack
 * trace, which would name only whichever caller happened to ask first.
 */
function voidError(answer: DnsAnswer): DnsError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return Object.freeze(new DnsError(answer.status as 'NXDOMAIN' | 'NODATA', answer.qname, answer.qtype));
  } finally {
    Error.stackTraceLimit = limit;
  }
}
