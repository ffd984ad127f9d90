import type { Evidence, EvidenceResult } from '../core/types.js';
import { isDnsError } from '../dns/types.js';

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
