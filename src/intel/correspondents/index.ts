// Learning correspondents, put together: the learner (policy requests and
// Postfix log lines), the `correspondent` check, and the job that walks the
// learned domains' SPF into the `correspondents` list. `serve` builds one of
// these from the `intel.correspondents` config section.

import type { Clock, Envelope, Evidence, Stage } from '../../core/types.js';
import type { Resolver } from '../../dns/types.js';
import type { CheckContext } from '../../checks/types.js';
import type { ListSink } from '../list-sink.js';
import { SpfWalkedList } from '../spfwalk/whitelist.js';
import type { WalkOptions } from '../spfwalk/walk.js';
import { checkCorrespondent } from './check.js';
import { DEFAULT_FREE_MAIL, FreeMailDomains } from './free-mail.js';
import { CorrespondentLearner } from './learn.js';
import { PostfixSentLog } from './postfix-log.js';
import { MemoryCorrespondentStore, type Correspondent, type CorrespondentStore } from './store.js';

export interface CorrespondentsOptions {
  clock: Clock;
  /** Default: in memory (lost on restart); serve keeps them in the state store (StoreCorrespondents). */
  store?: CorrespondentStore;
  ttlS?: number;
  /** Free-mail domains (`label.*` allowed); default DEFAULT_FREE_MAIL. */
  freeMail?: string[];
  ignoreDomains?: string[];
  /** Messages before a correspondent counts, for the check and the walk. Default 1. */
  minCount?: number;
  requireAuth?: boolean;
  includeLocal?: boolean;
  /** The walked list; both sink and resolver are needed for the walk job. */
  walk?: { sink: ListSink; resolver: Resolver; intervalS: number; list?: string; options?: WalkOptions };
}

export class Correspondents {
  readonly store: CorrespondentStore;
  readonly learner: CorrespondentLearner;
  readonly log: PostfixSentLog;
  /** Walks the learned domains into the `correspondents` list; absent without `walk`. */
  readonly walkJob?: SpfWalkedList;
  private readonly freeMail: FreeMailDomains;
  private readonly minCount: number;

  constructor(opts: CorrespondentsOptions) {
    this.store = opts.store ?? new MemoryCorrespondentStore();
    this.freeMail = new FreeMailDomains(opts.freeMail ?? DEFAULT_FREE_MAIL);
    this.minCount = opts.minCount ?? 1;
    this.learner = new CorrespondentLearner({ store: this.store, clock: opts.clock, ttlS: opts.ttlS, freeMail: this.freeMail, ignoreDomains: opts.ignoreDomains });
    this.log = new PostfixSentLog({ requireAuth: opts.requireAuth, includeLocal: opts.includeLocal });
    if (opts.walk) {
      const w = opts.walk;
      this.walkJob = new SpfWalkedList(
        { list: w.list ?? 'correspondents', intervalS: w.intervalS, sink: w.sink, resolver: w.resolver, clock: opts.clock, walk: w.options },
        () => this.learner.domainsToWalk(this.minCount),
      );
    }
  }

  /** For the policy server: call on each request; learns only from authenticated clients. */
  learnFromAuthenticated(env: Envelope, stage?: Stage): Promise<Correspondent[]> {
    return this.learner.learnFromAuthenticated(env, stage);
  }

  /** learnFromAuthenticated when nobody waits for the answer (the policy server's decisions); a failure goes to `onError`. */
  noteFromAuthenticated(env: Envelope, stage: Stage | undefined, onError: (err: unknown) => void): void {
    this.learner.noteFromAuthenticated(env, stage, onError);
  }

  /** For the log watcher: one line of the mail log. */
  async learnFromLogLine(line: string): Promise<Correspondent | undefined> {
    const sent = this.log.line(line);
    return sent ? this.learner.learnRecipient(sent.address) : undefined;
  }

  /** The `correspondent` check, for the policy registry. */
  check = (env: Envelope, ctx: CheckContext): Promise<Evidence> =>
    checkCorrespondent(env, ctx, { store: this.store, freeMail: this.freeMail, minCount: this.minCount });
}

export { checkCorrespondent, correspondentCheck, type CorrespondentCheckOptions } from './check.js';
export { CorrespondentLearner, correspondentKey, DEFAULT_CORRESPONDENT_TTL_S } from './learn.js';
export { PostfixSentLog, type SentRecipient } from './postfix-log.js';
export { FreeMailDomains, DEFAULT_FREE_MAIL } from './free-mail.js';
export { MemoryCorrespondentStore, StoreCorrespondents, type Correspondent, type CorrespondentStore, type CorrespondentKind } from './store.js';
