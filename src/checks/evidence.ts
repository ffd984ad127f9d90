import type { Evidence, EvidenceResult } from '../core/types.js';
import { isDnsError } from '../dns/types.js';

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

/** The domain part of an address (lower-cased), or undefined for the null sender / no `@`. */
export function domainOf(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const at = address.lastIndexOf('@');
  if (at < 0) return undefined;
  const d = address.slice(at + 1).replace(/\.$/, '').toLowerCase();
  return d === '' ? undefined : d;
}
