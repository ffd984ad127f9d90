import type { Evidence, EvidenceResult } from '../core/types.js';
import { isDnsError } from '../dns/types.js';
import { memoiseString } from '../core/lru.js';

// Shared with the store room; re-exported for the checks that name it here.
export { domainOf } from '../core/address.js';

/** Time a check body and wrap its outcome as Evidence; a DNS fault becomes temperror, never a crash. */
export async function timed(
  check: string,
  body: () => Promise<Omit<Evidence, 'check' | 'ms'>>,
): Promise<Evidence> {
  const t0 = performance.now();
  try {
    const r = await body();
    return { check, ...r, ms: Math.round((performance.now() - t0) * 100) / 100 };
  } catch (e) {
    const detail = isDnsError(e) ? `DNS ${e.message}` : `error: ${(e as Error).message}`;
    const result: EvidenceResult = 'temperror';
    return { check, result, detail, ms: Math.round((performance.now() - t0) * 100) / 100 };
  }
}

/** The strings of a list in evidence.data, checked for shape (evidence crosses module boundaries as plain data). */
export function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Evidence that nobody may change: the object and its data. */
export function frozenEvidence(e: Evidence): Evidence {
  if (e.data) Object.freeze(e.data);
  return Object.freeze(e);
}

/**
 * Evidence made once per value (a client IP, an address) and handed out
 * again, frozen: a local check's everyday answer ("not banned", "not a
 * spamtrap") is the same for the same value, and the decision log
 * compacts and serialises a frozen entry once (store/events.ts), where a
 * fresh one cost ~0.45 µs per entry per decision — eight of them per
 * decision under the default policy. At most `maxEntries` values are kept.
 */
export function sharedEvidence(make: (value: string) => Evidence, maxEntries = 10_000): (value: string) => Evidence {
  return memoiseString((value) => frozenEvidence(make(value)), maxEntries);
}
