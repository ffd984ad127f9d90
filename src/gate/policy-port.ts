// What the gate needs of the policy engine (src/policy): a transaction per
// message that evaluates a stage of the envelope into a Verdict. Typed here
// structurally, so the gate and its tests depend on the shape, not on the
// engine's construction.

import type { Envelope, Stage, Verdict } from '../core/types.js';
import type { OwnHeaders } from '../policy/own-headers.js';

export interface GateTransaction {
  evaluate(stage: Stage, env: Envelope): Promise<Verdict>;
}

export interface GatePolicy {
  transaction(opts: { seesMessage: boolean }): GateTransaction;
  /** The result headers this policy writes: incoming copies of them are removed before the message is passed on. */
  readonly ownHeaders?: OwnHeaders;
}
