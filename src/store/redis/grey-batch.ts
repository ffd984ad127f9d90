// The Redis greylist's batcher: the attempts of one event-loop turn go to
// Redis in one script call (GREY_ATTEMPT_LUA decides them in order), held
// for up to GREY_GATHER_TURNS more turns while fewer than GREY_GATHER_ROWS
// have gathered — as the SQLite store gathers its greylist commits. On a
// busy policy server each call cost more than the attempt inside it: a
// command, a reply and its parsing on our side; a script invocation and,
// with one or two commands per socket read, a read, a write and a wake-up
// on Redis's.

import { StoreUnavailableError } from '../errors.js';
import type { GreyAttempt, GreyTiming } from '../types.js';
import { GREY_GATHER_ROWS, GREY_GATHER_TURNS } from '../grey-gather.js';

/** A batch is sent at once when it holds this many attempts (the script blocks Redis while it runs). */
export const REDIS_GREY_BATCH_ROWS = 256;

/** Sends one batch: the keys, then ARGV (delay, window, passed TTL, now and IP of each); answers outcome and seconds of each, flat. */
export type SendAttempts = (keys: string[], args: Array<string | number>) => Promise<Array<string | number>>;

interface Waiter {
  resolve: (a: GreyAttempt) => void;
  reject: (e: unknown) => void;
}

interface Batch {
  timing: GreyTiming;
  keys: string[];
  args: Array<string | number>;
  waiters: Waiter[];
}

const OUTCOMES: ReadonlySet<string> = new Set<GreyAttempt['outcome']>(['first', 'early', 'retried', 'known']);

export class RedisGreyBatch {
  private batch?: Batch;
  private scheduled = false;
  private held = 0;
  /** Batches sent and not yet answered (sync() waits for them). */
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly send: SendAttempts,
    private readonly maxRows = REDIS_GREY_BATCH_ROWS,
  ) {}

  /** Queue one attempt (key already prefixed, IP canonical); settles with its outcome once its batch is answered. */
  attempt(key: string, clientIp: string, now: number, timing: GreyTiming): Promise<GreyAttempt> {
    if (this.batch !== undefined && !sameTiming(this.batch.timing, timing)) this.flush();
    const b = (this.batch ??= { timing, keys: [], args: [timing.delaySeconds, timing.retryWindowSeconds, timing.passedTtlSeconds], waiters: [] });
    const p = new Promise<GreyAttempt>((resolve, reject) => b.waiters.push({ resolve, reject }));
    b.keys.push(key);
    b.args.push(now, clientIp);
    if (b.keys.length >= this.maxRows) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.atTurnEnd());
    }
    return p;
  }

  private atTurnEnd(): void {
    const n = this.batch?.keys.length ?? 0;
    if (n > 0 && n < GREY_GATHER_ROWS && this.held < GREY_GATHER_TURNS) {
      this.held++;
      setImmediate(() => this.atTurnEnd());
      return;
    }
    this.scheduled = false;
    this.flush();
  }

  /** Send the batch being filled now. */
  flush(): void {
    const b = this.batch;
    this.held = 0;
    if (b === undefined) return;
    this.batch = undefined;
    let sent: Promise<Array<string | number>>;
    try {
      sent = this.send(b.keys, b.args);
    } catch (e) {
      sent = Promise.reject(e);
    }
    const done = sent.then(
      (reply) => settle(b.waiters, reply),
      (e: unknown) => {
        for (const w of b.waiters) w.reject(e);
      },
    );
    this.sending.add(done);
    void done.finally(() => this.sending.delete(done));
  }

  /** Resolves once every attempt queued before the call has been sent and answered (or failed). */
  async sync(): Promise<void> {
    this.flush();
    if (this.sending.size > 0) await Promise.allSettled([...this.sending]);
  }
}

function settle(waiters: Waiter[], reply: Array<string | number>): void {
  waiters.forEach((w, i) => {
    const outcome = reply[2 * i];
    if (typeof outcome === 'string' && OUTCOMES.has(outcome)) w.resolve({ outcome: outcome as GreyAttempt['outcome'], seconds: Number(reply[2 * i + 1]) });
    else w.reject(new StoreUnavailableError(`redis: greylist script answered ${JSON.stringify(reply.slice(2 * i, 2 * i + 2))} for attempt ${i + 1} of ${waiters.length}`));
  });
}

function sameTiming(a: GreyTiming, b: GreyTiming): boolean {
  return a.delaySeconds === b.delaySeconds && a.retryWindowSeconds === b.retryWindowSeconds && a.passedTtlSeconds === b.passedTtlSeconds;
}
