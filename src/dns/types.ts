// The resolver contract every check uses. Two implementations: the network
// client (dns/client.ts, on dns-packet) behind a cache (dns/cached-resolver.ts),
// and the in-memory zone resolver (dns/zone.ts) used by pure tests.

export type DnsErrorCode = 'NXDOMAIN' | 'NODATA' | 'TIMEOUT' | 'SERVFAIL' | 'REFUSED' | 'FORMERR' | 'BADNAME';

/** A typed DNS failure. NXDOMAIN and NODATA are "void" answers (RFC 7208 §4.6.4). */
export class DnsError extends Error {
  constructor(
    public readonly code: DnsErrorCode,
    public readonly qname: string,
    public readonly qtype: string,
  ) {
    super(`${qtype} ${qname}: ${code}`);
    this.name = 'DnsError';
  }
  /** NXDOMAIN/NODATA: the name or type has no data (not a fault). */
  get isVoid(): boolean {
    return this.code === 'NXDOMAIN' || this.code === 'NODATA';
  }
  /** Transient failure: callers must answer 4xx / temperror, never 5xx. */
  get isTemporary(): boolean {
    return this.code === 'TIMEOUT' || this.code === 'SERVFAIL' || this.code === 'REFUSED';
  }
}

export function isDnsError(e: unknown): e is DnsError {
  return e instanceof DnsError;
}

export interface MxRecord {
  preference: number;
  exchange: string;
}

/**
 * Every method resolves to a non-empty list or rejects with a DnsError:
 * NXDOMAIN when the name does not exist, NODATA when it exists without records
 * of that type. Names are given without a trailing dot; results have none either.
 */
export interface Resolver {
  a(name: string): Promise<string[]>;
  aaaa(name: string): Promise<string[]>;
  /** Each TXT record with its character-strings joined with no separator. */
  txt(name: string): Promise<string[]>;
  mx(name: string): Promise<MxRecord[]>;
  /** PTR names for an IP address (the resolver builds the in-addr/ip6 name). */
  ptr(ip: string): Promise<string[]>;
}

/** Resolve to [] on NXDOMAIN/NODATA; rethrow faults. */
export async function orEmpty<T>(p: Promise<T[]>): Promise<T[]> {
  try {
    return await p;
  } catch (e) {
    if (isDnsError(e) && e.isVoid) return [];
    throw e;
  }
}
