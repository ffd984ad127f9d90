// Evidence shared between transactions. Checks whose evidence depends only on
// the client IP, the HELO name and the sender (SPF, MX, FCrDNS, HELO, sender
// domain, DNSBL/DNSWL) give the same answer for the next message from the
// same client with the same sender, so it is reused for a short, bounded time:
// never past the moment the first DNS answer it was built from expires in the
// DNS cache, nor past `ttl_s`. Evidence built while any DNS question failed
// (temperror, a timed-out DNSBL zone, a name that could not be resolved) is
// never kept: the next message asks again. Reused evidence says so: `ms` is
// 0 and `data.cached` is true; its result and detail are unchanged.

import type { Clock, Envelope, Evidence } from '../core/types.js';
import { Lru } from '../core/lru.js';
import { CachedResolver, type ExpirySink } from '../dns/cached-resolver.js';
import { isDnsError, type MxRecord, type Resolver } from '../dns/types.js';
import { domainOf } from '../checks/evidence.js';

export interface EvidenceCacheOptions {
  /** Longest reuse, seconds (policy.evidence_cache.ttl_s). */
  ttlS: number;
  /** Most entries kept, least recently used dropped first (policy.evidence_cache.max_entries). */
  maxEntries: number;
  clock: Clock;
}

export interface EvidenceCacheStats {
  /** Evidence reused. */
  hits: number;
  /** Evidence of a shareable check computed (kept or not). */
  misses: number;
  /** Evidence computed but not kept: temperror, a DNS fault, or a question still open when the check ended. */
  uncacheable: number;
  evictions: number;
}

/** What a cacheable check's evidence depends on, beyond the check itself; undefined = do not cache for this envelope. */
const DEPENDS_ON: Readonly<Record<string, (env: Envelope) => string | undefined>> = {
  dnsbl: (env) => env.clientIp,
  dnswl: (env) => env.clientIp,
  fcrdns: (env) => env.clientIp,
  helo: (env) => (env.helo === undefined ? undefined : `${env.clientIp}\0${env.helo}`),
  spf_helo: (env) => (env.helo ? `${env.clientIp}\0${env.helo}` : undefined),
  // The whole sender: SPF macros may use its local part (%{l}, %{s}); the HELO name is %{h}.
  spf: (env) => (env.from === undefined ? undefined : `${env.clientIp}\0${env.helo ?? ''}\0${env.from}`),
  mx: (env) => clientAndDomain(env),
  fcrdns_domain: (env) => clientAndDomain(env),
  // Its detail names the whole address, and a malformed local part is its business.
  sender_domain: (env) => (env.from ? env.from : undefined),
};

/** The checks whose evidence may be shared between transactions. */
export const CACHEABLE_CHECKS: readonly string[] = Object.keys(DEPENDS_ON);

function clientAndDomain(env: Envelope): string | undefined {
  const d = domainOf(env.from);
  return d === undefined ? undefined : `${env.clientIp}\0${d}`;
}

export interface CachedEvidence {
  evidence: Evidence;
  expiresAt: number;
  /** Checks it was built from (e.g. fcrdns for fcrdns_domain): a reuse brings them into the transaction too, as computing it would have. */
  deps: readonly string[];
}

/** Watches one check's computation: the DNS answers it used (when they expire), faults, questions left open. */
export class EvidenceScope {
  /** Earliest expiry (epoch ms) of anything the evidence was built from. */
  expiresAt = Infinity;
  /** A DNS fault, a dependency that cannot be cached, or anything else that forbids keeping the evidence. */
  tainted = false;
  /** Checks whose evidence this one was built from. */
  readonly deps: string[] = [];
  private pending = 0;
  readonly resolver: Resolver;

  constructor(base: CachedResolver) {
    const seen: ExpirySink = (t) => {
      if (t < this.expiresAt) this.expiresAt = t;
    };
    const track = <T>(p: Promise<T>): Promise<T> => {
      this.pending++;
      return p.then(
        (v) => {
          this.pending--;
          return v;
        },
        (e: unknown) => {
          this.pending--;
          // Void answers (cached with their own expiry) and unqueryable names are facts; anything else is a fault.
          if (!(isDnsError(e) && (e.isVoid || e.code === 'BADNAME'))) this.tainted = true;
          throw e;
        },
      );
    };
    this.resolver = {
      a: (name: string) => track(base.a(name, seen)),
      aaaa: (name: string) => track(base.aaaa(name, seen)),
      txt: (name: string) => track(base.txt(name, seen)),
      mx: (name: string): Promise<MxRecord[]> => track(base.mx(name, seen)),
      ptr: (ip: string) => track(base.ptr(ip, seen)),
    };
  }

