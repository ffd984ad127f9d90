// What a check that needs the store says when the store cannot answer
// (Redis down, SQLite locked): `temperror` — the policy's fault path turns a
// refusing rule into 451 4.3.0, never a 5xx — or, with
// `store.on_unavailable: continue`, `none`, so the rule does not fire and
// mail flows without the store's help.

import type { Evidence } from '../core/types.js';
import { isStoreUnavailable } from '../store/errors.js';

export type OnUnavailable = 'defer' | 'continue';

/** Evidence for a store fault; rethrows anything that is not one (a bug: `timed` makes it an internal error). */
export function storeFault(e: unknown, onUnavailable: OnUnavailable, what: string): Omit<Evidence, 'check' | 'ms'> {
  if (!isStoreUnavailable(e)) throw e;
  if (onUnavailable === 'continue') {
    return { result: 'none', detail: `store unavailable (${e.message}): ${what} skipped (store.on_unavailable: continue)`, data: { store: 'unavailable' } };
  }
  // `internal` asks the policy for 451 4.3.0 (a system fault), not the DNS fault's 4.4.3.
  return { result: 'temperror', detail: `store unavailable: ${e.message}`, data: { store: 'unavailable', internal: true } };
}

/** Evidence when no store is open (the check was called outside serve, e.g. a test without one). */
export const NO_STORE: Omit<Evidence, 'check' | 'ms'> = { result: 'none', detail: 'no state store open', data: { store: 'none' } };
