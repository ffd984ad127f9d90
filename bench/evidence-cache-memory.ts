// Heap per entry of the evidence cache (src/policy/evidence-cache.ts): 50,000
// SPF-like entries put, heap used measured after a full GC before and after.
// The reused copies are a literal and an Object.assign copy, not object
// spread: V8 gives each frozen object made by spread a hidden class of its
// own (1,065 bytes per entry then, 639 now, on the bench machine).
//
//   npm run bench -- evidence-cache-memory
//   BENCH_ENTRIES=100000 …
//
// Printed only; bench/README.md is not rewritten.

import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EvidenceCache } from '../src/policy/evidence-cache.js';
import { CachedResolver } from '../src/dns/cached-resolver.js';
import type { Evidence } from '../src/core/types.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 50_000);

const resolver = new CachedResolver({ query: () => Promise.reject(new Error('no DNS in this bench')) });
const cache = EvidenceCache.create(resolver, { ttlS: 3600, maxEntries: ENTRIES, clock: { now: () => Date.now() } });
if (!cache) throw new Error('evidence cache not created');
gc();
const before = process.memoryUsage().heapUsed;
for (let i = 0; i < ENTRIES; i++) {
  const data = i % 2 ? { domain: 'pool.test', identity: 'mailfrom', mechanism: `ip4:192.0.2.${i % 256}` } : { domain: 'small.test', identity: 'mailfrom', problem: `no SPF record (${i})` };
  const evidence: Evidence = { check: 'spf', result: i % 2 ? 'pass' : 'none', detail: `spf for 192.0.2.${i % 256} sender x${i}@pool.test`, ms: i / 100, data };
  cache.put(`spf\u0000192.0.2.${i % 256}\u0000x${i}@pool.test`, evidence, cache.scope());
}
gc();
const perEntry = (process.memoryUsage().heapUsed - before) / ENTRIES;
console.log(`evidence cache: ${cache.size.toLocaleString('en-US')} entries, ${Math.round(perEntry)} bytes of heap per entry (key, evidence, its data, the LRU node)`);