  /** Fold in another check's evidence this one was built from: its expiry, or undefined when it was not cacheable. */
  dependsOn(check: string, expiresAt: number | undefined): void {
    if (!this.deps.includes(check)) this.deps.push(check);
    if (expiresAt === undefined) this.tainted = true;
    else if (expiresAt < this.expiresAt) this.expiresAt = expiresAt;
  }

  /** A DNS question still unanswered (e.g. a DNSBL zone raced against its timeout). */
  get open(): boolean {
    return this.pending > 0;
  }
}

export class EvidenceCache {
  readonly stats: EvidenceCacheStats = { hits: 0, misses: 0, uncacheable: 0, evictions: 0 };
  private readonly entries: Lru<string, CachedEvidence>;
  /** Bumped when a check's world changes (a DNSBL zone taken out of use): older entries no longer match. */
  private readonly generations = new Map<string, number>();

  constructor(
    private readonly resolver: CachedResolver,
    private readonly opts: EvidenceCacheOptions,
  ) {
    this.entries = new Lru(opts.maxEntries);
  }

  /**
   * The cache for a policy, or undefined when it is off: ttl_s or
   * max_entries 0, or a resolver without a DNS cache (whose answers have no
   * known lifetime, so nothing derived from them may be kept).
   */
  static create(resolver: Resolver, opts: EvidenceCacheOptions): EvidenceCache | undefined {
    if (!(opts.ttlS > 0) || !(opts.maxEntries >= 1) || !(resolver instanceof CachedResolver)) return undefined;
    return new EvidenceCache(resolver, opts);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cache key of a check's evidence for this envelope, or undefined when it is not shared. */
  keyOf(check: string, env: Envelope): string | undefined {
    const dep = DEPENDS_ON[check]?.(env);
    if (dep === undefined) return undefined;
    const gen = this.generations.get(check);
    return gen === undefined ? `${check}\0${dep}` : `${check}\0${gen}\0${dep}`;
  }

  /** Is there fresh evidence under this key? (Not counted as a hit: get() is what reuses it.) */
  has(key: string): boolean {
    const e = this.entries.get(key);
    return e !== undefined && this.opts.clock.now() < e.expiresAt;
  }

  /** Fresh evidence under this key (marked as reused), with its expiry. */
  get(key: string): CachedEvidence | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (this.opts.clock.now() >= e.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    this.stats.hits++;
    return e;
  }

  /** A scope to compute a check in: its resolver reports what the evidence rests on. */
  scope(): EvidenceScope {
    return new EvidenceScope(this.resolver);
  }

  /** Keep freshly computed evidence if it may be; returns its expiry, or undefined when it was not kept. */
  put(key: string, evidence: Evidence, scope: EvidenceScope): number | undefined {
    this.stats.misses++;
    if (evidence.result === 'temperror' || scope.tainted || scope.open || evidence.data?.internal === true) {
      this.stats.uncacheable++;
      return undefined;
    }
    const expiresAt = Math.min(scope.expiresAt, this.opts.clock.now() + this.opts.ttlS * 1000);
    // A literal and Object.assign, not object spread: V8 gave each frozen copy made by spread (and
    // its data) a map — hidden class — of its own (~68,000 in a worker's heap after a minute of the
    // greylisting bench); these share one per shape. `npm run bench -- evidence-cache-memory`: 1,065 → 639 bytes of heap per entry.
    const data: Record<string, unknown> = Object.assign({}, evidence.data);
    data.cached = true;
    const reused: Evidence = { check: evidence.check, result: evidence.result, detail: evidence.detail, ms: 0, data };
    this.stats.evictions += this.entries.set(key, { evidence: deepFreeze(reused), expiresAt, deps: [...scope.deps] });
    return expiresAt;
  }

  /** Stop reusing a check's evidence (its world changed, e.g. a DNSBL zone went out of use or came back). */
  invalidate(check: string): void {
    this.generations.set(check, (this.generations.get(check) ?? 0) + 1);
  }

  clear(): void {
    this.entries.clear();
  }
}

/** Cached evidence is handed to many transactions: nobody may change it. */
function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v) && !ArrayBuffer.isView(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}
