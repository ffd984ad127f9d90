// What every check receives. A check is a pure function of the envelope and
// this context: the resolver, clock and store are injected, so tests
// need no network and no sleeps.

import type { Clock, Envelope, Evidence } from '../core/types.js';
import type { Resolver } from '../dns/types.js';
import type { Store } from '../store/types.js';

export interface CheckContext {
  resolver: Resolver;
  clock: Clock;
  /**
   * Evidence of another check for the same transaction, computed at most once
   * (memoised by the policy evaluator). Lets a check build on another, e.g.
   * DMARC on SPF and DKIM.
   */
  evidence(check: string): Promise<Evidence>;
  /**
   * The state store (bans, lists, greylist, rate limits), for the checks that
   * remember; absent where no store is open (those checks are then not
   * registered). Its faults reject with StoreUnavailableError.
   */
  store?: Store;
}

/** Signature shared by the check functions in this folder. */
export type CheckFn<O = void> = (env: Envelope, ctx: CheckContext, opts: O) => Promise<Evidence>;
