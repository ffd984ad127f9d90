// What every command that decides needs: the resolver and the policy built
// from one loaded config. Kept here so serve and check build them the same way.

import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import { createResolver, type CachedResolver } from '../dns/index.js';
import { Policy, type PolicyDeps } from '../policy/index.js';
import type { Store } from '../store/index.js';

export interface Runtime {
  config: Config;
  resolver: CachedResolver;
  policy: Policy;
  /** Stop the policy's timers and release DNS sockets. */
  close(): void;
}

/**
 * `store`: the open state store the policy's store checks use (serve: the configured one; check: in memory).
 * `extra`: serve's learned correspondents (src/cli/intel-jobs.ts), the IP-to-AS table (asn.table), the check timer of /metrics.
 */
export function buildRuntime(config: Config, logger: Logger, store?: Store, extra: Pick<PolicyDeps, 'correspondents' | 'asn' | 'onCheckRun'> = {}): Runtime {
  const dns = config.dns;
  const resolver = createResolver({
    servers: dns.servers,
    timeoutMs: dns.timeout_ms,
    retries: dns.retries,
    cache: { minTtl: dns.cache.min_ttl, maxTtl: dns.cache.max_ttl, negativeTtl: dns.cache.negative_ttl, maxEntries: dns.cache.max_entries },
    logger: logger.child({ room: 'dns' }),
  });
  const policy = Policy.fromConfig(config, { resolver, logger, store, ...extra });
  return {
    config,
    resolver,
    policy,
    close() {
      policy.stop();
      resolver.close();
    },
  };
}

/** `--dns a,b` → ['a', 'b']. */
export function splitList(s: string | undefined): string[] | undefined {
  if (s === undefined) return undefined;
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}
