// The dns room's front door: build the resolver the program uses from the
// server strings an admin wrote.

import type { Clock } from '../core/types.js';
import { CachedResolver, type CacheOptions } from './cached-resolver.js';
import { DnsClient, type DnsLogger } from './client.js';
import { parseServer } from './servers.js';

export interface CreateResolverOptions {
  /** `"host"`, `"host:port"`, `"v6"` or `"[v6]:port"`; IP literals only; port defaults to 53. */
  servers: string[];
  /** Milliseconds per attempt. Default 2000. */
  timeoutMs?: number;
  /** Attempts after the first, rotating over the servers. Default 2. */
  retries?: number;
  cache?: CacheOptions;
  clock?: Clock;
  /** Dropped (stray or forged) answers are told here at debug. */
  logger?: DnsLogger;
}

/** A cached resolver over the network client. Throws an Error naming the bad server string. */
export function createResolver(opts: CreateResolverOptions): CachedResolver {
  if (opts.servers.length === 0) throw new Error('DNS: no servers given; expected at least one "host[:port]"');
  const servers = opts.servers.map(parseServer);
  if (opts.timeoutMs !== undefined && !(opts.timeoutMs > 0)) throw new Error(`DNS: timeoutMs must be positive, got ${opts.timeoutMs}`);
  if (opts.retries !== undefined && !(Number.isInteger(opts.retries) && opts.retries >= 0)) {
    throw new Error(`DNS: retries must be a whole number >= 0, got ${opts.retries}`);
  }
  const client = new DnsClient({ servers, timeoutMs: opts.timeoutMs, retries: opts.retries, logger: opts.logger });
  return new CachedResolver(client, { ...opts.cache, clock: opts.clock });
}

export { CachedResolver, type CacheOptions, type CacheStats, type CachedResolverOptions } from './cached-resolver.js';
export { DnsClient, type DnsClientOptions, type DnsClientStats, type DnsDropStats, type DnsLogger } from './client.js';
export { parseServer, formatServer, readResolvConf, DEFAULT_DNS_PORT, type DnsServer } from './servers.js';
export { type DnsAnswer, type DnsRecord, type QType, type Querier, type RDataByType } from './answer.js';
export { DnsError, isDnsError, orEmpty, type DnsErrorCode, type MxRecord, type Resolver } from './types.js';
