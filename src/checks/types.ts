// What every check receives. A check is a pure function of the envelope and
// this context: the resolver, clock and (later) store are injected, so tests
// need no network and no sleeps.

import type { Clock, Envelope, Evidence } from '../core/types.js';
import type { Resolver } from '../dns/types.js';

export interface CheckContext {
  resolver: Resolver;
  clock: Clock;
  /**
   * Evidence of another check for the same transaction, computed at most once
   * (memoised by the policy evaluator). Lets a check build on another, e.g.
   * DMARC on SPF and DKIM.
   */
  evidence(check: string): Promise<Evidence>;
}

/** Signature shared by the check functions in this folder. */
export type CheckFn<O = void> = (env: Envelope, ctx: CheckContext, opts: O) => Promise<Evidence>;
