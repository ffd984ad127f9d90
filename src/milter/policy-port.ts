// What the milter needs of the policy engine (src/policy's Policy fits): a
// transaction per message that evaluates a stage of the envelope into a
// Verdict, and the names of the result headers it writes. Typed here
// structurally so the milter and its tests depend on the shape only.

import type { Envelope, Stage, Verdict } from '../core/types.js';
import type { OwnHeaders } from '../policy/own-headers.js';

export interface MilterTransaction {
  evaluate(stage: Stage, env: Envelope): Promise<Verdict>;
}

export interface MilterPolicy {
  transaction(opts: { seesMessage: boolean }): MilterTransaction;
  /** The result headers this policy writes: incoming copies are removed at end of message. */
  readonly ownHeaders?: OwnHeaders;
}
