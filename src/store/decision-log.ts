// The decision log's writer for the frontends: every verdict becomes a
// DecisionEvent in the store, without making the reply wait for it. A
// failed write is logged (at most one line per 10 s, with the number of
// events lost), never thrown: the log is a record, not a precondition.

import { systemClock, type Clock, type Envelope, type Verdict } from '../core/types.js';
import type { LoggedDecision, Store, StoreLogger } from './types.js';

/**
 * The event for one verdict. At RCPT the event names the recipient decided on; later stages name them all.
 * The evidence is the verdict's own: the store compacts each entry as it serialises it (one copy, not two).
 */
export function decisionEvent(verdict: Verdict, env: Envelope, ts: number, sessionId?: string): LoggedDecision {
  const rcpts = verdict.stage === 'rcpt' ? env.rcpts.slice(-1) : [...env.rcpts];
  const e: LoggedDecision = {
    ts,
    clientIp: env.clientIp,
    rcpts,
    stage: verdict.stage,
    action: verdict.action,
    rule: verdict.rule,
    evidence: verdict.evidence,
    // What a re-evaluation needs beyond the above (frontline replay).
    rcptCount: env.rcpts.length,
  };
  const session = sessionId ?? env.sessionId;
  if (session !== undefined) e.sessionId = session;
  if (env.helo !== undefined) e.helo = env.helo;
  if (env.from !== undefined) e.from = env.from;
  if (env.clientPtr !== undefined) e.clientPtr = env.clientPtr;
  if (env.saslUser !== undefined) e.saslUser = env.saslUser;
  if (verdict.code !== undefined) e.code = verdict.code;
  if (verdict.text !== undefined) e.text = verdict.text;
  if (verdict.score !== undefined) e.score = verdict.score;
  if (verdict.wouldHave !== undefined && verdict.wouldHave.length > 0) e.wouldHave = verdict.wouldHave;
  return e;
}

const ERROR_LOG_INTERVAL_MS = 10_000;

export class DecisionLog {
  private failed = 0;
  private lastErrorLog = -Infinity;
  /**
   * Writes started and not yet settled, with the number of events each
   * carries (close() waits for them). A store may answer a whole batch of
   * events with one promise: it is watched once, not once per event.
   */
  private readonly inFlight = new Map<Promise<void>, number>();

  constructor(
    private readonly store: Pick<Store, 'logEvent'>,
    private readonly logger: StoreLogger,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Record one decision; returns at once. */
  record(verdict: Verdict, env: Envelope, sessionId?: string): void {
    let p: Promise<void>;
    try {
      p = this.store.logEvent(decisionEvent(verdict, env, this.clock.now(), sessionId));
    } catch (e) {
      p = Promise.reject(e);
    }
    const n = this.inFlight.get(p);
    if (n !== undefined) {
      this.inFlight.set(p, n + 1);
      return;
    }
    this.inFlight.set(p, 1);
    p.then(
      () => this.inFlight.delete(p),
      (err: unknown) => {
        const lost = this.inFlight.get(p) ?? 1;
        this.inFlight.delete(p);
        this.failure(err, lost);
      },
    );
  }

  private failure(err: unknown, lost: number): void {
    this.failed += lost;
    const now = this.clock.now();
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    this.lastErrorLog = now;
    this.logger.warn({ err: err instanceof Error ? err.message : String(err), lost: this.failed }, 'decision log: events not stored');
    this.failed = 0;
  }

  /** Wait for the writes in flight (before the store is closed). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.inFlight.keys()]);
  }
}
